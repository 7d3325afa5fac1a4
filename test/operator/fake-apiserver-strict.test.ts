import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { createNamespace, customObjects, startFakeApiServer, workerPoolManifest } from "../support/operator.js";

/** The Status body of a failed call, as the real client hands it over. */
function status(err: unknown): { code: number; reason: string; message: string; details?: { causes?: { reason: string; field: string }[] } } {
  const body = (err as { body?: unknown }).body;
  return typeof body === "string" ? JSON.parse(body) : (body as never);
}

function rejectsWith(code: number, reason: string, field?: string) {
  return (err: unknown) => {
    const s = status(err);
    assert.equal((err as { code?: number }).code, code, JSON.stringify(s));
    assert.equal(s.reason, reason);
    if (field) assert.ok(s.details?.causes?.some((c) => c.field === field), JSON.stringify(s));
    return true;
  };
}

describe("fake API server rejects what kube-apiserver rejects", () => {
  let fake: FakeApiServer;
  let core: k8s.CoreV1Api;
  let ns: string;
  let cr: ReturnType<typeof customObjects>;

  before(async () => {
    fake = await startFakeApiServer();
    const kc = fake.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    ns = await createNamespace(kc);
    cr = customObjects(kc);
  });
  after(() => fake.stop());

  test("object names follow each kind's rule: Services are DNS-1035 labels, ConfigMaps subdomains, Namespaces labels", async () => {
    const service = (name: string) => core.createNamespacedService({ namespace: ns, body: { metadata: { name }, spec: { ports: [{ port: 80 }] } } });
    await assert.rejects(service("mail.pool"), rejectsWith(422, "Invalid", "metadata.name"));
    await assert.rejects(service("1pool"), rejectsWith(422, "Invalid", "metadata.name"));
    await assert.rejects(service("a".repeat(64)), rejectsWith(422, "Invalid", "metadata.name"));
    await service("mail-pool");
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "mail.pool" } } });
    await assert.rejects(core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "Mail_Pool" } } }), rejectsWith(422, "Invalid", "metadata.name"));
    await assert.rejects(core.createNamespace({ body: { metadata: { name: "a.b" } } }), rejectsWith(422, "Invalid", "metadata.name"));
    await assert.rejects(cr.create("workerpools", ns, workerPoolManifest("UPPER")), rejectsWith(422, "Invalid", "metadata.name"));
  });

  test("label keys and values and annotation keys are checked on create and on update", async () => {
    const cm = (labels: Record<string, string>) => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { generateName: "labels-", labels } } });
    await assert.rejects(cm({ "bad key": "v" }), rejectsWith(422, "Invalid", "metadata.labels"));
    await assert.rejects(cm({ k: "x".repeat(64) }), rejectsWith(422, "Invalid", "metadata.labels"));
    await assert.rejects(cm({ k: "has space" }), rejectsWith(422, "Invalid", "metadata.labels"));
    await assert.rejects(cm({ "Bad_Prefix/k": "v" }), rejectsWith(422, "Invalid", "metadata.labels"));
    const ok = await cm({ "troupe.dev/pool": "a.b_c-1", empty: "" });
    assert.match(ok.metadata!.name!, /^labels-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    await assert.rejects(
      core.patchNamespacedConfigMap({ namespace: ns, name: ok.metadata!.name!, body: { metadata: { annotations: { "a/b/c": "v" } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch)),
      rejectsWith(422, "Invalid", "metadata.annotations"),
    );
  });

  test("PUT of a custom resource without metadata.resourceVersion is 422; a stale one is 409 Conflict", async () => {
    const created = await cr.create("workerpools", ns, workerPoolManifest("put-rv"));
    const ref = { group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "put-rv" };
    const { resourceVersion: _rv, ...metadata } = created.metadata;
    await assert.rejects(cr.api.replaceNamespacedCustomObject({ ...ref, body: { ...created, metadata } }), rejectsWith(422, "Invalid", "metadata.resourceVersion"));
    await cr.api.replaceNamespacedCustomObject({ ...ref, body: { ...created, spec: { ...created.spec, threads: 2 } } });
    await assert.rejects(cr.api.replaceNamespacedCustomObject({ ...ref, body: created }), rejectsWith(409, "Conflict"));
  });
});
