import type { Redis } from "ioredis";
import { Broker, type BrokerOptions, type ConsumeOptions, type Consumer, type DeadLetter, type QueueStats } from "../broker.js";
import { defaultMiddleware } from "../middleware/defaults.js";
import { TroupeError } from "../errors.js";
import { nodeCrypto } from "../lazy.js";
import { getLogger, messageFields, redactUrl } from "../logging.js";
import { Message } from "../message.js";
import type { MessageProxy } from "../proxy.js";
import { dqName, qName, xqName } from "../queues.js";
import { connectRedis, createRedisClient, DEFAULT_REDIS_URL, type RedisConnectionOptions } from "../redis/connection.js";
import { RedisConsumer } from "./redis/consumer.js";
import { Dispatch } from "./redis/dispatch.js";
import { withBrokerScripts } from "../redis/scripts.js";
import { WakeSubscriber } from "./redis/wake.js";

export interface RedisBrokerOptions extends BrokerOptions, Omit<RedisConnectionOptions, "url"> {
  /** Key prefix shared with Python peers (default `dramatiq`, env TROUPE_REDIS_NAMESPACE). */
  namespace?: string;
  /** ms without a heartbeat after which a worker's unacked messages are recovered (default 60 000, env TROUPE_REDIS_HEARTBEAT_TIMEOUT). */
  heartbeatTimeout?: number;
  /** ms dead letters are kept (default 7 days, env TROUPE_REDIS_DEAD_MESSAGE_TTL). */
  deadMessageTtl?: number;
  /** Chance per million that an enqueue or fetch also runs maintenance, as in Dramatiq (default 1000). */
  maintenanceChance?: number;
  /** ms between maintenance runs for each consumed queue (default heartbeatTimeout / 2, at most 30 000). */
  maintenanceInterval?: number;
  /** Most messages one script call unpacks (Dramatiq's half Lua stack; default 3996). */
  maxUnpackedMessages?: number;
  /** Longest sleep between polls of an empty queue in ms (default 1000); Troupe producers wake consumers at once. */
  maxPollInterval?: number;
}

const log = getLogger("broker.redis");

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new TroupeError(`${name} must be a non-negative number of ms, got "${raw}"`);
  return value;
}

/**
 * Dramatiq's Redis broker, wire- and state-compatible with Python processes on the same Redis and namespace:
 * the same lists, hashes, ack sets, heartbeats, `.DQ` and `.XQ` keys and script effects (see docs/redis.md).
 */
export class RedisBroker extends Broker {
  readonly displayUrl: string;
  readonly namespace: string;
  /** This process's worker id in ack-set names and heartbeats (Dramatiq's broker_id). */
  readonly workerId = nodeCrypto().randomUUID();
  readonly heartbeatTimeout: number;
  readonly deadMessageTtl: number;
  readonly maintenanceChance: number;
  readonly maintenanceInterval: number;
  readonly maxUnpackedMessages: number;
  readonly maxPollInterval: number;
  /** URL and client options; worker/setup.ts builds the results and rate-limiter backends on the same Redis from them. */
  readonly connection: RedisConnectionOptions;
  private readonly client: ReturnType<typeof withBrokerScripts>;
  private readonly dispatch: Dispatch;
  private readonly wake: WakeSubscriber;
  private readonly consumers = new Map<string, Set<RedisConsumer>>();
  /** Every queue consumed in this process's life: only fetches create ack sets. */
  private readonly consumedQueues = new Set<string>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private everReady = false;

  constructor(url: string = DEFAULT_REDIS_URL, options: RedisBrokerOptions = {}) {
    super({ ...options, middleware: options.middleware ?? defaultMiddleware() });
    this.connection = { url, redis: options.redis };
    this.displayUrl = redactUrl(url);
    this.namespace = options.namespace ?? process.env.TROUPE_REDIS_NAMESPACE ?? "dramatiq";
    this.heartbeatTimeout = options.heartbeatTimeout ?? envNumber("TROUPE_REDIS_HEARTBEAT_TIMEOUT") ?? 60_000;
    this.deadMessageTtl = options.deadMessageTtl ?? envNumber("TROUPE_REDIS_DEAD_MESSAGE_TTL") ?? 604_800_000;
    this.maintenanceChance = options.maintenanceChance ?? 1000;
    this.maintenanceInterval = options.maintenanceInterval ?? Math.max(100, Math.min(30_000, this.heartbeatTimeout / 2));
    this.maxUnpackedMessages = options.maxUnpackedMessages ?? 3996;
    this.maxPollInterval = options.maxPollInterval ?? 1000;
    if (this.maxUnpackedMessages < 1 || this.maxUnpackedMessages > 7999) throw new TroupeError("maxUnpackedMessages must be between 1 and 7999 (the Lua stack limit)");
    this.client = withBrokerScripts(this.createClient("broker"));
    this.dispatch = new Dispatch(this.client, this.namespace, this.workerId, this.deadMessageTtl);
    this.wake = new WakeSubscriber(this.namespace, () => this.createClient("wake"));
    this.client.on("ready", () => this.onReady());
  }

