import { createHash } from "node:crypto";
import type { ConfirmChannel, ConsumeMessage, RecoveringChannelModel } from "amqplib";
import {
  hasFilter,
  matches,
  pageStart,
  Pacer,
  targetQueue,
  withRetriesReset,
  type DeadLetterEntry,
  type DeadLetterPage,
  type DeadLetterStore,
  type ListOptions,
  type PurgeOptions,
  type RequeueOptions,
  type RequeueResult,
} from "../../dead-letters/types.js";
import { BrokerError } from "../../errors.js";
import { qName, xqName } from "../../queues.js";
import { toDeadLetter } from "../rabbitmq.js";

/** Deliveries republished per confirm round. */
const BATCH = 200;
/** How often a browse that receives nothing checks whether the queue has run dry (ms). */
const DRY_CHECK = 100;

/** What a browse visitor does with one delivery: `stop` ends the browse; anything left unacked goes back. */
type Visit = (entry: DeadLetterEntry, delivery: ConsumeMessage, channel: ConfirmChannel) => Promise<"stop" | void> | "stop" | void;

/**
 * Dead letters of `q.XQ` on RabbitMQ. A queue cannot be read without consuming it, so every operation browses:
 * it consumes `q.XQ` on a channel of its own, holds what it reads unacked (nobody else receives those meanwhile),
 * and at the end nacks everything it did not settle back with requeue, which puts it back at its place. A page costs
 * the transfer of the letters before it and on it; a filter, `show` or a selective requeue reads the whole queue.
 * Requeue publishes each letter to its queue on a confirm channel and acks the dead letter only once the broker
 * confirmed the copy: a crash in between leaves a duplicate, never a loss.
 */
export class RabbitmqDeadLetters implements DeadLetterStore {
  private connection: Promise<RecoveringChannelModel> | undefined;

  constructor(private readonly open: () => Promise<RecoveringChannelModel>) {}

  private connect(): Promise<RecoveringChannelModel> {
    if (!this.connection) {
      const opening = this.open();
      opening.catch(() => {
        if (this.connection === opening) this.connection = undefined;
      });
      this.connection = opening;
    }
    return this.connection;
  }

  /**
   * Consume `q.XQ` and hand each delivery to `visit` until it says stop, every letter present at the start was seen,
   * or the queue ran dry; then `finish` settles what the visits left pending. `prefetch` 0 lets the browse hold any
   * number of letters (needed when it skips some).
   * Returns the number of letters the queue held at the start.
   */
  private async browse(queue: string, prefetch: number, visit: Visit, finish?: (channel: ConfirmChannel) => Promise<void>): Promise<number> {
    const name = xqName(qName(queue));
    const channel = await (await this.connect()).createConfirmChannel();
    channel.on("error", () => undefined);
    let total: number;
    try {
      total = (await channel.checkQueue(name)).messageCount;
    } catch (err) {
      await channel.close().catch(() => undefined);
      if ((err as { code?: number }).code === 404) return 0;
      throw err;
    }
    const inbox: ConsumeMessage[] = [];
    let wake: (() => void) | undefined;
    let consumerTag: string | undefined;
    try {
      if (total === 0) return 0;
      await channel.prefetch(prefetch);
      ({ consumerTag } = await channel.consume(name, (delivery) => {
        if (delivery) inbox.push(delivery);
        wake?.();
      }));
      for (let seen = 0; seen < total; ) {
        const delivery = inbox.shift() ?? (await this.next(channel, name, inbox, (w) => (wake = w)));
        if (!delivery) break;
        seen++;
        if ((await visit(toEntry(delivery), delivery, channel)) === "stop") break;
      }
      await finish?.(channel);
      return total;
    } finally {
      if (consumerTag) await channel.cancel(consumerTag).catch(() => undefined);
      // Everything still held, including deliveries that arrived after the last visit, goes back in place.
      try {
        channel.nackAll(true);
      } catch {
        // The channel is gone; RabbitMQ requeues its unacked deliveries by itself.
      }
      await channel.close().catch(() => undefined);
    }
  }

