import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { CliProcess, childrenOf } from "../support/process.js";
import { OwnRedisServer, deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

const SECOND = 1000;
const SCHEDULES = ["tick-skip", "tick-grace"] as const;

/** `count` worker "pods": separate `troupe worker` commands (supervisor + one worker process each) on one namespace. */
async function startPods(count: number, url: string, namespace: string): Promise<CliProcess[]> {
  const pods = Array.from({ length: count }, () => new CliProcess(["worker", fixture("schedules"), "-p", "1", "-t", "1", "-Q", "idle", "-b", url], { TROUPE_REDIS_NAMESPACE: namespace }));
  await Promise.all(pods.map((pod) => pod.waitForLog((l) => l.msg === "schedules started", "the scheduler of every pod to start", 60_000)));
  return pods;
}

/** The ticks each schedule enqueued, read from the queue no worker consumes (duplicates included), sorted. */
async function enqueuedTicks(client: Redis, namespace: string): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(SCHEDULES.map((name) => [name, []]));
  for (const body of await client.hvals(`${namespace}:ticks.msgs`)) {
    const message = JSON.parse(body) as { args: [string]; options: { schedule: string; schedule_tick: number } };
    assert.equal(message.args[0], message.options.schedule, "the schedule's args travel with its messages");
    out[message.options.schedule]!.push(message.options.schedule_tick);
  }
  for (const ticks of Object.values(out)) ticks.sort((a, b) => a - b);
  return out;
}

async function lastFired(client: Redis, namespace: string, name: string): Promise<{ tick: number; by: string } | undefined> {
  const raw = await client.hget(`${namespace}:schedules`, name);
  return raw ? (JSON.parse(raw) as { tick: number; by: string }) : undefined;
}

/** Resolves once every schedule recorded a fired tick at or after `tick`. */
async function firedThrough(client: Redis, namespace: string, tick: number, timeout = 30_000): Promise<void> {
  await until(
    async () => {
      for (const name of SCHEDULES) if (((await lastFired(client, namespace, name))?.tick ?? 0) < tick) return false;
      return true;
    },
    `every schedule to fire its tick of ${new Date(tick).toISOString()}`,
    { timeout, interval: 10 },
  );
}

function range(first: number, last: number): number[] {
  const out: number[] = [];
  for (let tick = first; tick <= last; tick += SECOND) out.push(tick);
  return out;
}

function assertNoDoubles(ticks: Record<string, number[]>): void {
  for (const [name, list] of Object.entries(ticks)) assert.equal(new Set(list).size, list.length, `${name} enqueued a tick twice: ${list.join(",")}`);
}

const nextSecond = (at: number) => Math.floor(at / SECOND) * SECOND + SECOND;

describe("every-second schedules across three worker pods on Redis", () => {
  const pods: CliProcess[] = [];
  const client = redisClient(REDIS_URL);
  const namespaces: string[] = [];
  after(async () => {
    await Promise.all(pods.map((pod) => pod.kill()));
    for (const namespace of namespaces) await deleteNamespace(client, namespace);
    client.disconnect();
  });

  test("ten seconds enqueue exactly ten messages per schedule, none doubled", async () => {
    const namespace = uniqueName("sched-once");
    namespaces.push(namespace);
    pods.push(...(await startPods(3, REDIS_URL, namespace)));
    const first = nextSecond(Date.now());
    const last = first + 9 * SECOND;
    await firedThrough(client, namespace, last);
    const ticks = await enqueuedTicks(client, namespace);
    assertNoDoubles(ticks);
    for (const name of SCHEDULES) assert.deepEqual(ticks[name]!.filter((t) => t >= first && t <= last), range(first, last), name);
    await Promise.all(pods.splice(0).map((pod) => pod.stop()));
  });

  test("kill -9 of the pod that fired last loses no tick and doubles none", async () => {
    const namespace = uniqueName("sched-kill");
    namespaces.push(namespace);
    pods.push(...(await startPods(3, REDIS_URL, namespace)));
    const first = nextSecond(Date.now());
    await firedThrough(client, namespace, first);
    const record = (await lastFired(client, namespace, "tick-skip"))!;
    const firerPid = Number(record.by.split(":").at(-1));
    const firer = pods.find((pod) => childrenOf(pod.pid).includes(firerPid));
    assert.ok(firer, `the firer ${record.by} is one of the pods`);
    await firer.kill();
    const last = record.tick + 5 * SECOND;
    await firedThrough(client, namespace, last);
    const ticks = await enqueuedTicks(client, namespace);
    assertNoDoubles(ticks);
    for (const name of SCHEDULES) assert.deepEqual(ticks[name]!.filter((t) => t >= first && t <= last), range(first, last), name);
    await Promise.all(pods.splice(0).map((pod) => pod.stop()));
  });
});

describe("every-second schedules while their Redis restarts", () => {
  let server: OwnRedisServer | undefined;
  let pods: CliProcess[] = [];
  let client: Redis | undefined;
  after(async () => {
    await Promise.all(pods.map((pod) => pod.kill()));
    client?.disconnect();
    await server?.stop();
  });

  test("ticks before and after the restart fire once each; ticks of the outage are missed, or fired late within the grace window; none doubles", async () => {
    server = new OwnRedisServer(await freePort());
    await server.start();
    client = redisClient(server.url);
    client.on("error", () => undefined);
    const namespace = uniqueName("sched-restart");
    pods = await startPods(3, server.url, namespace);
    const first = nextSecond(Date.now());
    await firedThrough(client, namespace, first + SECOND);
    await server.kill();
    const down = Date.now();
    // The outage is noticed: a pod's store call fails and is retried within the tick's lateness.
    await Promise.all(pods.map((pod) => pod.waitForLog((l) => l.msg.startsWith("schedule store call failed"), "a pod to notice the outage")));
    await server.start();
    const up = Date.now();
    await firedThrough(client, namespace, nextSecond(up) + 4 * SECOND);
    const ticks = await enqueuedTicks(client, namespace);
    assertNoDoubles(ticks);
    const lastBefore = Math.floor(down / SECOND) * SECOND - SECOND;
    for (const name of SCHEDULES) {
      const list = ticks[name]!;
      assert.deepEqual(list.filter((t) => t >= first && t <= lastBefore), range(first, lastBefore), `${name} before the outage (AOF kept them)`);
      const resumed = list.find((t) => t >= up)!;
      assert.ok(resumed <= up + 3 * SECOND, `${name} resumed within 3 s of the restart`);
      assert.deepEqual(list.filter((t) => t >= resumed && t < resumed + 3 * SECOND), range(resumed, resumed + 2 * SECOND), `${name} after it`);
      const outage = list.filter((t) => t > lastBefore && t < resumed);
      if (name === "tick-skip") assert.ok(outage.every((t) => t >= down - SECOND), `${name}: only ticks due while it was reachable`);
    }
  });
});
