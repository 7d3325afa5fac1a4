/** "Troupe / Workers": what the worker pods export (Dramatiq's metric names plus Troupe's queue gauge). */
import type { Dashboard } from "@grafana/schema";
import { dashboard, labelVariable, stat, target, timeseries } from "./grafana.js";

/** Delayed and retried messages are labelled with the delay queue "<queue>.DQ", as in Dramatiq. */
const MSG = `namespace=~"$namespace", queue_name=~"$queue(\\\\.DQ)?", actor_name=~"$actor"`;
const QUEUE = `namespace=~"$namespace", queue_name=~"$queue"`;
const RATE = "$__rate_interval";

const perActor = (metric: string) => target(`sum by (queue_name, actor_name) (rate(${metric}{${MSG}}[${RATE}]))`, "{{queue_name}} / {{actor_name}}");
/** Every worker pod reports the same broker-side depth, so take the max per queue, never the sum. */
const depth = (states: string) => `max by (queue_name, state) (troupe_queue_messages{${QUEUE}, state=~"${states}"})`;
const quantile = (q: number, by: string) =>
  `histogram_quantile(${q}, sum by (${by}) (rate(dramatiq_message_duration_milliseconds_bucket{${MSG}}[${RATE}])))`;

export function workersDashboard(): Dashboard {
  return dashboard({
    uid: "troupe-workers",
    title: "Troupe / Workers",
    description: "Throughput, errors, retries, dead letters, queue depth, latency and in-progress messages of Troupe (and Dramatiq) workers.",
    namespaceMetric: "dramatiq_messages_total",
    variables: [
      labelVariable("queue", "Queue", 'dramatiq_messages_total{namespace=~"$namespace"}', "queue_name"),
      labelVariable("actor", "Actor", 'dramatiq_messages_total{namespace=~"$namespace", queue_name=~"$queue"}', "actor_name"),
    ],
    rows: [
      {
        title: "Overview",
        panels: [
          stat("Processed / s", "Messages processed per second (succeeded or failed).", `sum(rate(dramatiq_messages_total{${MSG}}[${RATE}]))`, "ops"),
          stat(
            "Error ratio",
            "Share of processed messages whose actor raised.",
            `sum(rate(dramatiq_message_errors_total{${MSG}}[${RATE}])) / sum(rate(dramatiq_messages_total{${MSG}}[${RATE}]))`,
            "percentunit",
            [0.01, 0.1],
          ),
          stat("In progress", "Messages being processed right now.", `sum(dramatiq_messages_inprogress{${MSG}})`),
          stat("Dead letters", "Messages in the dead-letter queues of the selected queues.", `sum(${depth("dead")})`, "short", [1]),
        ],
      },
      {
        title: "Throughput",
        panels: [
          timeseries("Processed per actor", "Messages processed per second by queue and actor.", [perActor("dramatiq_messages_total")], { unit: "ops", stack: true }),
          timeseries(
            "Processed per queue",
            "Messages processed per second by queue.",
            [target(`sum by (queue_name) (rate(dramatiq_messages_total{${MSG}}[${RATE}]))`, "{{queue_name}}")],
            { unit: "ops", stack: true },
          ),
        ],
      },
      {
        title: "Errors, retries and dead letters",
        panels: [
          timeseries("Errors", "Messages whose actor raised, per second.", [perActor("dramatiq_message_errors_total")], { unit: "ops", w: 8 }),
          timeseries("Retries", "Retry publications per second (to the delay queue and their promotion back).", [perActor("dramatiq_message_retries_total")], {
            unit: "ops",
            w: 8,
          }),
          timeseries("Dead-lettered", "Messages rejected to the dead-letter queue per second.", [perActor("dramatiq_message_rejects_total")], { unit: "ops", w: 8 }),
        ],
      },
      {
        title: "Queues",
        panels: [
          timeseries("Queue depth", "Ready, delayed and in-flight (fetched, not yet acked) messages per queue, read from the broker.", [
            target(depth("ready|delayed|in_flight"), "{{queue_name}} {{state}}"),
          ]),
          timeseries("Dead-letter queue", "Messages kept in each queue's dead-letter queue.", [target(depth("dead"), "{{queue_name}}")]),
        ],
      },
      {
        title: "Latency and concurrency",
        panels: [
          timeseries(
            "Processing time",
            "p50 / p95 / p99 of the time actors take, from the duration histogram.",
            [target(quantile(0.5, "le"), "p50"), target(quantile(0.95, "le"), "p95"), target(quantile(0.99, "le"), "p99")],
            { unit: "ms", w: 8 },
          ),
          timeseries("p95 per actor", "95th percentile processing time by actor.", [target(quantile(0.95, "actor_name, le"), "{{actor_name}}")], { unit: "ms", w: 8 }),
          timeseries(
            "In progress",
            "Messages being processed, and delayed messages held in worker memory until their ETA.",
            [
              target(`sum by (actor_name) (dramatiq_messages_inprogress{${MSG}})`, "{{actor_name}} running"),
              target(`sum by (actor_name) (dramatiq_delayed_messages_inprogress{${MSG}})`, "{{actor_name}} delayed"),
            ],
            { w: 8 },
          ),
        ],
      },
    ],
  });
}
