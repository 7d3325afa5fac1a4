import { withTimeout } from "../brokers/connections.js";

/** The worker gauge of messages being processed now (Dramatiq's Prometheus middleware name). */
export const IN_PROGRESS_METRIC = "dramatiq_messages_inprogress";
/** The worker counter of messages processed. */
export const PROCESSED_METRIC = "dramatiq_messages_total";

/** What one worker (pod or local process) reports about its work. */
export interface WorkerLoad {
  inFlight: number;
  processed: number;
}

/** Sum of every series of a metric in a Prometheus text exposition; undefined when the metric is absent. */
export function sumMetric(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const value = Number(rest.replace(/^\{[^}]*\}/, "").trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** A worker's load from its `/metrics`; undefined when it cannot be read. */
export async function scrapeLoad(url: string, timeoutMs = 1000): Promise<WorkerLoad | undefined> {
  try {
    const res = await withTimeout(fetch(url), timeoutMs, `scraping ${url}`);
    if (!res.ok) return undefined;
    const text = await res.text();
    return { inFlight: sumMetric(text, IN_PROGRESS_METRIC) ?? 0, processed: sumMetric(text, PROCESSED_METRIC) ?? 0 };
  } catch {
    return undefined;
  }
}

/**
 * Messages processed by the whole pool so far, or undefined unless every worker answered: a sum missing a worker
 * would read as a drop and spoil the throughput measure.
 */
export function totalProcessed(loads: readonly (WorkerLoad | undefined)[]): number | undefined {
  if (loads.length === 0 || loads.some((l) => l === undefined)) return undefined;
  return loads.reduce((sum, l) => sum + l!.processed, 0);
}
