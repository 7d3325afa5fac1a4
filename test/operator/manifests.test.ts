import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { loadManifests } from "../../operator/local/manifests.js";
import { loadCrdValidators, type SchemaNode } from "../../operator/api/crd-validator.js";
import { checkCrd } from "../fake-apiserver/crd-checks.js";
import { repoRoot } from "../support/env.js";
import { crdDir, workerPoolManifest } from "../support/operator.js";

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: { name: string; schema: { openAPIV3Schema: SchemaNode }; subresources?: { status?: object; scale?: object }; additionalPrinterColumns?: unknown[] }[];
  };
}

const crds: Crd[] = readdirSync(crdDir).map((f) => parse(readFileSync(join(crdDir, f), "utf8")) as Crd);
// The CRDs' schemas and CEL rules as troupe up and the API double apply them (unknown fields pruned, as a cluster does).
const validators = loadCrdValidators(crdDir);
const check = (obj: Record<string, unknown>) => validators.get(`${obj.apiVersion as string}/${obj.kind as string}`)!.check(structuredClone(obj));

describe("CRDs and example manifests", () => {
  test("three CRDs in troupe.dev/v1alpha1, accepted as a real API server would (structural, CEL compiles), with status, printer columns, and scale on WorkerPool", () => {
    assert.deepEqual(crds.map((c) => c.spec.names.kind).sort(), ["Actor", "Pipeline", "WorkerPool"]);
    for (const crd of crds) {
      assert.equal(crd.spec.group, "troupe.dev");
      const version = crd.spec.versions[0]!;
      assert.equal(version.name, "v1alpha1");
      // What kube-apiserver checks at CRD create (structural schema, CEL rules that compile), as the API double does.
      assert.deepEqual(checkCrd(crd), [], crd.metadata.name);
      assert.ok(version.subresources?.status, `${crd.spec.names.kind} has a status subresource`);
      assert.ok((version.additionalPrinterColumns ?? []).length >= 3);
    }
    const pool = crds.find((c) => c.spec.names.kind === "WorkerPool")!.spec.versions[0]!;
    assert.deepEqual(pool.subresources?.scale, { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" });
  });

  test("every example manifest validates against its CRD", () => {
    const dir = join(repoRoot, "examples", "k8s");
    let checked = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
        const obj = doc.toJS() as Record<string, unknown>;
        if (obj.apiVersion !== "troupe.dev/v1alpha1") continue;
        assert.deepEqual(check(obj), [], `${file} ${(obj.metadata as { name: string }).name}`);
        checked++;
      }
    }
    assert.ok(checked >= 4);
  });

  test("troupe up reads the examples", async () => {
    const dir = join(repoRoot, "examples", "k8s");
    const m = await loadManifests(["broker-secret.yaml", "workerpool.yaml", "actors.yaml", "pipeline.yaml"].map((f) => join(dir, f)));
    assert.equal(m.pools.length, 1);
    assert.equal(m.actors.length, 2);
    assert.equal(m.pipelines.length, 1);
    assert.ok(m.secrets.get("troupe-broker/url")?.startsWith("redis://"));
  });

  describe("CEL rules, each with a passing and a failing case", () => {
    const cases: { rule: string; ok: Record<string, unknown>; bad: Record<string, unknown>; message: RegExp }[] = [
      {
        rule: "WorkerPool minReplicas <= maxReplicas",
        ok: workerPoolManifest("p", { autoscaling: { minReplicas: 3, maxReplicas: 3 } }),
        bad: workerPoolManifest("p", { autoscaling: { minReplicas: 4, maxReplicas: 3 } }),
        message: /minReplicas must not exceed maxReplicas/,
      },
      {
        rule: "WorkerPool needs queues or an actorSelector",
        ok: workerPoolManifest("p", { queues: undefined, actorSelector: { matchLabels: { a: "b" } } }),
        bad: workerPoolManifest("p", { queues: [] }),
        message: /set queues, actorSelector or both/,
      },
      {
        rule: "Actor minBackoff <= maxBackoff",
        ok: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", options: { minBackoff: 5, maxBackoff: 5 } } },
        bad: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", options: { minBackoff: 6, maxBackoff: 5 } } },
        message: /minBackoff must not exceed/,
      },
      {
        rule: "Actor schedule has cron or every",
        ok: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ cron: "* * * * *" }] } },
        bad: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ cron: "* * * * *", every: "1s" }] } },
        message: /either cron or every/,
      },
      {
        rule: "Actor schedule tz only with cron",
        ok: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ cron: "0 8 * * *", tz: "Europe/Paris" }] } },
        bad: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ every: "1h", tz: "Europe/Paris" }] } },
        message: /tz applies to cron/,
      },
      {
        rule: "Actor schedule graceSeconds with misfire late only",
        ok: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ every: "1h", misfire: "late", graceSeconds: 60 }] } },
        bad: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ every: "1h", graceSeconds: 60 }] } },
        message: /graceSeconds is required with misfire: late/,
      },
      {
        rule: "Actor schedule names unique",
        ok: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ name: "a", every: "1h" }, { name: "b", every: "1h" }] } },
        bad: { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "a" }, spec: { actorName: "a", schedules: [{ name: "a", every: "1h" }, { name: "a", every: "2h" }] } },
        message: /schedule names must be unique/,
      },
      {
        rule: "Pipeline step is an actor or a group",
        ok: { apiVersion: "troupe.dev/v1alpha1", kind: "Pipeline", metadata: { name: "p" }, spec: { broker: { secretRef: { name: "b" } }, steps: [{ name: "s", group: [{ actor: "x" }] }] } },
        bad: { apiVersion: "troupe.dev/v1alpha1", kind: "Pipeline", metadata: { name: "p" }, spec: { broker: { secretRef: { name: "b" } }, steps: [{ name: "s" }] } },
        message: /either an actor or a parallel group/,
      },
    ];
    for (const c of cases) {
      test(c.rule, () => {
        assert.deepEqual(check(c.ok), []);
        const problems = check(c.bad);
        assert.ok(problems.some((p) => c.message.test(p)), problems.join("; "));
      });
    }
  });
});
