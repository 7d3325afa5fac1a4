/** The PromQL that the dashboards and rules ship, and the metric names it reads (parsed with Prometheus's own grammar). */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { parse } from "yaml";
import { chartDir } from "./tools.js";

export interface Query {
  /** where it comes from, for failure messages */
  source: string;
  expr: string;
  /** the series a recording rule writes */
  record?: string;
}

interface DashboardJson {
  uid: string;
  panels: { title?: string; targets?: { expr?: string }[] }[];
  templating: { list: { name: string; query?: string | { query?: string } }[] };
}

export function loadDashboards(): DashboardJson[] {
  const dir = join(chartDir, "dashboards");
  return readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as DashboardJson);
}

/** Grafana's variables replaced by values Prometheus accepts: ranges by a duration, selections by "match all". */
export function substituteVariables(expr: string): string {
  return expr
    .replace(/\$__(rate_)?interval/g, "5m")
    .replace(/\$__range/g, "1h")
    .replace(/\$\{?[A-Za-z_]\w*\}?/g, ".*");
}

/** Every panel target, plus the series selector inside each `label_values(selector, label)` variable query. */
export function dashboardQueries(): Query[] {
  const out: Query[] = [];
  for (const d of loadDashboards()) {
    for (const p of d.panels) for (const t of p.targets ?? []) if (t.expr) out.push({ source: `${d.uid} panel "${p.title}"`, expr: t.expr });
    for (const v of d.templating.list) {
      const query = typeof v.query === "string" ? v.query : v.query?.query;
      const selector = query && /^label_values\((.+),\s*\w+\)$/.exec(query)?.[1];
      if (selector) out.push({ source: `${d.uid} variable $${v.name}`, expr: selector });
    }
  }
  return out;
}

export function ruleQueries(): Query[] {
  const file = parse(readFileSync(join(chartDir, "rules", "troupe-rules.yaml"), "utf8")) as {
    groups: { rules: { record?: string; alert?: string; expr: string }[] }[];
  };
  return file.groups.flatMap((g) => g.rules.map((r) => ({ source: `rule ${r.record ?? r.alert}`, expr: r.expr, record: r.record })));
}

/** Metric names of the vector selectors in `expr`. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  parser.parse(expr).iterate({
    enter: (node) => {
      const id = node.name === "VectorSelector" ? node.node.getChild("Identifier") : null;
      if (id) names.add(expr.slice(id.from, id.to));
    },
  });
  return [...names];
}
