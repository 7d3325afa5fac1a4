import { hostname } from "node:os";
import type { Redis } from "ioredis";
import type { Broker } from "../broker.js";
import { MemoryBroker } from "../brokers/memory.js";
import { RedisBroker } from "../brokers/redis.js";
import { asBrokerError, connectRedis, createRedisClient, type RedisConnectionOptions } from "../redis/connection.js";
import { withScheduleScripts, type ScheduleCommands } from "../redis/scripts.js";
import { TroupeError } from "../errors.js";
import { nodeCrypto } from "../lazy.js";
import { getLogger, redactUrl } from "../logging.js";
import type { Message } from "../message.js";
import { parseServiceUrl } from "../setup.js";
import type { Schedule, ScheduleDefinition } from "./schedule.js";

const log = getLogger("schedules");

/** The last tick of a schedule that fired, as kept in the store (Redis: the hash `<ns>:schedules`). */
export interface FireRecord {
  tick: number;
  /** When the firing process enqueued it (its clock). */
  firedAt: number;
  /** `host:pid` of the process that fired it. */
  by: string;
  messageId: string;
}

export interface FireOutcome {
  /** This process won the tick and its message was enqueued. */
  fired: boolean;
  /** This process won the tick of a paused schedule: nothing was enqueued. */
  paused?: boolean;
  /** The tick recorded before this call, if any (the firer counts the ticks in between as misfires). */
  previous: number | undefined;
  /**
   * Another process claimed the tick and has not committed it yet (RabbitMQ's two-phase election): ask again once
   * its lease may have lapsed, to publish the tick in its place if it died.
   */
  heldBy?: { holder: string; leaseLeftMs: number };
}

/**
 * Where the processes running a schedule elect one firer per tick and keep the last fired tick. A tick at or
 * before the recorded one is never fired again, so a late, resent or duplicated call cannot double a tick.
 */
export interface ScheduleStore {
  readonly description: string;
  connect(): Promise<void>;
  /** Elect this process for `tick` of `schedule` and, if elected, enqueue `message`. */
  fire(schedule: Schedule, tick: number, message: Message): Promise<FireOutcome>;
  /** Keep what `troupe schedules` shows of these schedules (each process that runs them writes them at start). */
  declare(definitions: ScheduleDefinition[]): Promise<void>;
  definitions(): Promise<Map<string, DeclaredSchedule>>;
  records(): Promise<Map<string, FireRecord>>;
  paused(): Promise<Map<string, PauseRecord>>;
  /** Pause (no tick fires, none is fired late on resume) or resume a schedule; false when it already was. */
  setPaused(name: string, paused: boolean): Promise<boolean>;
  /** Drop everything the store keeps of a schedule no process declares any more; false when it knew none. */
  forget(name: string): Promise<boolean>;
  close(): Promise<void>;
}

/** A definition as stored: who wrote it last, and when. */
export interface DeclaredSchedule extends ScheduleDefinition {
  declaredBy: string;
  declaredAt: number;
}

export interface PauseRecord {
  since: number;
  by: string;
}

export const FIRED_BY = `${hostname()}:${process.pid}`;

/** How long a tick's election key lives: longer than any process may still try the tick (it is late by then). */
export function electionTtl(schedule: Schedule): number {
  return Math.max(60_000, 2 * schedule.lateness);
}

/**
 * How long after a tick a process still follows another's uncommitted claim of it, to take it over: half the
 * election key's life, so that the claim it would take over is still there. Longer than the lateness on purpose:
 * the tick was won in time, and only its publish is late.
 */
export function followWindow(schedule: Schedule): number {
  return electionTtl(schedule) / 2;
}

/**
 * The lease of a RabbitMQ tick's claim. Its holder renews it every third of it while it publishes, so it lapses
 * only when the holder died or its event loop stalled for two thirds of it; the others then take the tick over
 * after at most this long. Shorter would double ticks on a loaded host; longer would delay a dead firer's tick.
 */
export const CLAIM_LEASE_MS = 1000;

