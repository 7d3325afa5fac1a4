/**
 * Writes the Grafana dashboards into the Helm chart (helm/troupe/dashboards/), the one place their JSON lives.
 * Run after a build: `node dist/dashboards/build.js`. test/shipping checks that the committed JSON matches.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { operatorDashboard } from "./operator.js";
import { workersDashboard } from "./workers.js";

export const DASHBOARD_DIR = join("helm", "troupe", "dashboards");

/** File name → file content, exactly as committed. */
export function renderDashboards(): Map<string, string> {
  return new Map(
    [workersDashboard(), operatorDashboard()].map((d) => [`${d.uid}.json`, `${JSON.stringify(d, null, 2)}\n`]),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  for (const [name, json] of renderDashboards()) writeFileSync(join(root, DASHBOARD_DIR, name), json);
}
