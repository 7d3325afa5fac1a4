import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Message, RedisBroker } from "troupe";
import { WorkerCluster } from "../support/chaos.js";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { workerPoolManifest, type ApiObject } from "../support/operator.js";
import { OperatorSandbox } from "../support/operator-process.js";
import { until } from "../support/wait.js";

const PIPELINES = 6;

describe("chaos: the leading operator is killed with SIGKILL during a scale-up", () => {
  test("the standby converges: one Deployment at the new size, every Pipeline run completes exactly once", async (t) => {
    const sandbox = await OperatorSandbox.create();
    const { fake, namespace, env } = sandbox;
    const cr = sandbox.objects;
    const poolQueue = uniqueName("pool");
    const stepQueue = uniqueName("steps");
    const broker = new RedisBroker(REDIS_URL, { namespace: sandbox.redisNamespace });
    const workers = new WorkerCluster({ broker: REDIS_URL, queue: stepQueue, processes: 1, threads: 2, env });
    const operators = [sandbox.startOperator(), sandbox.startOperator()];
    const holder = () => sandbox.holder();
    const replicas = () => (fake.get("apps", "deployments", namespace, "chaos")?.spec as { replicas?: number } | undefined)?.replicas;
    const backlog = (count: number) => broker.enqueueMany(Array.from({ length: count }, (_, i) => new Message({ queueName: poolQueue, actorName: "nobody", args: [i] })));
    try {
      const leader = await until(() => operators.find((op) => op.holds(holder())), "an operator process to take the lease", { timeout: 30_000, interval: 50 });
      await cr.create("workerpools", namespace, workerPoolManifest("chaos", { queues: [poolQueue] }));
      await backlog(15);
      await until(() => (replicas() ?? 0) >= 1, "the leader to create the Deployment and start scaling", { timeout: 30_000, interval: 20 });
      const names = Array.from({ length: PIPELINES }, (_, i) => `run${i}`);
      for (const name of names) {
        await cr.create("pipelines", namespace, {
          apiVersion: "troupe.dev/v1alpha1",
          kind: "Pipeline",
          metadata: { name },
          spec: { broker: { secretRef: { name: "broker" } }, steps: ["a", "b"].map((step) => ({ name: step, actor: "chaos_step", queue: stepQueue, args: [`${name}-${step}`], pipeIgnore: true })) },
        });
      }
      // Kill while the Pipelines are being started and the backlog triples (the pool must grow from 2 to 5).
      const killedAt = replicas();
      await leader.kill();
      await backlog(30);
      operators.push(sandbox.startOperator());
      const successor = await until(() => operators.find((op) => op.alive && op.holds(holder())), "a surviving operator to take the lease", { timeout: 30_000, interval: 50 });
      await until(() => replicas() === 5, "the new leader to scale the pool to 5", { timeout: 30_000, interval: 50 });
      const runs = await until(async () => {
        const pipelines = await Promise.all(names.map((name) => cr.get("pipelines", namespace, name)));
        const all = pipelines.map((p: ApiObject) => (p.status?.runs ?? []) as { state: string }[]);
        return all.every((r) => r.some((run) => run.state === "Succeeded")) ? all : undefined;
      }, "every Pipeline run to succeed", { timeout: 60_000, interval: 100 });
      assert.equal(fake.list("apps", "deployments", namespace).length, 1, "exactly one Deployment");
      assert.deepEqual(runs.map((r) => r.length), names.map(() => 1), "one run per Pipeline: none lost, none started twice");
      const tally = workers.tally();
      const steps = names.flatMap((name) => [`${name}-a`, `${name}-b`]);
      assert.deepEqual(steps.filter((id) => !tally.counts.has(id)), [], "every step ran");
      // Exiting on a lost lease is by design (the pod restarts, as client-go operators do); anything else is a crash.
      for (const op of operators.filter((o) => o !== leader)) {
        const handedOver = op.child.exitCode === 1 && /lost leadership/.test(op.output);
        assert.ok(op.alive || handedOver, `operator pid ${op.pid} exited (code ${op.child.exitCode}):\n${op.output.slice(-3000)}`);
      }
      const duplicates = steps.reduce((n, id) => n + (tally.counts.get(id) ?? 1) - 1, 0);
      t.diagnostic(
        `operator: leader (pid ${leader.pid}) killed at ${killedAt} replicas with ${PIPELINES} Pipelines just created; pid ${successor.pid} took over, ` +
          `scaled to 5, 1 Deployment, ${PIPELINES} runs succeeded once each, ${duplicates} duplicate step executions`,
      );
    } finally {
      await workers.kill();
      await broker.close();
      await sandbox.cleanup();
    }
  });
});
