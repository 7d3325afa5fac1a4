import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { onRabbitmq, onRedis, records, type BrokerRun } from "../support/chaos.js";
import { isRunning } from "../support/process.js";
import { AMQP_URL, REDIS_URL } from "../support/env.js";
import { awaitAll } from "../support/tally.js";
import { until } from "../support/wait.js";

/**
 * SIGKILL the supervisor itself (an OOM kill of the pod's main process): its worker processes must exit too,
 * leaving no orphans, and a new `troupe worker` must finish everything the group had fetched and not acked.
 */
async function groupKillRun(t: TestContext, name: string, { broker, cluster, queue }: BrokerRun): Promise<void> {
  const children = await cluster.waitForProcesses(2);
  const messages = records(queue, "g", 5000);
  await broker.enqueueMany(messages);
  await cluster.waitForRuns(1000, "1000 messages to run before the kill");
  process.kill(cluster.pid, "SIGKILL");
  await until(() => !children.some(isRunning), "the worker processes to exit with their supervisor", { timeout: 10_000 });
  const ranBefore = cluster.tally().runs;
  const restarted = cluster.sibling();
  try {
    const seen = await awaitAll(restarted, messages.map((m) => m.args[0] as string), 60_000);
    assert.deepEqual(seen.lost.slice(0, 20), [], `${seen.lost.length} ids never ran`);
    assert.deepEqual(seen.unexpected, []);
    await until(async () => {
      const stats = await broker.queueStats(queue);
      return stats.ready + stats.inFlight === 0;
    }, `${queue} to drain`, { timeout: 30_000, interval: 100 });
    t.diagnostic(`${name}: supervisor killed after ${ranBefore} of 5000 messages; its 2 worker processes exited with it; a new troupe worker finished: ${seen.duplicates} duplicates, 0 lost`);
  } finally {
    await restarted.kill();
  }
}

// A file of its own: with the SIGKILL runs of worker-crashes.test.ts it outgrew the per-file test timeout on a loaded machine.
describe("chaos: the supervisor killed with SIGKILL", () => {
  test("Redis: no orphans, a new worker group finishes", (t) =>
    onRedis(REDIS_URL, { processes: 2, threads: 4, env: { TROUPE_REDIS_HEARTBEAT_TIMEOUT: "2000" } }, (run) => groupKillRun(t, "Redis", run)));

  test("RabbitMQ: no orphans, a new worker group finishes", (t) => onRabbitmq(AMQP_URL, { processes: 2, threads: 4 }, (run) => groupKillRun(t, "RabbitMQ", run)));
});
