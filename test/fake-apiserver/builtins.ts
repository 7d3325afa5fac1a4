/**
 * Validation of the built-in kinds the operator writes, as kube-apiserver's apps/v1 and core/v1 validation does it
 * (same field paths and wording): Deployments need a selector that matches their pod template's labels, at least
 * one container with a name and an image, and keep `spec.selector` for life; Services need ports (unless headless
 * or ExternalName) in 1-65535 with unique names.
 */
import { type Cause, checkLabels, checkName } from "./names.js";

type Json = Record<string, unknown>;

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

const required = (field: string, message = ""): Cause => ({ reason: "FieldValueRequired", field, message: `Required value${message ? `: ${message}` : ""}` });
const invalid = (field: string, value: unknown, detail: string): Cause => ({ reason: "FieldValueInvalid", field, message: `Invalid value: ${JSON.stringify(value)}: ${detail}` });

/** Causes for a create (`old` undefined) or an update of a built-in object; kinds without rules here have none. */
export function validateBuiltin(group: string, plural: string, obj: Json, old?: Json): Cause[] {
  if (group === "apps" && plural === "deployments") return validateDeployment(obj, old);
  if (group === "" && plural === "services") return validateService(obj);
  return [];
}

function validateDeployment(obj: Json, old?: Json): Cause[] {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: LabelSelector; template?: { metadata?: { labels?: Record<string, string> }; spec?: Json } };
  const causes: Cause[] = [];
  if (spec.replicas !== undefined && spec.replicas < 0) causes.push(invalid("spec.replicas", spec.replicas, "must be greater than or equal to 0"));
  const selector = spec.selector;
  if (!selector) causes.push(required("spec.selector"));
  else if (!Object.keys(selector.matchLabels ?? {}).length && !(selector.matchExpressions ?? []).length) {
    causes.push(invalid("spec.selector", selector, "empty selector is invalid for deployment"));
  } else {
    causes.push(...checkLabels(selector.matchLabels, "spec.selector.matchLabels"));
    (selector.matchExpressions ?? []).forEach((e, i) => {
      const field = `spec.selector.matchExpressions[${i}].values`;
      if ((e.operator === "In" || e.operator === "NotIn") && !e.values?.length) causes.push(required(field, "must be specified when `operator` is 'In' or 'NotIn'"));
      if ((e.operator === "Exists" || e.operator === "DoesNotExist") && e.values?.length) causes.push({ reason: "FieldValueForbidden", field, message: "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'" });
      if (!["In", "NotIn", "Exists", "DoesNotExist"].includes(e.operator)) causes.push({ reason: "FieldValueNotSupported", field: `spec.selector.matchExpressions[${i}].operator`, message: `Unsupported value: ${JSON.stringify(e.operator)}: supported values: "In", "NotIn", "Exists", "DoesNotExist"` });
    });
    const templateLabels = spec.template?.metadata?.labels ?? {};
    if (!selectorMatches(selector, templateLabels)) causes.push(invalid("spec.template.metadata.labels", templateLabels, "`selector` does not match template `labels`"));
  }
  causes.push(...checkLabels(spec.template?.metadata?.labels, "spec.template.metadata.labels"));
  causes.push(...validatePodSpec((spec.template?.spec ?? {}) as Json, "spec.template.spec"));
  const oldSelector = (old?.spec as { selector?: unknown } | undefined)?.selector;
  if (old && JSON.stringify(oldSelector) !== JSON.stringify(selector)) causes.push(invalid("spec.selector", selector, "field is immutable"));
  return causes;
}

function validatePodSpec(spec: Json, path: string): Cause[] {
  const containers = (spec.containers ?? []) as { name?: string; image?: string }[];
  if (!containers.length) return [required(`${path}.containers`)];
  const causes: Cause[] = [];
  const seen = new Set<string>();
  containers.forEach((c, i) => {
    const at = `${path}.containers[${i}]`;
    if (!c.name) causes.push(required(`${at}.name`));
    else {
      causes.push(...checkName(c.name, "label", `${at}.name`));
      if (seen.has(c.name)) causes.push({ reason: "FieldValueDuplicate", field: `${at}.name`, message: `Duplicate value: ${JSON.stringify(c.name)}` });
      seen.add(c.name);
    }
    if (!c.image) causes.push(required(`${at}.image`));
  });
  return causes;
}

function validateService(obj: Json): Cause[] {
  const spec = (obj.spec ?? {}) as { type?: string; clusterIP?: string; ports?: { name?: string; port?: number }[]; selector?: Record<string, string> };
  const causes: Cause[] = [];
  const ports = spec.ports ?? [];
  if (!ports.length && spec.type !== "ExternalName" && spec.clusterIP !== "None") causes.push(required("spec.ports"));
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    if (ports.length > 1 && !p.name) causes.push(required(`${at}.name`));
    if (p.name) {
      causes.push(...checkName(p.name, "dns1035", `${at}.name`));
      if (names.has(p.name)) causes.push({ reason: "FieldValueDuplicate", field: `${at}.name`, message: `Duplicate value: ${JSON.stringify(p.name)}` });
      names.add(p.name);
    }
    if (p.port === undefined) causes.push(required(`${at}.port`));
    else if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) causes.push(invalid(`${at}.port`, p.port, "must be between 1 and 65535, inclusive"));
  });
  causes.push(...checkLabels(spec.selector, "spec.selector"));
  return causes;
}

function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return byLabels && (selector.matchExpressions ?? []).every((e) => {
    const value = labels[e.key];
    switch (e.operator) {
      case "In": return value !== undefined && (e.values ?? []).includes(value);
      case "NotIn": return value === undefined || !(e.values ?? []).includes(value);
      case "Exists": return value !== undefined;
      case "DoesNotExist": return value === undefined;
      default: return false;
    }
  });
}
