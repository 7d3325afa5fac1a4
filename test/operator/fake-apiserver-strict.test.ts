import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parse } from "yaml";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { type ApiObject, createNamespace, crdDir, customObjects, startFakeApiServer, workerPoolManifest } from "../support/operator.js";

/** One of the repository's CRDs, renamed to another group and kind so a test can create it. */
function crdDocument(file: string, names: { group: string; plural: string; kind: string }): ApiObject {
  const crd = parse(readFileSync(join(crdDir, `${file}.yaml`), "utf8"));
  crd.metadata.name = `${names.plural}.${names.group}`;
  crd.spec.group = names.group;
  crd.spec.names = { ...crd.spec.names, plural: names.plural, kind: names.kind, singular: names.kind.toLowerCase(), listKind: `${names.kind}List`, shortNames: undefined };
  return crd;
}

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
  let apps: k8s.AppsV1Api;
  /** Through CustomObjectsApi: the typed ApiextensionsV1Api would drop the x-kubernetes-* keys of a plain object. */
  const createCrd = (body: object) => cr.api.createClusterCustomObject({ group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", body });

  before(async () => {
    fake = await startFakeApiServer();
    const kc = fake.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
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

  test("Deployments: a selector that matches the template labels, containers with a name and an image, an immutable selector", async () => {
    const deployment = (name: string, spec: Partial<k8s.V1DeploymentSpec>): k8s.V1Deployment => ({
      metadata: { name },
      spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "w", image: "img:1" }] } }, ...spec },
    });
    const create = (body: k8s.V1Deployment) => apps.createNamespacedDeployment({ namespace: ns, body });
    await assert.rejects(create(deployment("nosel", { selector: undefined as never })), rejectsWith(422, "Invalid", "spec.selector"));
    await assert.rejects(create(deployment("emptysel", { selector: {} })), rejectsWith(422, "Invalid", "spec.selector"));
    await assert.rejects(create(deployment("mismatch", { selector: { matchLabels: { app: "other" } } })), rejectsWith(422, "Invalid", "spec.template.metadata.labels"));
    await assert.rejects(create(deployment("exprs", { selector: { matchExpressions: [{ key: "app", operator: "In", values: ["x"] }] } })), rejectsWith(422, "Invalid", "spec.template.metadata.labels"));
    await assert.rejects(create(deployment("nocontainers", { template: { metadata: { labels: { app: "nocontainers" } }, spec: { containers: [] } } })), rejectsWith(422, "Invalid", "spec.template.spec.containers"));
    await assert.rejects(create(deployment("noimage", { template: { metadata: { labels: { app: "noimage" } }, spec: { containers: [{ name: "w" }] } } })), rejectsWith(422, "Invalid", "spec.template.spec.containers[0].image"));
    await assert.rejects(create(deployment("badname", { template: { metadata: { labels: { app: "badname" } }, spec: { containers: [{ name: "W_1", image: "i" }] } } })), rejectsWith(422, "Invalid", "spec.template.spec.containers[0].name"));
    await assert.rejects(create(deployment("negative", { replicas: -1 })), rejectsWith(422, "Invalid", "spec.replicas"));
    await create(deployment("good", {}));
    const patch = (body: object) => apps.patchNamespacedDeployment({ namespace: ns, name: "good", body }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    await assert.rejects(
      patch({ spec: { selector: { matchLabels: { app: "good", tier: "x" } }, template: { metadata: { labels: { app: "good", tier: "x" } } } } }),
      (err) => rejectsWith(422, "Invalid", "spec.selector")(err) && status(err).message.includes("field is immutable"),
    );
    await assert.rejects(patch({ spec: { template: { metadata: { labels: { app: "changed" } } } } }), rejectsWith(422, "Invalid", "spec.template.metadata.labels"));
    await patch({ spec: { template: { metadata: { labels: { app: "good", extra: "ok" } } } } });
  });

  test("Services need ports (unless headless) in 1-65535, named when there are several", async () => {
    const service = (name: string, spec: k8s.V1ServiceSpec) => core.createNamespacedService({ namespace: ns, body: { metadata: { name }, spec } });
    await assert.rejects(service("noports", {}), rejectsWith(422, "Invalid", "spec.ports"));
    await assert.rejects(service("bigport", { ports: [{ port: 70000 }] }), rejectsWith(422, "Invalid", "spec.ports[0].port"));
    await assert.rejects(service("unnamed", { ports: [{ port: 80 }, { port: 81 }] }), rejectsWith(422, "Invalid", "spec.ports[0].name"));
    await service("headless", { clusterIP: "None" });
  });

  test("format: date-time is RFC 3339 with a real date and an offset, as kube-openapi checks it", async () => {
    await cr.create("workerpools", ns, workerPoolManifest("dates"));
    const setTime = (lastScaleTime: string) =>
      cr.api.patchNamespacedCustomObjectStatus(
        { group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "dates", body: { status: { lastScaleTime } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    for (const bad of ["2026-12-07 10:00:00Z", "2026-12-07T10:00:00", "2026-02-30T10:00:00Z", "2026-12-07T24:00:00Z", "Mon, 07 Dec 2026 10:00:00 GMT", "1765101600"]) {
      await assert.rejects(setTime(bad), rejectsWith(422, "Invalid", "status.lastScaleTime"), bad);
    }
    for (const good of ["2026-12-07T10:00:00Z", "2026-12-07t10:00:00.123456z", "2026-12-07T10:00:00+01:00"]) await setTime(good);
  });

  test("a CRD whose schema is not structural or whose CEL rules do not compile is rejected at create", async () => {
    const crd = () => crdDocument("workerpools.troupe.dev", { group: "example.dev", plural: "widgets", kind: "Widget" });
    const withSpec = (edit: (spec: ApiObject) => void) => {
      const c = crd();
      edit(c.spec.versions[0].schema.openAPIV3Schema.properties.spec);
      return createCrd(c);
    };
    const at = "spec.versions[0].schema.openAPIV3Schema.properties[spec]";
    await assert.rejects(withSpec((s) => delete s.properties.threads.type), rejectsWith(422, "Invalid", `${at}.properties[threads].type`));
    await assert.rejects(withSpec((s) => delete s.properties.queues.items.type), rejectsWith(422, "Invalid", `${at}.properties[queues].items.type`));
    await assert.rejects(withSpec((s) => (s.additionalProperties = { type: "string" })), rejectsWith(422, "Invalid", `${at}.additionalProperties`));
    await assert.rejects(withSpec((s) => s["x-kubernetes-validations"].push({ rule: "self.threads >" })), rejectsWith(422, "Invalid", `${at}.x-kubernetes-validations[1].rule`));
    await assert.rejects(withSpec((s) => s["x-kubernetes-validations"].push({ rule: "self.threadz > 0" })), rejectsWith(422, "Invalid", `${at}.x-kubernetes-validations[1].rule`));
    await assert.rejects(withSpec((s) => s["x-kubernetes-validations"].push({ rule: "self.threads + 'a' == 1" })), rejectsWith(422, "Invalid", `${at}.x-kubernetes-validations[1].rule`));
    await assert.rejects(withSpec((s) => s["x-kubernetes-validations"].push({ rule: "self.threads" })), rejectsWith(422, "Invalid", `${at}.x-kubernetes-validations[1].rule`));
    const misnamed = crd();
    misnamed.metadata.name = "gadgets.example.dev";
    await assert.rejects(createCrd(misnamed), rejectsWith(422, "Invalid", "metadata.name"));
    await createCrd(crd());
  });

  test("custom resources are validated against the schema and CEL rules on create and on update, transition rules on update only", async () => {
    const c = crdDocument("workerpools.troupe.dev", { group: "example.dev", plural: "gadgets", kind: "Gadget" });
    c.spec.versions[0].schema.openAPIV3Schema.properties.spec["x-kubernetes-validations"].push({ rule: "self.image == oldSelf.image", message: "image is immutable" });
    await createCrd(c);
    const ref = { group: "example.dev", version: "v1alpha1", plural: "gadgets", namespace: ns };
    const body = { ...workerPoolManifest("g"), apiVersion: "example.dev/v1alpha1", kind: "Gadget" };
    const created = (await cr.api.createNamespacedCustomObject({ ...ref, body })) as { metadata: { resourceVersion: string }; spec: Record<string, unknown> };
    const patch = (spec: object) => cr.api.patchNamespacedCustomObject({ ...ref, name: "g", body: { spec } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    await assert.rejects(patch({ image: "other:2" }), (err) => rejectsWith(422, "Invalid", "spec")(err) && status(err).message.includes("image is immutable"));
    await assert.rejects(patch({ threads: "eight" }), rejectsWith(422, "Invalid", "spec.threads"));
    await assert.rejects(patch({ autoscaling: { minReplicas: 9, maxReplicas: 2 } }), rejectsWith(422, "Invalid", "spec.autoscaling"));
    await assert.rejects(
      cr.api.replaceNamespacedCustomObject({ ...ref, name: "g", body: { ...body, metadata: { name: "g", resourceVersion: created.metadata.resourceVersion }, spec: { ...created.spec, queues: [] } } }),
      rejectsWith(422, "Invalid", "spec"),
    );
    await patch({ threads: 2 });
  });

  test("list pages stay consistent when objects are deleted between pages; a token older than the compaction is 410 Expired", async () => {
    const names = Array.from({ length: 6 }, (_, i) => `page-${i}`);
    for (const name of names) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels: { paging: "yes" } } } });
    const list = (_continue?: string) => core.listNamespacedConfigMap({ namespace: ns, labelSelector: "paging=yes", limit: 2, _continue });
    const first = await list();
    assert.deepEqual(first.items.map((i) => i.metadata!.name), names.slice(0, 2));
    assert.equal(first.metadata!.remainingItemCount, 4);
    for (const name of ["page-0", "page-2"]) await core.deleteNamespacedConfigMap({ namespace: ns, name });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "page-1a", labels: { paging: "yes" } } } });
    const seen = [...first.items];
    for (let token = first.metadata!._continue; token; ) {
      const page = await list(token);
      assert.equal(page.metadata!.resourceVersion, first.metadata!.resourceVersion, "every page is read at the first page's resourceVersion");
      seen.push(...page.items);
      token = page.metadata!._continue;
    }
    assert.deepEqual(seen.map((i) => i.metadata!.name), names, "no page skips or repeats an object, and later changes do not show");
    const fresh = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: "paging=yes" });
    assert.deepEqual(fresh.items.map((i) => i.metadata!.name), ["page-1", "page-1a", "page-3", "page-4", "page-5"]);
    const stale = (await list()).metadata!._continue!;
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { generateName: "bump-" } } });
    fake.compact();
    await assert.rejects(list(stale), rejectsWith(410, "Expired"));
    await assert.rejects(list("not-a-token"), rejectsWith(400, "BadRequest"));
  });

  test("the server ends a watch after its timeoutSeconds", async () => {
    const started = Date.now();
    const response = await fetch(`${fake.url}/api/v1/namespaces/${ns}/configmaps?watch=true&timeoutSeconds=1`, { headers: { authorization: `Bearer ${fake.kubeConfig().getCurrentUser()!.token}` } });
    assert.equal(response.status, 200);
    await response.text();
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 5000, `watch ended after ${elapsed} ms`);
  });

  test("bearer tokens: none is system:anonymous (403 beyond /version), an unknown one or a deleted ServiceAccount's is 401", async () => {
    const raw = (path: string, token?: string) => fetch(`${fake.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    assert.equal((await raw("/version")).status, 200);
    const anonymous = await raw(`/api/v1/namespaces/${ns}/configmaps`);
    assert.equal(anonymous.status, 403);
    assert.match(((await anonymous.json()) as { message: string }).message, /^configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" in API group "" in the namespace "/);
    assert.equal((await raw("/apis")).status, 403);
    const unknown = await raw("/api/v1/namespaces", "no-such-token");
    assert.deepEqual([unknown.status, ((await unknown.json()) as { reason: string }).reason], [401, "Unauthorized"]);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "short-lived" } } });
    const token = fake.serviceAccountToken(ns, "short-lived");
    assert.equal((await raw("/apis", token)).status, 200, "discovery is open to authenticated users");
    await core.deleteNamespacedServiceAccount({ namespace: ns, name: "short-lived" });
    assert.equal((await raw("/apis", token)).status, 401, "a deleted ServiceAccount's token no longer authenticates");
  });

  test("RBAC: a ServiceAccount may do only what its bound Roles and ClusterRoles grant, per verb, resource, subresource, name and namespace", async () => {
    const rbac = fake.kubeConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
    const other = await createNamespace(fake.kubeConfig());
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "robot" } } });
    const subjects = [{ kind: "ServiceAccount", name: "robot", namespace: ns }];
    await rbac.createClusterRole({ body: { metadata: { name: `${ns}-reader` }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: "reader" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${ns}-reader` }, subjects } });
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: "writer" },
        rules: [
          { apiGroups: [""], resources: ["configmaps"], verbs: ["patch"], resourceNames: ["mine"] },
          { apiGroups: ["troupe.dev"], resources: ["workerpools"], verbs: ["get", "patch"] },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: "writer" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "writer" }, subjects } });
    for (const name of ["mine", "theirs"]) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
    await cr.create("workerpools", ns, workerPoolManifest("guarded"));

    const robotKc = fake.kubeConfig(ns, fake.serviceAccountToken(ns, "robot"));
    const robot = robotKc.makeApiClient(k8s.CoreV1Api);
    const robotCr = customObjects(robotKc);
    const user = `system:serviceaccount:${ns}:robot`;
    const denied = (message: string) => (err: unknown) => rejectsWith(403, "Forbidden")(err) && (assert.equal(status(err).message, message), true);
    const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

    const visible = (await robot.listNamespacedConfigMap({ namespace: ns })).items.map((c) => c.metadata!.name);
    assert.ok(visible.includes("mine") && visible.includes("theirs"), visible.join(" "));
    await robot.readNamespacedConfigMap({ namespace: ns, name: "theirs" });
    await assert.rejects(robot.listNamespacedConfigMap({ namespace: other }), denied(`configmaps is forbidden: User "${user}" cannot list resource "configmaps" in API group "" in the namespace "${other}"`));
    await assert.rejects(robot.listConfigMapForAllNamespaces(), denied(`configmaps is forbidden: User "${user}" cannot list resource "configmaps" in API group "" at the cluster scope`));
    await assert.rejects(robot.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "new" } } }), denied(`configmaps is forbidden: User "${user}" cannot create resource "configmaps" in API group "" in the namespace "${ns}"`));
    await robot.patchNamespacedConfigMap({ namespace: ns, name: "mine", body: { data: { a: "1" } } }, merge);
    await assert.rejects(robot.patchNamespacedConfigMap({ namespace: ns, name: "theirs", body: { data: { a: "1" } } }, merge), denied(`configmaps "theirs" is forbidden: User "${user}" cannot patch resource "configmaps" in API group "" in the namespace "${ns}"`));
    await assert.rejects(robot.deleteNamespacedConfigMap({ namespace: ns, name: "mine" }), rejectsWith(403, "Forbidden"));
    await robotCr.patch("workerpools", ns, "guarded", { spec: { threads: 2 } });
    await assert.rejects(
      robotCr.api.patchNamespacedCustomObjectStatus({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "guarded", body: { status: { replicas: 1 } } }, merge),
      denied(`workerpools.troupe.dev "guarded" is forbidden: User "${user}" cannot patch resource "workerpools/status" in API group "troupe.dev" in the namespace "${ns}"`),
    );
    await assert.rejects(robot.listNamespace(), denied(`namespaces is forbidden: User "${user}" cannot list resource "namespaces" in API group "" at the cluster scope`));
  });

  test("RBAC: blockOwnerDeletion needs update on the owner's finalizers (OwnerReferencesPermissionEnforcement)", async () => {
    const rbac = fake.kubeConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "owner-setter" } } });
    const subjects = [{ kind: "ServiceAccount", name: "owner-setter", namespace: ns }];
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "owner-setter" }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["create"] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: "owner-setter" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "owner-setter" }, subjects } });
    const pool = await cr.create("workerpools", ns, workerPoolManifest("owner-of-cm"));
    const setter = fake.kubeConfig(ns, fake.serviceAccountToken(ns, "owner-setter")).makeApiClient(k8s.CoreV1Api);
    const owned = (name: string, blockOwnerDeletion: boolean) =>
      setter.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, ownerReferences: [{ apiVersion: "troupe.dev/v1alpha1", kind: "WorkerPool", name: "owner-of-cm", uid: pool.metadata.uid, controller: true, blockOwnerDeletion }] } } });
    await owned("plain-ref", false);
    await assert.rejects(owned("blocking-ref", true), (err) => rejectsWith(403, "Forbidden")(err) && status(err).message.includes(`cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: User "system:serviceaccount:${ns}:owner-setter" cannot update resource "workerpools/finalizers" in API group "troupe.dev"`));
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "finalizers" }, rules: [{ apiGroups: ["troupe.dev"], resources: ["workerpools/finalizers"], verbs: ["update"] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: "finalizers" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "finalizers" }, subjects } });
    await owned("blocking-ref", true);
  });
});
