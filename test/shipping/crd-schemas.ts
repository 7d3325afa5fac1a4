/** JSON-Schema validators for troupe.dev resources, compiled from each served version's openAPIV3Schema in crds/. */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parse } from "yaml";
import { repoRoot } from "./tools.js";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  [key: string]: unknown;
}

interface Crd {
  spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: Schema } }[] };
}

type Schema = { [key: string]: unknown; properties?: Record<string, Schema>; items?: Schema; additionalProperties?: unknown };

/**
 * Unknown fields become errors, as with `kubectl apply` (field validation "Strict" by default) rather than being
 * pruned in silence; objects marked x-kubernetes-preserve-unknown-fields keep accepting anything.
 */
function rejectUnknownFields(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, rejectUnknownFields(v)]));
    if (schema.additionalProperties === undefined && !schema["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
  }
  if (schema.items) out.items = rejectUnknownFields(schema.items);
  return out;
}

/** "group/version/Kind" → validator. CEL rules (x-kubernetes-validations) are not checked here. */
export function crdValidators(): Map<string, ValidateFunction> {
  // strict: false lets the x-kubernetes-* extension keywords through; formats are the API server's, not JSON Schema's.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const dir = join(repoRoot, "crds");
  const out = new Map<string, ValidateFunction>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parse(readFileSync(join(dir, file), "utf8")) as Crd;
    for (const v of crd.spec.versions.filter((x) => x.served)) {
      out.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(rejectUnknownFields(v.schema.openAPIV3Schema)));
    }
  }
  return out;
}
