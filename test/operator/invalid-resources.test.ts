import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import fc from "fast-check";
import { MemoryBroker } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { customObjects, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { until } from "../support/wait.js";

const POOL_PATHS = ["image", "modules", "queues", "actorSelector", "broker", "replicas", "threads", "processes", "shutdownTimeoutSeconds", "env", "resources", "autoscaling", "autoscaling.minReplicas", "autoscaling.maxReplicas", "autoscaling.targetBacklogPerReplica", "autoscaling.targetDrainSeconds", "autoscaling.pollIntervalSeconds"];

function setPath(obj: ApiObject, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = obj;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as ApiObject;
  node[keys[keys.length - 1]!] = value;
}

describe("invalid custom resources never crash the operator", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let operator: Operator;
  let ns: string;
  let cr: ReturnType<typeof customObjects>;

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    cr = customObjects(kc);
    operator = await startOperator(fake, { brokerFactory: () => new MemoryBroker() });
    ns = await namespaceWithBroker(kc);
  });
  after(async () => {
    await operator.stop();
    await fake.stop();
  });

  /** Create; a 422 is a rejection (fine); otherwise the operator must report on this generation in status. */
  const createAndExpectReport = async (plural: string, body: ApiObject): Promise<"rejected" | "reported"> => {
    let created: ApiObject;
    try {
      created = await cr.create(plural, ns, body);
    } catch (err) {
      assert.equal((err as { code?: number }).code, 422, String(err));
      return "rejected";
    }
    await until(async () => (await cr.get(plural, ns, created.metadata.name)).status?.observedGeneration === created.metadata.generation, `status of ${plural}/${created.metadata.name}`, { timeout: 5_000 });
    return "reported";
  };

  test("random values in WorkerPool fields are rejected by the schema or reported in status", async () => {
    const outcomes = { rejected: 0, reported: 0 };
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...POOL_PATHS), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer({ min: -3, max: 2000 }), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), fc.constant(null)), async (path, value) => {
        const body = workerPoolManifest(`fuzz-${n++}`);
        setPath(body, `spec.${path}`, value);
        outcomes[await createAndExpectReport("workerpools", body)]++;
      }),
      { numRuns: 40 },
    );
    console.log(`# invalid WorkerPools: ${outcomes.rejected} rejected by the schema, ${outcomes.reported} reported in status`);
    assert.ok(outcomes.rejected > 0 && outcomes.reported > 0);
  });

  test("random schedules and steps in Pipelines are rejected or reported", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("* * * * *", "61 * * * *", "@daily", "*/0 * * * *")), fc.jsonValue({ maxDepth: 2 }), async (schedule, args) => {
        await createAndExpectReport("pipelines", {
          apiVersion: "troupe.dev/v1alpha1",
          kind: "Pipeline",
          metadata: { name: `fuzz-${n++}` },
          spec: { broker: { secretRef: { name: "broker" } }, schedule, suspend: true, steps: [{ name: "s", actor: "a", args: [args] }] },
        });
      }),
      { numRuns: 25 },
    );
  });

  test("a Deployment the API server rejects is reported on the pool, and the operator stays healthy", async () => {
    const clear = fake.injectFault((r) => (r.method === "POST" && r.path.includes(`/namespaces/${ns}/deployments`) ? 422 : undefined));
    try {
      await cr.create("workerpools", ns, workerPoolManifest("rejected-deployment", { env: [{ name: "X", valueFrom: { bogus: true } }] }));
      const ready = await until(async () => {
        const p = await cr.get("workerpools", ns, "rejected-deployment");
        return p.status?.conditions?.find((c: ApiObject) => c.type === "Ready" && c.status === "False");
      }, "Ready=False");
      assert.match(ready.message, /rejected the Deployment/);
    } finally {
      clear();
    }
    assert.equal((await fetch(`http://127.0.0.1:${operator.port}/healthz`)).status, 200);
    await cr.create("workerpools", ns, workerPoolManifest("still-works"));
    await until(() => fake.get("apps", "deployments", ns, "still-works"), "a valid pool is still reconciled");
  });
});
