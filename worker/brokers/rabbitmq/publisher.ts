import type { Channel, Message as AmqpMessage } from "amqplib";
import { BrokerConnectionError, BrokerError, ConnectionClosed } from "../../errors.js";
import { ChurnSet } from "../../churn.js";
import { getLogger } from "../../logging.js";
import type { Topology } from "./topology.js";
import type { LazyChannel } from "./connection.js";

const log = getLogger("broker.rabbitmq");

/** One message to publish on the default exchange, routed to `q` or `q.DQ`. */
export interface Publication {
  routingKey: string;
  body: Buffer;
  /** AMQP `priority`, from `options.broker_priority`; omitted when undefined. */
  priority?: number;
}

/** What is published on one channel and not confirmed yet, and why the channel closed, when RabbitMQ said. */
interface ChannelState {
  pending: ChurnSet<InFlight>;
  closeReason?: string;
}

interface InFlight {
  publication: Publication;
  /** Set when RabbitMQ returned the message as unroutable (its queue is gone); the confirm follows the return. */
  returned: boolean;
  /** When the caller stops waiting for the confirm. */
  deadline: number;
  fail: (err: Error) => void;
}

/**
 * amqplib's `publish` always sends a `headers` table (empty when no headers are given); Dramatiq sends no headers
 * property at all. To publish the same properties byte for byte we hand amqplib the method fields and properties
 * ourselves, through the two calls its `ConfirmChannel.publish` is made of.
 */
interface RawConfirmChannel {
  sendMessage(fields: object, properties: object, content: Buffer): boolean;
  pushConfirmCallback(cb: (err: unknown) => void): void;
}

/**
 * Publishes with publisher confirms: a publish resolves only once RabbitMQ confirmed it. A publish cut off by a
 * lost channel or connection, or refused (basic.nack), is sent again (at-least-once) until `timeout` ms have
 * passed, then rejected. Nothing is dropped silently.
 *
 * All publishes of a broker share one confirm channel, so concurrent ones share RabbitMQ's disk syncs: it confirms
 * whatever one sync covered with one `multiple` ack.
 *
 * Without confirms (`confirm` false, Dramatiq's default) a publish resolves once its frames are handed to the socket
 * (after the socket drained, when its buffer is full): nothing tells whether RabbitMQ got it.
 */
