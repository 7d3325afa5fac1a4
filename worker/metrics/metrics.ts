import type * as PromClient from "prom-client";
import { lazyRequire } from "../lazy.js";
import { createQueueGauge } from "./queue-gauge.js";

export const promClient = lazyRequire<typeof PromClient>("prom-client");

export const DURATION_BUCKETS = [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 30000, 60000, 600000, 900000];

export type MessageLabels = { queue_name: string; actor_name: string };

/**
 * Per-message figures of one queue and actor, counted here as plain numbers and handed to prom-client when it
 * collects (on scrape): a message then costs no label hashing, only its duration is observed as it ends.
 */
export interface MessageTally {
  readonly labels: MessageLabels;
  inProgress: number;
  processed: number;
  errors: number;
  /** What the counters were last given, so a collect adds only what is new (and a registry reset starts over). */
  reported: { processed: number; errors: number };
}

const tallies = new Map<string, Map<string, MessageTally>>();

export function messageTally(queueName: string, actorName: string): MessageTally {
  let byActor = tallies.get(queueName);
  if (!byActor) tallies.set(queueName, (byActor = new Map()));
  let tally = byActor.get(actorName);
  if (!tally) {
    tally = { labels: { queue_name: queueName, actor_name: actorName }, inProgress: 0, processed: 0, errors: 0, reported: { processed: 0, errors: 0 } };
    byActor.set(actorName, tally);
  }
  return tally;
}

function* allTallies(): Generator<MessageTally> {
  for (const byActor of tallies.values()) yield* byActor.values();
}

/** A counter's `collect`: add what each tally counted under `count` since the counter last collected. */
function addCounted(count: keyof MessageTally["reported"]) {
  return function (this: PromClient.Counter<keyof MessageLabels>): void {
    for (const tally of allTallies()) {
      if (tally[count] > tally.reported[count]) this.inc(tally.labels, tally[count] - tally.reported[count]);
      tally.reported[count] = tally[count];
    }
  };
}

function createWorkerMetrics() {
  const { Counter, Gauge, Histogram, Registry } = promClient();
  /** The registry every Troupe metric of this process lives in (served, or aggregated across processes). */
  const registry = new Registry();
  const labelNames = ["queue_name", "actor_name"] as const;
  const registers = [registry];
  return {
    registry,
    /** Dramatiq's names, labels and buckets, so dashboards built for Dramatiq (Grafana 3692) work unchanged. */
    messagesTotal: new Counter({
      name: "dramatiq_messages_total",
      help: "The total number of messages processed.",
      labelNames,
      registers,
      collect: addCounted("processed"),
    }),
    messageErrors: new Counter({
      name: "dramatiq_message_errors_total",
      help: "The total number of errored messages.",
      labelNames,
      registers,
      collect: addCounted("errors"),
    }),
    messageRetries: new Counter({ name: "dramatiq_message_retries_total", help: "The total number of retried messages.", labelNames, registers }),
    messageRejects: new Counter({ name: "dramatiq_message_rejects_total", help: "The total number of dead lettered messages.", labelNames, registers }),
    messagesInProgress: new Gauge({
      name: "dramatiq_messages_inprogress",
      help: "The number of messages in progress.",
      labelNames,
      registers,
      collect() {
        for (const tally of allTallies()) this.set(tally.labels, tally.inProgress);
      },
    }),
    delayedMessagesInProgress: new Gauge({ name: "dramatiq_delayed_messages_inprogress", help: "The number of delayed messages in memory.", labelNames, registers }),
    messageDuration: new Histogram({
      name: "dramatiq_message_duration_milliseconds",
      help: "The time spent processing messages.",
      labelNames,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    queueMessages: createQueueGauge(Gauge, registry),
    /** A result lost to its backend (down, or the value too large); each is also logged with its message id. */
    resultStoreFailures: new Counter({
      name: "troupe_result_store_failures_total",
      help: "Results (values or failure records) the results backend did not store.",
      labelNames,
      registers,
    }),
    /** Counted by the process that won each tick, so the sum over a fleet is the number of ticks (docs/schedules.md). */
    scheduleFires: new Counter({
      name: "troupe_schedule_fires_total",
      help: "Ticks of periodic schedules enqueued (by the process elected for each tick).",
      labelNames: ["schedule", "actor_name"] as const,
      registers,
    }),
    scheduleMisfires: new Counter({
      name: "troupe_schedule_misfires_total",
      help: "Ticks of periodic schedules that no worker fired (none was up, or it was reached too late).",
      labelNames: ["schedule", "actor_name"] as const,
      registers,
    }),
  };
}

let metrics: ReturnType<typeof createWorkerMetrics> | undefined;

/** This process's metrics, created (and prom-client loaded) on first use. */
export function workerMetrics(): ReturnType<typeof createWorkerMetrics> {
  metrics ??= createWorkerMetrics();
  return metrics;
}

export function getMetricsRegistry(): PromClient.Registry {
  return workerMetrics().registry;
}
