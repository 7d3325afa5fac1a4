import { join } from "node:path";
import { after, before } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { Broker } from "troupe";
import { Operator, type OperatorOptions } from "../../operator/operator.js";
import { OperatorMetrics } from "../../operator/runtime/metrics.js";
import { FakeApiServer, type FakeApiServerOptions } from "../fake-apiserver/server.js";
import { installChartRbac } from "./chart-rbac.js";
import { repoRoot, uniqueName } from "./env.js";

export const crdDir = join(repoRoot, "crds");

/** An API object as tests read it: deep fields without a type per resource. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions walk arbitrary API JSON
export type ApiObject = Record<string, any>;

/** A fake API server serving the repository's CRDs, started on loopback. */
export function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  return new FakeApiServer({ crdPaths: [crdDir], ...options }).start();
}

/** A fresh namespace (Kubernetes names: lowercase, dashes). */
export async function createNamespace(kc: k8s.KubeConfig, prefix = "t"): Promise<string> {
  const name = uniqueName(prefix).toLowerCase().replace(/_/g, "-");
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function createSecret(kc: k8s.KubeConfig, namespace: string, name: string, data: Record<string, string>): Promise<void> {
  await kc.makeApiClient(k8s.CoreV1Api).createNamespacedSecret({
    namespace,
    body: { metadata: { name }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])) },
  });
}

/** A fresh namespace with a `broker` Secret holding `url`. */
export async function namespaceWithBroker(kc: k8s.KubeConfig, url = "memory://"): Promise<string> {
  const namespace = await createNamespace(kc);
  await createSecret(kc, namespace, "broker", { url });
  return namespace;
}

export function customObjects(kc: k8s.KubeConfig) {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const troupe = (plural: string, namespace: string) => ({ group: "troupe.dev", version: "v1alpha1", plural, namespace });
  return {
    api,
    create: (plural: string, namespace: string, body: object) => api.createNamespacedCustomObject({ ...troupe(plural, namespace), body }) as Promise<ApiObject>,
    get: (plural: string, namespace: string, name: string) => api.getNamespacedCustomObject({ ...troupe(plural, namespace), name }) as Promise<ApiObject>,
    patch: (plural: string, namespace: string, name: string, body: object) =>
      api.patchNamespacedCustomObject({ ...troupe(plural, namespace), name, body }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch)) as Promise<ApiObject>,
    delete: (plural: string, namespace: string, name: string) => api.deleteNamespacedCustomObject({ ...troupe(plural, namespace), name }),
  };
}

/** A WorkerPool manifest with small, test-friendly autoscaling settings. */
export function workerPoolManifest(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "troupe.dev/v1alpha1",
    kind: "WorkerPool",
    metadata: { name },
    spec: {
      image: "ghcr.io/example/workers:1.0",
      modules: ["/app/actors.js"],
      queues: ["default"],
      broker: { secretRef: { name: "broker" } },
      autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 0 },
      ...spec,
    },
  };
}

/**
 * A broker the operator may use but not close: a test shares one in-process broker between its worker and
 * operators that come and go.
 */
export function borrowed(broker: Broker): Broker {
  return new Proxy(broker, {
    get(target, property) {
      if (property === "close") return async () => undefined;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * A broker that counts the queue-depth reads made through it per queue: each poll of a pool reads its queues once,
 * so this counts a pool's polls without any API request to count them by.
 */
export function countingReads(broker: Broker): { broker: Broker; reads(queue: string): number } {
  const counts = new Map<string, number>();
  const counted = new Proxy(broker, {
    get(target, property) {
      if (property === "queueStats") {
        return (queue: string) => {
          counts.set(queue, (counts.get(queue) ?? 0) + 1);
          return target.queueStats(queue);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { broker: counted, reads: (queue) => counts.get(queue) ?? 0 };
}

/**
 * Start an operator against a fake API server, with fast polls and the given broker factory. It runs as the chart's
 * ServiceAccount with the chart's RBAC (released in its Lease's namespace, watching its namespaces), as in a cluster.
 */
export async function startOperator(fake: FakeApiServer, options: Partial<OperatorOptions> = {}): Promise<Operator> {
  const kubeConfig = await installChartRbac(fake, { releaseNamespace: options.leaderElection?.namespace ?? "troupe-system", watchNamespaces: options.namespaces });
  const operator = new Operator({ kubeConfig, port: 0, host: "127.0.0.1", brokerTimeoutMs: 1000, discoveryRefreshMs: 200, pipelineFollowMs: 200, metrics: new OperatorMetrics({ defaultMetrics: false }), ...options });
  await operator.start();
  return operator;
}

/** Events recorded about an object, as the fake stores them. */
export function eventsAbout(fake: FakeApiServer, namespace: string, name: string): { reason: string; type: string; note: string }[] {
  return fake.list("events.k8s.io", "events", namespace).filter((e) => (e.regarding as { name?: string } | undefined)?.name === name) as never;
}

/**
 * A fake API server and an operator against it for the enclosing describe block: started in a `before` hook
 * (registered where this is called, so hooks registered earlier run first and may prepare `options`), stopped after.
 */
export function operatorSuite(options: () => Partial<OperatorOptions> = () => ({})): { fake: FakeApiServer; kc: k8s.KubeConfig; cr: ReturnType<typeof customObjects>; operator: Operator } {
  const suite = {} as ReturnType<typeof operatorSuite>;
  before(async () => {
    suite.fake = await startFakeApiServer();
    suite.kc = suite.fake.kubeConfig();
    suite.cr = customObjects(suite.kc);
    suite.operator = await startOperator(suite.fake, options());
  });
  after(async () => {
    await suite.operator?.stop();
    await suite.fake?.stop();
  });
  return suite;
}
