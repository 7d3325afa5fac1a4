import type { Broker, QueueStats } from "../../worker/broker.js";
import { RabbitmqBroker } from "../../worker/brokers/rabbitmq.js";
import { ManagementClient } from "../../worker/brokers/rabbitmq/management.js";
import { parseAmqpUrl } from "../../worker/brokers/rabbitmq/url.js";
import { RedisBroker } from "../../worker/brokers/redis.js";
import { dqName } from "../../worker/queues.js";
import type { BrokerConnections } from "./connections.js";
import type { ManagementEndpoint } from "./management-url.js";
import { countDelayedDue, withDelayedDueScript, type DelayedDueClient } from "./redis/delayed-due.js";

/** One queue as the autoscaler reads it: the broker's depths plus what it could tell of delayed etas and in-flight. */
export interface QueueBacklog extends QueueStats {
  /** Delayed messages due by the horizon; 0 where the broker shows no etas (they are in `delayedUnknownEta`). */
  delayedDue: number;
  /** Delayed messages whose eta could not be read (RabbitMQ, or an undecodable body). */
  delayedUnknownEta: number;
  /** The earliest eta after the horizon (ms since the epoch), where the broker shows etas and one is later. */
  nextEtaAfterHorizon?: number;
}

export interface BrokerBacklog {
  queues: QueueBacklog[];
  /**
   * Why in-flight is not seen, so that the workers' gauges have to stand in: no management API is configured, or
   * the configured one failed or cannot be used.
   */
  inFlightUnseen?: { cause: "NotConfigured" | "ManagementFailed"; message: string };
}

/**
 * Reads a pool's queues the way the autoscaler needs them, per broker:
 * - Redis: depths and in-flight (every worker's ack set) from the broker's stats script, and the delayed messages
 *   due within the horizon from delayed-due.lua, which reads each one's eta.
 * - RabbitMQ: ready counts over AMQP; unacked (in-flight, and delayed messages held by workers) from the management
 *   API when one is configured. Without it, or when it fails, in-flight is marked unseen so that the caller takes the
 *   workers' own in-progress gauges instead. Delayed etas are not visible.
 * - Others (memory): the broker's stats as they are.
 */
export class BacklogReader {
  private readonly redis = new Map<string, { broker: Broker; client: DelayedDueClient }>();
  private readonly management = new Map<string, ManagementClient>();

  constructor(private readonly connections: BrokerConnections) {}

  /** Throws when the broker itself cannot be read; a failing management API is a gap, not an error. */
  read(url: string, queues: readonly string[], options: { dueBy: number; management?: ManagementEndpoint }): Promise<BrokerBacklog> {
    return this.connections.use(url, "reading the backlog", async (broker) => {
      const stats = await Promise.all(queues.map((q) => broker.queueStats(q)));
      if (broker instanceof RedisBroker) return { queues: await this.redisEtas(url, broker, stats, options.dueBy) };
      if (broker instanceof RabbitmqBroker) return this.rabbitUnacked(url, stats, options.management ?? {});
      return { queues: stats.map((s) => ({ ...s, delayedDue: 0, delayedUnknownEta: s.delayed })) };
    });
  }

  private async redisEtas(url: string, broker: RedisBroker, stats: QueueStats[], dueBy: number): Promise<QueueBacklog[]> {
    let entry = this.redis.get(url);
    if (entry?.broker !== broker) {
      // A new broker connection (the previous one failed): the script client goes with the old one.
      entry?.client.disconnect();
      entry = { broker, client: withDelayedDueScript(broker.createClient("autoscaler")) };
      this.redis.set(url, entry);
    }
    const client = entry.client;
    return Promise.all(
      stats.map(async (s) => {
        const etas = s.delayed > 0 ? await countDelayedDue(client, broker.namespace, s.queue, dueBy) : { due: 0, unknownEta: 0 };
        return { ...s, delayedDue: etas.due, delayedUnknownEta: etas.unknownEta, nextEtaAfterHorizon: etas.nextEta };
      }),
    );
  }

  private async rabbitUnacked(url: string, stats: QueueStats[], { url: managementUrl, problem }: ManagementEndpoint): Promise<BrokerBacklog> {
    const unseen = (cause: "NotConfigured" | "ManagementFailed", message: string): BrokerBacklog => ({ queues: stats.map((s) => ({ ...s, delayedDue: 0, delayedUnknownEta: s.delayed })), inFlightUnseen: { cause, message } });
    if (problem !== undefined) return unseen("ManagementFailed", problem);
    if (!managementUrl) return unseen("NotConfigured", "no RabbitMQ management API is configured (spec.broker.management, or the chart's operator.rabbitmqManagement)");
    let client = this.management.get(managementUrl + " " + url);
    try {
      if (!client) {
        client = new ManagementClient(managementUrl, parseAmqpUrl(url).vhost);
        this.management.set(managementUrl + " " + url, client);
      }
      const management = client;
      const queues = await Promise.all(
        stats.map(async (s) => {
          const [main, delay] = await Promise.all([management.queue(s.queue), management.queue(dqName(s.queue))]);
          // Unacked on q.DQ are delayed messages a worker holds until their eta; AMQP counted only the waiting ones.
          const delayed = s.delayed + (delay?.unacked ?? 0);
          return { ...s, inFlight: Math.max(s.inFlight, main?.unacked ?? 0), delayed, delayedDue: 0, delayedUnknownEta: delayed };
        }),
      );
      return { queues };
    } catch (err) {
      // The client's errors name its URL with the password redacted.
      return unseen("ManagementFailed", `the RabbitMQ management API failed: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    for (const { client } of this.redis.values()) client.disconnect();
    this.redis.clear();
  }
}
