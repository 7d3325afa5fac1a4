import type { Channel, Message as AmqpMessage } from "amqplib";

/**
 * The deliveries of one channel that are not settled yet, and the acks not yet sent. Acks are sent once per
 * event-loop turn: every acked tag below the oldest unsettled delivery goes out as one `multiple` ack, the others
 * one by one. A `multiple` ack covers every unacked tag up to it on the server, so it is only used where no
 * delivery below it is still running — out-of-order completion never acks unfinished work.
 */
export class AckBatcher {
  /** Delivered and not settled, in delivery-tag order (tags only grow and a Set keeps insertion order). */
  private readonly unsettled = new Set<number>();
  private pending: number[] = [];
  private scheduled = false;

  constructor(private readonly channel: Channel) {}

  get size(): number {
    return this.unsettled.size;
  }

  delivered(tag: number): void {
    this.unsettled.add(tag);
  }

  /** Forget a delivery settled right away (nack, requeue); false when it was already settled. */
  settle(tag: number): boolean {
    return this.unsettled.delete(tag);
  }

  ack(tag: number): boolean {
    if (!this.unsettled.delete(tag)) return false;
    this.pending.push(tag);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const tags = this.pending;
    this.pending = [];
    const oldestUnsettled = this.unsettled.size > 0 ? (this.unsettled.values().next().value as number) : Infinity;
    let upTo = -1;
    try {
      for (const tag of tags) {
        if (tag < oldestUnsettled) upTo = Math.max(upTo, tag);
        else this.channel.ack(deliveryTag(tag));
      }
      if (upTo >= 0) this.channel.ack(deliveryTag(upTo), true);
    } catch {
      // The channel closed under us: RabbitMQ redelivers these deliveries, and the consumer has reported the loss.
    }
  }
}

/** amqplib's ack/nack only read the delivery tag of the message they are given. */
export function deliveryTag(tag: number): AmqpMessage {
  return { fields: { deliveryTag: tag } } as AmqpMessage;
}
