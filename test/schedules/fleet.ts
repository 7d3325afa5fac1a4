import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { RabbitmqBroker, type Consumer } from "troupe";
import { fixture } from "../support/env.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { CliProcess, childrenOf } from "../support/process.js";
import type { OwnRedisServer } from "../support/redis.js";
import { until } from "../support/wait.js";

/**
 * Worker "pods" running test/fixtures/schedules.ts (two every-second schedules), and what they enqueued, for the
 * exactly-once tests on each broker.
 */
export const SECOND = 1000;
export const SCHEDULES = ["tick-skip", "tick-grace"] as const;

export type Ticks = Record<string, number[]>;

interface TickMessage {
  args: [string];
  options: { schedule: string; schedule_tick: number };
}

function emptyTicks(): Ticks {
  return Object.fromEntries(SCHEDULES.map((name) => [name, []]));
}

function addTick(out: Ticks, message: TickMessage): void {
  assert.equal(message.args[0], message.options.schedule, "the schedule's args travel with its messages");
  out[message.options.schedule]!.push(message.options.schedule_tick);
}

/** Where the enqueued ticks are read back: every message of the tick queue, duplicates included. */
export interface TickSource {
  ticks(): Promise<Ticks>;
  close(): Promise<void>;
}

/** On a Redis broker: the tick queue's message hash, which no worker consumes. */
export function redisQueueTicks(client: Redis, namespace: string, queue: string): TickSource {
  return {
    async ticks() {
      const out = emptyTicks();
      for (const body of await client.hvals(`${namespace}:${queue}.msgs`)) addTick(out, JSON.parse(body) as TickMessage);
      return out;
    },
    async close() {},
  };
}

/** On RabbitMQ, where a tick may be delivered twice: the message_id of each delivery of a tick, in order. */
export interface DeliveredTickSource extends TickSource {
  messageIds(name: string, tick: number): string[];
}

/** On RabbitMQ: a consumer of the test's own that acks every delivery of the tick queue and keeps its tick; closing deletes both queues. */
export async function rabbitmqQueueTicks(url: string, queue: string, idleQueue: string): Promise<DeliveredTickSource> {
  const broker = new RabbitmqBroker(url);
  await broker.connect();
  await broker.declareQueue(queue);
  const seen = emptyTicks();
  const ids = new Map<string, string[]>();
  const consumer: Consumer = broker.consume(queue, {
    prefetch: 100,
    onMessage: (proxy) => {
      const message = proxy.message as unknown as TickMessage;
      addTick(seen, message);
      const key = `${message.options.schedule}@${message.options.schedule_tick}`;
      ids.set(key, [...(ids.get(key) ?? []), proxy.message.messageId]);
      void consumer.ack(proxy);
    },
  });
  await consumer.start();
  return {
    messageIds(name, tick) {
      return ids.get(`${name}@${tick}`) ?? [];
    },
    async ticks() {
      return Object.fromEntries(Object.entries(seen).map(([name, list]) => [name, [...list]]));
    },
    async close() {
      await consumer.close();
      await broker.close();
      const raw = await RawAmqp.open(url);
      await raw.deleteQueues(queue, idleQueue);
      await raw.close();
    },
  };
}

export interface FireRecord {
  tick: number;
  by: string;
}

/** The pods of one test, the election store they share (a Redis client on `namespace`) and the enqueued ticks. */
export class Fleet {
  readonly pods: CliProcess[] = [];

  constructor(
    readonly store: Redis,
    readonly namespace: string,
    readonly source: TickSource,
  ) {}

  /** `count` separate `troupe worker` commands (supervisor + one worker process each) consuming only `idleQueue`. */
  async start(count: number, brokerUrl: string, env: Record<string, string>): Promise<void> {
    const started = Array.from({ length: count }, () => new CliProcess(["worker", fixture("schedules"), "-p", "1", "-t", "1", "-Q", env.TEST_IDLE_QUEUE ?? "idle", "-b", brokerUrl], { TROUPE_REDIS_NAMESPACE: this.namespace, ...env }));
    this.pods.push(...started);
    await Promise.all(started.map((pod) => pod.waitForLog((l) => l.msg === "schedules started", "the scheduler of every pod to start", 60_000)));
  }

  async lastFired(name: string): Promise<FireRecord | undefined> {
    const raw = await this.store.hget(`${this.namespace}:schedules`, name);
    return raw ? (JSON.parse(raw) as FireRecord) : undefined;
  }

