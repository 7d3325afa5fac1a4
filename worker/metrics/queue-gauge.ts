import type { Gauge, Registry } from "prom-client";
import type { Broker, QueueStats } from "../broker.js";
import { getLogger } from "../logging.js";

/** How long a queue depth reading is reused, so that frequent scrapes do not hammer the broker. */
export const QUEUE_STATS_CACHE_MS = 2000;
const STATES = ["ready", "delayed", "in_flight", "dead"] as const;
const log = getLogger("metrics");

let source: { broker: Broker; queues: readonly string[] } | undefined;
let cached: { at: number; stats: QueueStats[] } | undefined;

/** Report the depth of these queues from now on (the Prometheus middleware calls this at worker boot). */
export function watchQueues(broker: Broker, queues: readonly string[]): void {
  source = { broker, queues };
  cached = undefined;
}

export function unwatchQueues(broker: Broker): void {
  if (source?.broker === broker) source = undefined;
}

async function readStats(): Promise<QueueStats[]> {
  if (!source) return [];
  if (cached && Date.now() - cached.at < QUEUE_STATS_CACHE_MS) return cached.stats;
  const { broker, queues } = source;
  const results = await Promise.allSettled(queues.map((q) => broker.queueStats(q)));
  const stats = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  for (const r of results) if (r.status === "rejected") log.warn("could not read queue depth for metrics", { err: r.reason });
  cached = { at: Date.now(), stats };
  return stats;
}

/**
 * Troupe's queue depth, read from the broker on scrape: `state` is ready | delayed | in_flight | dead. Every process
 * of a pod reports the same broker-wide numbers, so the cluster aggregate takes the maximum, not the sum.
 */
export function createQueueGauge(GaugeClass: typeof Gauge, registry: Registry): Gauge<"queue_name" | "state"> {
  return new GaugeClass({
    name: "troupe_queue_messages",
    help: "Messages in a queue by state, as the broker reports them.",
    labelNames: ["queue_name", "state"] as const,
    registers: [registry],
    aggregator: "max",
    async collect() {
      this.reset();
      for (const stats of await readStats()) {
        const values: Record<(typeof STATES)[number], number> = { ready: stats.ready, delayed: stats.delayed, in_flight: stats.inFlight, dead: stats.dead };
        for (const state of STATES) this.set({ queue_name: stats.queue, state }, values[state]);
      }
    },
  });
}
