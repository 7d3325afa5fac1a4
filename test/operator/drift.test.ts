import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { MemoryBroker } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { borrowed, customObjects, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { until } from "../support/wait.js";

const MERGE = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

describe("drift: the operator owns the fields it sets on a pool's Deployment, Service and PodMonitor", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let operator: Operator;
  let cr: ReturnType<typeof customObjects>;
  let objects: k8s.CustomObjectsApi;
  const broker = new MemoryBroker();
  // Resync far longer than the test: anything reverted below is reverted by the watch on the edited object.
  const resyncMs = 120_000;

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    cr = customObjects(kc);
    objects = kc.makeApiClient(k8s.CustomObjectsApi);
    await objects.createClusterCustomObject({
      group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions",
      body: {
        apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "podmonitors.monitoring.coreos.com" },
        spec: { group: "monitoring.coreos.com", scope: "Namespaced", names: { plural: "podmonitors", kind: "PodMonitor" }, versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }] },
      },
    });
    operator = await startOperator(fake, { brokerFactory: () => borrowed(broker), resyncMs });
  });
  after(async () => {
    await operator.stop();
    await fake.stop();
  });

  const deployment = (ns: string) => fake.get("apps", "deployments", ns, "drifty") as ApiObject | undefined;
  const patchDeployment = (ns: string, body: object) => objects.patchNamespacedCustomObject({ group: "apps", version: "v1", plural: "deployments", namespace: ns, name: "drifty", body }, MERGE);

  test("a field removed from the pool is removed from the Deployment; what others added stays", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("workerpools", ns, workerPoolManifest("drifty", {
      queues: [`q-${ns}`],
      autoscaling: undefined,
      replicas: 2,
      nodeSelector: { disk: "ssd" },
      priorityClassName: "batch",
      podAnnotations: { "example.com/owner": "mail" },
      podLabels: { team: "mail" },
    }));
    const created = await until(() => deployment(ns), "the Deployment");
    assert.deepEqual(created.spec.template.spec.nodeSelector, { disk: "ssd" });
    // Another tool's mark on the template (kubectl rollout restart) and on the Deployment itself.
    await patchDeployment(ns, { metadata: { labels: { "example.com/audited": "yes" } }, spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": "then" } } } } });

    await cr.patch("workerpools", ns, "drifty", { spec: { nodeSelector: null, priorityClassName: null, podAnnotations: null, podLabels: null } });
    const updated = await until(() => {
      const d = deployment(ns);
      return d && d.spec.template.spec.nodeSelector === undefined ? d : undefined;
    }, "nodeSelector removed from the Deployment");
    const template = updated.spec.template;
    assert.equal(template.spec.priorityClassName, undefined);
    assert.equal(template.metadata.annotations["example.com/owner"], undefined);
    assert.equal(template.metadata.labels.team, undefined);
    assert.equal(template.metadata.annotations["kubectl.kubernetes.io/restartedAt"], "then", "others' template annotations stay");
    assert.equal(updated.metadata.labels["example.com/audited"], "yes", "others' labels stay");
    assert.equal(updated.spec.replicas, 2);
  });

  test("hand edits of owned Deployment fields are reverted by the watch, well within one resync", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("workerpools", ns, workerPoolManifest("drifty", { queues: [`q-${ns}`], autoscaling: undefined, replicas: 2 }));
    const original = await until(() => deployment(ns), "the Deployment");
    const container = original.spec.template.spec.containers[0];
    const editedAt = Date.now();
    await patchDeployment(ns, {
      spec: {
        replicas: 7,
        template: {
          spec: {
            containers: [{ ...container, image: "attacker/miner:latest", securityContext: { privileged: true } }],
            automountServiceAccountToken: true,
          },
        },
      },
    });
    const reverted = await until(() => {
      const d = deployment(ns);
      return d && d.spec.template.spec.containers[0].image === container.image && d.spec.replicas === 2 ? d : undefined;
    }, "the edit reverted");
    const elapsed = Date.now() - editedAt;
    assert.ok(elapsed < resyncMs / 10, `reverted in ${elapsed} ms`);
    assert.deepEqual(reverted.spec.template.spec.containers[0].securityContext, container.securityContext);
    assert.equal(reverted.spec.template.spec.automountServiceAccountToken, false);

    // Settled: another edit-free stretch makes no more writes.
    const writes = () => fake.requests.filter((r) => r.method !== "GET" && r.path.includes(`/namespaces/${ns}/deployments`)).length;
    const settled = writes();
    await cr.patch("workerpools", ns, "drifty", { metadata: { labels: { touched: "1" } } });
    await until(async () => (await cr.get("workerpools", ns, "drifty")).metadata.labels?.touched === "1", "a reconcile after a label change");
    assert.equal(writes(), settled, "an up-to-date Deployment is not rewritten");
  });

  test("hand edits of the metrics Service and the PodMonitor are reverted", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("workerpools", ns, workerPoolManifest("drifty", { queues: [`q-${ns}`] }));
    const service = await until(() => fake.get("", "services", ns, "drifty-metrics") as ApiObject | undefined, "the Service");
    await until(() => fake.get("monitoring.coreos.com", "podmonitors", ns, "drifty"), "the PodMonitor");
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.patchNamespacedService({ namespace: ns, name: "drifty-metrics", body: { spec: { selector: { "troupe.dev/workerpool": "something-else" } } } }, MERGE);
    await objects.patchNamespacedCustomObject({ group: "monitoring.coreos.com", version: "v1", plural: "podmonitors", namespace: ns, name: "drifty", body: { spec: { podMetricsEndpoints: [{ port: "web", path: "/other" }] } } }, MERGE);
    await until(() => {
      const s = fake.get("", "services", ns, "drifty-metrics") as ApiObject | undefined;
      return s && JSON.stringify(s.spec.selector) === JSON.stringify(service.spec.selector);
    }, "the Service selector reverted");
    await until(() => (fake.get("monitoring.coreos.com", "podmonitors", ns, "drifty") as ApiObject | undefined)?.spec.podMetricsEndpoints[0].port === "metrics", "the PodMonitor reverted");
  });
});
