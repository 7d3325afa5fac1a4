import { withTimeout } from "../brokers/connections.js";

/** The worker gauge of messages being processed now (Dramatiq's Prometheus middleware name). */
export const IN_PROGRESS_METRIC = "dramatiq_messages_inprogress";

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

/** Messages a worker pod is running now, from its `/metrics`; undefined when it cannot be read. */
export async function scrapeInFlight(url: string, timeoutMs = 1000): Promise<number | undefined> {
  try {
    const res = await withTimeout(fetch(url), timeoutMs, `scraping ${url}`);
    if (!res.ok) return undefined;
    return sumMetric(await res.text(), IN_PROGRESS_METRIC) ?? 0;
  } catch {
    return undefined;
  }
}
