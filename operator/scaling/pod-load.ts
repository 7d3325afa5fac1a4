import { withTimeout } from "../brokers/connections.js";

/** The worker gauge of messages being processed now (Dramatiq's Prometheus middleware name). */
export const IN_PROGRESS_METRIC = "dramatiq_messages_inprogress";
/** The worker counter of messages processed. */
export const PROCESSED_METRIC = "dramatiq_messages_total";

/** What one worker (pod or local process) reports about its work. */
export interface WorkerLoad {
  inFlight: number;
  /** In-flight messages per canonical queue (the gauge's `queue_name` label). */
  inFlightByQueue: Record<string, number>;
  processed: number;
}

/** Sum of every series of a metric in a Prometheus text exposition; undefined when the metric is absent. */
export function sumMetric(text: string, name: string): number | undefined {
  const series = metricSeries(text, name);
  return series.length ? series.reduce((total, s) => total + s.value, 0) : undefined;
}

/** A metric's series summed by the value of one label (series without it are left out). */
export function sumMetricBy(text: string, name: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const s of metricSeries(text, name)) {
    const key = s.labels[label];
    if (key !== undefined) sums[key] = (sums[key] ?? 0) + s.value;
  }
  return sums;
}

function metricSeries(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const series: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const labelText = /^\{([^}]*)\}/.exec(rest)?.[1] ?? "";
    const value = Number(rest.replace(/^\{[^}]*\}/, "").trim().split(/\s+/)[0]);
    if (!Number.isFinite(value)) continue;
    const labels: Record<string, string> = {};
    for (const m of labelText.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_e, c: string) => (c === "n" ? "\n" : c));
    series.push({ labels, value });
  }
  return series;
}

/** A worker's load from its `/metrics`; undefined when it cannot be read. */
export async function scrapeLoad(url: string, timeoutMs = 1000): Promise<WorkerLoad | undefined> {
  try {
    const res = await withTimeout(fetch(url), timeoutMs, `scraping ${url}`);
    if (!res.ok) return undefined;
    const text = await res.text();
    return { inFlight: sumMetric(text, IN_PROGRESS_METRIC) ?? 0, inFlightByQueue: sumMetricBy(text, IN_PROGRESS_METRIC, "queue_name"), processed: sumMetric(text, PROCESSED_METRIC) ?? 0 };
  } catch {
    return undefined;
  }
}

/**
 * The counters of the pods that answered: messages processed so far and running now, summed, and how many pods
 * they come from (the rate measure compares sums only between polls read from as many pods). Undefined when none
 * answered.
 */
export function answeredCounters(loads: readonly (WorkerLoad | undefined)[]): { processed: number; running: number; reportingPods: number } | undefined {
  const known = loads.filter((l): l is WorkerLoad => l !== undefined);
  if (known.length === 0) return undefined;
  return { processed: known.reduce((sum, l) => sum + l.processed, 0), running: known.reduce((sum, l) => sum + l.inFlight, 0), reportingPods: known.length };
}
