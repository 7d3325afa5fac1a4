import { randomUUID } from "node:crypto";
import type { ConsumeOptions, Consumer } from "../../broker.js";
import { DecodeError } from "../../errors.js";
import { ChurnMap, ChurnSet } from "../../churn.js";
import { getLogger, messageFields } from "../../logging.js";
import { Message } from "../../message.js";
import { MessageProxy } from "../../proxy.js";
import { Batcher } from "./batcher.js";
import type { Dispatch, FetchedDelivery } from "./dispatch.js";
import { Signal } from "./signal.js";

const log = getLogger("broker.redis");

export interface RedisConsumerSettings {
  /** Most ids one fetch takes (bounded by the Lua unpack limit). */
  maxFetch: number;
  /** Longest sleep between polls of an empty queue, in ms. */
  maxPollInterval: number;
  /** Subscribe to wake-ups for this queue; returns the unsubscribe function. */
  subscribe: (wake: () => void) => Promise<() => void>;
  /** Whether another consumer of this process holds `id` (they share one ack set). */
  heldElsewhere: (id: string) => boolean;
  onClose: () => void;
}

/**
 * Dramatiq's Redis consumer, without its polling hot loop and its stranded deliveries: it fetches in batches
 * up to the prefetch, sleeps on an empty queue until a wake-up or a capped backoff, batches acks made in the
 * same event-loop turn into one script call, dead-letters undecodable payloads with the reason, and after a
 * connection problem gives back ids left in its ack set by a fetch whose reply was lost.
 */
export class RedisConsumer implements Consumer {
  /** Ids handed to onMessage and not yet settled: the prefetch counts these. */
  private readonly held = new ChurnSet<string>();
  /** Ids with an ack/nack/requeue/promote sent and not yet confirmed. */
  private readonly inSettlement = new ChurnMap<string, number>();
  private readonly room = new Signal();
  private readonly wake = new Signal();
  private readonly acks: Batcher<string>;
  private readonly nacks: Batcher<[string, string]>;
  private fetching = false;
  private reconcileNeeded = false;
  private unsubscribe: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;

  constructor(
    private readonly dispatch: Dispatch,
    readonly queue: string,
    private readonly options: ConsumeOptions,
    private readonly settings: RedisConsumerSettings,
  ) {
    this.acks = new Batcher(async (ids) => {
      await dispatch.ack(queue, ids);
      for (const id of ids) this.markSettled(id);
    });
    this.nacks = new Batcher(async (entries) => {
      await dispatch.nack(queue, entries);
      for (const [id] of entries) this.markSettled(id);
    });
  }

  async start(): Promise<void> {
    if (this.fetching) return;
    this.fetching = true;
    this.unsubscribe = await this.settings.subscribe(() => this.wake.fire());
    this.loopDone = this.loop();
  }

  /** True when this consumer has `id` in hand or is settling it. */
  holds(id: string): boolean {
    return this.held.has(id) || this.inSettlement.has(id);
  }

  /** The connection came back: look for stranded ids and poll now (wake-ups published meanwhile are lost). */
  connectionRestored(): void {
    this.reconcileNeeded = true;
    this.wake.fire();
  }

  private get refillAt(): number {
    return Math.max(1, Math.min(64, Math.floor(this.options.prefetch / 4)));
  }

  private async loop(): Promise<void> {
    let misses = 0;
    let errors = 0;
    while (this.fetching) {
      const room = this.options.prefetch - this.held.size;
      if (room < this.refillAt) {
        this.room.reset();
        if (this.options.prefetch - this.held.size < this.refillAt) await this.room.wait(Infinity);
        continue;
      }
      this.wake.reset();
      let batch: FetchedDelivery[];
      try {
        if (this.reconcileNeeded) await this.reconcile();
        batch = await this.dispatch.fetch(this.queue, Math.min(room, this.settings.maxFetch));
        errors = 0;
      } catch (err) {
        this.reconcileNeeded = true;
        const delay = Math.min(2000, 100 * 2 ** errors++);
        log.warn("fetch failed; retrying", { queue: this.queue, err, retryInMs: delay });
        await this.wake.wait(delay);
        continue;
      }
      if (!this.fetching) {
        await this.giveBack(batch.map((d) => d.id));
        break;
      }
      if (batch.length === 0) {
        misses = Math.min(misses + 1, 16);
        const backoff = Math.min(this.settings.maxPollInterval, 5 * 2 ** misses);
        await this.wake.wait(backoff / 2 + (Math.random() * backoff) / 2);
        continue;
      }
      misses = 0;
      for (const delivery of batch) this.deliver(delivery);
    }
  }

