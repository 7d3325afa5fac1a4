import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { createSecret, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { OperatorSandbox } from "../support/operator-process.js";
import { until } from "../support/wait.js";

type Plural = "workerpools" | "pipelines" | "actors";

const base: Record<Plural, () => ApiObject> = {
  workerpools: () => workerPoolManifest("x"),
  pipelines: () => ({ apiVersion: "troupe.dev/v1alpha1", kind: "Pipeline", metadata: {}, spec: { broker: { secretRef: { name: "broker" } }, steps: [{ name: "s", actor: "chaos_step", args: ["x"] }] } }),
  actors: () => ({ apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: {}, spec: { actorName: "chaos_step", options: { maxRetries: 1 } } }),
};

/** Fields a user gets wrong: each mutation sets one to a random value or removes it. */
const paths: Record<Plural, string[]> = {
  workerpools: [
    "spec.image", "spec.modules", "spec.queues", "spec.queues.0", "spec.broker", "spec.broker.secretRef.name", "spec.broker.secretRef.key",
    "spec.autoscaling", "spec.autoscaling.minReplicas", "spec.autoscaling.maxReplicas", "spec.autoscaling.targetBacklogPerReplica",
    "spec.autoscaling.pollIntervalSeconds", "spec.replicas", "spec.processes", "spec.threads", "spec.prefetch", "spec.env", "spec.actorSelector",
    "spec.resources", "spec.results.secretRef.name", "spec.shutdownTimeoutSeconds",
  ],
  pipelines: [
    "spec.steps", "spec.steps.0", "spec.steps.0.actor", "spec.steps.0.name", "spec.steps.0.queue", "spec.steps.0.args", "spec.steps.0.group",
    "spec.steps.1", "spec.schedule", "spec.timeZone", "spec.concurrencyPolicy", "spec.broker.secretRef.name", "spec.results.secretRef.name",
    "spec.suspend", "spec.startingDeadlineSeconds",
  ],
  actors: ["spec.actorName", "spec.queue", "spec.options", "spec.options.maxRetries", "spec.options.minBackoff", "spec.options.maxBackoff", "spec.options.timeLimit", "spec.options.priority"],
};

const value = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "-1", "* * *", "not a cron", "../../etc/passwd", "missing-secret", "x".repeat(300)),
  fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }),
);

/** The Secret a WorkerPool or Pipeline starts from: the reachable broker, or one whose URL holds a password. */
const secrets = ["broker", "leaky"] as const;

const resource = fc.constantFrom<Plural>("workerpools", "pipelines", "actors").chain((plural) =>
  fc.record({
    plural: fc.constant(plural),
    secret: fc.constantFrom(...secrets),
    mutations: fc.array(fc.tuple(fc.constantFrom(...paths[plural]), value), { minLength: 1, maxLength: 3 }),
  }),
);

function setPath(target: ApiObject, path: string, v: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = /^\d+$/.test(key) ? [] : {};
    node = node[key];
  }
  if (v === undefined) delete node[keys.at(-1)!];
  else node[keys.at(-1)!] = v;
}

/** Reconciled: the operator wrote a status for this generation, or conditions explaining what is wrong. */
const reported = (o: ApiObject) => o.status !== undefined && (o.status.observedGeneration === o.metadata.generation || (o.status.conditions ?? []).length > 0);

describe("chaos: invalid custom resources never crash the operator", () => {
  test("each fuzzed WorkerPool, Pipeline or Actor is rejected by the API server or reported in status, without the broker password", async (t) => {
    const sandbox = await OperatorSandbox.create();
    const { namespace } = sandbox;
    const cr = sandbox.objects;
    const operator = sandbox.startOperator();
    const password = `Op-Chaos-Secret-${randomBytes(6).toString("hex")}`;
    // Nothing listens on port 1: pools and pipelines using this Secret report an unreachable broker.
    await createSecret(sandbox.fake.kubeConfig(), namespace, "leaky", { url: `redis://:${password}@127.0.0.1:1/0` });
    const accepted: [Plural, string][] = [];
    const rejected = new Map<number, number>();
    try {
      await until(() => operator.holds(sandbox.holder()), "the operator to lead", { timeout: 30_000, interval: 50 });
      await fc.assert(
        fc.asyncProperty(resource, async ({ plural, secret, mutations }) => {
          const body = base[plural]();
          if (body.spec.broker) body.spec.broker.secretRef.name = secret;
          for (const [path, v] of mutations) setPath(body, path, v);
          const name = `f${accepted.length + [...rejected.values()].reduce((a, b) => a + b, 0)}`;
          body.metadata = { name };
          try {
            await cr.create(plural, namespace, body);
            accepted.push([plural, name]);
          } catch (err) {
            const code = (err as { code?: number }).code ?? 0;
            assert.ok(code >= 400 && code < 500, `the API server answered ${code}: ${(err as Error).message}`);
            rejected.set(code, (rejected.get(code) ?? 0) + 1);
          }
          assert.ok(operator.alive, `the operator exited (code ${operator.child.exitCode}):\n${operator.output.slice(-3000)}`);
        }),
        { numRuns: 300 },
      );
      const fetchAll = () => Promise.all(accepted.map(([plural, name]) => cr.get(plural, namespace, name)));
      const unreported = async () => (await fetchAll()).filter((o) => !reported(o)).map((o) => `${o.kind} ${o.metadata.name}: ${JSON.stringify(o.spec)}`);
      await until(async () => (await unreported()).length === 0, "every accepted resource to be reconciled or reported").catch(() => undefined);
      assert.deepEqual(await unreported(), [], "accepted resources the operator never reported on");
      const published = JSON.stringify([await fetchAll(), sandbox.fake.list("events.k8s.io", "events", namespace), sandbox.fake.list("", "events", namespace)]) + operator.output;
      assert.ok(!published.includes(password), "the broker password appears in no status, event or log line");
      assert.match(published, /:\*\*\*@/, "the unreachable broker is reported, redacted (so the check above is not vacuous)");
      assert.ok(operator.alive, `the operator exited (code ${operator.child.exitCode}):\n${operator.output.slice(-3000)}`);
      assert.doesNotMatch(operator.output, /uncaught|unhandled/i, "no uncaught errors in the operator's log");
      t.diagnostic(`operator: ${accepted.length + [...rejected.values()].reduce((a, b) => a + b, 0)} fuzzed resources; ${accepted.length} accepted and reconciled or reported in status; rejected by the API server: ${JSON.stringify(Object.fromEntries(rejected))}`);
    } finally {
      await sandbox.cleanup();
    }
  });
});
