/**
 * What kube-apiserver checks when a CustomResourceDefinition is created or updated, before it serves anything:
 * the name is `<plural>.<group>`, exactly one version is the storage version, every version's schema is structural
 * (a type on every specified node, properties and additionalProperties not both, no `metadata` beyond name and
 * generateName) and every `x-kubernetes-validations` rule compiles against the types its schema node declares
 * (syntax, unknown fields, overloads). Field paths and wording follow apiextensions' validation.
 */
import { Environment } from "@marcbachmann/cel-js";
import type { Cause } from "./names.js";
import type { SchemaNode } from "../../operator/api/crd-validator.js";

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: SchemaNode };
}

const required = (field: string, message: string): Cause => ({ reason: "FieldValueRequired", field, message: `Required value: ${message}` });
const invalid = (field: string, value: unknown, detail: string): Cause => ({ reason: "FieldValueInvalid", field, message: `Invalid value: ${JSON.stringify(value)}: ${detail}` });
const forbidden = (field: string, detail: string): Cause => ({ reason: "FieldValueForbidden", field, message: `Forbidden: ${detail}` });

/** Results by CRD name and spec: every fake loads the same CRDs, and typing a schema for CEL takes 100-200 ms. */
const checked = new Map<string, Cause[]>();

export function checkCrd(crd: { metadata: { name: string }; spec?: unknown }): Cause[] {
  const key = JSON.stringify([crd.metadata.name, crd.spec]);
  let causes = checked.get(key);
  if (!causes) checked.set(key, (causes = uncachedCheckCrd(crd)));
  return causes;
}

function uncachedCheckCrd(crd: { metadata: { name: string }; spec?: unknown }): Cause[] {
  const spec = (crd.spec ?? {}) as { group?: string; names?: { plural?: string; kind?: string }; versions?: CrdVersion[] };
  const causes: Cause[] = [];
  const expected = `${spec.names?.plural ?? ""}.${spec.group ?? ""}`;
  if (crd.metadata.name !== expected) causes.push(invalid("metadata.name", crd.metadata.name, 'must be spec.names.plural+"."+spec.group'));
  const versions = spec.versions ?? [];
  if (!versions.length) causes.push(required("spec.versions", "must have exactly one version marked as storage version"));
  else if (versions.filter((v) => v.storage).length !== 1) causes.push(invalid("spec.versions", versions.map((v) => v.name), "must have exactly one version marked as storage version"));
  versions.forEach((v, i) => {
    const root = v.schema?.openAPIV3Schema;
    const path = `spec.versions[${i}].schema.openAPIV3Schema`;
    if (!root) return;
    if (root.type !== "object") causes.push(root.type ? invalid(`${path}.type`, root.type, "must be object at the root") : required(`${path}.type`, "must not be empty at the root"));
    const metadata = root.properties?.metadata;
    if (metadata) {
      for (const key of Object.keys(metadata.properties ?? {})) {
        if (key !== "name" && key !== "generateName") causes.push(forbidden(`${path}.properties[metadata].properties[${key}]`, "must not be specified"));
      }
    }
    structural(root, path, undefined, causes);
    celCompiles(root, path, causes);
  });
  return causes;
}

/** Structural-schema rules for one node and its children; `role` says how the parent specified it. */
function structural(node: SchemaNode, path: string, role: "field" | "item" | undefined, causes: Cause[]): void {
  const exempt = node["x-kubernetes-int-or-string"] === true || node["x-kubernetes-preserve-unknown-fields"] === true;
  if (role && !node.type && !exempt) causes.push(required(`${path}.type`, role === "field" ? "must not be empty for specified object fields" : "must not be empty for specified array items"));
  if (node["x-kubernetes-preserve-unknown-fields"] === false) causes.push(invalid(`${path}.x-kubernetes-preserve-unknown-fields`, false, "must be true or undefined"));
  if (node.properties && node.additionalProperties !== undefined && node.additionalProperties !== false) {
    causes.push(forbidden(`${path}.additionalProperties`, "additionalProperties and properties are mutual exclusive"));
  }
  for (const [key, child] of Object.entries(node.properties ?? {})) structural(child, `${path}.properties[${key}]`, "field", causes);
  if (node.items) structural(node.items, `${path}.items`, "item", causes);
  if (node.type === "array" && !node.items) causes.push(required(`${path}.items`, "must be specified"));
  if (node.additionalProperties && typeof node.additionalProperties === "object") structural(node.additionalProperties, `${path}.additionalProperties`, "field", causes);
}

/** Compiles every rule with `self` (and `oldSelf`) typed from the node's schema, as the API server's CEL checker does. */
function celCompiles(root: SchemaNode, rootPath: string, causes: Cause[]): void {
  const env = new Environment({ enableOptionalTypes: true });
  // Types are registered for the whole tree first: cloning an environment freezes it.
  const types = new Map<SchemaNode, string>();
  let named = 0;
  const typeOf = (node: SchemaNode): string => {
    let type = types.get(node);
    if (!type) types.set(node, (type = declare(node)));
    return type;
  };
  const declare = (node: SchemaNode): string => {
    if (node["x-kubernetes-int-or-string"] || node["x-kubernetes-preserve-unknown-fields"]) return "dyn";
    switch (node.type) {
      case "integer": return "int";
      case "number": return "double";
      case "boolean": return "bool";
      case "string": return "string";
      case "array": return `list<${node.items ? typeOf(node.items) : "dyn"}>`;
      case "object": {
        if (node.properties) {
          const name = `Object${++named}`;
          env.registerType(name, { fields: Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, typeOf(v)])) });
          return name;
        }
        if (node.additionalProperties && typeof node.additionalProperties === "object") return `map<string, ${typeOf(node.additionalProperties)}>`;
        return "map<string, dyn>";
      }
      default: return "dyn";
    }
  };
  const visit = (node: SchemaNode, path: string): void => {
    const rules = node["x-kubernetes-validations"] ?? [];
    if (rules.length) {
      const type = types.get(node)!;
      const scoped = env.clone();
      scoped.registerVariable("self", type);
      scoped.registerVariable("oldSelf", type);
      rules.forEach((rule, i) => {
        const result = scoped.check(rule.rule);
        if (!result.valid) causes.push(invalid(`${path}.x-kubernetes-validations[${i}].rule`, rule.rule, `compilation failed: ${result.error?.message.split("\n")[0] ?? "invalid"}`));
        else if (result.type !== "bool") causes.push(invalid(`${path}.x-kubernetes-validations[${i}].rule`, rule.rule, `must evaluate to a bool, got ${result.type}`));
      });
    }
    for (const [key, child] of Object.entries(node.properties ?? {})) visit(child, `${path}.properties[${key}]`);
    if (node.items) visit(node.items, `${path}.items`);
    if (node.additionalProperties && typeof node.additionalProperties === "object") visit(node.additionalProperties, `${path}.additionalProperties`);
  };
  const declareAll = (node: SchemaNode): void => {
    typeOf(node);
    for (const child of Object.values(node.properties ?? {})) declareAll(child);
    if (node.items) declareAll(node.items);
    if (node.additionalProperties && typeof node.additionalProperties === "object") declareAll(node.additionalProperties);
  };
  declareAll(root);
  visit(root, rootPath);
}
