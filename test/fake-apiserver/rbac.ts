/**
 * Bearer-token authentication and the RBAC authorizer, as kube-apiserver runs them: a request is allowed when a
 * rule of a ClusterRole bound by a ClusterRoleBinding, or of a Role / ClusterRole bound by a RoleBinding in the
 * request's namespace, names its verb, API group, resource (`resource/subresource` for subresources) and, when the
 * rule lists resourceNames, its object name. `system:masters` may do anything; discovery and /version are open to
 * every authenticated user (the bootstrap system:discovery and system:public-info-viewer bindings). ClusterRoles
 * with an aggregationRule take the rules of every ClusterRole their selectors match, as the aggregation controller
 * writes them. Denials read as the API server words them.
 */
import { parseLabelSelector } from "./selectors.js";

export interface UserInfo {
  name: string;
  groups: string[];
}

export interface RequestAttributes {
  verb: string;
  /** "" for the core group. */
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

export interface RbacObject {
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: PolicyRule[];
  aggregationRule?: { clusterRoleSelectors?: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }[] };
  roleRef?: { kind: string; name: string };
  subjects?: Subject[];
}

/** What the authorizer reads: the RBAC objects currently stored. */
export interface RbacStore {
  clusterRoles(): RbacObject[];
  roles(namespace: string): RbacObject[];
  clusterRoleBindings(): RbacObject[];
  roleBindings(namespace: string): RbacObject[];
}

export const ADMIN: UserInfo = { name: "kubernetes-admin", groups: ["system:masters", "system:authenticated"] };
export const ANONYMOUS: UserInfo = { name: "system:anonymous", groups: ["system:unauthenticated"] };

export function serviceAccountUser(namespace: string, name: string): UserInfo {
  return { name: `system:serviceaccount:${namespace}:${name}`, groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"] };
}

/** The roles a fresh cluster has that a chart aggregates into: admin ⊇ edit ⊇ view, by their aggregate-to-* labels. */
export function bootstrapClusterRoles(): RbacObject[] {
  const aggregating = (name: string, into?: string): RbacObject => ({
    kind: "ClusterRole",
    metadata: { name, labels: { "kubernetes.io/bootstrapping": "rbac-defaults", ...(into ? { [`rbac.authorization.k8s.io/aggregate-to-${into}`]: "true" } : {}) } },
    aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [`rbac.authorization.k8s.io/aggregate-to-${name}`]: "true" } }] },
    rules: [],
  });
  return [
    { kind: "ClusterRole", metadata: { name: "cluster-admin", labels: { "kubernetes.io/bootstrapping": "rbac-defaults" } }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }, { nonResourceURLs: ["*"], verbs: ["*"] }] },
    aggregating("admin"),
    aggregating("edit", "admin"),
    aggregating("view", "edit"),
  ];
}

const DISCOVERY = /^\/(version|healthz|livez|readyz|api|apis|openapi)(\/|$)/;

/** Why the request is denied, or undefined when RBAC allows it. */
export function authorize(store: RbacStore, user: UserInfo, attrs: RequestAttributes): string | undefined {
  if (user.groups.includes("system:masters")) return undefined;
  const rules = rulesFor(store, user, attrs.namespace);
  if (rules.some((r) => ruleAllows(r, attrs))) return undefined;
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const scope = attrs.namespace ? `in the namespace ${JSON.stringify(attrs.namespace)}` : "at the cluster scope";
  return `User ${JSON.stringify(user.name)} cannot ${attrs.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(attrs.group)} ${scope}`;
}

/** Non-resource paths: discovery for authenticated users, nothing else without a nonResourceURLs rule. */
export function authorizePath(store: RbacStore, user: UserInfo, path: string): string | undefined {
  if (user.groups.includes("system:masters")) return undefined;
  if (DISCOVERY.test(path) && (user.groups.includes("system:authenticated") || /^\/(version|healthz|livez|readyz)/.test(path))) return undefined;
  const rules = rulesFor(store, user, undefined);
  if (rules.some((r) => r.verbs?.some((v) => v === "get" || v === "*") && r.nonResourceURLs?.some((u) => u === path || u === "*" || (u.endsWith("*") && path.startsWith(u.slice(0, -1)))))) return undefined;
  return `User ${JSON.stringify(user.name)} cannot get path ${JSON.stringify(path)}`;
}