export class Publisher {
  private readonly channels = new Map<Channel, ChannelState>();
  private drained: Promise<void> | undefined;
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    /** A confirm channel when `confirm` is set, else a plain one. */
    private readonly channel: LazyChannel<Channel>,
    private readonly topology: Topology,
    private readonly timeout: number,
    private readonly confirm = true,
  ) {}

  /** Publish every message; they are written back to back and the confirms awaited together. */
  async publishAll(publications: Publication[]): Promise<void> {
    await Promise.all(publications.map((p) => this.publish(p)));
  }

  async publish(publication: Publication): Promise<void> {
    const deadline = Date.now() + this.timeout;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt(publication, deadline);
        return;
      } catch (err) {
        if (!(err instanceof ConnectionClosed) && !(err instanceof UnroutableError) && !(err instanceof NackedError)) throw err;
        if (this.closed) throw new ConnectionClosed(`the broker was closed before RabbitMQ confirmed a publish to ${publication.routingKey}`, { cause: err });
        // A queue deleted while we used it is declared again, as Dramatiq 2.2 does.
        if (err instanceof UnroutableError) this.topology.forget(publication.routingKey);
        if (Date.now() >= deadline) {
          const why = `could not publish to ${publication.routingKey} within ${this.timeout} ms: ${err.message}`;
          throw err instanceof NackedError ? new BrokerError(why, { cause: err }) : new ConnectionClosed(why, { cause: err });
        }
        log.warn("publish not confirmed; publishing again", { queue: publication.routingKey, attempt, reason: err.message });
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 10 * 2 ** attempt)));
      }
    }
  }

  private async attempt(publication: Publication, deadline: number): Promise<void> {
    // While the connection is down amqplib holds channel requests until it is back; we wait no longer than the deadline.
    if (!this.topology.isDeclared(publication.routingKey)) await beforeDeadline(this.topology.ensure(publication.routingKey), deadline);
    const channel = this.channel.open ?? (await beforeDeadline(this.channel.get(), deadline));
    if (this.drained) await beforeDeadline(this.drained, deadline);
    if (!this.confirm) return this.write(channel, publication);
    const state = this.track(channel);
    const pending = state.pending;
    const confirmed = new Promise<void>((resolve, reject) => {
      const entry: InFlight = { publication, returned: false, deadline, fail: reject };
      pending.add(entry);
      this.sweepLater();
      const raw = channel as unknown as RawConfirmChannel;
      let writable: boolean;
      try {
        writable = raw.sendMessage(publishFields(publication), publishProperties(publication), publication.body);
      } catch (err) {
        pending.delete(entry);
        reject(/closed/i.test((err as Error).message) ? new ConnectionClosed((err as Error).message) : err);
        return;
      }
      raw.pushConfirmCallback((err) => {
        if (!pending.delete(entry)) return;
        if (entry.returned) reject(new UnroutableError(`queue ${publication.routingKey} does not exist (message returned as unroutable)`));
        else if (err === null || err === undefined) resolve();
        else if (/closed/i.test(String((err as Error).message ?? err))) reject(new ConnectionClosed(state.closeReason ? `channel closed: ${state.closeReason}` : String((err as Error).message ?? err)));
        else reject(new NackedError(`RabbitMQ refused the message for ${publication.routingKey} (basic.nack)`));
      });
      if (!writable) this.awaitDrain(channel);
    });
    return confirmed;
  }

  /** An unconfirmed publish: written, and done once the socket can take more. */
  private async write(channel: Channel, publication: Publication): Promise<void> {
    this.watchReturns(channel);
    let writable: boolean;
    try {
      writable = (channel as unknown as RawConfirmChannel).sendMessage(publishFields(publication), publishProperties(publication), publication.body);
    } catch (err) {
      throw /closed/i.test((err as Error).message) ? new ConnectionClosed((err as Error).message) : err;
    }
    if (!writable) await this.awaitDrain(channel);
  }

  /** Later publishes wait until a full socket buffer drained (or the channel closed). */
  private awaitDrain(channel: Channel): Promise<void> {
    this.drained ??= new Promise<void>((resolve) => {
      const done = () => {
        this.drained = undefined;
        channel.off("drain", done).off("close", done);
        resolve();
      };
      channel.once("drain", done).once("close", done);
    });
    return this.drained;
  }

  /**
   * Unconfirmed publishes are mandatory too, so a message to a queue deleted at runtime comes back instead of
   * vanishing: it is logged as lost, and the queue is declared again before the next publish to it.
   */
  private watchReturns(channel: Channel): void {
    if (this.channels.has(channel)) return;
    this.channels.set(channel, { pending: new ChurnSet() });
    channel.on("return", (message: AmqpMessage) => {
      this.topology.forget(message.fields.routingKey);
      log.error("RabbitMQ returned an unconfirmed message as unroutable (its queue is gone); it is lost", { queue: message.fields.routingKey, bytes: message.content.length });
    });
    channel.once("close", () => this.channels.delete(channel));
  }

  /**
   * A publish written but never confirmed (a connection blocked by a resource alarm, a broker that stopped
   * answering) is rejected at its deadline. It is not sent again: it may still reach the queue, so the caller gets
   * an error it can retry, at-least-once, instead of a duplicate from us.
   */
  private sweepLater(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      let waiting = 0;
      for (const { pending } of this.channels.values()) {
        for (const entry of pending) {
          if (entry.deadline > now) {
            waiting++;
            continue;
          }
          pending.delete(entry);
          entry.fail(new BrokerConnectionError(`RabbitMQ did not confirm a publish to ${entry.publication.routingKey} within ${this.timeout} ms (is the connection blocked by a resource alarm?); it may still be delivered`));
        }
      }
      if (waiting === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, Math.min(1000, Math.max(50, this.timeout / 4)));
    this.sweeper.unref();
  }

  /** Publishes cut off from now on are rejected instead of retried. */
  close(): void {
    this.closed = true;
  }

  /** The publishes awaiting a confirm on a channel, so a `basic.return` can be matched to its publish. */
  private track(channel: Channel): ChannelState {
    let state = this.channels.get(channel);
    if (!state) {
      const created: ChannelState = { pending: new ChurnSet() };
      state = created;
      this.channels.set(channel, created);
      channel.on("return", (message: AmqpMessage) => {
        for (const entry of created.pending) {
          if (!entry.returned && entry.publication.routingKey === message.fields.routingKey && entry.publication.body.equals(message.content)) {
            entry.returned = true;
            return;
          }
        }
      });
      channel.on("error", (err: Error) => (created.closeReason = err.message));
      channel.once("close", () => this.channels.delete(channel));
    }
    return state;
  }
}

class UnroutableError extends Error {}

/**
 * A basic.nack: RabbitMQ did not take the message, so publishing it again duplicates nothing. It is transient —
 * a quorum queue without a leader for the moment (a node just died), a queue full with `reject-publish` overflow
 * until consumers catch up — and retried like a lost connection until the deadline.
 */
class NackedError extends Error {}

/** basic.publish to the default exchange, mandatory so that a missing queue is noticed. */
function publishFields(publication: Publication): object {
  return { exchange: "", routingKey: publication.routingKey, mandatory: true, immediate: false };
}

/** Dramatiq's properties: persistent, and the priority when there is one. */
function publishProperties(publication: Publication): object {
  return { deliveryMode: 2, priority: publication.priority };
}

/** `promise`, or a ConnectionClosed once `deadline` passes or when it fails because the connection is gone. */
async function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConnectionClosed("RabbitMQ is unreachable")), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, expired]);
  } catch (err) {
    if (err instanceof BrokerError) throw err;
    throw new ConnectionClosed(`connection lost: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
