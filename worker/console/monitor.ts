import type { Redis } from "ioredis";
import type { Broker, QueueStats } from "../broker.js";
import { RabbitmqBroker } from "../brokers/rabbitmq.js";
import type { ManagementClient } from "../brokers/rabbitmq/management.js";
import { RedisBroker } from "../brokers/redis.js";
import { dqName, xqName } from "../queues.js";

/** One queue's depth at a sample, with its throughput over the interval since the previous sample. */
export interface QueueRow extends QueueStats {
  /** Messages finished per second; absent where the broker counts no acks (Redis) or on the first sample. */
  donePerSec?: number;
  /** Messages dead-lettered per second; absent on the first sample. */
  deadPerSec?: number;
}

export interface Snapshot {
  /** When the sample was taken (ms since the epoch). */
  at: number;
  queues: QueueRow[];
  /** What the broker cannot see as configured (see Broker.statsBlindSpots). */
  blindSpots?: string;
}

/** A live consumer of the fleet, Troupe's or Python Dramatiq's alike. */
export interface WorkerRow {
  id: string;
  /** Redis: the last heartbeat (ms since the epoch). */
  lastSeen?: number;
  /** Queues it consumes, with the messages it holds unacked on each where the broker tells. */
  queues: { queue: string; inFlight?: number }[];
  /** RabbitMQ: the connection name RabbitMQ shows. */
  connection?: string;
}

/**
 * Where throughput comes from, per broker: cumulative counters read at each sample and differenced. Each counter
 * is undefined where the broker does not keep one.
 */
interface Counters {
  /** Acks of `q` since some origin. */
  done?: number;
  /** Messages dead-lettered to `q.XQ` since some origin; Redis has none (its `.XQ` is scored by death time). */
  dead?: number;
}

interface Previous {
  at: number;
  dead: number;
  counters: Counters;
}

/**
 * Samples queue depths and throughput of a broker: `troupe queues --watch` and the dashboard's charts. Rates
 * need two samples. Dead letters per second are exact where the broker records when each one died (Redis: the
 * `.XQ` score, counted with ZCOUNT) or counts publishes (RabbitMQ's management API), else the growth of the
 * dead-letter count (a requeue or purge then reads as zero). Done per second needs a broker that counts acks:
 * RabbitMQ with its management API; the Redis layout (Troupe's and Dramatiq's) keeps no such count.
 */
export class QueueMonitor {
  private readonly previous = new Map<string, Previous>();
  private readonly samples: Snapshot[] = [];
  private redis: Redis | undefined;

  /** `queues` empty: every queue the broker lists, at each sample. `keep`: samples kept for `history()`. */
  constructor(
    readonly broker: Broker,
    private readonly queues: readonly string[] = [],
    private readonly keep = 300,
  ) {}

  /** The samples kept, oldest first. */
  history(): readonly Snapshot[] {
    return this.samples;
  }

  async sample(): Promise<Snapshot> {
    await this.broker.connect();
    const at = Date.now();
    const names = this.queues.length ? [...this.queues] : await this.broker.listQueues();
    const queues = await Promise.all(names.map((q) => this.row(q, at)));
    const blindSpots = this.broker.statsBlindSpots();
    const snapshot: Snapshot = blindSpots ? { at, queues, blindSpots } : { at, queues };
    this.samples.push(snapshot);
    if (this.samples.length > this.keep) this.samples.shift();
    return snapshot;
  }

  private async row(queue: string, at: number): Promise<QueueRow> {
    const [stats, counters] = await Promise.all([this.broker.queueStats(queue), this.counters(queue)]);
    const before = this.previous.get(stats.queue);
    this.previous.set(stats.queue, { at, dead: stats.dead, counters });
    if (!before) return stats;
    const seconds = Math.max(0.001, (at - before.at) / 1000);
    const row: QueueRow = { ...stats };
    const deaths = (await this.deathsBetween(stats.queue, before.at, at)) ?? difference(before.counters.dead, counters.dead) ?? Math.max(0, stats.dead - before.dead);
    row.deadPerSec = deaths / seconds;
    const done = difference(before.counters.done, counters.done);
    if (done !== undefined) row.donePerSec = done / seconds;
    return row;
  }

  private async counters(queue: string): Promise<Counters> {
    const management = this.management();
    if (!management) return {};
    const [main, dead] = await Promise.all([management.counters(queue), management.counters(xqName(queue))]);
    return { done: main?.acked, dead: dead?.published };
  }

  /** Redis: letters whose death time (their `.XQ` score) falls in (from, to]. */
  private async deathsBetween(queue: string, from: number, to: number): Promise<number | undefined> {
    if (!(this.broker instanceof RedisBroker)) return undefined;
    this.redis ??= this.broker.createClient("console");
    return this.redis.zcount(`${this.broker.namespace}:${xqName(queue)}`, `(${from}`, to);
  }

  private management(): ManagementClient | undefined {
    return this.broker instanceof RabbitmqBroker ? this.broker.management : undefined;
  }

  /** Live consumers: Redis from heartbeats and ack sets, RabbitMQ from the management API (undefined without it). */
  async workers(queues: readonly string[]): Promise<WorkerRow[] | undefined> {
    await this.broker.connect();
    if (this.broker instanceof RedisBroker) {
      this.redis ??= this.broker.createClient("console");
      const ns = this.broker.namespace;
      const beats = await this.redis.zrange(`${ns}:__heartbeats__`, 0, -1, "WITHSCORES");
      const rows: WorkerRow[] = [];
      for (let i = 0; i < beats.length; i += 2) {
        const id = beats[i]!;
        const names = queues.flatMap((q) => [q, dqName(q)]);
        const counts = names.length ? await Promise.all(names.map((q) => this.redis!.scard(`${ns}:__acks__.${id}.${q}`))) : [];
        rows.push({ id, lastSeen: Number(beats[i + 1]), queues: names.map((queue, j) => ({ queue, inFlight: counts[j]! })).filter((q) => q.inFlight > 0) });
      }
      return rows.sort((a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0));
    }
    const management = this.management();
    if (!management) return undefined;
    const byConnection = new Map<string, WorkerRow>();
    for (const consumer of await management.consumers()) {
      const row = byConnection.get(consumer.connection) ?? { id: consumer.connection, connection: consumer.connection, queues: [] };
      row.queues.push({ queue: consumer.queue });
      byConnection.set(consumer.connection, row);
    }
    return [...byConnection.values()];
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
    this.redis = undefined;
  }
}

function difference(before: number | undefined, now: number | undefined): number | undefined {
  return before === undefined || now === undefined ? undefined : Math.max(0, now - before);
}
