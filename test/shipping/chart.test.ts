import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { chartDir, helm, repoRoot, type HelmMajor } from "./tools.js";
import { crdValidators, type KubeObject } from "./crd-schemas.js";
import { assertRestricted, docsManifests, validateBuiltIn, type Container, type PodSpec } from "./manifests.js";
import * as k8s from "@kubernetes/client-node";
import { createNamespace, customObjects, startFakeApiServer, workerPoolManifest } from "../support/operator.js";

const valuesDir = join(repoRoot, "test", "shipping", "values");
const NAMESPACE = "troupe-system";
const HELM_MAJORS: HelmMajor[] = [4, 3];
const VALUES_FILES = [undefined, "full.yaml", "single.yaml"];

/** The objects `helm template` renders from `chart` (the chart folder by default), with extra helm arguments. */
function render(valuesFile?: string, major: HelmMajor = 4, chart = chartDir, extra: string[] = []): KubeObject[] {
  const args = ["template", "rel", chart, "--namespace", NAMESPACE, "--include-crds", ...extra];
  if (valuesFile) args.push("--values", join(valuesDir, valuesFile));
  const r = helm(args, major);
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

const kinds = (objects: KubeObject[]) => objects.map((o) => o.kind).sort();
const ofKind = (objects: KubeObject[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: KubeObject[], kind: string): KubeObject => {
  const found = ofKind(objects, kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0]!;
};

function podSpecs(objects: KubeObject[]): [string, PodSpec][] {
  return objects
    .filter((o) => ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(o.kind))
    .map((o) => [`${o.kind} ${o.metadata.name}`, (o.spec as { template: { spec: PodSpec } }).template.spec]);
}

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

/** The Roles and ClusterRoles the release binds to a subject (the operator's), not the aggregated user roles. */
function boundRoles(objects: KubeObject[]): KubeObject[] {
  const refs = new Set(objects.filter((o) => o.kind.endsWith("Binding")).map((b) => { const ref = (b as unknown as { roleRef: { kind: string; name: string } }).roleRef; return `${ref.kind}/${ref.name}`; }));
  return objects.filter((o) => (o.kind === "ClusterRole" || o.kind === "Role") && refs.has(`${o.kind}/${o.metadata.name}`));
}

/** (group/resource → verbs) granted by every Role and ClusterRole the release binds to the operator. */
function grants(objects: KubeObject[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const role of boundRoles(objects)) {
    for (const rule of (role as unknown as { rules: Rule[] }).rules) {
      for (const g of rule.apiGroups) for (const r of rule.resources) out.set(`${g || "core"}/${r}`, [...rule.verbs].sort());
    }
  }
  return out;
}

/** docs/operator.md "RBAC the operator needs", plus update on workerpools/finalizers for blockOwnerDeletion. */
const EXPECTED_GRANTS: Record<string, string[]> = {
  "troupe.dev/workerpools": ["get", "list", "watch"],
  "troupe.dev/actors": ["get", "list", "watch"],
  "troupe.dev/pipelines": ["get", "list", "watch"],
  "troupe.dev/workerpools/status": ["patch"],
  "troupe.dev/actors/status": ["patch"],
  "troupe.dev/pipelines/status": ["patch"],
  "troupe.dev/workerpools/finalizers": ["update"],
  "apps/deployments": ["create", "get", "list", "patch", "update", "watch"],
  "core/services": ["create", "get", "list", "update", "watch"],
  "core/configmaps": ["create", "get", "update"],
  "core/secrets": ["get", "list", "watch"],
  "core/pods": ["list", "patch", "watch"],
  "events.k8s.io/events": ["create"],
  "monitoring.coreos.com/podmonitors": ["create", "get", "list", "update"],
  "coordination.k8s.io/leases": ["create", "get", "patch"],
};

describe("helm chart", () => {
  test("helm lint --strict passes with default and non-default values, on helm 4 and helm 3", () => {
    for (const major of HELM_MAJORS) {
      for (const file of VALUES_FILES) {
        const r = helm(["lint", "--strict", chartDir, ...(file ? ["--values", join(valuesDir, file)] : [])], major);
        assert.equal(r.status, 0, `helm ${major} ${file ?? "defaults"}\n${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      }
    }
  });

  test("helm 3 renders the same objects as helm 4, and the packaged chart the same as its folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-chart-"));
    try {
      const r = helm(["package", chartDir, "--destination", dir]);
      assert.equal(r.status, 0, r.stderr);
      const archive = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
      for (const file of VALUES_FILES) {
        const objects = render(file);
        assert.deepEqual(render(file, 3), objects, `helm 3, ${file ?? "defaults"}`);
        assert.deepEqual(render(file, 4, archive), objects, `packaged chart, ${file ?? "defaults"}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("default values render the operator, RBAC, PDB, metrics Service, CRDs and dashboards, all valid", async () => {
    const objects = render();
    assert.deepEqual(kinds(objects), [
      "ClusterRole",
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "ConfigMap",
      "ConfigMap",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "Deployment",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
    ]);
    for (const o of objects) await validateBuiltIn(o);

    const deployment = one(objects, "Deployment");
    const spec = deployment.spec as { replicas: number; template: { spec: PodSpec & { serviceAccountName: string } } };
    assert.equal(spec.replicas, 2);
    const container = spec.template.spec.containers[0] as Container & {
      image: string;
      args: string[];
      livenessProbe: { httpGet: { path: string } };
      readinessProbe: { httpGet: { path: string } };
      ports: { name: string; containerPort: number }[];
    };
    assert.equal(container.image, "ghcr.io/troupe-dev/troupe:0.1.0");
    assert.equal(container.args[0], "operator");
    for (const arg of ["--leader-elect", `--leader-election-namespace=${NAMESPACE}`, "--leader-election-id=rel-troupe-operator", "--metrics-port=8080"]) {
      assert.ok(container.args.includes(arg), `${arg} in ${container.args.join(" ")}`);
    }
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.deepEqual(container.ports.map((p) => [p.name, p.containerPort]), [["metrics", 8080]]);
    assert.equal(spec.template.spec.serviceAccountName, one(objects, "ServiceAccount").metadata.name);

    const pdb = one(objects, "PodDisruptionBudget").spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(pdb.minAvailable, 1);
    const podLabels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const [k, v] of Object.entries(pdb.selector.matchLabels)) assert.equal(podLabels[k], v, `PDB selects the operator pods (${k})`);
  });

  test("every object the chart renders carries the standard app.kubernetes.io labels", () => {
    for (const values of [undefined, "full.yaml"]) {
      for (const o of render(values).filter((x) => x.kind !== "CustomResourceDefinition")) {
        const labels = o.metadata.labels ?? {};
        for (const key of ["name", "instance", "version", "managed-by", "part-of"]) {
          assert.ok(labels[`app.kubernetes.io/${key}`], `${o.kind} ${o.metadata.name} lacks app.kubernetes.io/${key}`);
        }
        assert.equal(labels["app.kubernetes.io/instance"], "rel");
      }
    }
  });

  test("pods meet the restricted Pod Security Standard with a read-only root filesystem, for every values file", () => {
    for (const values of VALUES_FILES) {
      const pods = podSpecs(render(values));
      assert.ok(pods.length > 0);
      for (const [owner, pod] of pods) assertRestricted(`${values ?? "defaults"}: ${owner}`, pod);
    }
  });

  test("RBAC grants exactly what the operator reconciles: no wildcards, Secrets read-only, Lease only in its namespace", () => {
    const objects = render();
    for (const role of [...ofKind(objects, "ClusterRole"), ...ofKind(objects, "Role")]) {
      for (const rule of (role as unknown as { rules: Rule[] }).rules) {
        for (const field of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!field.includes("*"), `${role.metadata.name}: "*" in ${field}`);
        for (const verb of ["escalate", "bind", "impersonate"]) assert.ok(!rule.verbs.includes(verb), `${role.metadata.name}: ${verb}`);
      }
    }
    assert.deepEqual(Object.fromEntries([...grants(objects)].sort()), Object.fromEntries(Object.entries(EXPECTED_GRANTS).sort()));
    const role = one(objects, "Role");
    assert.equal(role.metadata.namespace, NAMESPACE);
    assert.deepEqual((role as unknown as { rules: Rule[] }).rules.flatMap((r) => r.resources), ["leases"]);
    const sa = one(objects, "ServiceAccount").metadata.name;
    for (const binding of [...ofKind(objects, "ClusterRoleBinding"), ...ofKind(objects, "RoleBinding")]) {
      assert.deepEqual((binding as unknown as { subjects: unknown[] }).subjects, [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);
    }
  });

  test("watching listed namespaces grants the same rules through a Role in each of them, and nothing cluster-wide", () => {
    const clusterRole = one(boundRoles(render()), "ClusterRole") as unknown as { rules: Rule[] };
    const objects = render("full.yaml");
    assert.deepEqual(ofKind(objects, "ClusterRole").map((r) => r.metadata.name).sort(), ["acme-troupe-edit", "acme-troupe-view"], "only the aggregated user roles");
    assert.deepEqual(ofKind(objects, "ClusterRoleBinding"), []);
    const roles = ofKind(objects, "Role").filter((r) => !r.metadata.name.endsWith("-leader-election"));
    assert.deepEqual(roles.map((r) => r.metadata.namespace).sort(), ["billing", "shop"]);
    for (const role of roles) assert.deepEqual((role as unknown as { rules: Rule[] }).rules, clusterRole.rules);
    const bindings = ofKind(objects, "RoleBinding").filter((b) => !b.metadata.name.endsWith("-leader-election"));
    assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), ["billing", "shop"]);
    for (const binding of bindings) {
      assert.deepEqual((binding as unknown as { roleRef: unknown }).roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "acme-troupe-operator" });
      assert.deepEqual((binding as unknown as { subjects: unknown[] }).subjects, [{ kind: "ServiceAccount", name: "acme-troupe-operator", namespace: NAMESPACE }]);
    }
  });

  test("non-default values: monitors, rules, namespaces, image, scheduling; all valid", async () => {
    const objects = render("full.yaml");
    for (const o of objects) await validateBuiltIn(o);
    for (const kind of ["PodMonitor", "ServiceMonitor", "PrometheusRule"]) {
      assert.equal(one(objects, kind).metadata.labels?.release, "kube-prometheus-stack", kind);
    }
    const endpoint = (one(objects, "PodMonitor").spec as { podMetricsEndpoints: { honorLabels: boolean; interval: string }[] }).podMetricsEndpoints[0]!;
    assert.deepEqual([endpoint.honorLabels, endpoint.interval], [true, "15s"]);

    const rules = parse(readFileSync(join(chartDir, "rules", "troupe-rules.yaml"), "utf8"));
    assert.deepEqual(one(objects, "PrometheusRule").spec, rules, "the PrometheusRule carries the promtool-tested rule file unchanged");

    const deployment = one(objects, "Deployment");
    assert.equal(deployment.metadata.name, "acme-troupe-operator");
    const pod = (deployment.spec as { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } }).template.spec;
    const container = pod.containers[0]!;
    assert.equal(container.image, "registry.example.com/acme/troupe:0.1.0-rc1");
    const args = container.args as string[];
    for (const arg of ["--namespace=shop,billing", "--metrics-port=19090", "--lease-duration=30", "--resync=600", "--metrics-host=0.0.0.0"]) {
      assert.ok(args.includes(arg), `${arg} in ${args.join(" ")}`);
    }
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assert.equal(pod.priorityClassName, "system-cluster-critical");
    assert.equal((pod.topologySpreadConstraints as unknown[]).length, 1);
    assert.equal((one(objects, "PodDisruptionBudget").spec as { minAvailable: number }).minAvailable, 2);
    for (const cm of ofKind(objects, "ConfigMap")) {
      assert.equal(cm.metadata.namespace, "monitoring");
      assert.equal(cm.metadata.annotations?.grafana_folder, "Troupe");
    }
  });

  test("a single operator without leader election renders no PDB, Lease Role, RBAC, ServiceAccount or optional parts", () => {
    const objects = render("single.yaml");
    assert.deepEqual(kinds(objects), ["CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "Deployment"]);
    const deployment = one(objects, "Deployment");
    const pod = (deployment.spec as { template: { spec: { serviceAccountName: string; containers: { args: string[] }[] } } }).template.spec;
    assert.equal(pod.serviceAccountName, "platform-operators");
    assert.ok(!pod.containers[0]!.args.includes("--leader-elect"));
  });

  test("values.schema.json rejects each invalid values file with a message naming the bad field, on helm 4 and helm 3", () => {
    const invalid = readdirSync(valuesDir).filter((f) => f.startsWith("invalid-"));
    assert.ok(invalid.length >= 4);
    for (const file of invalid) {
      const pointer = /^# expect: (.+)$/m.exec(readFileSync(join(valuesDir, file), "utf8"))?.[1];
      assert.ok(pointer, `${file} has no "# expect:" line`);
      for (const major of HELM_MAJORS) {
        // helm 4 names the field by JSON pointer (/operator/replicas), helm 3 by dotted path (operator.replicas).
        const expected = major === 3 ? pointer.replace(/^\//, "").replaceAll("/", ".") : pointer;
        const r = helm(["template", "rel", chartDir, "--values", join(valuesDir, file)], major);
        assert.notEqual(r.status, 0, `helm ${major} accepted ${file}`);
        assert.match(r.stderr, /values don't meet the specifications of the schema/, file);
        assert.ok(r.stderr.includes(expected), `helm ${major}, ${file}: ${r.stderr}`);
      }
    }
  });

  test("the chart's CRD files are byte-identical copies of crds/ (run scripts/sync-crds.mjs)", () => {
    const source = join(repoRoot, "crds");
    const copy = join(chartDir, "files", "crds");
    const names = readdirSync(source).filter((f) => f.endsWith(".yaml")).sort();
    assert.ok(names.length > 0);
    assert.deepEqual(readdirSync(copy).sort(), names);
    for (const name of names) assert.ok(readFileSync(join(copy, name)).equals(readFileSync(join(source, name))), `${name} differs`);
  });

  test("dashboard ConfigMaps carry the Grafana sidecar label and the dashboards' JSON unchanged", () => {
    const maps = ofKind(render(), "ConfigMap");
    const files = readdirSync(join(chartDir, "dashboards")).sort();
    const data = Object.assign({}, ...maps.map((m) => (m as unknown as { data: Record<string, string> }).data)) as Record<string, string>;
    assert.deepEqual(Object.keys(data).sort(), files);
    for (const m of maps) assert.equal(m.metadata.labels?.grafana_dashboard, "1");
    for (const file of files) assert.deepEqual(JSON.parse(data[file]!), JSON.parse(readFileSync(join(chartDir, "dashboards", file), "utf8")), file);
  });

  test("the troupe.dev manifests in docs/shipping.md validate against the CRD schemas", () => {
    const validators = crdValidators();
    const resources = docsManifests();
    assert.ok(resources.some((o) => o.kind === "WorkerPool"), "docs/shipping.md shows a WorkerPool");
    for (const o of resources) {
      const validator = validators.get(`${o.apiVersion}/${o.kind}`);
      assert.ok(validator, `no CRD for ${o.apiVersion} ${o.kind}`);
      assert.deepEqual(validator.check(structuredClone(o)), [], `${o.kind} ${o.metadata.name}`);
    }
  });

  test("CRDs are templates, so helm upgrade updates them; kept on uninstall; the same specs as crds/", () => {
    const r = helm(["template", "rel", chartDir, "--namespace", NAMESPACE]);
    assert.equal(r.status, 0, r.stderr);
    const crds = parseAllDocuments(r.stdout).map((d) => d.toJS() as KubeObject | null).filter((o): o is KubeObject => o?.kind === "CustomResourceDefinition");
    assert.equal(crds.length, readdirSync(join(repoRoot, "crds")).length, "rendered without --include-crds: templates, not crds/");
    assert.ok(!readdirSync(chartDir).includes("crds"), "no crds/ folder, which helm upgrade would never update");
    for (const crd of crds) {
      assert.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep", crd.metadata.name);
      assert.equal(crd.metadata.labels?.["app.kubernetes.io/instance"], "rel");
      const source = parse(readFileSync(join(repoRoot, "crds", `${crd.metadata.name}.yaml`), "utf8")) as KubeObject;
      assert.deepEqual(crd.spec, source.spec, `${crd.metadata.name}: the template renders the file's spec unchanged`);
    }
    assert.deepEqual(ofKind(render(undefined, 4, chartDir, ["--set", "crds.install=false"]), "CustomResourceDefinition"), []);
    for (const crd of ofKind(render(undefined, 4, chartDir, ["--set", "crds.keep=false"]), "CustomResourceDefinition")) assert.equal(crd.metadata.annotations, undefined);
  });

  test("helm.sh/chart is on objects but never in a selector or a pod template; selectors pick their pod templates", () => {
    for (const values of [...VALUES_FILES, "console.yaml"]) {
      for (const o of render(values)) {
        const spec = (o.spec ?? {}) as { selector?: { matchLabels?: Record<string, string> } | Record<string, string>; podSelector?: { matchLabels?: Record<string, string> }; template?: { metadata?: { labels?: Record<string, string> } } };
        const where = `${values ?? "defaults"}: ${o.kind} ${o.metadata.name}`;
        if (o.kind !== "CustomResourceDefinition") assert.ok(o.metadata.labels?.["helm.sh/chart"], `${where} has helm.sh/chart`);
        const selector = o.kind === "Service" ? (spec.selector as Record<string, string> | undefined) : (spec.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels ?? spec.podSelector?.matchLabels;
        for (const labels of [selector, spec.template?.metadata?.labels]) assert.ok(!labels || !("helm.sh/chart" in labels), `${where}: helm.sh/chart in ${JSON.stringify(labels)}`);
        const templateLabels = spec.template?.metadata?.labels;
        if (templateLabels && selector) for (const [k, v] of Object.entries(selector)) assert.equal(templateLabels[k], v, `${where}: selector ${k}`);
      }
    }
  });

  test("pod and container securityContext come from values: OpenShift's random UIDs by setting runAsUser to null", async () => {
    const objects = render(undefined, 4, chartDir, [
      "--set-json", "operator.podSecurityContext.runAsUser=null",
      "--set-json", "operator.podSecurityContext.runAsGroup=null",
      "--set-json", 'operator.securityContext.capabilities={"drop":["ALL","NET_RAW"]}',
    ]);
    const deployment = one(objects, "Deployment");
    await validateBuiltIn(deployment);
    const pod = (deployment.spec as { template: { spec: PodSpec & { securityContext: Record<string, unknown> } } }).template.spec;
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    assert.deepEqual(pod.containers[0]!.securityContext?.capabilities, { drop: ["ALL", "NET_RAW"] });
    assert.equal(pod.containers[0]!.securityContext?.readOnlyRootFilesystem, true, "keys not overridden keep their defaults");
  });

  test("operator.rabbitmqManagement becomes the operator's TROUPE_RABBITMQ_MANAGEMENT_URL: from a Secret key, or inline without credentials", async () => {
    const managementEnv = (objects: KubeObject[]) => {
      const container = (one(objects, "Deployment").spec as { template: { spec: PodSpec } }).template.spec.containers[0]!;
      return ((container as { env?: { name: string }[] }).env ?? []).filter((e) => e.name === "TROUPE_RABBITMQ_MANAGEMENT_URL");
    };
    assert.deepEqual(managementEnv(render()), [], "none by default: in-flight from the pods' gauges");
    const fromSecret = render(undefined, 4, chartDir, ["--set", "operator.rabbitmqManagement.secretRef.name=rabbitmq-management"]);
    await validateBuiltIn(one(fromSecret, "Deployment"));
    assert.deepEqual(managementEnv(fromSecret), [{ name: "TROUPE_RABBITMQ_MANAGEMENT_URL", valueFrom: { secretKeyRef: { name: "rabbitmq-management", key: "url" } } }]);
    const otherKey = render(undefined, 4, chartDir, ["--set", "operator.rabbitmqManagement.secretRef.name=mq", "--set", "operator.rabbitmqManagement.secretRef.key=management-url"]);
    assert.deepEqual(managementEnv(otherKey), [{ name: "TROUPE_RABBITMQ_MANAGEMENT_URL", valueFrom: { secretKeyRef: { name: "mq", key: "management-url" } } }]);
    const inline = render(undefined, 4, chartDir, ["--set", "operator.rabbitmqManagement.url=https://rabbitmq.queues:15671"]);
    assert.deepEqual(managementEnv(inline), [{ name: "TROUPE_RABBITMQ_MANAGEMENT_URL", value: "https://rabbitmq.queues:15671" }]);
    for (const major of HELM_MAJORS) {
      const withPassword = helm(["template", "rel", chartDir, "--set", "operator.rabbitmqManagement.url=http://guest:guest@rabbitmq:15672"], major);
      assert.notEqual(withPassword.status, 0, `helm ${major} put a password in the Deployment`);
      assert.match(withPassword.stderr, /rabbitmqManagement/);
      assert.ok(!withPassword.stdout.includes("guest:guest"));
      const both = helm(["template", "rel", chartDir, "--set", "operator.rabbitmqManagement.url=http://rabbitmq:15672", "--set", "operator.rabbitmqManagement.secretRef.name=mq"], major);
      assert.notEqual(both.status, 0);
      assert.match(both.stderr, /operator\.rabbitmqManagement: set url or secretRef\.name, not both/);
    }
  });

  test("an optional NetworkPolicy admits only the metrics port of the operator pods, from the configured peers", async () => {
    assert.deepEqual(ofKind(render(), "NetworkPolicy"), [], "off by default");
    const objects = render("full.yaml");
    const policy = one(objects, "NetworkPolicy");
    await validateBuiltIn(policy);
    const spec = policy.spec as { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { ports: { port: string }[]; from: unknown[] }[]; egress: unknown[] };
    const podLabels = (one(objects, "Deployment").spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const [k, v] of Object.entries(spec.podSelector.matchLabels)) assert.equal(podLabels[k], v);
    assert.deepEqual(spec.policyTypes, ["Ingress", "Egress"]);
    assert.deepEqual(spec.ingress, [{ ports: [{ port: "metrics", protocol: "TCP" }], from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }] }]);
    const open = one(render(undefined, 4, chartDir, ["--set", "networkPolicy.enabled=true"]), "NetworkPolicy").spec as { policyTypes: string[]; ingress: unknown[] };
    assert.deepEqual([open.policyTypes, open.ingress], [["Ingress"], [{ ports: [{ port: "metrics", protocol: "TCP" }] }]], "egress stays open without egress rules");
  });

  test("aggregated ClusterRoles: edit users manage WorkerPools, view users only read them; neither reaches Secrets (against the RBAC of the fake API server)", async () => {
    const fake = await startFakeApiServer();
    try {
      const admin = fake.kubeConfig();
      const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
      for (const role of ofKind(render(), "ClusterRole")) await rbac.createClusterRole({ body: role as k8s.V1ClusterRole });
      const ns = await createNamespace(admin);
      for (const [user, role] of [["alice", "edit"], ["bob", "view"]] as const) {
        await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: user }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role }, subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }] } });
      }
      const as = (user: string) => fake.kubeConfig(ns, fake.userToken(user));
      const forbidden = (err: unknown) => (err as { code?: number }).code === 403;
      const alice = customObjects(as("alice"));
      await alice.create("workerpools", ns, workerPoolManifest("mail"));
      await alice.patch("workerpools", ns, "mail", { spec: { threads: 2 } });
      await alice.api.patchNamespacedCustomObjectScale({ group: "troupe.dev", version: "v1alpha1", plural: "workerpools", namespace: ns, name: "mail", body: { spec: { replicas: 2 } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
      const bob = customObjects(as("bob"));
      assert.equal((await bob.get("workerpools", ns, "mail")).spec.threads, 2);
      await assert.rejects(bob.create("workerpools", ns, workerPoolManifest("bobs")), forbidden);
      await assert.rejects(bob.delete("workerpools", ns, "mail"), forbidden);
      for (const user of ["alice", "bob"]) await assert.rejects(as(user).makeApiClient(k8s.CoreV1Api).listNamespacedSecret({ namespace: ns }), forbidden);
      await alice.delete("workerpools", ns, "mail");
    } finally {
      await fake.stop();
    }
  });
});