function subjectMatches(subject: Subject, user: UserInfo): boolean {
  switch (subject.kind) {
    case "User": return subject.name === user.name;
    case "Group": return user.groups.includes(subject.name);
    case "ServiceAccount": return user.name === `system:serviceaccount:${subject.namespace}:${subject.name}`;
    default: return false;
  }
}

function rulesFor(store: RbacStore, user: UserInfo, namespace: string | undefined): PolicyRule[] {
  const clusterRoles = store.clusterRoles();
  const clusterRole = (name: string) => effectiveRules(clusterRoles, name, new Set());
  const rules: PolicyRule[] = [];
  for (const binding of store.clusterRoleBindings()) {
    if (binding.roleRef?.kind === "ClusterRole" && (binding.subjects ?? []).some((s) => subjectMatches(s, user))) rules.push(...clusterRole(binding.roleRef.name));
  }
  if (namespace) {
    const roles = store.roles(namespace);
    for (const binding of store.roleBindings(namespace)) {
      if (!(binding.subjects ?? []).some((s) => subjectMatches({ ...s, namespace: s.namespace ?? (s.kind === "ServiceAccount" ? namespace : undefined) }, user))) continue;
      if (binding.roleRef?.kind === "ClusterRole") rules.push(...clusterRole(binding.roleRef.name));
      else if (binding.roleRef?.kind === "Role") rules.push(...(roles.find((r) => r.metadata.name === binding.roleRef!.name)?.rules ?? []));
    }
  }
  return rules;
}

/** A ClusterRole's rules, with those its aggregationRule collects (transitively: edit takes view's aggregated rules). */
function effectiveRules(all: RbacObject[], name: string, seen: Set<string>): PolicyRule[] {
  const role = all.find((r) => r.metadata.name === name);
  if (!role || seen.has(name)) return [];
  seen.add(name);
  const selectors = role.aggregationRule?.clusterRoleSelectors;
  if (!selectors) return role.rules ?? [];
  const matching = all.filter((other) => other.metadata.name !== name && selectors.some((s) => selectorMatches(s, other.metadata.labels)));
  return matching.flatMap((other) => effectiveRules(all, other.metadata.name, seen));
}

function selectorMatches(selector: NonNullable<NonNullable<RbacObject["aggregationRule"]>["clusterRoleSelectors"]>[number], labels: Record<string, string> | undefined): boolean {
  const terms = [
    ...Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(selector.matchExpressions ?? []).map((e) => {
      switch (e.operator) {
        case "In": return `${e.key} in (${(e.values ?? []).join(",")})`;
        case "NotIn": return `${e.key} notin (${(e.values ?? []).join(",")})`;
        case "Exists": return e.key;
        default: return `!${e.key}`;
      }
    }),
  ];
  // An empty selector matches nothing in aggregation (the controller skips it).
  return terms.length > 0 && parseLabelSelector(terms.join(","))(labels);
}

function ruleAllows(rule: PolicyRule, attrs: RequestAttributes): boolean {
  const has = (list: string[] | undefined, value: string) => (list ?? []).some((x) => x === value || x === "*");
  if (!has(rule.verbs, attrs.verb) || !has(rule.apiGroups, attrs.group)) return false;
  const combined = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const resources = rule.resources ?? [];
  const resourceOk = resources.some((r) => r === "*" || r === combined || (attrs.subresource !== undefined && r === `*/${attrs.subresource}`));
  if (!resourceOk) return false;
  if (rule.resourceNames?.length) return attrs.name !== undefined && rule.resourceNames.includes(attrs.name);
  return true;
}
