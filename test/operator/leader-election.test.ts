import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
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

  const candidate = async (identity: string) => {
    const op = await startOperator(fake, {
      brokerFactory: () => borrowed(broker),
      leaderElection: { namespace: "kube-system", name: "troupe-operator", identity, leaseDurationMs: 1000, renewDeadlineMs: 800, retryPeriodMs: 100 },
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
});
