/**
 * Worker pods are not in the chart: the operator creates a Deployment per WorkerPool. Check that the Deployment it
 * builds for the documented WorkerPool is valid and meets the same pod security bar as the chart's pods.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { WorkerPool } from "../../operator/api/types.js";
import { poolDeployment } from "../../operator/resources/workerpool.js";
import type { KubeObject } from "./crd-schemas.js";
import { assertRestricted, docsManifests, validateBuiltIn, type PodSpec } from "./manifests.js";

test("the operator's Deployment for the documented WorkerPool is valid and restricted, with a read-only root filesystem", async () => {
  const pools = docsManifests().filter((o) => o.kind === "WorkerPool");
  assert.ok(pools.length > 0);
  for (const manifest of pools) {
    const pool = { ...manifest, metadata: { ...manifest.metadata, uid: "0b5e3c1e-7a0c-4a8e-9f1e-3d2b1c0a9f8e" } } as unknown as WorkerPool;
    const deployment = poolDeployment(pool, ["emails"], 3) as unknown as KubeObject;
    await validateBuiltIn(deployment);
    const pod = (deployment.spec as { template: { spec: PodSpec & { containers: { image: string }[] } } }).template.spec;
    assertRestricted(`WorkerPool ${manifest.metadata.name}`, pod);
    assert.equal(pod.containers[0]!.image, (manifest.spec as { image: string }).image);
  }
});
