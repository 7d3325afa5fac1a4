import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { evaluate } from "@marcbachmann/cel-js";
import { parse } from "yaml";

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
 * What happens to a field the schema does not know: the API server prunes it from what it stores ("prune");
 * `kubectl apply` asks for strict field validation and gets an error ("reject"), which is what `troupe up` does.
 */
export type UnknownFields = "prune" | "reject";

/**
 * Validation of one CRD version as the API server does it: prune (or reject) unknown fields, except under
 * x-kubernetes-preserve-unknown-fields, apply defaults, check the OpenAPI schema, then evaluate the CEL rules.
 * Shared by the operator's tooling (`troupe up`) and the tests' API double, so both apply the cluster's rules.
 * Returns the list of causes; empty means valid.
 */
export class CrdValidator {
  private readonly validate: ValidateFunction;

  constructor(
    private readonly schema: SchemaNode,
    unknownFields: UnknownFields = "prune",
  ) {
    const ajv = new Ajv({ strict: false, useDefaults: true, removeAdditional: unknownFields === "prune", allErrors: true });
    ajv.addFormat("date-time", { validate: isDateTime });
    this.validate = ajv.compile(prunable(schema));
  }

  /** Prunes and defaults `obj` in place; `old` is the stored object on an update, for transition rules (`oldSelf`). */
  check(obj: Record<string, unknown>, old?: Record<string, unknown>): string[] {
    dropNulls(this.schema, obj);
    const causes: string[] = [];
    if (!this.validate(obj)) {
      for (const e of this.validate.errors ?? []) causes.push(causeOf(e));
      return causes;
    }
    celRules(this.schema, obj, old, "", causes);
    return causes;
  }
}

/** Each served version's validator of the CRDs in `dir`, by "group/version/Kind". */
export function loadCrdValidators(dir: string, unknownFields: UnknownFields = "prune"): Map<string, CrdValidator> {
  const out = new Map<string, CrdValidator>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parse(readFileSync(join(dir, file), "utf8")) as ServedCrd;
    for (const version of crd.spec.versions.filter((v) => v.served)) {
      out.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, new CrdValidator(version.schema.openAPIV3Schema, unknownFields));
    }
  }
  return out;
}

interface ServedCrd {
  spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: SchemaNode } }[] };
}

/** Worded as the API server words them: `spec.threads: must be integer`, `unknown field "spec.replicaz"`. */
function causeOf(e: ErrorObject): string {
  if (e.keyword === "additionalProperties") {
    const field = `${e.instancePath}/${String((e.params as { additionalProperty: string }).additionalProperty)}`;
    return `unknown field "${fieldPath(field)}"`;
  }
  return `${fieldPath(e.instancePath)}: ${e.message ?? "invalid"}`;
}

/**
 * kube-openapi's strfmt.IsDateTime: RFC 3339 `full-date "T" full-time` (T and Z in either case, fraction optional,
 * an offset required), with a real calendar date and hours, minutes and seconds in range.
 */
export function isDateTime(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  const realDate = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  return realDate && hour <= 23 && minute <= 59 && second <= 59;
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

/** A JSON pointer as the API server spells field paths: `/spec/steps/0/actor` is `spec.steps[0].actor`. */
function fieldPath(pointer: string): string {
  if (!pointer) return "<root>";
  return pointer.split("/").slice(1).map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : `${i ? "." : ""}${p.replaceAll("~1", "/").replaceAll("~0", "~")}`)).join("");
}

/** A transition rule (one that reads `oldSelf`) runs only on an update where the old value exists, as in the API server. */
function celRules(node: SchemaNode, value: unknown, old: unknown, path: string, causes: string[]): void {
  if (value === undefined || value === null) return;
  for (const rule of node["x-kubernetes-validations"] ?? []) {
    const transition = /\boldSelf\b/.test(rule.rule);
    if (transition && (old === undefined || old === null)) continue;
    let ok: unknown;
    try {
      ok = evaluate(rule.rule, transition ? { self: value, oldSelf: old } : { self: value });
    } catch (err) {
      causes.push(`${fieldPath(path)}: rule ${rule.rule} failed to evaluate: ${(err as Error).message}`);
      continue;
    }
    if (ok !== true) causes.push(`${fieldPath(path)}: ${rule.message ?? `failed rule: ${rule.rule}`}`);
  }
  if (node.properties && typeof value === "object") {
    const before = old && typeof old === "object" ? (old as Record<string, unknown>) : undefined;
    for (const [key, child] of Object.entries(node.properties)) celRules(child, (value as Record<string, unknown>)[key], before?.[key], `${path}/${key}`, causes);
  }
  // List items are correlated with old ones only for map-type lists, which the fake does not model: no oldSelf below lists.
  if (node.items && Array.isArray(value)) value.forEach((item, i) => celRules(node.items!, item, undefined, `${path}/${i}`, causes));
}
