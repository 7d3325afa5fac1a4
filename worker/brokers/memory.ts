import { Broker, type BrokerOptions, type ConsumeOptions, type Consumer, type DeadLetter, type QueueStats } from "../broker.js";
import { defaultMiddleware } from "../middleware/defaults.js";
import { DecodeError } from "../errors.js";
import { getLogger } from "../logging.js";
import { Message } from "../message.js";
import { MessageProxy } from "../proxy.js";
import { dqName, qName } from "../queues.js";

interface Entry {
  raw: string;
  priority: number;
  seq: number;
  redelivered: boolean;
}

interface Receipt {
  entry: Entry;
  consumer: MemoryConsumer;
}

class MemoryQueue {
  readonly ready: Entry[] = [];
  readonly unacked = new Set<Receipt>();
  readonly consumers: MemoryConsumer[] = [];
  private nextConsumer = 0;

  /** Higher broker priority first, FIFO among equals (binary insertion keeps enqueue O(log n) comparisons). */
  push(entry: Entry): void {
    const q = this.ready;
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = q[mid]!;
      if (other.priority > entry.priority || (other.priority === entry.priority && other.seq < entry.seq)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === q.length) q.push(entry);
    else q.splice(lo, 0, entry);
  }

  /** Hand ready entries to consumers that have room, round-robin. */
  dispatch(): void {
    while (this.ready.length > 0) {
      const consumer = this.pickConsumer();
      if (!consumer) return;
      consumer.deliver(this.ready.shift()!);
    }
  }

  private pickConsumer(): MemoryConsumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const consumer = this.consumers[(this.nextConsumer + i) % this.consumers.length]!;
      if (consumer.hasRoom()) {
        this.nextConsumer = (this.nextConsumer + i + 1) % this.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }
}

const log = getLogger("broker.memory");

/**
 * An in-process broker with the semantics of the real ones: `q`/`q.DQ`/`q.XQ`, prefetch, ack/nack, requeue,
 * redelivery of unacked messages when a consumer closes, broker priorities and dead letters with reasons.
 * Messages are stored encoded, so decoding problems surface exactly as they would on Redis or RabbitMQ.
 */
export class MemoryBroker extends Broker {
  readonly displayUrl = "memory://";
  private readonly store = new Map<string, MemoryQueue>();
  private readonly dead = new Map<string, DeadLetter[]>();
  private seq = 0;

  constructor(options: BrokerOptions = {}) {
    super({ ...options, middleware: options.middleware ?? defaultMiddleware() });
  }

  protected async doConnect(): Promise<void> {}

  async close(): Promise<void> {
    for (const queue of this.store.values()) {
      for (const consumer of [...queue.consumers]) await consumer.close();
    }
  }

  queue(name: string): MemoryQueue {
    let queue = this.store.get(name);
    if (!queue) {
      queue = new MemoryQueue();
      this.store.set(name, queue);
    }
    return queue;
  }

  protected async publish(message: Message): Promise<Message> {
    this.enqueueRaw(message.queueName, message.encode(), Number(message.options.broker_priority ?? 0) || 0);
    return message;
  }

  /** Put a payload on a queue as-is: how tests feed garbage or Dramatiq-written bytes to a worker. */
  enqueueRaw(queueName: string, raw: string, priority = 0): void {
    const queue = this.queue(queueName);
    queue.push({ raw, priority, seq: this.seq++, redelivered: false });
    queue.dispatch();
  }

  consume(queue: string, options: ConsumeOptions): Consumer {
    return new MemoryConsumer(this, queue, options);
  }

  deadLetter(queueName: string, raw: string, reason: string | undefined): void {
    const canonical = qName(queueName);
    let list = this.dead.get(canonical);
    if (!list) {
      list = [];
      this.dead.set(canonical, list);
    }
    let message: Message | undefined;
    try {
      message = Message.decode(raw);
    } catch {
      message = undefined;
    }
    list.push({ raw, message, reason, deadAt: Date.now() });
  }

