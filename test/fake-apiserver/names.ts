/**
 * Object-name, label and annotation validation as kube-apiserver's apimachinery does it (same regexes, limits and
 * messages), so that a name a real cluster refuses is a 422 here too.
 */

export interface Cause {
  /** metav1.CauseType, e.g. FieldValueInvalid. */
  reason: string;
  field: string;
  /** The cause's own message, without the field (as in Status.details.causes). */
  message: string;
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_1123_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_1035_MSG = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

export type NameRule = "subdomain" | "label" | "dns1035";

const RULES: Record<NameRule, { pattern: RegExp; max: number; message: string }> = {
  subdomain: { pattern: SUBDOMAIN, max: 253, message: SUBDOMAIN_MSG },
  label: { pattern: LABEL_1123, max: 63, message: LABEL_1123_MSG },
  dns1035: { pattern: LABEL_1035, max: 63, message: LABEL_1035_MSG },
};

/** Which rule a kind's object names follow: Namespaces are RFC 1123 labels, Services DNS-1035 labels, the rest subdomains. */
export function nameRuleOf(plural: string, group: string): NameRule {
  if (group === "" && plural === "namespaces") return "label";
  if (group === "" && plural === "services") return "dns1035";
  return "subdomain";
}

function invalid(field: string, value: unknown, detail: string): Cause {
  return { reason: "FieldValueInvalid", field, message: `Invalid value: ${JSON.stringify(value)}: ${detail}` };
}

export function checkName(name: string, rule: NameRule, field = "metadata.name"): Cause[] {
  const { pattern, max, message } = RULES[rule];
  const causes: Cause[] = [];
  if (name.length > max) causes.push(invalid(field, name, `must be no more than ${max} characters`));
  if (!pattern.test(name)) causes.push(invalid(field, name, message));
  return causes;
}

/** A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters. */
function checkQualifiedName(key: string, field: string): Cause[] {
  const parts = key.split("/");
  if (parts.length > 2) return [invalid(field, key, `${QUALIFIED_NAME_MSG.replace("name part", "a qualified name")} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`)];
  const [prefix, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [undefined, parts[0]!];
  const causes: Cause[] = [];
  if (prefix !== undefined) {
    if (prefix.length === 0) causes.push(invalid(field, key, "prefix part must be non-empty"));
    else if (prefix.length > 253 || !SUBDOMAIN.test(prefix)) causes.push(invalid(field, key, `prefix part ${SUBDOMAIN_MSG}`));
  }
  if (name.length === 0) causes.push(invalid(field, key, "name part must be non-empty"));
  else {
    if (name.length > 63) causes.push(invalid(field, key, "name part must be no more than 63 characters"));
    if (!QUALIFIED_NAME.test(name)) causes.push(invalid(field, key, QUALIFIED_NAME_MSG));
  }
  return causes;
}

export function checkLabels(labels: unknown, field = "metadata.labels"): Cause[] {
  if (labels === undefined || labels === null) return [];
  const causes: Cause[] = [];
  for (const [key, value] of Object.entries(labels as Record<string, unknown>)) {
    causes.push(...checkQualifiedName(key, field));
    if (typeof value !== "string") causes.push(invalid(`${field}.${key}`, value, "must be a string"));
    else {
      if (value.length > 63) causes.push(invalid(field, value, "must be no more than 63 characters"));
      if (!LABEL_VALUE.test(value)) causes.push(invalid(field, value, LABEL_VALUE_MSG));
    }
  }
  return causes;
}

/** Annotation keys are qualified names; all annotations together may hold at most 256 KiB. */
export function checkAnnotations(annotations: unknown, field = "metadata.annotations"): Cause[] {
  if (annotations === undefined || annotations === null) return [];
  const causes: Cause[] = [];
  let size = 0;
  for (const [key, value] of Object.entries(annotations as Record<string, unknown>)) {
    causes.push(...checkQualifiedName(key.toLowerCase(), field));
    size += Buffer.byteLength(key) + Buffer.byteLength(String(value));
  }
  if (size > 256 * 1024) causes.push({ reason: "FieldValueTooLong", field, message: `Too long: must have at most ${256 * 1024} bytes` });
  return causes;
}

/** Name (per kind), labels and annotations of an object's metadata. */
export function checkMetadata(meta: { name: string; labels?: unknown; annotations?: unknown }, rule: NameRule): Cause[] {
  return [...checkName(meta.name, rule), ...checkLabels(meta.labels), ...checkAnnotations(meta.annotations)];
}

/** "field: message" as the Status message spells each cause. */
export function causeText(cause: Cause): string {
  return `${cause.field}: ${cause.message}`;
}
