import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { createBroker, MemoryBroker, Message } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { countingReads, customObjects, eventsAbout, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest } from "../support/operator.js";
import type { ApiObject } from "../support/operator.js";
import { until } from "../support/wait.js";

const deploymentOf = (fake: FakeApiServer, ns: string, name: string) => fake.get("apps", "deployments", ns, name) as (ApiObject & { spec: { replicas: number; template: ApiObject } }) | undefined;

describe("WorkerPool controller against the fake API server", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let operator: Operator;
  let cr: ReturnType<typeof customObjects>;
  const broker = new MemoryBroker();
  const counting = countingReads(broker);
  const loads = new Map<string, number>();
  /** Messages per second a fake pod reports processing (its dramatiq_messages_total grows at this rate). */
  const rates = new Map<string, number>();
  const epoch = Date.now();
  let loadServer: http.Server;

  const enqueue = async (queue: string, n: number) => {
    for (let i = 0; i < n; i++) await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [i] }));
  };

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    cr = customObjects(kc);
    loadServer = http.createServer((req, res) => {
      const pod = (req.url ?? "").split("/")[1]!;
      const processed = ((Date.now() - epoch) / 1000) * (rates.get(pod) ?? 0);
      res.end(
        `# TYPE dramatiq_messages_inprogress gauge\ndramatiq_messages_inprogress{queue_name="default",actor_name="work"} ${loads.get(pod) ?? 0}\n` +
          `# TYPE dramatiq_messages_total counter\ndramatiq_messages_total{queue_name="default",actor_name="work"} ${processed}\n`,
      );
    });
    await new Promise<void>((resolve) => loadServer.listen(0, "127.0.0.1", resolve));
    const loadPort = (loadServer.address() as { port: number }).port;
    operator = await startOperator(fake, {
      brokerFactory: (url) => (url.startsWith("memory:") ? counting.broker : createBroker(url)),
      podMetricsUrl: (pod) => `http://127.0.0.1:${loadPort}/${pod.metadata?.name}/metrics`,
    });
  });
  after(async () => {
    await operator.stop();
    await fake.stop();
    loadServer.close();
  });

  test("creates a locked-down Deployment and Service, scales 0 → N on a backlog and back to 0 when drained", async () => {
    const ns = await namespaceWithBroker(kc);
    const queue = `q-${ns}`;
    await cr.create("workerpools", ns, workerPoolManifest("pool", { queues: [queue], processes: 2, threads: 4 }));
    const created = await until(() => deploymentOf(fake, ns, "pool"), "the Deployment");
    assert.equal(created.spec.replicas, 0);
    assert.equal(created.metadata.ownerReferences[0].kind, "WorkerPool");
    const pod = created.spec.template.spec;
    const container = pod.containers[0];
    assert.deepEqual(container.args, ["worker", "/app/actors.js", "--processes", "2", "--threads", "4", "--concurrency", "1", "--queues", queue, "--shutdown-timeout", "30"]);
    assert.deepEqual(container.env[0], { name: "TROUPE_BROKER_URL", valueFrom: { secretKeyRef: { name: "broker", key: "url" } } });
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.equal(container.ports[0].containerPort, 9191);
    await until(() => fake.get("", "services", ns, "pool-metrics"), "the metrics Service");

    await enqueue(queue, 35);
    await until(() => deploymentOf(fake, ns, "pool")?.spec.replicas === 4, "scale-up to 4");
    const pool = await until(async () => {
      const p = await cr.get("workerpools", ns, "pool");
      return p.status?.backlog === 35 ? p : undefined;
    }, "status with the backlog");
    assert.equal(pool.status.desiredReplicas, 4);
    assert.equal(pool.status.observedGeneration, 1);
    assert.equal(pool.status.selector, "troupe.dev/workerpool=pool");
    assert.deepEqual(pool.status.queues, [{ name: queue, ready: 35, delayed: 0, inFlight: 0, dead: 0 }]);
    const conditions = Object.fromEntries(pool.status.conditions.map((c: { type: string; status: string }) => [c.type, c.status]));
    assert.equal(conditions.Ready, "True");
    assert.equal(conditions.BrokerReachable, "True");
    await until(() => eventsAbout(fake, ns, "pool").some((e) => e.reason === "ScaledUp" && e.note.startsWith("0 → 4")), "a ScaledUp event");

    // What others add to the template (here `kubectl rollout restart`) survives a size change.
    await kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject(
      { group: "apps", version: "v1", plural: "deployments", namespace: ns, name: "pool", body: { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": "now" } } } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await broker.purge(queue);
    await until(() => deploymentOf(fake, ns, "pool")?.spec.replicas === 0, "scale-down to 0");
    assert.equal(deploymentOf(fake, ns, "pool")?.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"], "now");
    await until(() => eventsAbout(fake, ns, "pool").some((e) => e.reason === "ScaledDown"), "a ScaledDown event");

    const metrics = await (await fetch(`http://127.0.0.1:${operator.port}/metrics`)).text();
    for (const name of ["troupe_operator_reconcile_total", "troupe_operator_reconcile_errors_total", "troupe_operator_reconcile_duration_seconds_bucket", "troupe_workerpool_replicas", "troupe_workerpool_desired_replicas", "troupe_workerpool_max_replicas", "troupe_workerpool_queue_depth"]) {
      assert.ok(metrics.includes(`${name}{`), `${name} exported`);
    }
    assert.match(metrics, new RegExp(`troupe_workerpool_queue_depth\\{namespace="${ns}",workerpool="pool",queue_name="${queue}",state="ready"\\} 0`));
    assert.equal((await fetch(`http://127.0.0.1:${operator.port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${operator.port}/readyz`)).status, 200);

    await cr.delete("workerpools", ns, "pool");
    await until(() => !deploymentOf(fake, ns, "pool") && !fake.get("", "services", ns, "pool-metrics"), "garbage collection of the Deployment and Service");
  });

  test("an unreachable broker holds the size, is reported without its password, and a missing Secret is named", async () => {
    const ns = await namespaceWithBroker(kc, "redis://admin:s3cr3t-pw@127.0.0.1:1/0");
    await cr.create("workerpools", ns, workerPoolManifest("held", { autoscaling: { minReplicas: 2, maxReplicas: 4, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 0 } }));
    const pool = await until(async () => {
      const p = await cr.get("workerpools", ns, "held");
      return p.status?.conditions?.find((c: { type: string; status: string }) => c.type === "BrokerReachable" && c.status === "False") ? p : undefined;
    }, "BrokerReachable=False");
    assert.equal(deploymentOf(fake, ns, "held")?.spec.replicas, 2);
    assert.equal(pool.status.desiredReplicas, 2);
    const text = JSON.stringify([pool, eventsAbout(fake, ns, "held"), fake.list("apps", "deployments", ns)]);
    assert.ok(!text.includes("s3cr3t-pw"), "the password appears nowhere");
    assert.ok(eventsAbout(fake, ns, "held").some((e) => e.type === "Warning" && e.reason === "BrokerUnreachable"));

    await cr.create("workerpools", ns, workerPoolManifest("nosecret", { broker: { secretRef: { name: "absent" } } }));
    await until(async () => {
      const p = await cr.get("workerpools", ns, "nosecret");
      return p.status?.conditions?.find((c: { reason: string }) => c.reason === "SecretMissing");
    }, "SecretMissing");
  });

  test("an actorSelector that matches nothing is reported, then served once a matching Actor appears", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("workerpools", ns, workerPoolManifest("selective", { queues: undefined, actorSelector: { matchLabels: { team: "mail" } } }));
    await until(async () => {
      const p = await cr.get("workerpools", ns, "selective");
      return p.status?.conditions?.find((c: { type: string; reason: string }) => c.type === "Ready" && c.reason === "InvalidSpec");
    }, "Ready=False InvalidSpec");
    assert.equal(deploymentOf(fake, ns, "selective"), undefined, "no workers start on an empty queue list (it would mean every queue)");
    await cr.create("actors", ns, { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "send-email", labels: { team: "mail" } }, spec: { actorName: "send_email", queue: "emails" } });
    await until(() => deploymentOf(fake, ns, "selective")?.spec.template.spec.containers[0].args.includes("emails"), "the Actor's queue in the worker args");
    await until(async () => {
      const p = await cr.get("workerpools", ns, "selective");
      return p.status?.conditions?.find((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True");
    }, "Ready=True");
  });

  test("a PodMonitor when the Prometheus Operator CRD exists", async () => {
    await kc.makeApiClient(k8s.CustomObjectsApi).createClusterCustomObject({
      group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions",
      body: {
        apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "podmonitors.monitoring.coreos.com" },
        spec: { group: "monitoring.coreos.com", scope: "Namespaced", names: { plural: "podmonitors", kind: "PodMonitor" }, versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }] },
      },
    });
    const ns = await namespaceWithBroker(kc);
    await cr.create("workerpools", ns, workerPoolManifest("monitored"));
    const monitor = await until(() => fake.get("monitoring.coreos.com", "podmonitors", ns, "monitored"), "the PodMonitor");
    assert.deepEqual((monitor.spec as { selector: unknown }).selector, { matchLabels: { "troupe.dev/workerpool": "monitored" } });
  });

  test("before a scale-down the least busy pods get the lowest deletion cost", async () => {
    const ns = await namespaceWithBroker(kc);
    const queue = `q-${ns}`;
    // The pods exist before the pool: the operator reads them from its informer cache, which must hold all three
    // by the time the backlog goes (created after the scale-up, the cache could lag the purge by a poll).
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (const [name, inFlight] of [["gentle-a", 5], ["gentle-b", 0], ["gentle-c", 2]] as const) {
      loads.set(name, inFlight);
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name, labels: { "troupe.dev/workerpool": "gentle" } }, spec: { containers: [{ name: "worker", image: "x" }] }, status: { podIP: "10.0.0.1" } } });
    }
    await cr.create("workerpools", ns, workerPoolManifest("gentle", { queues: [queue] }));
    await enqueue(queue, 30);
    await until(() => deploymentOf(fake, ns, "gentle")?.spec.replicas === 3, "scale-up to 3");
    await broker.purge(queue);
    // Two pods are running messages: the pool comes down to them, not below.
    await until(() => deploymentOf(fake, ns, "gentle")?.spec.replicas === 2, "scale-down to the busy pods");
    const costs = Object.fromEntries(fake.list("", "pods", ns).map((p) => [p.metadata.name, (p.metadata as { annotations?: Record<string, string> }).annotations?.["controller.kubernetes.io/pod-deletion-cost"]]));
    assert.deepEqual(costs, { "gentle-a": "5", "gentle-b": "0", "gentle-c": "2" });
    await until(async () => (await cr.get("workerpools", ns, "gentle")).status.conditions.find((c: { type: string }) => c.type === "Scaling").reason === "BusyPods", "Scaling held by BusyPods");
    for (const name of ["gentle-a", "gentle-c"]) loads.set(name, 0);
    await until(() => deploymentOf(fake, ns, "gentle")?.spec.replicas === 0, "scale-down once the pods are idle");
  });

  test("the drain rate is measured from the pods' processed counters", async () => {
    const ns = await namespaceWithBroker(kc);
    const queue = `q-${ns}`;
    await enqueue(queue, 100);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (const name of ["rated-a", "rated-b"]) {
      rates.set(name, 5);
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name, labels: { "troupe.dev/workerpool": "rated" } }, spec: { containers: [{ name: "worker", image: "x" }] }, status: { podIP: "10.0.0.2" } } });
    }
    await cr.create("workerpools", ns, workerPoolManifest("rated", { queues: [queue], autoscaling: { minReplicas: 2, maxReplicas: 2, targetDrainSeconds: 10, pollIntervalSeconds: 1 } }));
    const pool = await until(async () => {
      const p = await cr.get("workerpools", ns, "rated");
      return p.status?.drainRatePerReplica ? p : undefined;
    }, "a measured drain rate", { timeout: 10_000 });
    const rate = Number(pool.status.drainRatePerReplica);
    assert.ok(rate > 4 && rate < 6, `about 5 messages/s per replica, measured ${rate}`);
  });

  test("a steady pool costs no API writes per poll", async () => {
    const ns = await namespaceWithBroker(kc);
    await cr.create("workerpools", ns, workerPoolManifest("steady", { queues: [`q-${ns}`] }));
    await until(async () => (await cr.get("workerpools", ns, "steady")).status?.observedGeneration === 1, "the first status");
    // The PodMonitor is looked at once per discovery refresh (200 ms here, a minute by default), not per poll.
    const requests = () => fake.requests.filter((r) => r.path.includes(`/namespaces/${ns}/`) && !r.path.includes("/podmonitors")).length;
    const writes = () => fake.requests.filter((r) => r.method !== "GET" && r.path.includes(`/namespaces/${ns}/`)).length;
    // Each poll of this pool reads its queue once.
    const polls = () => counting.reads(`q-${ns}`);
    await until(async () => (await cr.get("workerpools", ns, "steady")).status?.conditions?.find((c: ApiObject) => c.type === "Scaling" && c.reason === "Steady"), "a steady state");
    const before = writes();
    const read = requests();
    const start = polls();
    await until(() => polls() >= start + 3, "three more polls of this pool", { timeout: 10_000 });
    assert.equal(writes(), before, "no writes while nothing changes");
    assert.equal(requests(), read, "no other requests: the pool, its Secret, Deployment, Service and pods come from the informer caches");
  });

  test("API errors are retried with backoff and counted; the operator keeps running", async () => {
    const ns = await namespaceWithBroker(kc);
    const clear = fake.injectFault((r) => (r.method === "POST" && r.path.includes(`/namespaces/${ns}/deployments`) ? 500 : undefined));
    await cr.create("workerpools", ns, workerPoolManifest("flaky"));
    await until(async () => (await (await fetch(`http://127.0.0.1:${operator.port}/metrics`)).text()).match(/troupe_operator_reconcile_errors_total\{controller="workerpool"\} [1-9]/), "a counted reconcile error");
    clear();
    await until(() => deploymentOf(fake, ns, "flaky"), "the Deployment after the fault clears");
  });
});