  async purge(queue: string): Promise<void> {
    const canonical = qName(queue);
    for (const name of [canonical, dqName(canonical)]) {
      const q = this.store.get(name);
      if (q) q.ready.length = 0;
    }
    this.dead.delete(canonical);
  }

  async queueStats(queue: string): Promise<QueueStats> {
    const canonical = qName(queue);
    const main = this.store.get(canonical);
    const delay = this.store.get(dqName(canonical));
    return {
      queue: canonical,
      ready: main?.ready.length ?? 0,
      delayed: (delay?.ready.length ?? 0) + (delay?.unacked.size ?? 0),
      inFlight: main?.unacked.size ?? 0,
      dead: this.dead.get(canonical)?.length ?? 0,
    };
  }

  async deadLetters(queue: string, limit = Infinity): Promise<DeadLetter[]> {
    return (this.dead.get(qName(queue)) ?? []).slice(0, limit);
  }

  async listQueues(): Promise<string[]> {
    return [...new Set([...this.queues, ...[...this.store.keys()].map(qName), ...this.dead.keys()])].sort();
  }

}

class MemoryConsumer implements Consumer {
  private outstanding = 0;
  private fetching = false;

  constructor(
    private readonly broker: MemoryBroker,
    readonly queue: string,
    private readonly options: ConsumeOptions,
  ) {}

  async start(): Promise<void> {
    const q = this.broker.queue(this.queue);
    this.fetching = true;
    q.consumers.push(this);
    queueMicrotask(() => q.dispatch());
  }

  hasRoom(): boolean {
    return this.fetching && this.outstanding < this.options.prefetch;
  }

  deliver(entry: Entry): void {
    const q = this.broker.queue(this.queue);
    const receipt: Receipt = { entry, consumer: this };
    q.unacked.add(receipt);
    this.outstanding++;
    let message: Message;
    try {
      message = Message.decode(entry.raw);
    } catch (err) {
      const reason = err instanceof DecodeError ? err.message : String(err);
      q.unacked.delete(receipt);
      this.outstanding--;
      this.broker.deadLetter(this.queue, entry.raw, reason);
      log.warn("undecodable message dead-lettered", { queue: this.queue, reason });
      this.options.onUndecodable?.({ queue: this.queue, raw: entry.raw, reason });
      return;
    }
    this.options.onMessage(new MessageProxy(message, this.queue, receipt, entry.redelivered));
  }

  private settle(message: MessageProxy): Entry | undefined {
    const receipt = message.receipt as Receipt;
    const q = this.broker.queue(this.queue);
    if (!q.unacked.delete(receipt)) return undefined;
    this.outstanding--;
    queueMicrotask(() => q.dispatch());
    return receipt.entry;
  }

  async ack(message: MessageProxy): Promise<void> {
    this.settle(message);
  }

  async nack(message: MessageProxy): Promise<void> {
    const entry = this.settle(message);
    if (entry) this.broker.deadLetter(this.queue, entry.raw, message.deadLetterReason);
  }

  async requeue(messages: MessageProxy[]): Promise<void> {
    const q = this.broker.queue(this.queue);
    for (const message of messages) {
      const entry = this.settle(message);
      if (entry) q.push({ ...entry, redelivered: true });
    }
    q.dispatch();
  }

  async stop(): Promise<void> {
    this.fetching = false;
  }

  async close(): Promise<void> {
    this.fetching = false;
    const q = this.broker.queue(this.queue);
    const index = q.consumers.indexOf(this);
    if (index >= 0) q.consumers.splice(index, 1);
    for (const receipt of [...q.unacked]) {
      if (receipt.consumer !== this) continue;
      q.unacked.delete(receipt);
      this.outstanding--;
      q.push({ ...receipt.entry, redelivered: true });
    }
    q.dispatch();
  }
}
