import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { MemoryBroker, Message } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { customObjects, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest } from "../support/operator.js";
import { until } from "../support/wait.js";

const actorManifest = (name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}) => ({ apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name, labels }, spec });

describe("Actor controller", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let operator: Operator;
  const broker = new MemoryBroker();

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    operator = await startOperator(fake, { brokerFactory: () => broker });
  });
  after(async () => {
    await operator.stop();
    await fake.stop();
  });

  test("publishes overrides in a ConfigMap, reports serving pools, depth and duplicates, and follows changes", async () => {
    const ns = await namespaceWithBroker(kc);
    const cr = customObjects(kc);
    const emails = `emails-${ns}`;
    await cr.create("workerpools", ns, workerPoolManifest("mail", { queues: [emails] }));
    await cr.create("actors", ns, actorManifest("send-email", { actorName: "send_email", queue: emails, options: { maxRetries: 3, timeLimit: 30000 } }));
    await cr.create("actors", ns, actorManifest("report", { actorName: "build_report", options: { storeResults: true } }));
    await broker.enqueue(new Message({ queueName: emails, actorName: "send_email" }));

    const overrides = async () => JSON.parse((fake.get("", "configmaps", ns, "troupe-actors")?.data as Record<string, string> | undefined)?.["actors.json"] ?? "null");
    await until(async () => (await overrides())?.build_report, "the ConfigMap");
    assert.deepEqual(await overrides(), { build_report: { storeResults: true }, send_email: { maxRetries: 3, timeLimit: 30000 } });

    const sendEmail = await until(async () => {
      const a = await cr.get("actors", ns, "send-email");
      return a.status?.queueDepth?.ready === 1 ? a : undefined;
    }, "send-email status with depth");
    assert.deepEqual(sendEmail.status.pools, ["mail"]);
    assert.equal(sendEmail.status.observedGeneration, 1);
    const report = await until(async () => {
      const a = await cr.get("actors", ns, "report");
      return a.status?.conditions ? a : undefined;
    }, "report status");
    assert.equal(report.status.conditions.find((c: { type: string }) => c.type === "Served").reason, "NoWorkerPool");

    await cr.patch("actors", ns, "send-email", { spec: { options: { maxRetries: 7 } } });
    await until(async () => (await overrides())?.send_email?.maxRetries === 7, "the ConfigMap follows a change");

    await cr.create("actors", ns, actorManifest("send-email-again", { actorName: "send_email", queue: emails }));
    await until(async () => {
      const a = await cr.get("actors", ns, "send-email-again");
      return a.status?.conditions?.find((c: { type: string; reason: string }) => c.type === "Ready" && c.reason === "DuplicateActorName");
    }, "the duplicate is reported");
    assert.equal((await overrides()).send_email.maxRetries, 7, "the first declaration wins");
  });

  test("a CEL rule rejects an Actor whose minBackoff exceeds maxBackoff", async () => {
    const ns = await namespaceWithBroker(kc);
    await assert.rejects(
      customObjects(kc).create("actors", ns, actorManifest("bad", { actorName: "bad", options: { minBackoff: 10, maxBackoff: 5 } })),
      (e) => (e as { code?: number }).code === 422,
    );
  });
});
