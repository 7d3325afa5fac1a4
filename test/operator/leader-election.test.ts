import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { KubeApi, WORKERPOOLS } from "../../operator/kube/api.js";
import { MemoryBroker, Message } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { borrowed, customObjects, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest } from "../support/operator.js";
import { until } from "../support/wait.js";

describe("leader election and failover", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  const broker = new MemoryBroker();
  const running: Operator[] = [];

  const candidate = async (identity: string, lease: { leaseDurationMs: number; renewDeadlineMs: number } = { leaseDurationMs: 2000, renewDeadlineMs: 1500 }, name = "troupe-operator") => {
    const op = await startOperator(fake, {
      brokerFactory: () => borrowed(broker),
      leaderElection: { namespace: "kube-system", name, identity, ...lease, retryPeriodMs: 100 },
    });
    running.push(op);
    return op;
  };

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
  });
  after(async () => {
    for (const op of running) await op.stop();
    await fake.stop();
  });

  test("one leader at a time; killing it during a scale-up lets the standby converge with no duplicate Deployment", async () => {
    const ns = await namespaceWithBroker(kc);
    const queue = `q-${ns}`;
    const a = await candidate("a");
    await until(() => a.isLeading, "a leads");
    const b = await candidate("b");
    assert.equal((await fetch(`http://127.0.0.1:${b.port}/readyz`)).status, 200, "a standby is ready");

    const cr = customObjects(kc);
    await cr.create("workerpools", ns, workerPoolManifest("failover", { queues: [queue] }));
    for (let i = 0; i < 45; i++) await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [i] }));
    await until(() => fake.get("apps", "deployments", ns, "failover"), "a creates the Deployment");
    assert.equal(b.isLeading, false, "the standby runs no controllers");

    await a.crash();
    const postsBefore = fake.requests.filter((r) => r.method === "POST" && r.path.includes("/deployments")).length;
    await until(() => b.isLeading, "b takes over after the lease expires", { timeout: 10_000 });
    await until(() => (fake.get("apps", "deployments", ns, "failover")?.spec as { replicas?: number } | undefined)?.replicas === 5, "b converges to 5 replicas");
    assert.equal(fake.list("apps", "deployments", ns).length, 1, "exactly one Deployment");
    const lease = fake.get("coordination.k8s.io", "leases", "kube-system", "troupe-operator")!.spec as { holderIdentity: string; leaseTransitions: number };
    assert.equal(lease.holderIdentity, "b");
    assert.ok(lease.leaseTransitions >= 1);
    const postsAfter = fake.requests.filter((r) => r.method === "POST" && r.path.includes("/deployments")).length;
    assert.equal(postsAfter, postsBefore, "the new leader patched the existing Deployment rather than creating one");

    // A graceful stop hands the lease over at once.
    const c = await candidate("c");
    await b.stop();
    await until(() => c.isLeading, "c takes the released lease", { timeout: 5_000 });
  });

  test("a leader whose API requests hang stops at its renew deadline, before another candidate takes the lease, and writes nothing after", async (t) => {
    // Only this test's two candidates run, so whatever writes the pool is one of them.
    for (const op of running.splice(0)) await op.stop();
    const ns = await namespaceWithBroker(kc);
    const queue = `q-${ns}`;
    const lease = { leaseDurationMs: 4000, renewDeadlineMs: 1500 };
    const old = await candidate("hung", lease, "hang-test");
    await until(() => old.isLeading, "the first candidate leads");
    const next = await candidate("next", lease, "hang-test");
    const cr = customObjects(kc);
    await cr.create("workerpools", ns, workerPoolManifest("partitioned", { queues: [queue] }));
    await until(() => fake.get("apps", "deployments", ns, "partitioned"), "the leader creates the Deployment");

    assert.ok(old.isLeading, "still leading before the hang");
    let lostAt = Infinity;
    old.once("lostLeadership", () => (lostAt = Date.now()));
    let ledAt = Infinity;
    next.once("leading", () => (ledAt = Date.now()));
    // Each candidate runs with a token of its own for the chart's ServiceAccount: the old leader's is cut off.
    const token = old.api.kubeConfig.getCurrentUser()!.token;
    const release = fake.hang((r) => r.token === token);
    const hungAt = Date.now();
    try {
      // The backlog makes the pool want 3 replicas: only the new leader may write that.
      for (let i = 0; i < 25; i++) await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [i] }));
      await until(() => ledAt < Infinity, "the second candidate takes over", { timeout: 15_000 });
      await until(() => (fake.get("apps", "deployments", ns, "partitioned")?.spec as { replicas?: number }).replicas === 3, "the new leader scales the pool");
      assert.ok(lostAt - hungAt < lease.renewDeadlineMs + 500, `the old leader stopped ${lostAt - hungAt} ms after its requests began to hang (renew deadline ${lease.renewDeadlineMs} ms)`);
      assert.ok(lostAt < ledAt, `the old leader stopped ${ledAt - lostAt} ms before the new one started`);
      const late = fake.requests.filter((r) => r.token === token && r.method !== "GET" && r.at > lostAt);
      assert.deepEqual(late, [], "no write request from the old leader after it stopped");
      t.diagnostic(`leader election: requests hung at 0 ms; old leader stopped at ${lostAt - hungAt} ms (renew deadline ${lease.renewDeadlineMs}); new leader started at ${ledAt - hungAt} ms (lease ${lease.leaseDurationMs})`);
    } finally {
      release();
    }
  });

  test("every API request is cut off at the client's timeout", async () => {
    const release = fake.hang((r) => r.path.includes("/workerpools/never"));
    try {
      const api = new KubeApi(kc, { timeoutMs: 300 });
      const started = Date.now();
      await assert.rejects(api.get(WORKERPOOLS, "default", "never"), /no answer from the API server within 300 ms/);
      assert.ok(Date.now() - started < 2_000);
    } finally {
      release();
    }
  });
});
