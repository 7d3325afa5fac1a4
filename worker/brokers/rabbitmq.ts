import type { Channel, GetMessage, RecoveringChannelModel, SocketOptions } from "amqplib";
import { Broker, type BrokerOptions, type ConsumeOptions, type Consumer, type DeadLetter, type QueueStats } from "../broker.js";
import { defaultMiddleware } from "../middleware/defaults.js";
import { TroupeError } from "../errors.js";
import { getLogger, redactUrl } from "../logging.js";
import { Message } from "../message.js";
import { dqName, qName, xqName } from "../queues.js";
import { LazyChannel, openConnection, type ConnectionSettings } from "./rabbitmq/connection.js";
import { RabbitmqConsumer } from "./rabbitmq/consumer.js";
import { ManagementClient } from "./rabbitmq/management.js";
import { Publisher, type Publication } from "./rabbitmq/publisher.js";
import { Topology, deadMessageTtlFromEnv, deliveryLimitFromEnv, maxPriorityFromEnv, queueTypeFromEnv, validateTopology } from "./rabbitmq/topology.js";
import { parseAmqpUrl, parseHost, type QueueType } from "./rabbitmq/url.js";

const log = getLogger("broker.rabbitmq");

/** How long an empty count of a quorum queue waits before it is read again (a leader election, see queueStats). */
const QUORUM_RECHECK_MS = 1000;

export interface RabbitmqBrokerOptions extends BrokerOptions {
  /** Declare queues with `x-max-priority` (1..255), enabling `broker_priority`. Default: $TROUPE_RABBITMQ_MAX_PRIORITY, else none. */
  maxPriority?: number;
  /** `x-message-ttl` of dead-letter queues in ms. Default: $dramatiq_dead_message_ttl, else 604 800 000 (7 days). */
  deadMessageTtl?: number;
  /** Management API URL for unacked counts and the queue list. Default: $TROUPE_RABBITMQ_MANAGEMENT_URL, else none. */
  managementUrl?: string;
  /** ms an enqueue keeps trying through a lost connection before it is rejected (default 30 000). */
  publishTimeout?: number;
  /**
   * `false`: an enqueue resolves once the message is written to the socket, without waiting for RabbitMQ to confirm
   * it (Dramatiq's default, `confirm_delivery=False`): much faster one at a time, but a message in flight when the
   * connection or node dies, or one RabbitMQ refuses, is lost without an error. Default: `?confirm_delivery=` of
   * the URL, else `true`.
   */
  confirmDelivery?: boolean;
  /** Longest pause between reconnect attempts in ms (default 5 000). */
  maxReconnectDelay?: number;
  /** Socket and TLS options handed to amqplib (`ca`, `cert`, `key`, `servername`, `timeout`…). */
  socketOptions?: SocketOptions;
  /**
   * `"quorum"` declares `q`, `q.DQ` and `q.XQ` as replicated quorum queues. Default: `?queue_type=` of the URL, else
   * $TROUPE_RABBITMQ_QUEUE_TYPE, else `"classic"` (Dramatiq's).
   */
  queueType?: QueueType;
  /** Quorum queues: deliveries of a message of `q` before RabbitMQ dead-letters it. Default: `?delivery_limit=`, else $TROUPE_RABBITMQ_DELIVERY_LIMIT, else none. */
  deliveryLimit?: number;
  /**
   * The nodes of a cluster as `host[:port]`, instead of the URL's host list (`amqp://u:p@h1,h2:5673,h3/vhost`).
   * Each connection starts at a random node and moves to the next one when its node cannot be reached or dies.
   */
  hosts?: string[];
}

/**
 * RabbitMQ broker, wire-compatible with Dramatiq's: the same `q`, `q.DQ`, `q.XQ` queues and arguments, persistent
 * messages with the same properties and body. Unlike Dramatiq every publish waits for a publisher confirm unless
 * `confirmDelivery` is false.
 */
export class RabbitmqBroker extends Broker {
  readonly displayUrl: string;
  readonly topology: Topology;
  private readonly settings: ConnectionSettings;
  /** The management API client, when TROUPE_RABBITMQ_MANAGEMENT_URL (or the option) names one. */
  readonly management: ManagementClient | undefined;
  private publishConnection: RecoveringChannelModel | undefined;
  private consumeConnection: Promise<RecoveringChannelModel> | undefined;
  /** Passive checks and purges, which a missing queue makes fail with a channel-closing 404. */
  private readonly admin: LazyChannel<Channel>;
  private adminTurn: Promise<unknown> = Promise.resolve();
  /** Declares, on a channel of their own so that a 404 of a passive check never cuts one off. */
  private readonly declarer: LazyChannel<Channel>;
  private readonly publishChannel: LazyChannel<Channel>;
  private readonly publisher: Publisher;
  private readonly consumers = new Set<RabbitmqConsumer>();
  private readonly priorityWarned = new Set<string>();