  /** A new client with this broker's connection settings. */
  createClient(purpose: string, overrides: Parameters<typeof createRedisClient>[2] = {}): Redis {
    return createRedisClient(this.connection, purpose, overrides);
  }

  private onReady(): void {
    if (!this.everReady) {
      this.everReady = true;
      return;
    }
    for (const set of this.consumers.values()) for (const consumer of set) consumer.connectionRestored();
  }

  protected async doConnect(): Promise<void> {
    await connectRedis(this.client, this.connection.url);
    await this.dispatch.heartbeat();
    // Python peers judge our liveness by this heartbeat alone, so refresh it well within the timeout.
    const beat = Math.max(50, Math.min(15_000, this.heartbeatTimeout / 4));
    this.heartbeatTimer = setInterval(() => void this.dispatch.heartbeat().catch(() => undefined), beat).unref();
    this.maintenanceTimer = setInterval(() => this.maintainConsumedQueues(), this.maintenanceInterval).unref();
    log.debug("connected", { broker: this.displayUrl, namespace: this.namespace, workerId: this.workerId });
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.maintenanceTimer);
    for (const set of [...this.consumers.values()]) for (const consumer of [...set]) await consumer.close().catch((err) => log.warn("consumer close failed", { queue: consumer.queue, err }));
    this.wake.close();
    if (this.client.status === "ready") {
      await this.retireHeartbeat().catch(() => undefined);
      await this.client.quit().catch(() => undefined);
    }
    this.client.disconnect();
  }

  /** Leave the heartbeat set when no ack set of ours is left, so stopped processes do not linger there. */
  private async retireHeartbeat(): Promise<void> {
    const ackSets = [...this.consumedQueues].map((queue) => this.dispatch.ackSetKey(queue));
    if (ackSets.length === 0 || (await this.client.exists(...ackSets)) === 0) await this.client.zrem(this.dispatch.heartbeatsKey, this.workerId);
  }

  private maybeMaintain(queue: string): void {
    if (this.maintenanceChance > 0 && Math.random() * 1_000_000 < this.maintenanceChance) this.maintain(queue);
  }

  private maintain(queue: string): void {
    this.dispatch
      .maintenance(queue, this.heartbeatTimeout, this.deadMessageTtl, this.maxUnpackedMessages)
      .then((recovered) => {
        if (recovered > 0) log.warn("requeued messages of dead workers", { queue, count: recovered });
      })
      .catch((err) => log.warn("maintenance failed", { queue, err }));
  }

  private maintainConsumedQueues(): void {
    for (const queue of this.consumers.keys()) this.maintain(queue);
  }

  /** Dramatiq's redis_message_id: fresh per publication, placed where Dramatiq's encoder puts it. */
  private withRedisId(message: Message): Message {
    const id = nodeCrypto().randomUUID();
    const options = message.options;
    if ("redis_message_id" in options) return message.copy({ options: { redis_message_id: id } });
    const keys = Object.keys(options);
    // Dramatiq adds the id before `eta` on delayed sends; Message.copy appends, so rebuild that order.
    if (keys[keys.length - 1] === "eta") {
      return message.copy({ options: { eta: undefined } }).copy({ options: { redis_message_id: id, eta: options.eta } });
    }
    return message.copy({ options: { redis_message_id: id } });
  }

  protected async publish(message: Message): Promise<Message> {
    const sent = this.withRedisId(message);
    await this.publishOn(sent.queueName, [sent]);
    return sent;
  }

  protected override async publishMany(messages: Message[]): Promise<Message[]> {
    const sent = messages.map((m) => this.withRedisId(m));
    const byQueue = new Map<string, Message[]>();
    for (const message of sent) {
      const group = byQueue.get(message.queueName) ?? [];
      group.push(message);
      byQueue.set(message.queueName, group);
    }
    await Promise.all([...byQueue].map(([queue, group]) => this.publishOn(queue, group)));
    return sent;
  }

  /**
   * One script call for messages of one queue that already carry their redis_message_id. Maintenance, when due,
   * goes out right behind it on the same connection, so Redis still runs it after the publication.
   */
  private publishOn(queue: string, messages: Message[]): Promise<unknown> {
    const published = this.dispatch.enqueue(queue, messages.map((m) => [m.options.redis_message_id as string, m.encode()]));
    this.maybeMaintain(queue);
    return published;
  }

  consume(queue: string, options: ConsumeOptions): Consumer {
    let set = this.consumers.get(queue);
    if (!set) {
      set = new Set();
      this.consumers.set(queue, set);
    }
    const peers = set;
    this.consumedQueues.add(queue);
    const consumer: RedisConsumer = new RedisConsumer(this.dispatch, queue, options, {
      maxFetch: this.maxUnpackedMessages,
      maxPollInterval: this.maxPollInterval,
      subscribe: async (wake) => {
        await this.connect();
        // Recover what crashed workers left behind now rather than a maintenance interval from now.
        this.maintain(queue);
        return this.wake.subscribe(queue, wake);
      },
      heldElsewhere: (id) => [...peers].some((other) => other !== consumer && other.holds(id)),
      onClose: () => {
        peers.delete(consumer);
        if (peers.size === 0) this.consumers.delete(queue);
      },
    });
    peers.add(consumer);
    return consumer;
  }

  /** Move a due delayed message to its queue and drop the `.DQ` delivery in one atomic script step. */
  override async promote(delivery: MessageProxy, consumer: Consumer): Promise<void> {
    if (!(consumer instanceof RedisConsumer)) return super.promote(delivery, consumer);
    const id = nodeCrypto().randomUUID();
    const promoted = delivery.message.copy({ queueName: qName(delivery.message.queueName), options: { eta: undefined, redis_message_id: id } });
    await this.emitBefore("beforeEnqueue", promoted, undefined);
    if (await consumer.promote(delivery, promoted, id)) await this.emitAfter("afterEnqueue", promoted, undefined);
    else log.debug("promotion skipped", messageFields(delivery.message));
  }

  async purge(queue: string): Promise<void> {
    await this.connect();
    const canonical = qName(queue);
    await Promise.all([this.dispatch.purge(canonical), this.dispatch.purge(dqName(canonical))]);
  }

  async queueStats(queue: string): Promise<QueueStats> {
    await this.connect();
    const canonical = qName(queue);
    const [ready, delayed, inFlight, dead] = await this.client.troupeStats(this.namespace, canonical);
    return { queue: canonical, ready, delayed, inFlight, dead };
  }

  async deadLetters(queue: string, limit = 100): Promise<DeadLetter[]> {
    await this.connect();
    const xq = `${this.namespace}:${xqName(qName(queue))}`;
    const scored = await this.client.zrange(xq, 0, Math.max(0, Math.min(limit, 1_000_000)) - 1, "WITHSCORES");
    const ids = scored.filter((_, i) => i % 2 === 0);
    if (ids.length === 0) return [];
    const [bodies, reasons] = await Promise.all([this.client.hmget(`${xq}.msgs`, ...ids), this.client.hmget(`${xq}.reasons`, ...ids)]);
    return ids.flatMap((id, i) => {
      const raw = bodies[i];
      if (raw === null || raw === undefined) return [];
      let message: Message | undefined;
      try {
        message = Message.decode(raw);
      } catch {
        message = undefined;
      }
      return [{ raw, message, reason: reasons[i] ?? undefined, deadAt: Number(scored[2 * i + 1]) }];
    });
  }

  /** Canonical queues with messages on the server (any `<ns>:*.msgs` hash), plus the ones declared here. */
  async listQueues(): Promise<string[]> {
    await this.connect();
    const found = new Set(this.declaredQueues());
    const prefix = `${this.namespace}:`;
    const stream = this.client.scanStream({ match: `${globEscape(this.namespace)}:*.msgs`, count: 1000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      for (const key of keys) found.add(qName(key.slice(prefix.length, -".msgs".length)));
    }
    return [...found].sort();
  }
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
