import type { Channel, ConsumeMessage } from "amqplib";
import type { ConsumeOptions, Consumer } from "../../broker.js";
import { ConnectionClosed, DecodeError, TroupeError } from "../../errors.js";
import { getLogger, messageFields } from "../../logging.js";
import { Message } from "../../message.js";
import { MessageProxy } from "../../proxy.js";
import { AckBatcher } from "./ack-batcher.js";
import type { Topology } from "./topology.js";

const log = getLogger("broker.rabbitmq");

/** One channel's subscription; deliveries remember theirs, since a delivery tag means nothing on another channel. */
interface Session {
  channel: Channel;
  batcher: AckBatcher;
  /** False once the channel closed: its deliveries can no longer be settled. */
  open: boolean;
  /** Set once the subscription is registered; before that a failure is reported by `subscribe` throwing. */
  consumerTag?: string;
  /** Why the channel closed, when RabbitMQ said. */
  error?: Error;
}

interface Receipt {
  session: Session;
  delivery: ConsumeMessage;
}

/**
 * Consumes one queue on its own channel with a QoS prefetch and manual acks. When the channel or connection is
 * lost it tells the worker (whose unacked deliveries RabbitMQ will redeliver), then subscribes again with backoff;
 * settling a delivery of the lost channel is impossible, so it is ignored with a warning.
 */
export class RabbitmqConsumer implements Consumer {
  private session: Session | undefined;
  private fetching = false;
  private closed = false;

  constructor(
    readonly queue: string,
    private readonly options: ConsumeOptions,
    private readonly openChannel: () => Promise<Channel>,
    private readonly topology: Topology,
    private readonly onClose: (consumer: RabbitmqConsumer) => void,
  ) {}

  /** Deliveries handed out and not settled, on the live channel. */
  get outstanding(): number {
    return this.session?.batcher.size ?? 0;
  }

  /**
   * Subscribe. A refusal (wrong queue arguments, no permission) fails the worker's start; a connection lost on
   * the way (the broker restarting while a worker boots) is recovered like a later one, by subscribing again.
   */
  async start(): Promise<void> {
    this.fetching = true;
    try {
      await this.topology.ensure(this.queue);
      await this.subscribe();
    } catch (err) {
      if (!lostConnection(err)) throw err;
      log.warn("RabbitMQ connection lost while subscribing; subscribing again", { queue: this.queue, error: (err as Error).message });
      await this.resubscribe();
    }
  }

  private async subscribe(): Promise<void> {
    const channel = await this.openChannel();
    const session: Session = { channel, batcher: new AckBatcher(channel), open: true };
    channel.on("error", (err: Error) => {
      session.error = err;
      log.warn("RabbitMQ consumer channel error", { queue: this.queue, error: err.message });
    });
    channel.on("close", () => this.lost(session, session.error ?? new Error("channel closed")));
    try {
      await channel.prefetch(this.options.prefetch);
      const { consumerTag } = await channel.consume(this.queue, (delivery) => this.onDelivery(session, delivery), { noAck: false });
      if (!session.open) throw new Error("the channel closed while subscribing");
      session.consumerTag = consumerTag;
    } catch (err) {
      session.open = false;
      await channel.close().catch(() => undefined);
      throw err;
    }
    this.session = session;
  }

  private onDelivery(session: Session, delivery: ConsumeMessage | null): void {
    if (delivery === null) {
      // RabbitMQ cancelled the consumer: the queue was deleted. Re-subscribing declares it again.
      this.topology.forget(this.queue);
      void session.channel.close().catch(() => undefined);
      return;
    }
    session.batcher.delivered(delivery.fields.deliveryTag);
    let message: Message;
    try {
      message = Message.decode(delivery.content);
    } catch (err) {
      const reason = err instanceof DecodeError ? err.message : String(err);
      if (session.batcher.settle(delivery.fields.deliveryTag)) reject(session, delivery, false);
      this.options.onUndecodable?.({ queue: this.queue, raw: delivery.content, reason });
      return;
    }
    const receipt: Receipt = { session, delivery };
    this.options.onMessage(new MessageProxy(message, this.queue, receipt, delivery.fields.redelivered));
  }

  /** The receipt's session when it is still live; otherwise warn that RabbitMQ will redeliver the message. */
  private live(message: MessageProxy, action: string): Receipt | undefined {
    const receipt = message.receipt as Receipt;
    if (receipt.session.open) return receipt;
    log.warn(`${action} ignored: the delivery came on a channel that has since closed; RabbitMQ redelivers it`, messageFields(message.message));
    return undefined;
  }

  async ack(message: MessageProxy): Promise<void> {
    const receipt = this.live(message, "ack");
    if (receipt) receipt.session.batcher.ack(receipt.delivery.fields.deliveryTag);
  }

  async nack(message: MessageProxy): Promise<void> {
    const receipt = this.live(message, "nack");
    if (!receipt || !receipt.session.batcher.settle(receipt.delivery.fields.deliveryTag)) return;
    // RabbitMQ dead-letters the original delivery to q.XQ with x-death headers; it has nowhere to keep our reason.
    reject(receipt.session, receipt.delivery, false);
    log.debug("nacked to the dead-letter queue", { ...messageFields(message.message), reason: message.deadLetterReason });
  }

  async requeue(messages: MessageProxy[]): Promise<void> {
    for (const message of messages) {
      const receipt = this.live(message, "requeue");
      if (receipt && receipt.session.batcher.settle(receipt.delivery.fields.deliveryTag)) reject(receipt.session, receipt.delivery, true);
    }
  }

  async stop(): Promise<void> {
    this.fetching = false;
    const session = this.session;
    if (session?.open && session.consumerTag) await session.channel.cancel(session.consumerTag).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.fetching = false;
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    this.onClose(this);
    if (!session?.open) return;
    session.open = false;
    session.batcher.flush();
    await session.channel.close().catch(() => undefined);
  }

  private lost(session: Session, err: Error): void {
    if (!session.open) return;
    session.open = false;
    if (session.consumerTag === undefined) return;
    if (this.session === session) this.session = undefined;
    if (this.closed) return;
    this.options.onConnectionLost?.(err);
    if (this.fetching) void this.resubscribe();
  }

  private async resubscribe(): Promise<void> {
    for (let attempt = 1; this.fetching && !this.closed; attempt++) {
      try {
        await this.topology.ensure(this.queue);
        await this.subscribe();
        if (!this.fetching) await this.stop();
        log.info("RabbitMQ consumer subscribed again", { queue: this.queue, attempt });
        return;
      } catch (err) {
        const wait = Math.min(5000, 100 * 2 ** attempt);
        log.warn("RabbitMQ consumer could not subscribe again; retrying", { queue: this.queue, attempt, retryInMs: wait, error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}

/**
 * Whether an error means the connection or channel went away, not that RabbitMQ refused something: refusals
 * carry an AMQP reply code (403, 404, 406…) or come wrapped as a BrokerError by the topology.
 */
function lostConnection(err: unknown): boolean {
  if (err instanceof ConnectionClosed) return true;
  return !(err instanceof TroupeError) && typeof (err as { code?: unknown } | null)?.code !== "number";
}

/** `basic.nack` one delivery; on a channel closing under us there is nothing to do, RabbitMQ redelivers it. */
function reject(session: Session, delivery: ConsumeMessage, requeue: boolean): void {
  try {
    session.channel.nack(delivery, false, requeue);
  } catch (err) {
    log.warn("nack not sent: the channel is closing; RabbitMQ redelivers the message", { error: (err as Error).message, requeue });
  }
}
