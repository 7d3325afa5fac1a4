import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { escapeHtml } from "../../worker/console/html.js";
import { runScenario, type TraceResult } from "./scenario.js";
import type { Run } from "./simulate.js";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c"];

/**
 * `npm run bench -- scaling [--out DIR] [--seed N]`: every trace through Troupe, the HPA formula and KEDA, as a
 * table and a plot per trace. The seed draws the traces' arrival noise (default 1, the figures in docs/bench.md).
 */
export async function benchScaling(args: string[]): Promise<void> {
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = option("--out") ?? join("bench", "results");
  const seedText = option("--seed") ?? "1";
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got "${seedText}"`);
  const results = runScenario(seed);
  const table = scalingTable(results);
  await mkdir(out, { recursive: true });
  const lines = ["# Scaling simulation", "", table, ""];
  for (const { trace, runs } of results) {
    const file = `scaling-${trace.name}.svg`;
    await writeFile(join(out, file), plot(trace.title, runs));
    lines.push(`![${trace.name}](${file})`, "");
  }
  await writeFile(join(out, "scaling.md"), lines.join("\n"));
  console.log(table);
  console.log(`wrote ${join(out, "scaling.md")} and ${results.length} SVG plots`);
}

/** Replica-seconds and backlog-seconds per trace and scaler; the target is fewer replica-seconds than the HPA at no more backlog. */
export function scalingTable(results: TraceResult[]): string {
  const rows = ["| trace | scaler | replica-s | backlog-s | max pods | replica-s vs HPA | target |", "|---|---|---|---|---|---|---|"];
  for (const { trace, runs } of results) {
    const hpa = runs.find((r) => r.scaler.startsWith("HPA"))!;
    for (const run of runs) {
      const ratio = run.replicaSeconds / hpa.replicaSeconds;
      const met = run === hpa ? "" : run.replicaSeconds < hpa.replicaSeconds && run.backlogSeconds <= hpa.backlogSeconds ? "✓" : "✗";
      rows.push(`| ${trace.name} | ${run.scaler} | ${run.replicaSeconds.toLocaleString("en")} | ${run.backlogSeconds.toLocaleString("en")} | ${run.maxReplicas} | ${ratio.toFixed(2)}× | ${met} |`);
    }
  }
  return rows.join("\n");
}

/** Replicas (top) and waiting messages (bottom) over time, one line per scaler. */
function plot(title: string, runs: Run[]): string {
  const width = 900;
  const height = 200;
  const seconds = runs[0]!.replicas.length;
  // About one point per horizontal pixel: a day-long trace would otherwise write 100,000 points per line.
  const step = Math.max(1, Math.floor(seconds / 900));
  const panel = (values: (r: Run) => number[], top: number, label: string): string => {
    const max = Math.max(1, ...runs.flatMap((r) => values(r)));
    const x = (t: number) => 60 + (t / seconds) * (width - 80);
    const y = (v: number) => top + height - (v / max) * height;
    const lines = runs.map((run, i) => {
      const points = values(run).filter((_, t) => t % step === 0).map((v, k) => `${x(k * step).toFixed(1)},${y(v).toFixed(1)}`);
      return `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.2" points="${points.join(" ")}"/>`;
    });
    return [`<text x="4" y="${top + 12}" font-size="11">${label} (max ${max.toLocaleString("en")})</text>`, `<line x1="60" y1="${top + height}" x2="${width - 20}" y2="${top + height}" stroke="#999"/>`, ...lines].join("\n");
  };
  const legend = runs.map((run, i) => `<text x="${60 + i * 220}" y="${2 * height + 95}" font-size="12" fill="${COLORS[i % COLORS.length]}">${escapeHtml(run.scaler)}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${2 * height + 110}" font-family="sans-serif">`,
    `<text x="60" y="16" font-size="13">${escapeHtml(title)}</text>`,
    panel((r) => r.replicas, 30, "pods"),
    panel((r) => r.backlog, height + 60, "waiting messages"),
    ...legend,
    `<text x="${width - 200}" y="${2 * height + 95}" font-size="11">${seconds.toLocaleString("en")} s</text>`,
    "</svg>",
    "",
  ].join("\n");
}