  /** The next delivery, or undefined once the queue has no ready letter left for us. */
  private async next(channel: ConfirmChannel, name: string, inbox: ConsumeMessage[], setWake: (w: () => void) => void): Promise<ConsumeMessage | undefined> {
    for (;;) {
      const delivered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), DRY_CHECK);
        setWake(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (inbox.length > 0) return inbox.shift();
      if (!delivered && (await channel.checkQueue(name)).messageCount === 0 && inbox.length === 0) return undefined;
    }
  }

  async list(queue: string, options: ListOptions = {}): Promise<DeadLetterPage> {
    const { limit, filtered, position: start, ...page } = pageStart(options);
    let { skip } = page;
    const letters: DeadLetterEntry[] = [];
    let position = 0;
    let more = false;
    const now = Date.now();
    const total = await this.browse(queue, filtered ? 0 : start + limit, (entry) => {
      position++;
      if (position <= start || !matches(entry, options.filter, now)) return;
      if (skip > 0) {
        skip--;
        return;
      }
      if (letters.length === limit) {
        more = true;
        return "stop";
      }
      letters.push(entry);
      if (!filtered && letters.length === limit) {
        more = true;
        return "stop";
      }
    });
    const next = more && (filtered ? position - 1 : position) < total ? (filtered ? position - 1 : position) : undefined;
    return next === undefined ? { letters, total } : { letters, total, next };
  }

  async show(queue: string, id: string): Promise<DeadLetterEntry | undefined> {
    let found: DeadLetterEntry | undefined;
    await this.browse(queue, 0, (entry) => {
      if (entry.id !== id) return;
      found = entry;
      return "stop";
    });
    return found;
  }

  async requeue(queue: string, options: RequeueOptions): Promise<RequeueResult> {
    const canonical = qName(queue);
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const selective = wanted !== undefined || hasFilter(options.filter);
    const pacer = new Pacer(options.rate);
    const size = pacer.batchSize(BATCH);
    const now = Date.now();
    let requeued = 0;
    let pending: { delivery: ConsumeMessage; body: Buffer }[] = [];
    const returned = new Set<string>();
    const flush = async (channel: ConfirmChannel) => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      try {
        await channel.waitForConfirms();
      } catch (err) {
        throw new BrokerError(`RabbitMQ did not confirm requeued messages of ${canonical}; their dead letters were kept: ${(err as Error).message}`, { cause: err });
      }
      for (const { delivery, body } of batch) {
        // A copy the broker returned (its queue was deleted meanwhile) was not stored: keep the dead letter.
        if (returned.delete(body.toString("latin1"))) continue;
        channel.ack(delivery);
        requeued++;
      }
      options.onProgress?.(requeued, wanted ? wanted.size : requeued);
      await pacer.after(batch.length);
    };
    let prepared: ConfirmChannel | undefined;
    await this.browse(queue, selective ? 0 : size, async (entry, delivery, channel) => {
      if (prepared !== channel) {
        prepared = channel;
        channel.on("return", (message: ConsumeMessage) => returned.add(message.content.toString("latin1")));
        // Publishing to a missing queue through the default exchange would drop the copy: check the targets exist.
        await channel.checkQueue(canonical);
      }
      if (wanted ? !wanted.has(entry.id) : !matches(entry, options.filter, now)) return;
      wanted?.delete(entry.id);
      const body = options.resetRetries ? Buffer.from(withRetriesReset(entry)) : delivery.content;
      const priority = delivery.properties.priority as number | undefined;
      channel.publish("", targetQueue(canonical, entry), body, { persistent: true, mandatory: true, ...(priority === undefined ? {} : { priority }) });
      pending.push({ delivery, body });
      if (pending.length >= size) await flush(channel);
      if (wanted && wanted.size === 0) return "stop";
    }, flush);
    return { requeued, missing: wanted ? [...wanted] : [] };
  }

  async purge(queue: string, options: PurgeOptions = {}): Promise<number> {
    const name = xqName(qName(queue));
    if (!options.ids && !hasFilter(options.filter)) {
      const channel = await (await this.connect()).createChannel();
      channel.on("error", () => undefined);
      try {
        return (await channel.purgeQueue(name)).messageCount;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return 0;
        throw err;
      } finally {
        await channel.close().catch(() => undefined);
      }
    }
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const now = Date.now();
    let deleted = 0;
    await this.browse(queue, 0, (entry, delivery, channel) => {
      if (wanted ? !wanted.delete(entry.id) : !matches(entry, options.filter, now)) return;
      channel.ack(delivery);
      deleted++;
      if (wanted && wanted.size === 0) return "stop";
    });
    return deleted;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.then((c) => c.close(), () => undefined).catch(() => undefined);
  }
}

function toEntry(delivery: ConsumeMessage): DeadLetterEntry {
  const letter = toDeadLetter(delivery);
  const id = letter.message?.messageId ?? `raw:${createHash("sha1").update(delivery.content).digest("hex").slice(0, 16)}`;
  return { id, ...letter };
}