  /** `url` carries the credentials; it is kept private and only ever shown as `displayUrl`. */
  constructor(url: string, options: RabbitmqBrokerOptions = {}) {
    super({ ...options, middleware: options.middleware ?? defaultMiddleware() });
    this.displayUrl = redactUrl(url);
    const address = parseAmqpUrl(url);
    if (options.hosts) {
      if (options.hosts.length === 0) throw new TroupeError("the hosts option names no RabbitMQ node");
      address.hosts = options.hosts.map((h) => parseHost(h, address.protocol === "amqps" ? 5671 : 5672));
    }
    this.settings = { url, address, socketOptions: options.socketOptions, maxReconnectDelay: options.maxReconnectDelay ?? 5000 };
    this.topology = new Topology(
      validateTopology({
        maxPriority: options.maxPriority ?? maxPriorityFromEnv(),
        deadMessageTtl: options.deadMessageTtl ?? deadMessageTtlFromEnv(),
        queueType: options.queueType ?? address.troupe.queueType ?? queueTypeFromEnv() ?? "classic",
        deliveryLimit: options.deliveryLimit ?? address.troupe.deliveryLimit ?? deliveryLimitFromEnv(),
      }),
      () => this.declarer.get(),
      () => this.connection().createChannel(),
    );
    const managementUrl = options.managementUrl ?? process.env.TROUPE_RABBITMQ_MANAGEMENT_URL;
    this.management = managementUrl ? new ManagementClient(managementUrl, address.vhost) : undefined;
    this.admin = new LazyChannel(() => this.connection().createChannel(), "admin");
    this.declarer = new LazyChannel(() => this.connection().createChannel(), "declare");
    const confirm = options.confirmDelivery ?? address.troupe.confirmDelivery ?? true;
    this.publishChannel = new LazyChannel<Channel>(() => (confirm ? this.connection().createConfirmChannel() : this.connection().createChannel()), "publish");
    this.publisher = new Publisher(this.publishChannel, this.topology, options.publishTimeout ?? 30_000, confirm);
  }

  protected async doConnect(): Promise<void> {
    this.publishConnection = await openConnection(this.settings, "publisher");
    // After a reconnect (on a cluster, maybe to another node) queues are declared again on first use.
    this.publishConnection.on("connect", () => this.topology.forgetAll());
  }

  private connection(): RecoveringChannelModel {
    if (!this.publishConnection) throw new TroupeError(`RabbitMQ broker ${this.displayUrl} is not connected: call connect() first`);
    return this.publishConnection;
  }

  async close(): Promise<void> {
    this.publisher.close();
    await Promise.all([...this.consumers].map((c) => c.close()));
    await Promise.all([this.admin.close(), this.declarer.close(), this.publishChannel.close()]);
    const consuming = this.consumeConnection;
    this.consumeConnection = undefined;
    await Promise.all([this.publishConnection?.close(), consuming?.then((c) => c.close(), () => undefined)]);
    this.publishConnection = undefined;
  }

  protected async publish(message: Message): Promise<Message> {
    await this.publishMany([message]);
    return message;
  }

  protected override async publishMany(messages: Message[]): Promise<Message[]> {
    const publications = messages.map(toPublication);
    if (this.topology.options.queueType === "quorum") this.warnIgnoredPriorities(publications);
    await this.publisher.publishAll(publications);
    return messages;
  }

  /** RabbitMQ 3.x quorum queues deliver in publish order whatever the priority: say so once per queue, not per message. */
  private warnIgnoredPriorities(publications: Publication[]): void {
    for (const { routingKey, priority } of publications) {
      if (priority === undefined || this.priorityWarned.has(routingKey)) continue;
      this.priorityWarned.add(routingKey);
      log.warn("broker_priority has no effect on a quorum queue (RabbitMQ 3.x delivers quorum queues in publish order)", { queue: routingKey, priority });
    }
  }

  consume(queue: string, options: ConsumeOptions): Consumer {
    const consumer = new RabbitmqConsumer(queue, options, () => this.consumerChannel(), this.topology, (c) => this.consumers.delete(c));
    this.consumers.add(consumer);
    return consumer;
  }

  /** A connection of its own for a tool that holds deliveries unacked while it browses (the dead-letter tools). */
  openDedicatedConnection(role: string): Promise<RecoveringChannelModel> {
    return openConnection(this.settings, role);
  }

  /** Consumers share a connection of their own, so a publisher blocked by flow control never stalls acks. */
  private async consumerChannel(): Promise<Channel> {
    if (!this.consumeConnection) {
      const opening = openConnection(this.settings, "consumer");
      opening.catch(() => {
        if (this.consumeConnection === opening) this.consumeConnection = undefined;
      });
      this.consumeConnection = opening;
    }
    return (await this.consumeConnection).createChannel();
  }

  async purge(queue: string): Promise<void> {
    await this.connect();
    const canonical = qName(queue);
    for (const name of [canonical, dqName(canonical), xqName(canonical)]) {
      await this.onExistingQueue(name, (channel) => channel.purgeQueue(name));
    }
  }