  private deliver({ id, body }: FetchedDelivery): void {
    if (this.holds(id) || this.settings.heldElsewhere(id)) return;
    if (body === undefined && id.trimStart().startsWith("{")) {
      this.deadLetterListedBody(id);
      return;
    }
    if (body === undefined) {
      // Listed without a body (Dramatiq #266): drop the id from our ack set instead of stranding it there.
      log.warn("queue listed a message id with no stored body; dropped", { queue: this.queue, redisMessageId: id });
      this.markSettling(id);
      void this.acks.add(id).catch((err) => log.warn("could not drop a bodiless id", { queue: this.queue, err }));
      return;
    }
    let message: Message;
    try {
      message = Message.decode(body);
    } catch (err) {
      const reason = err instanceof DecodeError ? err.message : String(err);
      this.markSettling(id);
      void this.nacks.add([id, reason]).then(
        () => this.options.onUndecodable?.({ queue: this.queue, raw: body, reason }),
        (nackErr) => log.error("could not dead-letter an undecodable message", { queue: this.queue, redisMessageId: id, reason, err: nackErr }),
      );
      return;
    }
    this.held.add(id);
    this.options.onMessage(new MessageProxy(message, this.queue, id));
  }

  /**
   * A body pushed onto the list itself instead of through the enqueue script: dead-letter its bytes (under its own
   * message id when it has one, so a Python peer's tools find it) rather than dropping it as a bodiless id.
   */
  private deadLetterListedBody(listed: string): void {
    const raw = Buffer.from(listed);
    let deadLetterId: string;
    try {
      deadLetterId = Message.decode(raw).messageId;
    } catch {
      deadLetterId = randomUUID();
    }
    const reason = "the queue list held a message body instead of a message id (pushed without Troupe's or Dramatiq's enqueue, e.g. RPUSH); kept as a dead letter";
    this.markSettling(listed);
    this.dispatch.deadLetterListedBody(this.queue, listed, deadLetterId, reason).then(
      () => {
        this.markSettled(listed);
        this.options.onUndecodable?.({ queue: this.queue, raw, reason });
      },
      (err) => log.error("could not dead-letter a body listed in place of an id", { queue: this.queue, messageId: deadLetterId, reason, err }),
    );
  }

  /**
   * Mark `id` as being settled until `markSettled(id)`, called once its ack, nack or requeue is confirmed. A
   * failed send keeps the mark: the worker retries it, and until then the id must not look stranded.
   */
  private markSettling(id: string): void {
    if (this.held.delete(id)) this.room.fire();
    this.inSettlement.set(id, (this.inSettlement.get(id) ?? 0) + 1);
  }

  private markSettled(id: string): void {
    const left = this.inSettlement.get(id)! - 1;
    if (left > 0) this.inSettlement.set(id, left);
    else this.inSettlement.delete(id);
  }

  private async settle(id: string, send: () => Promise<unknown>): Promise<void> {
    this.markSettling(id);
    await send();
    this.markSettled(id);
  }

  ack(message: MessageProxy): Promise<void> {
    const id = message.receipt as string;
    this.markSettling(id);
    return this.acks.add(id);
  }

  nack(message: MessageProxy): Promise<void> {
    const id = message.receipt as string;
    this.markSettling(id);
    return this.nacks.add([id, deadLetterReason(message)]);
  }

  async requeue(messages: MessageProxy[]): Promise<void> {
    const ids = messages.map((m) => m.receipt as string);
    if (ids.length) await this.giveBack(ids);
  }

  private async giveBack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const sent = this.dispatch.requeue(this.queue, ids);
    await Promise.all(ids.map((id) => this.settle(id, () => sent)));
  }

  /** Replace the delay-queue delivery by `promoted` on the canonical queue in one step; false if not ours. */
  async promote(delivery: MessageProxy, promoted: Message, redisMessageId: string): Promise<boolean> {
    const id = delivery.receipt as string;
    let moved = false;
    await this.settle(id, async () => {
      moved = await this.dispatch.promote(this.queue, id, redisMessageId, promoted.encode());
    });
    if (!moved) log.warn("delayed message no longer owned by this worker (recovered elsewhere); not promoted", messageFields(delivery.message));
    return moved;
  }

  /** Requeue ids in our ack set that nobody here holds: left there by a fetch whose reply was lost. */
  private async reconcile(): Promise<void> {
    const members = await this.dispatch.ackSetMembers(this.queue);
    const stranded = members.filter((id) => !this.holds(id) && !this.settings.heldElsewhere(id));
    if (stranded.length) {
      await this.dispatch.requeue(this.queue, stranded);
      log.warn("requeued deliveries stranded by a lost connection", { queue: this.queue, count: stranded.length });
    }
    this.reconcileNeeded = false;
  }

  async stop(): Promise<void> {
    this.fetching = false;
    this.wake.fire();
    this.room.fire();
  }

  async close(): Promise<void> {
    await this.stop();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.giveBack([...this.held]);
    await this.loopDone;
    this.settings.onClose();
  }
}

/** The reason kept with a dead letter: the one given to `fail`, else the error that failed the message. */
function deadLetterReason(message: MessageProxy): string {
  if (message.deadLetterReason) return message.deadLetterReason;
  const err = message.exception as { name?: unknown; message?: unknown } | undefined;
  if (err && typeof err === "object" && typeof err.message === "string") return `${String(err.name ?? "Error")}: ${err.message}`;
  return "";
}
