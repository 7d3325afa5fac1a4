import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Redis } from "ioredis";
import { Message, RedisBroker, Worker, setBroker } from "troupe";
import { REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { OwnRedisServer, deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

const HEARTBEAT_TIMEOUT = 1500;

function tallyMessages(url: string, list: string, count: number, napMs: number): Message[] {
  return Array.from({ length: count }, (_, i) => new Message({ queueName: "tally", actorName: "tally", args: [url, list, `m${i}`, napMs] }));
}

/** Every id at least once; duplicates are allowed (at-least-once) and reported. */
async function assertAllProcessed(client: Redis, list: string, count: number): Promise<number> {
  const seen = await client.lrange(list, 0, -1);
  const unique = new Set(seen);
  const missing = Array.from({ length: count }, (_, i) => `m${i}`).filter((id) => !unique.has(id));
  assert.deepEqual(missing, [], "no message lost");
  return seen.length - unique.size;
}

/** Start a worker process, added to `children` at once so that the test's cleanup kills it even if it never boots. */
async function startWorkerProcess(namespace: string, children: ChildProcess[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fixture("redis-worker-process"), REDIS_URL, namespace, String(HEARTBEAT_TIMEOUT)], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  // Generous: on a loaded 2-core machine a process with worker threads can take many seconds to boot.
  await until(() => out.includes("ready") || child.exitCode !== null, "worker process ready", { timeout: 60_000 });
  assert.equal(child.exitCode, null, "worker process started");
  return child;
}

describe("redis broker recovery", () => {
  let client: Redis;

  before(() => {
    client = redisClient(REDIS_URL);
  });

  after(() => client.disconnect());

  test("messages in flight on a worker killed with SIGKILL are processed by another after the heartbeat timeout", async () => {
    const namespace = uniqueName("crash");
    const list = `${namespace}:tally-log`;
    const count = 300;
    const producer = new RedisBroker(REDIS_URL, { namespace });
    const children: ChildProcess[] = [];
    try {
      await producer.enqueueMany(tallyMessages(REDIS_URL, list, count, 15));
      const first = await startWorkerProcess(namespace, children);
      await until(async () => (await client.llen(list)) >= 30 && (await producer.queueStats("tally")).inFlight > 0, "some processed, some in flight");
      first.kill("SIGKILL");
      await once(first, "exit");
      const stranded = (await producer.queueStats("tally")).inFlight;
      assert.ok(stranded > 0, "the killed worker left unacked messages");

      await startWorkerProcess(namespace, children);
      await until(async () => new Set(await client.lrange(list, 0, -1)).size === count, "every message processed", { timeout: 30_000, interval: 50 });
      const duplicates = await assertAllProcessed(client, list, count);
      assert.ok(duplicates <= stranded, `duplicates (${duplicates}) only among the ${stranded} stranded messages`);
      await until(async () => {
        const stats = await producer.queueStats("tally");
        return stats.ready + stats.inFlight + stats.delayed + stats.dead === 0;
      }, "queue drained");
      const ackSets = await client.keys(`${namespace}:__acks__.*`);
      assert.deepEqual(ackSets, [], "the dead worker's ack set was recovered and removed");
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
      await producer.close();
      await deleteNamespace(client, namespace);
    }
  });

  test("a Redis restart mid-run (persistence on) loses nothing: the worker reconnects and finishes", async () => {
    const server = new OwnRedisServer(await freePort());
    await server.start();
    const namespace = uniqueName("restart");
    const list = `${namespace}:tally-log`;
    const count = 400;
    const own = redisClient(server.url);
    own.on("error", () => undefined);
    const broker = setBroker(new RedisBroker(server.url, { namespace, heartbeatTimeout: 10_000 })) as RedisBroker;
    const modules = [fixture("redis-tally")];
    await import(modules[0]!);
    const worker = new Worker(broker, { modules, threads: 4 });
    try {
      await broker.enqueueMany(tallyMessages(server.url, list, count, 5));
      await worker.start();
      await until(async () => (await own.llen(list)) >= 50, "processing under way");
      await server.kill();
      await server.start();
      // Publishing during and after the outage must not vanish either.
      const late = await broker.enqueueMany(tallyMessages(server.url, list, 20, 0).map((m, i) => m.copy({ args: [server.url, list, `m${count + i}`, 0] })));
      assert.equal(late.length, 20);
      await until(async () => new Set(await own.lrange(list, 0, -1)).size === count + 20, "every message processed after the restart", { timeout: 60_000, interval: 50 });
      await assertAllProcessed(own, list, count + 20);
      await broker.join("tally", { timeout: 30_000 });
    } finally {
      await worker.stop(5000);
      await broker.close();
      own.disconnect();
      await server.stop();
    }
  });
});
