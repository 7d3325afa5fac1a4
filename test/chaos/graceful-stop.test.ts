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
  // The exit first: a stop that did not finish explains any count below, and the workers' last lines say why.
  assert.equal(code, 0, `${code === undefined ? `troupe worker was still running 10 s after SIGTERM (worker processes left: ${cluster.processes().join(", ") || "none"})` : `exit code ${code}`}\n${cluster.output.slice(-3000)}`);
  const tally = cluster.tally();
  assert.equal(tally.runs, tally.counts.size, "no message ran twice");
  assert.equal(tally.counts.size + left.ready, MESSAGES, `${tally.counts.size} ran + ${left.ready} back on the queue (a message that ran and is back lost its ack in the stop)\n${cluster.output.slice(-3000)}`);
}

describe("chaos: graceful stop of troupe worker --processes 2", () => {
  test("Redis", () => onRedis(REDIS_URL, { processes: 2, threads: 2 }, stopMidRun));
  test("RabbitMQ", () => onRabbitmq(AMQP_URL, { processes: 2, threads: 2 }, stopMidRun));
});

const HOLD_MS = 1500;

/** Two messages running (one per process) when the signal comes; resolves once both have begun. */
async function twoRunning({ broker, cluster, queue }: BrokerRun, prefix: string): Promise<string[]> {
  await cluster.waitForLog((l) => l.msg === "worker started", "both worker processes to start", 30_000, 1);
  const ids = [`${prefix}a`, `${prefix}b`];
  await broker.enqueueMany(ids.map((id) => new Message({ queueName: queue, actorName: "chaos_begun", args: [id, HOLD_MS] })));
  await until(() => ids.every((id) => cluster.tally().counts.has(`begun:${id}`)), "both messages to begin");
  return ids;
}

/** The exit code once `cluster` exits by itself, or undefined if it is still running `timeout` ms later. */
async function exitWithin(cluster: BrokerRun["cluster"], timeout: number): Promise<number | null | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeout)));
  const code = await Promise.race([cluster.exited, deadline]);
  clearTimeout(timer);
  return code;
}

/**
 * Signals sent to the whole process group reach the worker processes from the kernel and again from their
 * supervisor: that is one stop, not the operator's second signal.
 */
async function groupStop(run: BrokerRun, signal: NodeJS.Signals): Promise<void> {
  const ids = await twoRunning(run, `g${signal}`);
  run.cluster.signalGroup(signal);
  const code = await exitWithin(run.cluster, 20_000);
  assert.equal(code, 0, `exit code ${code}:\n${run.cluster.output.slice(-2000)}`);
  assert.doesNotMatch(run.cluster.output, /second signal/);
  const tally = run.cluster.tally();
  for (const id of ids) assert.equal(tally.counts.get(id), 1, `${id} finished before the exit`);
  assert.equal((await run.broker.queueStats(run.queue)).inFlight, 0, "everything acked");
}

const groupSettings = { processes: 2, threads: 1, processGroup: true, env: { TROUPE_LOG_LEVEL: "info" } };

describe("chaos: signals to the whole process group of troupe worker --processes 2", () => {
  test("SIGTERM to the group (GNU timeout, systemd KillMode=control-group) drains running messages and exits 0", () => onRedis(REDIS_URL, groupSettings, (run) => groupStop(run, "SIGTERM")));
  test("SIGINT to the group (Ctrl-C in a terminal) drains running messages and exits 0", () => onRabbitmq(AMQP_URL, groupSettings, (run) => groupStop(run, "SIGINT")));
  test("a real double Ctrl-C exits at once without acking what runs, and a restarted worker runs it again", () =>
    onRedis(REDIS_URL, { ...groupSettings, env: { ...groupSettings.env, TROUPE_REDIS_HEARTBEAT_TIMEOUT: "1000" } }, async (run) => {
      const ids = await twoRunning(run, "double");
      run.cluster.signalGroup("SIGINT");
      await run.cluster.waitForLog((l) => l.msg === "stopping worker processes", "the supervisor to start stopping");
      run.cluster.signalGroup("SIGINT");
      const code = await exitWithin(run.cluster, 10_000);
      assert.equal(code, 1, `exit code ${code}:\n${run.cluster.output.slice(-2000)}`);
      assert.match(run.cluster.output, /second signal; killing worker processes/);
      const cut = run.cluster.tally();
      const unfinished = ids.filter((id) => !cut.counts.has(id));
      assert.ok(unfinished.length > 0, "the second Ctrl-C cut running messages short");
      const restarted = run.cluster.sibling();
      try {
        await until(() => ids.every((id) => restarted.tally().counts.has(id)), "the restarted worker to finish what was cut short", { timeout: 30_000 });
      } finally {
        await restarted.kill();
      }
    }),
  );
});
