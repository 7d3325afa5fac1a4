import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { killWhileBusy, onRabbitmq, onRedis, records, type BrokerRun } from "../support/chaos.js";
import { AMQP_URL, REDIS_URL } from "../support/env.js";
import { account, awaitAll } from "../support/tally.js";
import { until } from "../support/wait.js";

const MESSAGES = 20_000;
/** Of which sent with a delay: they wait in `q.DQ`, held by workers until due, then promoted. */
const DELAYED = 1_000;
const PROCESSES = 3;

/**
 * Produce MESSAGES while a random worker process is SIGKILLed every couple of seconds and restarted by the
 * supervisor; then every id must have run at least once, and the queue must drain (nothing stranded in flight).
 * Some messages are delayed, so kills also hit workers holding delayed messages and promoting them.
 */
async function crashRun(t: TestContext, name: string, { broker, cluster, queue }: BrokerRun): Promise<void> {
  const started = Date.now();
  await cluster.waitForProcesses(PROCESSES);
  const messages = records(queue, "m", MESSAGES - DELAYED);
  const delayed = records(queue, "d", DELAYED);
  const ids = [...messages, ...delayed].map((m) => m.args[0] as string);
  let done = false;
  const killing = killWhileBusy(cluster, { processes: PROCESSES, everyMs: 1000, maxKills: 12, busy: () => !done });
  try {
    // A steady producer (about 1,600 messages/s, near what 3 processes run) keeps the run long enough for kills.
    for (let i = 0; i < messages.length; i += 500) {
      if (i % 5000 === 0) await broker.enqueueMany(delayed.slice(i / 20, (i + 5000) / 20), { delay: 1000 + Math.random() * 3000 });
      await broker.enqueueMany(messages.slice(i, i + 500));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const seen = await awaitAll(cluster, ids, 120_000);
    assert.deepEqual(seen.lost.slice(0, 20), [], `${seen.lost.length} of ${MESSAGES} ids never ran`);
  } finally {
    done = true;
  }
  const kills = await killing;
  await until(async () => {
    const stats = await broker.queueStats(queue);
    return stats.ready + stats.inFlight + stats.delayed === 0;
  }, `${queue} to drain`, { timeout: 60_000, interval: 100 });
  const final = account(ids, cluster.tally());
  assert.deepEqual(final.lost, []);
  assert.deepEqual(final.unexpected, []);
  assert.ok(kills >= 2, `only ${kills} kills happened during the run`);
  assert.ok(cluster.alive, "the supervisor survived its children's deaths");
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  t.diagnostic(`${name}: ${MESSAGES} messages (${DELAYED} delayed), ${PROCESSES} processes, ${kills} kill -9, ${final.duplicates} duplicates, 0 lost, ${cluster.tally().pids.size} worker pids, ${seconds} s`);
}

describe("chaos: worker processes killed with SIGKILL under load", () => {
  // A short heartbeat timeout lets survivors recover a dead process's deliveries within seconds.
  test("Redis: every message runs at least once", (t) =>
    onRedis(REDIS_URL, { processes: PROCESSES, threads: 4, env: { TROUPE_REDIS_HEARTBEAT_TIMEOUT: "2000" } }, (run) => crashRun(t, "Redis", run)));

  test("RabbitMQ: every message runs at least once", (t) => onRabbitmq(AMQP_URL, { processes: PROCESSES, threads: 4 }, (run) => crashRun(t, "RabbitMQ", run)));
});
