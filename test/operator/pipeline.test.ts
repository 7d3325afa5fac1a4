import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { getResultBackend, Message } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { startWorker, type Running } from "../support/middleware.js";
import { borrowed, customObjects, eventsAbout, namespaceWithBroker, startFakeApiServer, startOperator } from "../support/operator.js";
import { until } from "../support/wait.js";

const pipelineManifest = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "troupe.dev/v1alpha1",
  kind: "Pipeline",
  metadata: { name },
  spec: { broker: { secretRef: { name: "broker" } }, ...spec },
});

interface Run {
  name: string;
  state: string;
  steps: { name: string; state: string; error?: string; messages: { messageId: string; actor: string; queue: string }[] }[];
}

describe("Pipeline controller with a real worker on the memory broker", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let operator: Operator;
  let worker: Running;
  let cr: ReturnType<typeof customObjects>;

  before(async () => {
    worker = await startWorker();
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    cr = customObjects(kc);
    operator = await startOperator(fake, { brokerFactory: () => borrowed(worker.broker), resultBackendFactory: () => getResultBackend() });
  });
  after(async () => {
    await operator.stop();
    await fake.stop();
    await worker.stop();
  });

  const finishedRun = (ns: string, name: string) =>
    until(async () => {
      const p = await cr.get("pipelines", ns, name);
      const run = (p.status?.runs as Run[] | undefined)?.[0];
      return run && (run.state === "Succeeded" || run.state === "Failed") ? { pipeline: p, run } : undefined;
    }, `pipeline ${name} to finish`);

  test("runs steps as a Dramatiq pipeline then a group, following each through the results backend", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("pipelines", ns, pipelineManifest("etl", {
      steps: [
        { name: "extract", actor: "mw_double", args: [3] },
        { name: "transform", actor: "mw_double" },
        { name: "fan-out", group: [{ actor: "mw_sum", args: [1, 2] }, { actor: "mw_identity", args: ["x"] }] },
        { name: "load", actor: "mw_sum", args: [10] },
      ],
    }));
    const { pipeline, run } = await finishedRun(ns, "etl");
    assert.equal(run.state, "Succeeded", JSON.stringify(run));
    assert.deepEqual(run.steps.map((s) => s.state), ["Succeeded", "Succeeded", "Succeeded", "Succeeded"]);
    const result = (ref: { messageId: string; actor: string; queue: string }) => getResultBackend().getResult(new Message({ queueName: ref.queue, actorName: ref.actor, messageId: ref.messageId }));
    assert.equal(await result(run.steps[1]!.messages[0]!), 12, "the pipeline passed 6 on to the second step");
    assert.deepEqual(await Promise.all(run.steps[2]!.messages.map(result)), [3, "x"]);
    assert.equal(await result(run.steps[3]!.messages[0]!), 10);
    assert.equal(pipeline.status.lastRunState, "Succeeded");
    await until(() => eventsAbout(fake, ns, "etl").some((e) => e.reason === "RunSucceeded"), "a RunSucceeded event");
  });

  test("an operator crash in the middle of a run loses nothing: the next operator follows the same run to the end", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("pipelines", ns, pipelineManifest("survives", {
      steps: [
        { name: "first", actor: "mw_double", args: [2] },
        { name: "wait", group: [{ actor: "mw_identity", args: ["a"] }, { actor: "mw_identity", args: ["b"] }] },
        { name: "last", actor: "mw_sum", args: [1, 1] },
      ],
    }));
    const running = await until(async () => {
      const p = await cr.get("pipelines", ns, "survives");
      return (p.status?.runs as Run[] | undefined)?.[0]?.state === "Running" ? p : undefined;
    }, "the run to start");
    await operator.crash();
    operator = await startOperator(fake, { brokerFactory: () => borrowed(worker.broker), resultBackendFactory: () => getResultBackend() });
    const { pipeline, run } = await finishedRun(ns, "survives");
    assert.equal(run.state, "Succeeded", JSON.stringify(run));
    assert.equal((pipeline.status.runs as Run[]).length, 1, "no second run");
    assert.equal(run.name, (running.status.runs as Run[])[0]!.name);
    assert.deepEqual(run.steps[0]!.messages, (running.status.runs as Run[])[0]!.steps[0]!.messages, "the same messages were followed");
  });

  test("a failing step fails the run with the actor's error and leaves later steps pending", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("pipelines", ns, pipelineManifest("broken", {
      steps: [
        { name: "ok", actor: "mw_double", args: [1] },
        { name: "boom", actor: "mw_fail", args: [5], pipeIgnore: true },
        { name: "never", actor: "mw_double", args: [1] },
      ],
    }));
    const { run } = await finishedRun(ns, "broken");
    assert.equal(run.state, "Failed");
    assert.deepEqual(run.steps.map((s) => s.state), ["Succeeded", "Failed", "Pending"]);
    assert.match(run.steps[1]!.error!, /cannot take 5/);
  });

  test("a cron schedule starts runs, Forbid skips overlapping ones, and history limits prune", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("pipelines", ns, pipelineManifest("ticker", {
      schedule: "* * * * * *",
      concurrencyPolicy: "Forbid",
      successfulRunsHistoryLimit: 2,
      steps: [{ name: "tick", actor: "mw_identity", args: ["tick"] }],
    }));
    const pipeline = await until(async () => {
      const p = await cr.get("pipelines", ns, "ticker");
      return (p.status?.runs as Run[] | undefined)?.filter((r) => r.state === "Succeeded").length === 2 && p.status.lastScheduleTime ? p : undefined;
    }, "two succeeded scheduled runs", { timeout: 15_000 });
    assert.ok((pipeline.status.runs as Run[]).length <= 3, "history is pruned to the limits plus the active run");
    await cr.patch("pipelines", ns, "ticker", { spec: { suspend: true } });
  });

  test("an invalid cron expression is reported in status, not a crash", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("pipelines", ns, pipelineManifest("badcron", { schedule: "every tuesday", steps: [{ name: "s", actor: "mw_identity", args: [1] }] }));
    const condition = await until(async () => {
      const p = await cr.get("pipelines", ns, "badcron");
      return p.status?.conditions?.find((c: { type: string; reason: string }) => c.type === "Ready" && c.reason === "InvalidSchedule");
    }, "InvalidSchedule");
    assert.match(condition.message, /every tuesday/);
    assert.equal((await cr.get("pipelines", ns, "badcron")).status.runs, undefined);
  });
});
