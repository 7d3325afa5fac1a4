import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DASHBOARD_DIR, renderDashboards } from "../../dashboards/build.js";
import { dashboardQueries, loadDashboards, metricNames, substituteVariables } from "./promql.js";
import { promtool, repoRoot } from "./tools.js";

test("the committed dashboard JSON is what dashboards/*.ts generate (run node dist/dashboards/build.js)", () => {
  for (const [name, json] of renderDashboards()) {
    assert.equal(readFileSync(join(repoRoot, DASHBOARD_DIR, name), "utf8"), json, `${name} is stale`);
  }
});

test("panels have unique ids and fit the 24-column grid", () => {
  for (const d of loadDashboards() as unknown as { uid: string; panels: { id: number; gridPos: { x: number; w: number } }[] }[]) {
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${d.uid}: duplicate panel ids`);
    for (const p of d.panels) assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${d.uid} panel ${p.id}`);
  }
});

test("promtool parses every panel's PromQL (as recording rules, Grafana variables replaced)", () => {
  const queries = dashboardQueries();
  const rules = queries.map((q, i) => ({ record: `dashboard:query:${i}`, expr: substituteVariables(q.expr) }));
  const dir = mkdtempSync(join(tmpdir(), "troupe-dash-"));
  try {
    const file = join(dir, "dashboard-queries.rules.json");
    writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard-queries", rules }] }));
    const r = promtool(["check", "rules", file]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the dashboards show every worker and operator metric the brief asks for", () => {
  const used = new Set(dashboardQueries().flatMap((q) => metricNames(substituteVariables(q.expr))));
  for (const metric of [
    "dramatiq_messages_total",
    "dramatiq_message_errors_total",
    "dramatiq_message_retries_total",
    "dramatiq_message_rejects_total",
    "dramatiq_messages_inprogress",
    "dramatiq_delayed_messages_inprogress",
    "dramatiq_message_duration_milliseconds_bucket",
    "troupe_queue_messages",
    "troupe_workerpool_replicas",
    "troupe_workerpool_desired_replicas",
    "troupe_workerpool_max_replicas",
    "troupe_workerpool_queue_depth",
    "troupe_operator_reconcile_total",
    "troupe_operator_reconcile_errors_total",
    "troupe_operator_reconcile_duration_seconds_bucket",
  ]) {
    assert.ok(used.has(metric), `no panel reads ${metric}`);
  }
});
