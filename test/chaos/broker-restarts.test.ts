import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { onRabbitmq, onRedis, records, type BrokerRun } from "../support/chaos.js";
import { OwnRabbitServer } from "../support/own-rabbitmq.js";
import { freePort, OwnRedisServer } from "../support/redis.js";
import { awaitAll } from "../support/tally.js";
import { until } from "../support/wait.js";
import { EXIT_UNREACHABLE_AT_BOOT } from "../../worker/runtime/supervisor.js";

const RESTARTS = 2;
const OUTAGE_MS = 1000;
const BATCH = 20;

interface Server {
  kill(): Promise<void>;
  start(): Promise<void>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A producer publishes batches steadily while the broker is SIGKILLed and restarted RESTARTS times under load.
 * Every batch the producer saw succeed must run; a batch that raised is counted as rejected (it may or may not
 * run: the caller was told). Nothing may vanish. The producers are set to give up within the outage, so both
 * outcomes occur: enqueues held until the broker is back, and enqueues that raise.
 */
async function restartUnderLoad(t: TestContext, name: string, server: Server, { broker, cluster, queue }: BrokerRun): Promise<void> {
  await cluster.waitForProcesses(2);
  const sent: string[] = [];
  const rejected: string[] = [];
  const errors = new Set<string>();
  let slowest = 0;
  let producing = true;
  const producer = (async () => {
    for (let batch = 0; producing; batch++) {
      const messages = records(queue, `b${batch}_`, BATCH);
      const ids = messages.map((m) => m.args[0] as string);
      const began = Date.now();
      try {
        await broker.enqueueMany(messages);
        sent.push(...ids);
      } catch (err) {
        rejected.push(...ids);
        errors.add((err as Error).message);
      }
      slowest = Math.max(slowest, Date.now() - began);
      // A steady rate (about 2,000 messages/s) rather than a flood, so the backlog drains within the test.
      await pause(10);
    }
  })();
  const progress = async (what: string) => {
    await cluster.waitForRuns(cluster.tally().runs + 500, `${what}; producer: ${sent.length} sent, ${rejected.length} rejected [${[...errors].join("; ")}]`);
  };
  try {
    for (let round = 1; round <= RESTARTS; round++) {
      await progress(`the workers to run 500 messages before restart ${round}`);
      await server.kill();
      await pause(OUTAGE_MS);
      await server.start();
    }
    await progress("the workers to run 500 messages after the last restart");
  } finally {
    producing = false;
    await producer;
  }
  const seen = await awaitAll(cluster, sent, 90_000);
  assert.deepEqual(seen.lost.slice(0, 20), [], `${seen.lost.length} of ${sent.length} confirmed messages never ran`);
  const rejectedSet = new Set(rejected);
  assert.deepEqual(seen.unexpected.filter((id) => !rejectedSet.has(id)), [], "only sent or rejected ids ran");
  assert.ok(cluster.alive, "the worker supervisor is still running");
  assert.ok(rejected.length > 0, "some enqueues raised during the outages (the rejection path was exercised)");
  const ranAnyway = seen.unexpected.length;
  t.diagnostic(
    `${name}: ${RESTARTS} kill -9 + restarts of the broker under load; producer: ${sent.length} sent, ${rejected.length} rejected ` +
      `(${ranAnyway} of them ran anyway)${errors.size ? ` [${[...errors].join("; ")}]` : ""}, slowest enqueue ${slowest} ms; ` +
      `workers: 0 lost, ${seen.duplicates} duplicates`,
  );
}

describe("chaos: broker killed and restarted under load (private servers with persistence)", () => {
  test("Redis (appendonly, appendfsync always)", async (t) => {
    const server = new OwnRedisServer(await freePort());
    await server.start();
    try {
      // The producer gives up after two reconnect attempts, so some enqueues raise during the outage.
      const producer = { redis: { maxRetriesPerRequest: 2 } };
      await onRedis(server.url, { processes: 2, threads: 4, env: { TROUPE_REDIS_HEARTBEAT_TIMEOUT: "3000" } }, (run) => restartUnderLoad(t, "Redis", server, run), producer);
    } finally {
      await server.stop();
    }
  });

  test("Redis down while a crashed worker process restarts: the group waits out the outage instead of stopping", async () => {
    const server = new OwnRedisServer(await freePort());
    await server.start();
    try {
      await onRedis(server.url, { processes: 2, threads: 2, env: { TROUPE_LOG_LEVEL: "info", TROUPE_REDIS_HEARTBEAT_TIMEOUT: "2000" } }, async ({ broker, cluster, queue }) => {
        const [victim] = await cluster.waitForProcesses(2);
        await cluster.waitForLog((l) => l.msg === "worker started", "both processes to boot", 30_000, 1);
        await server.kill();
        // Its replacement boots while the broker is down: connection refused, which the group has reached before.
        process.kill(victim!, "SIGKILL");
        const restart = (l: { msg: string; code?: unknown }) => l.msg === "worker process exited; restarting" && l.code === EXIT_UNREACHABLE_AT_BOOT;
        await cluster.waitForLog(restart, "the replacement to meet the outage and be restarted", 30_000);
        assert.ok(cluster.alive, `the supervisor is still running:\n${cluster.output.slice(-3000)}`);
        await server.start();
        await cluster.waitForProcesses(2, 60_000);
        const messages = records(queue, "restart_", BATCH);
        await broker.enqueueMany(messages);
        const seen = await awaitAll(cluster, messages.map((m) => m.args[0] as string), 60_000);
        assert.deepEqual(seen.lost, []);
        assert.ok(cluster.alive, "the supervisor is still running");
      });
    } finally {
      await server.stop();
    }
  });

  test("RabbitMQ killed and restarted while a worker process boots: it subscribes once the broker is back", async () => {
    const server = await OwnRabbitServer.create();
    await server.start();
    try {
      await onRabbitmq(server.url, { processes: 1, threads: 8, env: { TROUPE_LOG_LEVEL: "info" } }, async ({ broker, cluster, queue }) => {
        // Eight threads boot one after another (about 2 s) between the broker connection and the subscription, so the
        // broker goes away in between; a declare or subscribe cut off mid-flight is retried too (RabbitmqConsumer.start).
        await until(() => cluster.output.includes('"msg":"connected to the broker; starting worker threads"'), "the booting worker's broker connection", { timeout: 30_000, interval: 5 });
        await server.kill();
        await server.start();
        await until(() => cluster.output.includes('"msg":"worker started"') || !cluster.alive, "the worker to finish booting once the broker is back", { timeout: 90_000 });
        assert.ok(cluster.alive, `the worker supervisor is still running:\n${cluster.output.slice(-3000)}`);
        const messages = records(queue, "boot_", BATCH);
        await broker.enqueueMany(messages);
        const seen = await awaitAll(cluster, messages.map((m) => m.args[0] as string), 60_000);
        assert.deepEqual(seen.lost, []);
        assert.ok(cluster.alive, "the worker supervisor is still running");
      });
    } finally {
      await server.stop();
    }
  });

  test("RabbitMQ (durable queues, persistent messages, publisher confirms)", async (t) => {
    const server = await OwnRabbitServer.create();
    await server.start();
    try {
      // A publish timeout shorter than the outage: publishes cut off by it raise, later ones wait and succeed.
      const producer = { maxReconnectDelay: 500, publishTimeout: 2000 };
      await onRabbitmq(server.url, { processes: 2, threads: 4 }, (run) => restartUnderLoad(t, "RabbitMQ", server, run), producer);
    } finally {
      await server.stop();
    }
  });
});
