import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { REDIS_URL } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { until } from "../support/wait.js";
import type { KubeObject } from "./crd-schemas.js";
import { assertRestricted, validateBuiltIn, type Container, type PodSpec } from "./manifests.js";
import { chartDir, helm, repoRoot } from "./tools.js";

const valuesDir = join(repoRoot, "test", "shipping", "values");

function template(args: string[]): { status: number | null; objects: KubeObject[]; stderr: string } {
  const r = helm(["template", "rel", chartDir, "--namespace", "troupe-system", ...args]);
  const objects = r.status === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS() as KubeObject | null).filter((o): o is KubeObject => o !== null) : [];
  return { status: r.status, objects, stderr: r.stderr };
}

type ConsoleContainer = Container & {
  args: string[];
  env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  ports: { name: string; containerPort: number }[];
};

function consoleParts(objects: KubeObject[]): { deployment: KubeObject; pod: PodSpec & { automountServiceAccountToken?: boolean }; container: ConsoleContainer; service: KubeObject } {
  const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "rel-troupe-console");
  const service = objects.find((o) => o.kind === "Service" && o.metadata.name === "rel-troupe-console");
  assert.ok(deployment && service, objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", "));
  const pod = (deployment.spec as { template: { spec: PodSpec & { automountServiceAccountToken?: boolean } } }).template.spec;
  return { deployment, pod, container: pod.containers[0] as ConsoleContainer, service };
}

describe("helm chart: the dashboard", () => {
  test("is off by default", () => {
    const { objects } = template([]);
    assert.ok(!objects.some((o) => o.metadata.name.endsWith("-console")));
  });

  test("on, it renders a non-root, read-only-root Deployment whose token and broker URL come from Secrets, and a ClusterIP Service in front", async () => {
    const lint = helm(["lint", "--strict", chartDir, "--values", join(valuesDir, "console.yaml")]);
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    const { status, objects, stderr } = template(["--values", join(valuesDir, "console.yaml")]);
    assert.equal(status, 0, stderr);
    for (const o of objects) await validateBuiltIn(o);
    const { deployment, pod, container, service } = consoleParts(objects);
    assertRestricted("console", pod);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal((deployment.spec as { replicas: number }).replicas, 2);
    assert.deepEqual(container.args, ["dashboard", "--host=0.0.0.0", "--port=9181", "--interval=5s", "--queues=emails,reports", "--base-path=/troupe"]);
    const env = Object.fromEntries(container.env.map((e) => [e.name, e]));
    assert.deepEqual(env.TROUPE_BROKER_URL!.valueFrom, { secretKeyRef: { name: "broker", key: "url" } });
    assert.deepEqual(env.TROUPE_DASHBOARD_TOKEN!.valueFrom, { secretKeyRef: { name: "troupe-console", key: "token" } });
    assert.equal(env.TROUPE_LOG_LEVEL!.value, "warn");
    assert.equal(env.TROUPE_REDIS_NAMESPACE!.value, "shop");
    assert.equal(container.livenessProbe.httpGet.path, "/troupe/healthz");
    const labels = (o: KubeObject) => o.metadata.labels ?? {};
    assert.equal(labels(deployment)["app.kubernetes.io/component"], "console");
    const spec = service.spec as { type: string; selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    assert.equal(spec.type, "ClusterIP");
    assert.deepEqual(spec.ports.map((p) => [p.port, p.targetPort]), [[80, "http"]]);
    const podLabels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const [k, v] of Object.entries(spec.selector)) assert.equal(podLabels[k], v, `the Service selects the console pods (${k})`);
    // The operator's Deployment is not selected by the console's Service, nor the reverse.
    assert.notEqual(spec.selector["app.kubernetes.io/component"], "operator");
  });

  test("read-only mounts no token; a missing broker URL fails the render; a URL with a password in values is refused", () => {
    const readOnly = template(["--set", "console.enabled=true", "--set", "console.brokerUrl=redis://redis:6379/0", "--set", "console.tokenSecret.name=t", "--set", "console.readOnly=true"]);
    assert.equal(readOnly.status, 0, readOnly.stderr);
    const { container } = consoleParts(readOnly.objects);
    assert.ok(container.args.includes("--read-only"));
    assert.ok(!container.env.some((e) => e.name === "TROUPE_DASHBOARD_TOKEN"));
    assert.equal(container.env.find((e) => e.name === "TROUPE_BROKER_URL")!.value, "redis://redis:6379/0");

    const missing = template(["--set", "console.enabled=true"]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /console\.brokerUrlSecret\.name/);
    const secretInValues = template(["--set", "console.enabled=true", "--set", "console.brokerUrl=redis://:hunter2@redis:6379/0"]);
    assert.notEqual(secretInValues.status, 0);
    assert.match(secretInValues.stderr, /brokerUrl/);
  });

  test("the rendered command line runs: troupe dashboard starts with those arguments and answers its probe path", async () => {
    const { objects } = template(["--values", join(valuesDir, "console.yaml")]);
    const { container } = consoleParts(objects);
    // As in the pod, but on loopback and a free port of this machine, with the Secrets' values filled in.
    const args = container.args.map((a) => (a === "--host=0.0.0.0" ? "--host=127.0.0.1" : a.startsWith("--port=") ? "--port=0" : a));
    const dashboard = new CliProcess(args, { TROUPE_BROKER_URL: REDIS_URL, TROUPE_DASHBOARD_TOKEN: "chart-test-token-0123456789", TROUPE_REDIS_NAMESPACE: "shop" });
    try {
      const line = await until(() => dashboard.text.find((l) => l.startsWith("troupe dashboard: http")) ?? (dashboard.alive ? undefined : `exited: ${dashboard.output}`), "the dashboard to listen");
      const url = /http:\/\/\S+/.exec(line)?.[0];
      assert.ok(url, line);
      assert.match(url, /\/troupe\/$/);
      const probe = await fetch(new URL(container.livenessProbe.httpGet.path, url));
      assert.equal(probe.status, 200);
    } finally {
      await dashboard.kill();
    }
  });
});
