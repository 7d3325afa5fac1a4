import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { MemoryBroker } from "troupe";
import type { Operator } from "../../operator/operator.js";
import { isDns1035Label, metricsServiceName } from "../../operator/resources/names.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { borrowed, countingReads, customObjects, eventsAbout, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { until } from "../support/wait.js";

describe("names of a pool's child objects", () => {
  test("the metrics Service name is a DNS-1035 label for any pool name, distinct for distinct pools", () => {
    const pools = ["pool", "mail.pool", "mail-pool", "1st", "a.b.c.d", "x".repeat(63), `${"y".repeat(62)}.z`, `${"y".repeat(62)}-z`, "a--b", "a..b"];
    const names = pools.map(metricsServiceName);
    for (const [i, name] of names.entries()) assert.ok(isDns1035Label(name), `${pools[i]} → ${name}`);
    assert.equal(new Set(names).size, pools.length);
    assert.equal(metricsServiceName("pool"), "pool-metrics", "a name that was valid keeps its Service");
  });
});

describe("WorkerPool names a real cluster rejects, against the strict fake API server", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let operator: Operator;
  let cr: ReturnType<typeof customObjects>;
  const broker = new MemoryBroker();
  const counting = countingReads(borrowed(broker));

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    cr = customObjects(kc);
    operator = await startOperator(fake, { brokerFactory: () => counting.broker });
  });
  after(async () => {
    await operator.stop();
    await fake.stop();
  });

  const condition = async (ns: string, name: string, type: string) => ((await cr.get("workerpools", ns, name)).status?.conditions ?? []).find((c: ApiObject) => c.type === type) as ApiObject | undefined;
  const writes = (ns: string) => fake.requests.filter((r) => r.method !== "GET" && r.path.includes(`/namespaces/${ns}/`)).length;

  for (const name of ["mail.pool", "p".repeat(63), "1st-pool"]) {
    test(`a pool named ${name.length > 20 ? `${name.slice(0, 8)}… (${name.length} characters)` : name} gets its Deployment and a valid Service, then settles`, async () => {
      const ns = await namespaceWithBroker(kc);
      await cr.create("workerpools", ns, workerPoolManifest(name, { queues: [`q-${ns}`] }));
      await until(async () => (await condition(ns, name, "Ready"))?.status === "True", "Ready=True");
      assert.ok(fake.get("apps", "deployments", ns, name), "the Deployment");
      const services = fake.list("", "services", ns);
      assert.deepEqual(services.map((s) => s.metadata.name), [metricsServiceName(name)]);
      const settled = writes(ns);
      const polls = () => counting.reads(`q-${ns}`);
      const start = polls();
      await until(() => polls() >= start + 3, "three more polls", { timeout: 10_000 });
      assert.equal(writes(ns), settled, "no writes once settled: no error loop");
    });
  }

  test("a 64-character name is refused at create with a message that says why", async () => {
    const ns = await namespaceWithBroker(kc);
    const err = await cr.create("workerpools", ns, workerPoolManifest("p".repeat(64))).then(
      () => undefined,
      (e: unknown) => e as { code: number; body: string },
    );
    assert.equal(err?.code, 422);
    assert.match(err.body, /at most 63 characters/);
  });

  test("a Service name held by someone else's Service is reported with an Event and retried with backoff, then recovers", async () => {
    const ns = await namespaceWithBroker(kc);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: "taken-metrics" }, spec: { ports: [{ port: 80 }] } } });
    await cr.create("workerpools", ns, workerPoolManifest("taken", { queues: [`q-${ns}`] }));
    const ready = await until(async () => {
      const c = await condition(ns, "taken", "Ready");
      return c?.reason === "ServiceNameTaken" ? c : undefined;
    }, "Ready=False ServiceNameTaken");
    assert.equal(ready.status, "False");
    assert.match(ready.message, /Service named taken-metrics already exists/);
    await until(() => eventsAbout(fake, ns, "taken").some((e) => e.type === "Warning" && e.reason === "ServiceNameTaken"), "a Warning Event");
    assert.equal(fake.get("", "services", ns, "taken-metrics")!.metadata.ownerReferences, undefined, "the other Service is left alone");

    const reads = () => fake.requests.filter((r) => r.method === "GET" && r.path.endsWith(`/namespaces/${ns}/services/taken-metrics`)).length;
    const first = reads();
    const startedAt = Date.now();
    await until(() => reads() >= first + 3, "three more attempts", { timeout: 15_000 });
    assert.ok(Date.now() - startedAt >= 2_000, `retries back off (three took ${Date.now() - startedAt} ms)`);

    await core.deleteNamespacedService({ namespace: ns, name: "taken-metrics" });
    await until(async () => (await condition(ns, "taken", "Ready"))?.status === "True", "Ready=True once the name is free", { timeout: 20_000 });
    assert.equal((fake.get("", "services", ns, "taken-metrics")!.metadata.ownerReferences as ApiObject[])[0]!.kind, "WorkerPool");
  });

  test("a write the API server forbids becomes a condition and an Event, retried with backoff rather than in a loop", async () => {
    const ns = await namespaceWithBroker(kc);
    const posts = () => fake.requests.filter((r) => r.method === "POST" && r.path.endsWith(`/namespaces/${ns}/services`)).length;
    const clear = fake.injectFault((r) => (r.method === "POST" && r.path.endsWith(`/namespaces/${ns}/services`) ? 403 : undefined));
    try {
      await cr.create("workerpools", ns, workerPoolManifest("refused", { queues: [`q-${ns}`] }));
      const ready = await until(async () => {
        const c = await condition(ns, "refused", "Ready");
        return c?.reason === "ServiceForbidden" ? c : undefined;
      }, "Ready=False ServiceForbidden");
      assert.match(ready.message, /rejected the Service/);
      await until(() => eventsAbout(fake, ns, "refused").some((e) => e.reason === "ServiceForbidden"), "a Warning Event");
      const first = posts();
      const startedAt = Date.now();
      await until(() => posts() >= first + 3, "three more attempts", { timeout: 15_000 });
      assert.ok(Date.now() - startedAt >= 2_000, `retries back off (three took ${Date.now() - startedAt} ms)`);
    } finally {
      clear();
    }
  });
});
