import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { MemoryBroker, Message } from "troupe";
import { parse } from "yaml";
import { autoscalingWithDefaults, DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, type ScalingRules } from "../../operator/api/types.js";
import { repoRoot } from "../support/env.js";
import { countingReads, eventsAbout, namespaceWithBroker, operatorSuite, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { until } from "../support/wait.js";

describe("WorkerPool behaviour policies and tolerance, end to end on a fake clock", () => {
  const broker = new MemoryBroker();
  const counting = countingReads(broker);
  /** The operator's clock: it moves only when the test says, so a policy's period passes exactly when the test advances it. */
  let now = Date.parse("2026-12-07T12:00:00Z");
  const suite = operatorSuite(() => ({ brokerFactory: () => counting.broker, now: () => new Date(now) }));

  test("a burst scales up 2 pods per 15 s in steps; a depth within the tolerance keeps the size", async () => {
    const { fake, kc, cr } = suite;
    const ns = await namespaceWithBroker(kc);
    const queue = `q-${ns}`;
    const replicas = () => (fake.get("apps", "deployments", ns, "stepped") as { spec: { replicas: number } } | undefined)?.spec.replicas;
    const scaling = async () => ((await cr.get("workerpools", ns, "stepped")).status?.conditions as ApiObject[] | undefined)?.find((c) => c.type === "Scaling");
    /** Two more polls at the current fake time: what the pool does while the clock stands still. */
    const twoPolls = async () => {
      const start = counting.reads(queue);
      await until(() => counting.reads(queue) >= start + 2, "two more polls", { timeout: 10_000 });
    };
    const setDepth = async (n: number) => {
      await broker.purge(queue);
      for (let i = 0; i < n; i++) await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [i] }));
    };

    await setDepth(100);
    await cr.create(
      "workerpools",
      ns,
      workerPoolManifest("stepped", {
        queues: [queue],
        autoscaling: { minReplicas: 0, maxReplicas: 20, targetBacklogPerReplica: 10, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 0, behavior: { scaleUp: { policies: [{ type: "Pods", value: 2, periodSeconds: 15 }] } } },
      }),
    );
    // 100 messages at 10 per replica need 10; the policy lets 2 pods in per 15 s.
    for (const step of [2, 4, 6, 8, 10]) {
      await until(() => replicas() === step, `the step to ${step}`);
      if (step < 10) {
        await twoPolls();
        assert.equal(replicas(), step, `held at ${step} until the period passes`);
        const held = await scaling();
        assert.equal(held?.reason, "RateLimited");
        assert.match(held?.message, /the scale-up policy \(Max of 2 pods per 15s\) allows \d+: holding/);
        now += 15_000;
      }
    }
    // 0 → 2 created the Deployment: a creation is not a ScaledUp event.
    const ups = () => eventsAbout(fake, ns, "stepped").filter((e) => e.reason === "ScaledUp").map((e) => e.note.split(":")[0]);
    await until(() => ups().length === 4, "four ScaledUp events");
    assert.deepEqual(ups(), ["2 → 4", "4 → 6", "6 → 8", "8 → 10"]);

    // 10 % tolerance around 10 replicas × 10: 90 to 110 messages keep 10, though 108 alone would need 11 and 90
    // would need 9. The clock moves past every policy period first, so only the tolerance can hold the size.
    now += 15_000;
    for (const [depth, needs] of [[108, 11], [90, 9]] as const) {
      await setDepth(depth);
      await until(async () => (await cr.get("workerpools", ns, "stepped")).status?.backlog === depth, `the backlog ${depth} read`);
      await twoPolls();
      assert.equal(replicas(), 10, `${depth} messages are within the tolerance of 10 replicas`);
      const steady = await scaling();
      assert.equal(steady?.reason, "Steady");
      assert.match(steady?.message, new RegExp(`backlog ${depth} at 10 per replica needs ${needs} replicas, within the 10 % tolerance of 10`));
    }
    await setDepth(120);
    await until(() => replicas() === 12, "outside the tolerance: 12");
  });
});

/** The WorkerPool table of docs/operator.md: first column → [default, meaning]. */
function docsTable(): Map<string, [string, string]> {
  const rows = new Map<string, [string, string]>();
  const doc = readFileSync(join(repoRoot, "docs", "operator.md"), "utf8");
  for (const line of doc.split("\n")) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells.length < 5 || !cells[1]!.startsWith("`autoscaling.")) continue;
    rows.set(cells[1]!, [cells[2]!, cells[3]!]);
  }
  return rows;
}

describe("docs/operator.md lists every autoscaling field with its default", () => {
  const crd = parse(readFileSync(join(repoRoot, "crds", "workerpools.troupe.dev.yaml"), "utf8")) as ApiObject;
  const autoscaling = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.autoscaling;

  test("each field of the CRD's autoscaling block has a row whose default is the CRD's and the code's", () => {
    const rows = docsTable();
    const code = autoscalingWithDefaults({ maxReplicas: 1 }) as unknown as Record<string, unknown>;
    for (const [field, schema] of Object.entries(autoscaling.properties as Record<string, ApiObject>)) {
      if (field === "behavior") continue;
      const row = [...rows].find(([key]) => key.split(/\s*\/\s*|,\s*/).includes(`\`autoscaling.${field}\``));
      assert.ok(row, `a row for autoscaling.${field}`);
      if (schema.default === undefined) continue;
      assert.equal(row[1][0], String(schema.default), `autoscaling.${field}: the docs' default is the CRD's`);
      assert.equal(code[field], schema.default, `autoscaling.${field}: autoscalingWithDefaults gives the CRD's default`);
    }
  });

  test("the behaviour row names every field of the scaling rules and the defaults the code applies", () => {
    const row = docsTable().get("`autoscaling.behavior.scaleUp` / `.scaleDown`");
    assert.ok(row, "a row for autoscaling.behavior");
    const text = row.join(" ");
    const rules = autoscaling.properties.behavior.properties.scaleUp.properties;
    for (const field of [...Object.keys(rules), ...Object.keys(rules.policies.items.properties)]) assert.ok(text.includes(`\`${field}\``), `the behaviour row names ${field}`);
    for (const value of [...rules.selectPolicy.enum, ...rules.policies.items.properties.type.enum]) assert.ok(text.includes(`\`${value}\``), `the behaviour row names ${value}`);
    assert.ok(text.includes(`\`${rules.selectPolicy.default}\` default`), "selectPolicy's default");
    const describe = (r: ScalingRules) => `${r.selectPolicy} of ${r.policies.map((p) => `${p.value} ${p.type} per ${p.periodSeconds} s`).join(", ")}`;
    assert.ok(row[0].includes(`up: ${describe(DEFAULT_SCALE_UP)}`), `the scale-up default ${describe(DEFAULT_SCALE_UP)} in "${row[0]}"`);
    assert.ok(row[0].includes(`down: ${describe(DEFAULT_SCALE_DOWN)}`), `the scale-down default ${describe(DEFAULT_SCALE_DOWN)} in "${row[0]}"`);
    const effective = autoscalingWithDefaults({ maxReplicas: 1 })!.behavior;
    assert.deepEqual(effective, { scaleUp: DEFAULT_SCALE_UP, scaleDown: DEFAULT_SCALE_DOWN });
  });
});
