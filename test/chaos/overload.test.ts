import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Message } from "troupe";
import { onRabbitmq, onRedis, rssKib, type BrokerRun } from "../support/chaos.js";
import { AMQP_URL, REDIS_URL } from "../support/env.js";

const MESSAGES = 20_000;
const PAYLOAD = 4096;
const PREFETCH = 4;
/** The worker may grow this much (KiB) while 80 MB of messages wait for it: bounded by prefetch, not backlog. */
const MAX_GROWTH_KIB = 40 * 1024;

/**
 * A producer floods 80 MB of messages at a worker that runs 20 per second. The backlog must stay in the broker:
 * the worker's RSS (threads included) grows by far less than the payload, and the broker holds nearly all of it.
 */
async function flood(t: TestContext, name: string, { broker, cluster, queue }: BrokerRun): Promise<void> {
  const [pid] = await cluster.waitForProcesses(1);
  const slow = (i: number) => new Message({ queueName: queue, actorName: "chaos_slow", args: [`o${i}`, 100, "x".repeat(PAYLOAD)] });
  await broker.enqueueMany(Array.from({ length: 10 }, (_, i) => slow(i)));
  await cluster.waitForRuns(5, "the worker to warm up on the first messages");
  const baseline = rssKib(pid!);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKib(pid!))), 50);
  const started = Date.now();
  try {
    for (let i = 10; i < MESSAGES; i += 1000) await broker.enqueueMany(Array.from({ length: Math.min(1000, MESSAGES - i) }, (_, j) => slow(i + j)));
    const produced = Date.now() - started;
    // Let the worker run against the full backlog for a while before the last sample.
    const ranBefore = cluster.tally().runs;
    await cluster.waitForRuns(ranBefore + 40, "the worker to keep running under the backlog");
    const stats = await broker.queueStats(queue);
    const ran = cluster.tally().runs;
    assert.ok(stats.ready >= MESSAGES - ran - PREFETCH - 1, `the backlog is in the broker: ${stats.ready} ready, ${ran} ran`);
    const growth = peak - baseline;
    assert.ok(growth < MAX_GROWTH_KIB, `worker RSS grew by ${growth} KiB (baseline ${baseline} KiB) with ${stats.ready} messages waiting`);
    const mb = (kib: number) => (kib / 1024).toFixed(1);
    t.diagnostic(
      `${name}: ${MESSAGES} x ${PAYLOAD} B produced in ${produced} ms against a worker doing ~20/s (prefetch ${PREFETCH}); ` +
        `${stats.ready} waiting in the broker; worker RSS ${mb(baseline)} MB -> peak ${mb(peak)} MB (+${mb(growth)} MB)`,
    );
  } finally {
    clearInterval(sampler);
  }
}

describe("chaos: producer far faster than the workers", () => {
  const settings = { processes: 1, threads: 2, prefetch: PREFETCH };
  test("Redis: the queue grows in Redis, not in the worker", (t) => onRedis(REDIS_URL, settings, (run) => flood(t, "Redis", run)));
  test("RabbitMQ: the queue grows in RabbitMQ, not in the worker", (t) => onRabbitmq(AMQP_URL, settings, (run) => flood(t, "RabbitMQ", run)));
});
