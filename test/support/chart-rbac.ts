/**
 * The operator's identity in tests: the ServiceAccount, Roles, ClusterRoles and bindings that the Helm chart renders
 * (real helm, `helm template`), installed into a fake API server, and a kubeconfig with that ServiceAccount's token.
 * The fake authorises every request the operator makes against those rules, so a permission the chart lacks is the
 * 403 Forbidden a cluster would return.
 */
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { chartDir, helm } from "../shipping/tools.js";

export const RELEASE = "troupe";
/** The chart's operator name for release `troupe`: its ServiceAccount, ClusterRole and Lease Role are named after it. */
export const OPERATOR_SERVICE_ACCOUNT = "troupe-operator";

export interface ChartRbacOptions {
  /** The release namespace: the ServiceAccount and the leader-election Role live there (the Lease too). */
  releaseNamespace: string;
  /** operator.watchNamespaces: a Role per namespace instead of the ClusterRole. */
  watchNamespaces?: string[];
}

interface Rendered {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

const RBAC_KINDS = new Set(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);
const rendered = new Map<string, Rendered[]>();

/** The ServiceAccount and RBAC objects of `helm template` for these options (rendered once per process). */
export function chartRbacObjects(options: ChartRbacOptions): Rendered[] {
  const key = JSON.stringify(options);
  let objects = rendered.get(key);
  if (!objects) {
    const args = ["template", RELEASE, chartDir, "--namespace", options.releaseNamespace];
    if (options.watchNamespaces?.length) args.push("--set-json", `operator.watchNamespaces=${JSON.stringify(options.watchNamespaces)}`);
    const r = helm(args);
    if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
    objects = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Rendered | null)
      .filter((o): o is Rendered => o !== null && RBAC_KINDS.has(o.kind));
    rendered.set(key, objects);
  }
  return structuredClone(objects);
}

/**
 * Installs the chart's RBAC into `fake` as a cluster admin would with `helm install` (namespaces created when
 * missing) and returns a kubeconfig that acts as the operator's ServiceAccount.
 */
export async function installChartRbac(fake: FakeApiServer, options: ChartRbacOptions): Promise<k8s.KubeConfig> {
  const admin = fake.kubeConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const custom = admin.makeApiClient(k8s.CustomObjectsApi);
  for (const namespace of new Set([options.releaseNamespace, ...(options.watchNamespaces ?? [])])) {
    await ignoreConflict(core.createNamespace({ body: { metadata: { name: namespace } } }));
  }
  for (const o of chartRbacObjects(options)) {
    const namespace = o.metadata.namespace ?? options.releaseNamespace;
    if (o.kind === "ServiceAccount") {
      await ignoreConflict(core.createNamespacedServiceAccount({ namespace, body: o }));
      continue;
    }
    const ref = { group: "rbac.authorization.k8s.io", version: "v1", plural: `${o.kind.toLowerCase()}s` };
    const namespaced = o.kind === "Role" || o.kind === "RoleBinding";
    await ignoreConflict(namespaced ? custom.createNamespacedCustomObject({ ...ref, namespace, body: o }) : custom.createClusterCustomObject({ ...ref, body: o }));
  }
  return fake.kubeConfig(options.releaseNamespace, fake.serviceAccountToken(options.releaseNamespace, OPERATOR_SERVICE_ACCOUNT));
}

/** A second operator installed into the same fake finds the release's objects already there. */
async function ignoreConflict(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}