  async queueStats(queue: string): Promise<QueueStats> {
    await this.connect();
    const canonical = qName(queue);
    const names = [canonical, dqName(canonical), xqName(canonical)];
    const count = async (name: string) => (await this.onExistingQueue(name, (channel) => channel.checkQueue(name)))?.messageCount ?? 0;
    const counts: number[] = [];
    for (const name of names) counts.push(await count(name));
    if (this.topology.options.queueType === "quorum" && counts.includes(0)) {
      // A quorum queue whose leader just died reads as empty until its members elect another (measured: under
      // 0.6 s after a kill -9 on 3.10). An autoscaler must not see "empty" then, so an empty count is read again
      // after the election timeout before it is believed.
      await new Promise((resolve) => setTimeout(resolve, QUORUM_RECHECK_MS));
      for (const [i, name] of names.entries()) if (counts[i] === 0) counts[i] = await count(name);
    }
    const [ready, delayedReady, dead] = counts as [number, number, number];
    // This process's unsettled deliveries are exact; the management API adds other processes' (a few seconds stale).
    let inFlight = this.localOutstanding(canonical);
    let delayedHeld = this.localOutstanding(dqName(canonical));
    if (this.management) {
      const [main, delay] = await Promise.all([this.management.queue(canonical), this.management.queue(dqName(canonical))]);
      inFlight = Math.max(inFlight, main?.unacked ?? 0);
      delayedHeld = Math.max(delayedHeld, delay?.unacked ?? 0);
    }
    return { queue: canonical, ready, delayed: delayedReady + delayedHeld, inFlight, dead };
  }

  private localOutstanding(queue: string): number {
    let total = 0;
    for (const consumer of this.consumers) if (consumer.queue === queue) total += consumer.outstanding;
    return total;
  }

  /**
   * Run a queue operation; a missing queue yields undefined. A 404 closes the channel and fails whatever else was
   * queued on it, so these operations run one at a time, each on a live channel.
   */
  private onExistingQueue<T>(name: string, op: (channel: Channel) => Promise<T>): Promise<T | undefined> {
    const run = this.adminTurn.then(async () => {
      try {
        return await op(await this.admin.get());
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    });
    this.adminTurn = run.catch(() => undefined);
    return run;
  }

  /**
   * Read up to `limit` dead letters of `q.XQ` without removing them: they are fetched unacked on a channel of
   * their own, and closing it puts them back.
   */
  async deadLetters(queue: string, limit = 100): Promise<DeadLetter[]> {
    await this.connect();
    const name = xqName(queue);
    const channel = await this.connection().createChannel();
    channel.on("error", () => undefined);
    const letters: DeadLetter[] = [];
    try {
      while (letters.length < limit) {
        const got = await channel.get(name, { noAck: false });
        if (got === false) break;
        letters.push(toDeadLetter(got));
      }
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    } finally {
      await channel.close().catch(() => undefined);
    }
    return letters;
  }

  /** Canonical queues on the vhost (management API), else the queues this broker declared. */
  override statsBlindSpots(): string | undefined {
    if (this.management) return undefined;
    return (
      "without RabbitMQ's management API, in-flight counts (fetched, not yet acked) cover only this process and the queue list only the queues it declared: " +
      "AMQP reports neither. Set TROUPE_RABBITMQ_MANAGEMENT_URL=http://user:password@host:15672 (the plugin is enabled with `rabbitmq-plugins enable rabbitmq_management`)"
    );
  }

  async listQueues(): Promise<string[]> {
    if (!this.management) return this.declaredQueues().sort();
    const names = new Set((await this.management.queues()).map((q) => q.name));
    // Dramatiq-style queues come in threes; other queues on the vhost are not ours to list.
    return [...names].filter((n) => n === qName(n) && (names.has(dqName(n)) || names.has(xqName(n)))).sort();
  }
}

function toPublication(message: Message): Publication {
  const priority = message.options.broker_priority;
  if (priority !== undefined && priority !== null && (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > 255)) {
    throw new TroupeError(`broker_priority must be an integer from 0 to 255, got ${JSON.stringify(priority)} (message ${message.messageId})`);
  }
  return { routingKey: message.queueName, body: Buffer.from(message.encode()), priority: priority ?? undefined };
}

/** A dead letter from a `q.XQ` delivery: its body as read, and when and why it died from the `x-death` headers. */
export function toDeadLetter(got: Pick<GetMessage, "content" | "properties">): DeadLetter {
  const raw = got.content.toString("utf8");
  let message: Message | undefined;
  try {
    message = Message.decode(got.content);
  } catch {
    message = undefined;
  }
  const headers = got.properties.headers ?? {};
  const death = (headers["x-death"] as { reason?: string; time?: { value?: number } | number }[] | undefined)?.[0];
  const time = typeof death?.time === "number" ? death.time : death?.time?.value;
  return {
    raw,
    message,
    reason: (headers["x-first-death-reason"] as string | undefined) ?? death?.reason,
    deadAt: time === undefined ? undefined : time * 1000,
  };
}
