import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { installChartRbac } from "../support/chart-rbac.js";
import { cliPath } from "../support/env.js";
import { createNamespace, createSecret, customObjects, startFakeApiServer, workerPoolManifest } from "../support/operator.js";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";

describe("troupe operator as a process", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let dir: string;
  let kubeconfigPath: string;
  const children: ChildProcess[] = [];

  const startOperatorProcess = async (identity: string) => {
    const port = await freePort();
    const child = spawn(process.execPath, [cliPath, "operator", "--kubeconfig", kubeconfigPath, "--leader-elect", "--leader-election-namespace", "kube-system", "--lease-duration", "2", "--metrics-port", String(port), "--metrics-host", "127.0.0.1"], {
      env: { ...process.env, POD_NAME: identity, TROUPE_LOG_LEVEL: "error" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    children.push(child);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    return { child, port, exited, stderr: () => stderr };
  };

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    dir = await mkdtemp(join(tmpdir(), "troupe-operator-"));
    kubeconfigPath = join(dir, "kubeconfig.yaml");
    // The processes run as the chart's ServiceAccount (Lease Role in kube-system, the release namespace here).
    const operatorKc = await installChartRbac(fake, { releaseNamespace: "kube-system" });
    await writeFile(kubeconfigPath, stringify(JSON.parse(operatorKc.exportConfig())));
  });
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("kill -9 during a scale-up: a restarted operator converges, one Deployment; SIGTERM exits 0 and releases the lease", async () => {
    const ns = await createNamespace(kc);
    await createSecret(kc, ns, "broker", { url: "redis://127.0.0.1:6379/15" });
    const first = await startOperatorProcess("first");
    await until(async () => (await fetch(`http://127.0.0.1:${first.port}/readyz`).catch(() => undefined))?.status === 200, "the first operator is ready", { timeout: 15_000 });
    const cr = customObjects(kc);
    await cr.create("workerpools", ns, workerPoolManifest("survivor", { queues: [`q-${ns}`], autoscaling: { minReplicas: 2, maxReplicas: 4, pollIntervalSeconds: 1 } }));
    await until(() => fake.get("apps", "deployments", ns, "survivor"), "the first operator creates the Deployment", { timeout: 15_000 });
    first.child.kill("SIGKILL");
    await first.exited;

    await cr.patch("workerpools", ns, "survivor", { spec: { autoscaling: { minReplicas: 3 } } });
    const second = await startOperatorProcess("second");
    await until(() => (fake.get("apps", "deployments", ns, "survivor")?.spec as { replicas?: number } | undefined)?.replicas === 3, "the restarted operator converges", { timeout: 20_000 });
    assert.equal(fake.list("apps", "deployments", ns).length, 1);
    const pool = await cr.get("workerpools", ns, "survivor");
    await until(async () => (await cr.get("workerpools", ns, "survivor")).status?.observedGeneration === pool.metadata.generation, "status catches up with the new generation");

    second.child.kill("SIGTERM");
    assert.equal(await second.exited, 0, second.stderr());
    const lease = fake.get("coordination.k8s.io", "leases", "kube-system", "troupe-operator")!.spec as { holderIdentity?: string };
    assert.equal(lease.holderIdentity, undefined, "the lease was released");
  });
});
