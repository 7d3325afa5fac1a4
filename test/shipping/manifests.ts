/** Checks shared by the tests of rendered manifests: schema validation of built-in kinds and the pod security bar. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "./crd-schemas.js";
import { repoRoot } from "./tools.js";

/** The troupe.dev resources shown in docs/shipping.md's yaml blocks. */
export function docsManifests(): KubeObject[] {
  const blocks = [...readFileSync(join(repoRoot, "docs", "shipping.md"), "utf8").matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as KubeObject | null))
    .filter((o): o is KubeObject => o?.apiVersion?.startsWith("troupe.dev/") ?? false);
}

/** Validates a built-in object with kubernetes-models, a Prometheus Operator object with its models. */
export async function validateBuiltIn(o: KubeObject): Promise<void> {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const module =
    group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`
      : `kubernetes-models/${group ? `${group}/` : ""}${version}/${o.kind}`;
  const Model = ((await import(module)) as Record<string, new (data: unknown) => { validate(): void }>)[o.kind]!;
  assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`);
}

export type PodSpec = {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type?: string } };
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; emptyDir?: unknown; hostPath?: unknown }[];
};
export type Container = {
  name: string;
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    runAsUser?: number;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
};

/** The `restricted` Pod Security Standard plus a read-only root filesystem with a writable /tmp. */
export function assertRestricted(owner: string, pod: PodSpec): void {
  assert.equal(pod.securityContext?.runAsNonRoot, true, `${owner}: runAsNonRoot`);
  assert.notEqual(pod.securityContext?.runAsUser, 0, `${owner}: runAsUser 0`);
  assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault", `${owner}: seccompProfile`);
  for (const field of ["hostNetwork", "hostPID", "hostIPC"] as const) assert.ok(!pod[field], `${owner}: ${field}`);
  assert.ok(!(pod.volumes ?? []).some((v) => v.hostPath), `${owner}: hostPath volume`);
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const where = `${owner} container ${c.name}`;
    const sc = c.securityContext ?? {};
    assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
    assert.ok(!sc.privileged, `${where}: privileged`);
    assert.notEqual(sc.runAsUser, 0, `${where}: runAsUser 0`);
    assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${where}: capabilities.drop`);
    assert.equal(sc.capabilities?.add, undefined, `${where}: capabilities.add`);
    const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
    assert.ok(tmp && pod.volumes?.find((v) => v.name === tmp.name)?.emptyDir, `${where}: writable emptyDir at /tmp`);
  }
}