/** Published ticks whose commit failed that a process remembers, so that their retry does not publish them again. */
const MAX_UNCOMMITTED = 1000;

/** A fixed UUID, the namespace of tick message ids (RFC 9562 name-based ids, version 5). */
const TICK_ID_NAMESPACE = Buffer.from("5b0c4f9e2a6d4e3b8f1c7d9a0e6b2c41", "hex");

/**
 * The message_id of a schedule's tick: a UUID v5 of namespace, schedule and tick, so that every process that
 * publishes the tick — a firer and one that took its claim over — publishes it with the same id, and a consumer
 * can tell a repeated delivery from another tick.
 */
export function tickMessageId(namespace: string, name: string, tick: number): string {
  const hash = nodeCrypto().createHash("sha1").update(TICK_ID_NAMESPACE).update(`${namespace}\0${name}\0${tick}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function recordFor(tick: number, message: Message): FireRecord {
  return { tick, firedAt: Date.now(), by: FIRED_BY, messageId: message.messageId };
}

/**
 * The election in Redis: on a Redis broker `SET <ns>:schedule:<name>:<tick> NX PX ttl`, the record and the
 * publication in one script (worker/redis/schedule-fire.lua); for a broker that publishes elsewhere, a claim with a
 * lease (schedule-claim.lua) and, once the publish is confirmed, its commit (schedule-commit.lua).
 */
class RedisElection {
  readonly client: Redis & ScheduleCommands;

  constructor(
    private readonly connection: RedisConnectionOptions,
    readonly namespace: string,
  ) {
    // No offline queue and no retry of a command cut by a disconnect: a call that reached Redis late would fire a
    // tick late, whatever the misfire policy; it fails instead, and the tick is the next live process's or missed.
    this.client = withScheduleScripts(createRedisClient(connection, "schedules", { enableOfflineQueue: false, maxRetriesPerRequest: 0 }));
  }

  connect(): Promise<void> {
    return connectRedis(this.client, this.connection.url);
  }

  async elect(schedule: Schedule, tick: number, record: FireRecord, publish: { redisId: string; body: string }): Promise<FireOutcome> {
    const argv = [Date.now(), schedule.name, tick, electionTtl(schedule), schedule.queueName, FIRED_BY, JSON.stringify(record), publish.redisId, publish.body];
    const [fired, previous] = await this.call(schedule, tick, "election", () => this.client.troupeScheduleFire(this.namespace, ...argv));
    return { fired: fired === 1, paused: fired === 2, previous: previous < 0 ? undefined : previous };
  }

  /** Claim `tick` for `claimant`, keep (renew) its claim, or take over a lapsed one: see schedule-claim.lua. */
  async claim(schedule: Schedule, tick: number, claimant: string): Promise<{ status: number; previous: number | undefined; leaseLeftMs: number; holder: string }> {
    const [status, previous, leaseLeftMs, holder] = await this.call(schedule, tick, "claim", () =>
      this.client.troupeScheduleClaim(this.namespace, schedule.name, tick, electionTtl(schedule), CLAIM_LEASE_MS, claimant),
    );
    return { status, previous: previous < 0 ? undefined : previous, leaseLeftMs, holder };
  }

  /** Commit a claimed tick whose publish was confirmed; false when it was committed already (published twice). */
  async commit(schedule: Schedule, tick: number, committer: string, record: FireRecord): Promise<boolean> {
    return (await this.call(schedule, tick, "commit", () => this.client.troupeScheduleCommit(this.namespace, schedule.name, tick, committer, JSON.stringify(record)))) === 1;
  }

  private async call<T>(schedule: Schedule, tick: number, what: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw asBrokerError(err, `schedule ${schedule.name}: ${what} for tick ${new Date(tick).toISOString()} failed`);
    }
  }

  private async hash<T>(suffix: string): Promise<Map<string, T>> {
    const raw = await this.client.hgetall(`${this.namespace}:${suffix}`);
    return new Map(Object.entries(raw).map(([name, json]) => [name, JSON.parse(json) as T]));
  }

  records(): Promise<Map<string, FireRecord>> {
    return this.hash("schedules");
  }

  definitions(): Promise<Map<string, DeclaredSchedule>> {
    return this.hash("schedules.defs");
  }

  paused(): Promise<Map<string, PauseRecord>> {
    return this.hash("schedules.paused");
  }

  async declare(definitions: ScheduleDefinition[]): Promise<void> {
    if (definitions.length === 0) return;
    const declared = definitions.map((d): [string, string] => [d.name, JSON.stringify({ ...d, declaredBy: FIRED_BY, declaredAt: Date.now() } satisfies DeclaredSchedule)]);
    await this.client.hset(`${this.namespace}:schedules.defs`, Object.fromEntries(declared));
  }

  async setPaused(name: string, paused: boolean): Promise<boolean> {
    const key = `${this.namespace}:schedules.paused`;
    if (!paused) return (await this.client.hdel(key, name)) === 1;
    return (await this.client.hsetnx(key, name, JSON.stringify({ since: Date.now(), by: FIRED_BY } satisfies PauseRecord))) === 1;
  }

  async forget(name: string): Promise<boolean> {
    const removed = await this.client.multi().hdel(`${this.namespace}:schedules.defs`, name).hdel(`${this.namespace}:schedules`, name).hdel(`${this.namespace}:schedules.paused`, name).hdel(`${this.namespace}:schedules.skipped`, name).hdel(`${this.namespace}:schedules.claimed`, name).exec();
    return (removed ?? []).some(([err, count]) => !err && count === 1);
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}

/** What both Redis stores share: the election's keys, read and written the same way. */
abstract class RedisScheduleStore implements ScheduleStore {
  abstract readonly description: string;

  constructor(protected readonly election: RedisElection) {}

  abstract fire(schedule: Schedule, tick: number, message: Message): Promise<FireOutcome>;

  /** The tick's message with the tick's own message_id (see tickMessageId). */
  protected tickMessage(schedule: Schedule, tick: number, message: Message): Message {
    return message.copy({ messageId: tickMessageId(this.election.namespace, schedule.name, tick) });
  }

  connect(): Promise<void> {
    return this.election.connect();
  }

  declare(definitions: ScheduleDefinition[]): Promise<void> {
    return this.election.declare(definitions);
  }

  definitions(): Promise<Map<string, DeclaredSchedule>> {
    return this.election.definitions();
  }

  records(): Promise<Map<string, FireRecord>> {
    return this.election.records();
  }

  paused(): Promise<Map<string, PauseRecord>> {
    return this.election.paused();
  }

  setPaused(name: string, paused: boolean): Promise<boolean> {
    return this.election.setPaused(name, paused);
  }

  forget(name: string): Promise<boolean> {
    return this.election.forget(name);
  }

  close(): Promise<void> {
    return this.election.close();
  }
}

/**
 * On a Redis broker: election, record and enqueue are one Lua script, so a tick is enqueued exactly once — no
 * crash can fall between winning a tick and publishing its message. Middleware see the publication as usual.
 */
export class RedisBrokerScheduleStore extends RedisScheduleStore {
  readonly description: string;

  constructor(private readonly broker: RedisBroker) {
    super(new RedisElection(broker.connection, broker.namespace));
    this.description = `${broker.displayUrl} (namespace ${broker.namespace})`;
  }

  async fire(schedule: Schedule, tick: number, message: Message): Promise<FireOutcome> {
    const redisId = nodeCrypto().randomUUID();
    const sent = this.tickMessage(schedule, tick, message).copy({ options: { redis_message_id: redisId } });
    await this.broker.declareQueue(schedule.queueName);
    await this.broker.emitBefore("beforeEnqueue", sent, undefined);
    const outcome = await this.election.elect(schedule, tick, recordFor(tick, sent), { redisId, body: sent.encode() });
    if (outcome.fired) await this.broker.emitAfter("afterEnqueue", sent, undefined);
    return outcome;
  }
}

/**
 * A broker that is not Redis (RabbitMQ) cannot elect: its queues hold messages, not keys. The election runs on
 * a Redis the deployment already shares for coordination — the rate limiter's (TROUPE_RATE_LIMITER_URL, which
 * also holds barriers and group callbacks), else the results backend's (TROUPE_RESULTS_URL) — and the elected
 * process then publishes on the broker with its confirms. The two systems cannot commit together, so the election
 * has two phases: winning a tick claims it with a lease, which the holder renews while it publishes, and the
 * confirmed publish is then committed. A process that dies (or stalls past its lease) before its commit leaves a
 * claim whose lease lapses; the processes that reached the tick follow the claim and one of them takes it over and
 * publishes. A tick is never lost to a dead firer; it is published twice — with one message_id — only when the
 * firer's publish reached RabbitMQ and it then died (or stalled) before the commit.
 */
export class ClaimScheduleStore extends RedisScheduleStore {
  readonly description: string;
  /** Who holds this store's claims: host:pid and an instance id, since one process may run several schedulers. */
  private readonly claimant = `${FIRED_BY}/${nodeCrypto().randomUUID().slice(0, 8)}`;
  /**
   * Ticks this store published and has not committed yet (the commit failed: Redis went away), by schedule and
   * tick: the retry of the call commits them without publishing them again.
   */
  private readonly uncommitted = new Set<string>();

  constructor(
    private readonly broker: Broker,
    url: string,
    namespace: string,
  ) {
    super(new RedisElection({ url }, namespace));
    this.description = `${redactUrl(url)} (namespace ${namespace}), publishing on ${broker.displayUrl}`;
  }

  async fire(schedule: Schedule, tick: number, message: Message): Promise<FireOutcome> {
    const claim = await this.election.claim(schedule, tick, this.claimant);
    const outcome: FireOutcome = { fired: false, previous: claim.previous };
    if (claim.status === 2) return { ...outcome, paused: true };
    if (claim.status === 3) return { ...outcome, heldBy: { holder: claim.holder, leaseLeftMs: claim.leaseLeftMs } };
    if (claim.status !== 1) return outcome;
    const at = new Date(tick).toISOString();
    if (claim.holder) log.warn("took over a tick whose firer let its claim lapse before committing it", { schedule: schedule.name, tick: at, from: claim.holder });
    const sent = this.tickMessage(schedule, tick, message);
    const key = `${schedule.name}\0${tick}`;
    if (!this.uncommitted.has(key)) {
      await this.publishHoldingClaim(schedule, tick, sent);
      this.uncommitted.add(key);
      // Only the latest few can still be retried (a retry lasts the lateness at most): older ones are dropped.
      if (this.uncommitted.size > MAX_UNCOMMITTED) this.uncommitted.delete(this.uncommitted.values().next().value!);
    }
    if (!(await this.election.commit(schedule, tick, this.claimant, recordFor(tick, sent)))) {
      log.warn("tick committed by another process too: it was published twice, with one message_id", { schedule: schedule.name, tick: at, messageId: sent.messageId });
    }
    this.uncommitted.delete(key);
    return { ...outcome, fired: true };
  }

  /** Publish `message`, renewing the tick's lease meanwhile, so that a slow confirm is not mistaken for a death. */
  private async publishHoldingClaim(schedule: Schedule, tick: number, message: Message): Promise<void> {
    let published = false;
    const renew = setInterval(() => {
      this.election.claim(schedule, tick, this.claimant).then(
        ({ status, holder }) => {
          // A renewal answered after the commit finds the tick committed: that is no loss.
          if (status !== 1 && !published) log.warn("lost the claim of a tick while publishing it: it may be published twice, with one message_id", { schedule: schedule.name, tick: new Date(tick).toISOString(), holder });
        },
        (err: unknown) => log.warn("could not renew the claim of a tick while publishing it", { schedule: schedule.name, tick: new Date(tick).toISOString(), err }),
      );
    }, CLAIM_LEASE_MS / 3);
    try {
      await this.broker.enqueue(message);
      published = true;
    } finally {
      clearInterval(renew);
    }
  }
}

/** The memory broker lives in one process: so does its election. */
export class MemoryScheduleStore implements ScheduleStore {
  readonly description = "memory (this process)";
  private readonly fired = new Map<string, FireRecord>();
  private readonly skipped = new Map<string, number>();
  private readonly declared = new Map<string, DeclaredSchedule>();
  private readonly pauses = new Map<string, PauseRecord>();

  constructor(private readonly broker: Broker) {}

  async connect(): Promise<void> {}

  async fire(schedule: Schedule, tick: number, message: Message): Promise<FireOutcome> {
    const previous = Math.max(this.fired.get(schedule.name)?.tick ?? -1, this.skipped.get(schedule.name) ?? -1);
    const outcome = { fired: false, previous: previous < 0 ? undefined : previous };
    if (previous >= tick) return outcome;
    if (this.pauses.has(schedule.name)) {
      this.skipped.set(schedule.name, tick);
      return { ...outcome, paused: true };
    }
    this.fired.set(schedule.name, recordFor(tick, message));
    await this.broker.enqueue(message);
    return { ...outcome, fired: true };
  }

  async declare(definitions: ScheduleDefinition[]): Promise<void> {
    for (const d of definitions) this.declared.set(d.name, { ...d, declaredBy: FIRED_BY, declaredAt: Date.now() });
  }

  async definitions(): Promise<Map<string, DeclaredSchedule>> {
    return new Map(this.declared);
  }

  async records(): Promise<Map<string, FireRecord>> {
    return new Map(this.fired);
  }

  async paused(): Promise<Map<string, PauseRecord>> {
    return new Map(this.pauses);
  }

  async setPaused(name: string, paused: boolean): Promise<boolean> {
    if (!paused) return this.pauses.delete(name);
    if (this.pauses.has(name)) return false;
    this.pauses.set(name, { since: Date.now(), by: FIRED_BY });
    return true;
  }

  async forget(name: string): Promise<boolean> {
    const known = [this.declared, this.fired, this.pauses, this.skipped].map((map) => map.delete(name));
    return known.some(Boolean);
  }

  async close(): Promise<void> {}
}

/**
 * The first of these rate limiter or results URLs that names a Redis: where schedules on a broker that cannot elect
 * (RabbitMQ) elect.
 */
export function electionUrlAmong(urls: readonly { url: string | undefined; role: "rate limiter" | "results" }[]): string | undefined {
  return urls.find(({ url, role }) => url && parseServiceUrl(url, role).family === "redis")?.url;
}

/** The Redis URL that elects schedules for a broker that cannot (RabbitMQ), or undefined when none is configured. */
export function electionUrlFromEnv(): string | undefined {
  return electionUrlAmong([
    { url: process.env.TROUPE_RATE_LIMITER_URL, role: "rate limiter" },
    { url: process.env.TROUPE_RESULTS_URL, role: "results" },
  ]);
}

/**
 * The store schedules on `broker` elect in; a broker with no Redis to elect on is an error at boot, not a silent
 * double. `electionUrl` is that Redis for a broker that is neither Redis nor memory (default: from the environment).
 */
export function scheduleStoreFor(broker: Broker, electionUrl = electionUrlFromEnv()): ScheduleStore {
  if (broker instanceof RedisBroker) return new RedisBrokerScheduleStore(broker);
  if (broker instanceof MemoryBroker) return new MemoryScheduleStore(broker);
  if (!electionUrl) {
    throw new TroupeError(
      `schedules on ${broker.displayUrl} need a Redis to elect one firer per tick: set TROUPE_RATE_LIMITER_URL (or TROUPE_RESULTS_URL) to a redis:// URL shared by every worker`,
    );
  }
  return new ClaimScheduleStore(broker, electionUrl, process.env.TROUPE_REDIS_NAMESPACE || "dramatiq");
}
