import { Ajv, type ValidateFunction } from "ajv";
import { evaluate } from "@marcbachmann/cel-js";

/** A CRD's structural schema node, with the Kubernetes extensions the fake honours. */
export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  default?: unknown;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-validations"?: { rule: string; message?: string }[];
  [key: string]: unknown;
}

/**
 * Validation of one CRD version as the API server does it: prune unknown fields (except under
 * x-kubernetes-preserve-unknown-fields), apply defaults, check the OpenAPI schema, then evaluate the CEL rules.
 * Returns the list of causes; empty means valid.
 */
export class CrdValidator {
  private readonly validate: ValidateFunction;

  constructor(private readonly schema: SchemaNode) {
    const ajv = new Ajv({ strict: false, useDefaults: true, removeAdditional: true, allErrors: true });
    ajv.addFormat("date-time", { validate: (s: string) => !Number.isNaN(Date.parse(s)) });
    this.validate = ajv.compile(prunable(schema));
  }

  /** Prunes and defaults `obj` in place. */
  check(obj: Record<string, unknown>): string[] {
    dropNulls(this.schema, obj);
    const causes: string[] = [];
    if (!this.validate(obj)) {
      for (const e of this.validate.errors ?? []) causes.push(`${e.instancePath || "<root>"}: ${e.message ?? "invalid"}`);
      return causes;
    }
    celRules(this.schema, obj, "", causes);
    return causes;
  }
}

/** The schema with `additionalProperties: false` wherever the API server would prune, so ajv removes those fields. */
function prunable(node: SchemaNode): SchemaNode {
  const out: SchemaNode = { ...node };
  delete out["x-kubernetes-validations"];
  if (node.properties) {
    out.properties = Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, prunable(v)]));
    if (!node["x-kubernetes-preserve-unknown-fields"] && node.additionalProperties === undefined) out.additionalProperties = false;
  }
  if (node.items) out.items = prunable(node.items);
  if (node.additionalProperties && typeof node.additionalProperties === "object") out.additionalProperties = prunable(node.additionalProperties);
  return out;
}

/** The API server drops `null` where the schema does not say `nullable: true`, before validating. */
function dropNulls(node: SchemaNode, value: unknown): void {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    if (node.items) for (const item of value) dropNulls(node.items, item);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(record)) {
    const childSchema = node.properties?.[key] ?? (typeof node.additionalProperties === "object" ? node.additionalProperties : undefined);
    if (child === null && !childSchema?.nullable) delete record[key];
    else if (childSchema) dropNulls(childSchema, child);
  }
}

function celRules(node: SchemaNode, value: unknown, path: string, causes: string[]): void {
  if (value === undefined || value === null) return;
  for (const rule of node["x-kubernetes-validations"] ?? []) {
    let ok: unknown;
    try {
      ok = evaluate(rule.rule, { self: value });
    } catch (err) {
      causes.push(`${path || "<root>"}: rule ${rule.rule} failed to evaluate: ${(err as Error).message}`);
      continue;
    }
    if (ok !== true) causes.push(`${path || "<root>"}: ${rule.message ?? `failed rule: ${rule.rule}`}`);
  }
  if (node.properties && typeof value === "object") {
    for (const [key, child] of Object.entries(node.properties)) celRules(child, (value as Record<string, unknown>)[key], `${path}/${key}`, causes);
  }
  if (node.items && Array.isArray(value)) value.forEach((item, i) => celRules(node.items!, item, `${path}/${i}`, causes));
}
