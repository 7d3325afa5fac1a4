import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The registry every Troupe metric of this process lives in (served, or aggregated across processes). */
export const metricsRegistry = new Registry();

const labelNames = ["queue_name", "actor_name"] as const;
const registers = [metricsRegistry];

/** Dramatiq's names, labels and buckets, so dashboards built for Dramatiq (Grafana 3692) work unchanged. */
export const messagesTotal = new Counter({ name: "dramatiq_messages_total", help: "The total number of messages processed.", labelNames, registers });
export const messageErrors = new Counter({ name: "dramatiq_message_errors_total", help: "The total number of errored messages.", labelNames, registers });
export const messageRetries = new Counter({ name: "dramatiq_message_retries_total", help: "The total number of retried messages.", labelNames, registers });
export const messageRejects = new Counter({ name: "dramatiq_message_rejects_total", help: "The total number of dead lettered messages.", labelNames, registers });
export const messagesInProgress = new Gauge({ name: "dramatiq_messages_inprogress", help: "The number of messages in progress.", labelNames, registers });
export const delayedMessagesInProgress = new Gauge({
  name: "dramatiq_delayed_messages_inprogress",
  help: "The number of delayed messages in memory.",
  labelNames,
  registers,
});
export const DURATION_BUCKETS = [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 30000, 60000, 600000, 900000];
export const messageDuration = new Histogram({
  name: "dramatiq_message_duration_milliseconds",
  help: "The time spent processing messages.",
  labelNames,
  buckets: DURATION_BUCKETS,
  registers,
});
