/**
 * Small typed builders for Grafana dashboard JSON (schema of Grafana 10/11, checked against @grafana/schema), so the
 * dashboards are generated from one description instead of hand-edited JSON that drifts.
 */
import { DashboardCursorSync, ThresholdsMode, VariableHide, VariableRefresh, VariableSort } from "@grafana/schema";
import type { Dashboard, DataSourceRef, Panel, RowPanel, Threshold, VariableModel } from "@grafana/schema";

const DATASOURCE: DataSourceRef = { type: "prometheus", uid: "${datasource}" };
const WIDTH = 24;

export interface Target {
  expr: string;
  legend: string;
}

/** A panel before layout: its width and height in grid units, the rest as Grafana wants it. */
export interface PanelSpec {
  w: number;
  h: number;
  panel: Omit<Panel, "gridPos" | "id">;
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  /** the metric whose `namespace` label values fill the namespace variable every dashboard has */
  namespaceMetric: string;
  /** variables after data source and namespace */
  variables: VariableModel[];
  rows: RowSpec[];
}

export function target(expr: string, legend = ""): Target {
  return { expr, legend };
}

function targets(list: Target[]): Record<string, unknown>[] {
  return list.map((t, i) => ({
    refId: String.fromCharCode(65 + i),
    datasource: DATASOURCE,
    expr: t.expr,
    legendFormat: t.legend,
    range: true,
  }));
}

export interface TimeseriesOptions {
  unit?: string;
  w?: number;
  h?: number;
  stack?: boolean;
}

export function timeseries(title: string, description: string, list: Target[], opts: TimeseriesOptions = {}): PanelSpec {
  return {
    w: opts.w ?? 12,
    h: opts.h ?? 8,
    panel: {
      type: "timeseries",
      title,
      description,
      datasource: DATASOURCE,
      targets: targets(list),
      fieldConfig: {
        defaults: {
          unit: opts.unit ?? "short",
          custom: { drawStyle: "line", fillOpacity: opts.stack ? 30 : 10, stacking: { mode: opts.stack ? "normal" : "none", group: "A" } },
        },
        overrides: [],
      },
      options: { legend: { displayMode: "table", placement: "bottom", showLegend: true, calcs: ["lastNotNull", "max"] }, tooltip: { mode: "multi", sort: "desc" } },
    },
  };
}

export function stat(title: string, description: string, expr: string, unit = "short", thresholds?: number[]): PanelSpec {
  const steps: Threshold[] = [{ color: "green", value: null }, ...(thresholds ?? []).map((value, i) => ({ color: i === 0 ? "orange" : "red", value }))];
  return {
    w: 6,
    h: 4,
    panel: {
      type: "stat",
      title,
      description,
      datasource: DATASOURCE,
      targets: targets([target(expr)]),
      fieldConfig: { defaults: { unit, thresholds: { mode: ThresholdsMode.Absolute, steps } }, overrides: [] },
      options: { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area", textMode: "auto" },
    },
  };
}

function datasourceVariable(): VariableModel {
  return { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", hide: VariableHide.dontHide };
}

/** A multi-value variable over a label's values; "All" matches series without the label too. */
export function labelVariable(name: string, label: string, metric: string, labelName: string): VariableModel {
  return {
    name,
    label,
    type: "query",
    datasource: DATASOURCE,
    query: { query: `label_values(${metric}, ${labelName})`, refId: `${name}-values` },
    refresh: VariableRefresh.onTimeRangeChanged,
    multi: true,
    includeAll: true,
    allValue: ".*",
    current: { text: "All", value: "$__all" },
    sort: VariableSort.alphabeticalAsc,
  };
}

/** Lays the rows out top to bottom, panels left to right wrapping at the grid width, and numbers every panel. */
export function dashboard(spec: DashboardSpec): Dashboard {
  const panels: (Panel | RowPanel)[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({ type: "row", id: id++, title: row.title, collapsed: false, gridPos: { x: 0, y: y++, w: WIDTH, h: 1 }, panels: [] });
    let x = 0;
    let rowHeight = 0;
    for (const { w, h, panel } of row.panels) {
      if (x + w > WIDTH) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push({ ...panel, id: id++, gridPos: { x, y, w, h } });
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ["troupe"],
    editable: true,
    graphTooltip: DashboardCursorSync.Crosshair,
    schemaVersion: 39,
    version: 1,
    time: { from: "now-1h", to: "now" },
    timezone: "browser",
    refresh: "30s",
    annotations: { list: [] },
    links: [],
    templating: { list: [datasourceVariable(), labelVariable("namespace", "Namespace", spec.namespaceMetric, "namespace"), ...spec.variables] },
    panels,
  };
}