  /** Resolves once every schedule recorded a fired tick at or after `tick` and its message of `tick` arrived. */
  async firedThrough(tick: number, timeout = 30_000): Promise<void> {
    await until(
      async () => {
        for (const name of SCHEDULES) if (((await this.lastFired(name))?.tick ?? 0) < tick) return false;
        const ticks = await this.source.ticks();
        return SCHEDULES.every((name) => ticks[name]!.includes(tick));
      },
      `every schedule to fire its tick of ${new Date(tick).toISOString()}`,
      { timeout, interval: 10 },
    );
  }

  /**
   * The state of a tick's election key on RabbitMQ (worker/redis/schedule-claim.lua): claimed or committed, and by
   * whom (`host:pid/instance`).
   */
  async election(name: string, tick: number): Promise<{ state: string; by: string } | undefined> {
    const raw = await this.store.get(`${this.namespace}:schedule:${name}:${tick}`);
    if (!raw) return undefined;
    const [state, by] = raw.split("|") as [string, string];
    return { state, by };
  }

  /** The pod whose process is `by` (`host:pid`, as in a fire record, or a claim's `host:pid/instance`). */
  podOf(by: string): CliProcess {
    const firerPid = Number(by.split("/")[0]!.split(":").at(-1));
    const pod = this.pods.find((p) => childrenOf(p.pid).includes(firerPid));
    assert.ok(pod, `the firer ${by} is one of the pods`);
    return pod;
  }

  async stop(): Promise<void> {
    await Promise.all(this.pods.splice(0).map((pod) => pod.stop()));
  }

  async kill(): Promise<void> {
    await Promise.all(this.pods.splice(0).map((pod) => pod.kill()));
  }
}

export function range(first: number, last: number): number[] {
  const out: number[] = [];
  for (let tick = first; tick <= last; tick += SECOND) out.push(tick);
  return out;
}

export function assertNoDoubles(ticks: Ticks): void {
  for (const [name, list] of Object.entries(ticks)) assert.equal(new Set(list).size, list.length, `${name} enqueued a tick twice: ${list.join(",")}`);
}

/** Every schedule enqueued each tick from `first` to `last` once. */
export function assertEveryTick(ticks: Ticks, first: number, last: number): void {
  assertNoDoubles(ticks);
  for (const name of SCHEDULES) assert.deepEqual([...ticks[name]!].sort((a, b) => a - b).filter((t) => t >= first && t <= last), range(first, last), name);
}

export const nextSecond = (at: number) => Math.floor(at / SECOND) * SECOND + SECOND;

/**
 * Across an outage of the election store from `down` to `up`: every tick before it fired once (persistence kept
 * them), consecutive ticks within 3 s of the restart, none doubled, and skip-schedules fired no tick of the outage.
 */
export function assertOutage(ticks: Ticks, first: number, down: number, up: number): void {
  assertNoDoubles(ticks);
  const lastBefore = Math.floor(down / SECOND) * SECOND - SECOND;
  for (const name of SCHEDULES) {
    const list = [...ticks[name]!].sort((a, b) => a - b);
    assert.deepEqual(list.filter((t) => t >= first && t <= lastBefore), range(first, lastBefore), `${name} before the outage (AOF kept them)`);
    const resumed = list.find((t) => t >= up)!;
    assert.ok(resumed <= up + 3 * SECOND, `${name} resumed within 3 s of the restart`);
    assert.deepEqual(list.filter((t) => t >= resumed && t < resumed + 3 * SECOND), range(resumed, resumed + 2 * SECOND), `${name} after it`);
    const outage = list.filter((t) => t > lastBefore && t < resumed);
    if (name === "tick-skip") assert.ok(outage.every((t) => t >= down - SECOND), `${name}: only ticks due while it was reachable`);
  }
}

/**
 * Three pods on `brokerUrl` electing on `server` (the test's own Redis): two ticks fire, the Redis is `kill -9`ed,
 * every pod notices (a store call fails and is retried within the tick's lateness), it restarts on its port, and
 * the ticks are judged by assertOutage.
 */
export async function electionRestart(fleet: Fleet, server: OwnRedisServer, brokerUrl: string, env: Record<string, string>): Promise<void> {
  await fleet.start(3, brokerUrl, env);
  const first = nextSecond(Date.now());
  await fleet.firedThrough(first + SECOND);
  await server.kill();
  const down = Date.now();
  await Promise.all(fleet.pods.map((pod) => pod.waitForLog((l) => l.msg.startsWith("schedule store call failed"), "a pod to notice the outage")));
  await server.start();
  const up = Date.now();
  await fleet.firedThrough(nextSecond(up) + 4 * SECOND);
  assertOutage(await fleet.source.ticks(), first, down, up);
}
