/** JSON-Schema validators for troupe.dev resources, compiled from each served version's openAPIV3Schema in crds/. */
import { join } from "node:path";
import { loadCrdValidators, type CrdValidator } from "../../operator/api/crd-validator.js";
import { repoRoot } from "./tools.js";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  [key: string]: unknown;
}

/** "group/version/Kind" → validator with kubectl's strict field validation (unknown fields are errors). */
export function crdValidators(): Map<string, CrdValidator> {
  return loadCrdValidators(join(repoRoot, "crds"), "reject");
}
