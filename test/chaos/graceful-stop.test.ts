import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Message } from "troupe";
import { onRabbitmq, onRedis, type BrokerRun } from "../support/chaos.js";
import { AMQP_URL, REDIS_URL } from "../support/env.js";
import { until } from "../support/wait.js";

const MESSAGES = 300;

/**
 * SIGTERM in the middle of a run, as Kubernetes stops a pod: the running messages finish and are acked, the
 * prefetched ones go back to the queue, and `troupe worker` exits 0 well within a pod's grace period.
 */
async function stopMidRun({ broker, cluster, queue }: BrokerRun): Promise<void> {
  await cluster.waitForProcesses(2);
  const messages = Array.from({ length: MESSAGES }, (_, i) => new Message({ queueName: queue, actorName: "chaos_slow", args: [`s${i}`, 20] }));
  await broker.enqueueMany(messages);
  await cluster.waitForRuns(20, "20 messages to run before the SIGTERM");
  const code = await cluster.terminate(10_000);
  const left = await until(async () => {
    const stats = await broker.queueStats(queue);
    return stats.inFlight === 0 ? stats : undefined;
  }, "no message in flight after the stop", { timeout: 10_000, interval: 50 });
  const tally = cluster.tally();
  assert.equal(tally.runs, tally.counts.size, "no message ran twice");
  assert.equal(tally.counts.size + left.ready, MESSAGES, `${tally.counts.size} ran + ${left.ready} back on the queue`);
  assert.equal(code, 0, code === undefined ? `troupe worker was still running 10 s after SIGTERM (worker processes left: ${cluster.processes().join(", ") || "none"})` : `exit code ${code}`);
}

describe("chaos: graceful stop of troupe worker --processes 2", () => {
  test("Redis", () => onRedis(REDIS_URL, { processes: 2, threads: 2 }, stopMidRun));
  test("RabbitMQ", () => onRabbitmq(AMQP_URL, { processes: 2, threads: 2 }, stopMidRun));
});
