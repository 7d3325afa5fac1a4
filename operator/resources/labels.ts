import type { LabelSelector } from "../api/types.js";

export const POOL_LABEL = "troupe.dev/workerpool";
export const MANAGED_BY = { "app.kubernetes.io/managed-by": "troupe-operator" };
/** The ConfigMap of a namespace's Actor settings, mounted by every worker pod of the namespace. */
export const ACTORS_CONFIGMAP = "troupe-actors";
export const ACTORS_FILE = "actors.json";
export const ACTORS_MOUNT = "/etc/troupe/actors";
export const METRICS_PORT = 9191;

export function poolSelectorLabels(pool: string): Record<string, string> {
  return { [POOL_LABEL]: pool };
}

/** Does a label set match a metav1.LabelSelector? An empty selector matches everything, as in Kubernetes. */
export function matchesSelector(labels: Record<string, string> | undefined, selector: LabelSelector): boolean {
  const have = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (have[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const value = have[e.key];
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (value === undefined || !values.includes(value)) return false;
        break;
      case "NotIn":
        if (value !== undefined && values.includes(value)) return false;
        break;
      case "Exists":
        if (value === undefined) return false;
        break;
      case "DoesNotExist":
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
}
