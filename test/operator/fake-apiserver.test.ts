import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { createNamespace, customObjects, startFakeApiServer, workerPoolManifest } from "../support/operator.js";
import type { ApiObject } from "../support/operator.js";
import { until } from "../support/wait.js";

describe("fake API server semantics, through the real client", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let ns: string;
  let cr: ReturnType<typeof customObjects>;
  const code = (err: unknown) => (err as { code?: number }).code;
  /** The kubeconfig's bearer token, for raw fetches of watch streams. */
  const auth = () => ({ headers: { authorization: `Bearer ${kc.getCurrentUser()!.token}` } });

  before(async () => {
    fake = await startFakeApiServer({ bookmarkIntervalMs: 50 });
    kc = fake.kubeConfig();
    ns = await createNamespace(kc);
    cr = customObjects(kc);
  });
  after(() => fake.stop());

  test("create sets metadata, applies schema defaults and prunes unknown fields; duplicates are 409", async () => {
    const pool = await cr.create("workerpools", ns, { ...workerPoolManifest("defaults"), unknownTop: 1, spec: { ...(workerPoolManifest("x").spec as object), bogus: true } });
    assert.equal(pool.metadata.generation, 1);
    assert.match(pool.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(pool.spec.threads, 8);
    assert.equal(pool.spec.broker.secretRef.key, "url");
    assert.equal(pool.spec.autoscaling.scaleUpStabilizationSeconds, 0);
    assert.equal(pool.spec.bogus, undefined);
    assert.equal(pool.unknownTop, undefined);
    await assert.rejects(cr.create("workerpools", ns, workerPoolManifest("defaults")), (e) => code(e) === 409);
  });

  test("schema and CEL violations are 422 with the rule's message", async () => {
    await assert.rejects(
      cr.create("workerpools", ns, workerPoolManifest("minmax", { autoscaling: { minReplicas: 4, maxReplicas: 2 } })),
      (e) => code(e) === 422 && String((e as { body?: unknown }).body).includes("minReplicas must not exceed maxReplicas"),
    );
    await assert.rejects(cr.create("workerpools", ns, workerPoolManifest("noqueues", { queues: undefined })), (e) => code(e) === 422);
    await assert.rejects(cr.create("workerpools", ns, workerPoolManifest("badtype", { threads: "eight" })), (e) => code(e) === 422);
    await assert.rejects(
      cr.create("pipelines", ns, { apiVersion: "troupe.dev/v1alpha1", kind: "Pipeline", metadata: { name: "both" }, spec: { broker: { secretRef: { name: "b" } }, steps: [{ name: "s", actor: "a", group: [{ actor: "b" }] }] } }),
      (e) => code(e) === 422,
    );
  });

  test("stale resourceVersion is 409; generation moves only with spec; status writes go through /status only", async () => {
    const created = await cr.create("workerpools", ns, workerPoolManifest("gen"));
    const replaced = await cr.api.replaceNamespacedCustomObject({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "gen", body: { ...created, spec: { ...created.spec, threads: 4 } } });
    assert.equal((replaced as ApiObject).metadata.generation, 2);
    await assert.rejects(
      cr.api.replaceNamespacedCustomObject({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "gen", body: created }),
      (e) => code(e) === 409,
    );
    const labelled = await cr.patch("workerpools", ns, "gen", { metadata: { labels: { a: "b" } }, status: { replicas: 9 } });
    assert.equal(labelled.metadata.generation, 2, "metadata changes do not bump generation");
    assert.equal(labelled.status, undefined, "status is ignored on the main resource");
    const status = (await cr.api.patchNamespacedCustomObjectStatus(
      { group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "gen", body: { status: { replicas: 3 }, spec: { threads: 1 } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    )) as ApiObject;
    assert.equal(status.status.replicas, 3);
    assert.equal(status.spec.threads, 4, "spec is ignored on /status");
    assert.equal(status.metadata.generation, 2);
    const again = await cr.patch("workerpools", ns, "gen", { metadata: { labels: { a: "b" } } });
    assert.equal(again.metadata.resourceVersion, status.metadata.resourceVersion, "a no-op write keeps the resourceVersion");
  });

  test("JSON patch is the client's default; strategic merge on a custom resource is 415", async () => {
    await cr.create("workerpools", ns, workerPoolManifest("jp"));
    const patched = (await cr.api.patchNamespacedCustomObject({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "jp", body: [{ op: "replace", path: "/spec/threads", value: 2 }] })) as ApiObject;
    assert.equal(patched.spec.threads, 2);
    await assert.rejects(
      cr.api.patchNamespacedCustomObject({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "jp", body: { spec: { threads: 3 } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch)),
      (e) => code(e) === 415,
    );
  });

  test("the scale subresource reads and writes spec.replicas", async () => {
    await cr.create("workerpools", ns, { ...workerPoolManifest("scaled", { autoscaling: undefined, replicas: 2 }) });
    const scale = (await cr.api.getNamespacedCustomObjectScale({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "scaled" })) as ApiObject;
    assert.equal(scale.kind, "Scale");
    assert.equal(scale.spec.replicas, 2);
    await cr.api.patchNamespacedCustomObjectScale(
      { group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "scaled", body: { spec: { replicas: 5 } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const pool = await cr.get("workerpools", ns, "scaled");
    assert.equal(pool.spec.replicas, 5);
    assert.equal(pool.metadata.generation, 2);
  });

  test("informer: add / update / delete, bookmarks, and recovery from 410 Gone after compaction", async () => {
    const path = `/apis/troupe.dev/v1alpha1/namespaces/${ns}/actors`;
    const list = () => cr.api.listNamespacedCustomObject({ group: "troupe.dev", version: "v1alpha1", plural: "actors", namespace: ns }) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
    const informer = k8s.makeInformer(kc, path, list);
    const events: string[] = [];
    for (const kind of ["add", "update", "delete"] as const) informer.on(kind, (o) => events.push(`${kind}:${o.metadata!.name}`));
    informer.on("error", () => undefined);
    await informer.start();
    const actor = (name: string, queue = "default") => ({ apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name }, spec: { actorName: name.replace(/-/g, "_"), queue } });
    await cr.create("actors", ns, actor("first"));
    await until(() => events.includes("add:first"), "add event");
    await cr.patch("actors", ns, "first", { spec: { queue: "other" } });
    await until(() => events.includes("update:first"), "update event");
    // Compaction plus a dropped connection: the informer's resume point is gone, it gets 410 and lists again.
    fake.compact();
    fake.closeWatches();
    await cr.create("actors", ns, actor("second"));
    await until(() => events.includes("add:second"), "add after 410 relist", { timeout: 10_000 });
    await cr.delete("actors", ns, "first");
    await until(() => events.includes("delete:first"), "delete event");
    await informer.stop();
  });

  test("watch streams: bookmarks when asked, 410 ERROR for a compacted resourceVersion, selector transitions", async () => {
    const res = await fetch(`${fake.url}/api/v1/namespaces/${ns}/configmaps?watch=true&allowWatchBookmarks=true&labelSelector=app%3Dx&resourceVersion=0`, auth());
    const reader = res.body!.getReader();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "cm", labels: { app: "x" } } } });
    await core.patchNamespacedConfigMap({ namespace: ns, name: "cm", body: { metadata: { labels: { app: "y" } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    let text = "";
    const decoder = new TextDecoder();
    await until(async () => {
      text += decoder.decode((await reader.read()).value);
      return text.includes('"BOOKMARK"') && text.includes('"DELETED"');
    }, "bookmark and DELETED on leaving the selector");
    const types = text.trim().split("\n").map((l) => (JSON.parse(l) as { type: string }).type).filter((t) => t !== "BOOKMARK");
    assert.deepEqual(types, ["ADDED", "DELETED"]);
    await reader.cancel();
    fake.compact();
    const gone = await (await fetch(`${fake.url}/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=1`, auth())).text();
    assert.equal((JSON.parse(gone) as { type: string; object: { code: number } }).object.code, 410);
  });

  test("label selectors on LIST (=, !=, in, notin, exists)", async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (const [name, labels] of [["a", { tier: "web", env: "prod" }], ["b", { tier: "db", env: "prod" }], ["c", { tier: "web" }]] as const) {
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `sel-${name}`, labels: { ...labels, sel: "1" } } } });
    }
    const names = async (labelSelector: string) => (await core.listNamespacedConfigMap({ namespace: ns, labelSelector: `sel=1,${labelSelector}` })).items.map((i) => i.metadata!.name).sort();
    assert.deepEqual(await names("tier=web"), ["sel-a", "sel-c"]);
    assert.deepEqual(await names("tier!=web"), ["sel-b"]);
    assert.deepEqual(await names("tier in (db,cache)"), ["sel-b"]);
    assert.deepEqual(await names("env notin (prod)"), ["sel-c"]);
    assert.deepEqual(await names("env"), ["sel-a", "sel-b"]);
    assert.deepEqual(await names("!env"), ["sel-c"]);
  });

  test("owner-reference garbage collection deletes a pool's Deployment; finalizers delay deletion", async () => {
    const pool = await cr.create("workerpools", ns, workerPoolManifest("owner"));
    const apps = kc.makeApiClient(k8s.CustomObjectsApi);
    await apps.createNamespacedCustomObject({
      group: "apps", version: "v1", plural: "deployments", namespace: ns,
      body: {
        apiVersion: "apps/v1", kind: "Deployment",
        metadata: { name: "owned", ownerReferences: [{ apiVersion: "troupe.dev/v1alpha1", kind: "WorkerPool", name: "owner", uid: pool.metadata.uid, controller: true }] },
        spec: { replicas: 1, selector: { matchLabels: { app: "owned" } }, template: { metadata: { labels: { app: "owned" } }, spec: { containers: [{ name: "w", image: "img:1" }] } } },
      },
    });
    await cr.patch("workerpools", ns, "owner", { metadata: { finalizers: ["test/hold"] } });
    await cr.delete("workerpools", ns, "owner");
    const held = await cr.get("workerpools", ns, "owner");
    assert.ok(held.metadata.deletionTimestamp, "a finalizer holds the object with a deletionTimestamp");
    assert.ok(fake.get("apps", "deployments", ns, "owned"), "dependents stay while the owner exists");
    await cr.patch("workerpools", ns, "owner", { metadata: { finalizers: null } });
    await until(() => !fake.get("apps", "deployments", ns, "owned"), "garbage collection of the Deployment");
    await assert.rejects(cr.get("workerpools", ns, "owner"), (e) => code(e) === 404);
  });

  test("LIST pages with limit / continue; deleting a namespace deletes what is in it", async () => {
    const scratch = await createNamespace(kc);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (const name of ["p1", "p2", "p3"]) await core.createNamespacedConfigMap({ namespace: scratch, body: { metadata: { name } } });
    const first = await core.listNamespacedConfigMap({ namespace: scratch, limit: 2 });
    assert.deepEqual(first.items.map((i) => i.metadata!.name), ["p1", "p2"]);
    const rest = await core.listNamespacedConfigMap({ namespace: scratch, limit: 2, _continue: first.metadata!._continue });
    assert.deepEqual(rest.items.map((i) => i.metadata!.name), ["p3"]);
    assert.equal(rest.metadata!._continue, undefined);
    await core.deleteNamespace({ name: scratch });
    await until(() => fake.list("", "configmaps", scratch).length === 0, "the namespace's objects to go");
  });

  test("a missing namespace is 404; injected faults answer with their status", async () => {
    await assert.rejects(cr.create("actors", "no-such-namespace", { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "x" }, spec: { actorName: "x" } }), (e) => code(e) === 404);
    const clear = fake.injectFault((r) => (r.path.includes("/actors") ? 503 : undefined));
    await assert.rejects(cr.get("actors", ns, "x"), (e) => code(e) === 503);
    clear();
    await assert.rejects(cr.get("actors", ns, "x"), (e) => code(e) === 404);
  });
});
