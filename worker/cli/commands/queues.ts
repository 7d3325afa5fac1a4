import { setTimeout as sleep } from "node:timers/promises";
import type { QueueStats } from "../../broker.js";
import { QueueMonitor, type QueueRow, type Snapshot } from "../../console/monitor.js";
import { createBroker } from "../../setup.js";
import { listOption, parse, sharedBrokerUrlOption } from "../args.js";
import type { Command } from "../command.js";
import { durationOption } from "../duration.js";

const help = `Usage: troupe queues [options]

Show, per queue, the messages ready, delayed, in flight (fetched, not yet acked) and dead-lettered, read from the
broker (the operator measures queue depth with the same code).

Options:
  -Q, --queues Q[,Q...]  queues to show (default: every queue found on the broker)
  -b, --broker URL       broker URL (default: $TROUPE_BROKER_URL)
      --json             print JSON instead of a table (with --watch: one JSON object a line per sample)
  -w, --watch            keep sampling: a table redrawn in place on a terminal, JSON lines otherwise, with
                         throughput per queue (DONE/s: acks, RabbitMQ with its management API only; DEAD/s)
      --interval D       time between samples with --watch (default 2s; 90s, 500ms, ...)`;

export function formatQueueTable(rows: (QueueStats & QueueRow)[], withRates = false): string {
  const header = ["QUEUE", "READY", "DELAYED", "IN-FLIGHT", "DEAD", ...(withRates ? ["DONE/s", "DEAD/s"] : [])];
  const cells = rows.map((r) => [
    r.queue,
    String(r.ready),
    String(r.delayed),
    String(r.inFlight),
    String(r.dead),
    ...(withRates ? [rate(r.donePerSec), rate(r.deadPerSec)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  return [line(header), ...cells.map(line)].join("\n");
}

/** A rate for the table: "-" where it cannot be measured (yet). */
function rate(value: number | undefined): string {
  if (value === undefined) return "-";
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** The whole screen of one watch sample: a header line, the table and what the broker cannot see. */
export function formatWatchScreen(snapshot: Snapshot, url: string, interval: number): string {
  const lines = [`troupe queues — ${url} — every ${interval / 1000}s — ${new Date(snapshot.at).toISOString()} (Ctrl-C to stop)`, "", formatQueueTable(snapshot.queues, true)];
  if (snapshot.queues.length > 0 && snapshot.queues.every((q) => q.donePerSec === undefined) && snapshot.queues.some((q) => q.deadPerSec !== undefined)) {
    lines.push("", "DONE/s: this broker counts no acks (RabbitMQ's management API does; the Redis layout keeps no count)");
  }
  if (snapshot.blindSpots) lines.push("", `warning: ${snapshot.blindSpots}`);
  return lines.join("\n");
}

const command: Command = {
  summary: "show ready / delayed / in-flight / dead-lettered counts per queue",
  help,
  async run(argv) {
    const { values } = parse(argv, {
      queues: { type: "string", short: "Q", multiple: true },
      broker: { type: "string", short: "b" },
      json: { type: "boolean" },
      watch: { type: "boolean", short: "w" },
      interval: { type: "string" },
    }, false);
    const interval = durationOption(values.interval, "interval") ?? 2000;
    const broker = createBroker(sharedBrokerUrlOption(values.broker, "troupe queues"));
    try {
      await broker.connect();
      const named = listOption(values.queues);
      const blindSpots = broker.statsBlindSpots();
      if (named.length === 0 && blindSpots && (await broker.listQueues()).length === 0) {
        console.error(`troupe queues: no queue to show: name them with -Q, or let the broker list them: ${blindSpots}`);
        return 2;
      }
      const monitor = new QueueMonitor(broker, named);
      try {
        if (values.watch) return await watch(monitor, Math.max(100, interval), values.json === true || !process.stdout.isTTY, broker.displayUrl);
        const { queues } = await monitor.sample();
        console.log(values.json ? JSON.stringify(queues, null, 2) : formatQueueTable(queues));
        if (blindSpots) console.error(`troupe queues: warning: ${blindSpots}`);
        return 0;
      } finally {
        await monitor.close();
      }
    } finally {
      await broker.close();
    }
  },
};

/** Sample until SIGINT or SIGTERM; each sample is drawn over the last (terminal) or printed as a JSON line. */
async function watch(monitor: QueueMonitor, interval: number, json: boolean, url: string): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    while (!stop.signal.aborted) {
      const snapshot = await monitor.sample();
      if (json) process.stdout.write(`${JSON.stringify(snapshot)}\n`);
      // Home and clear-to-end rather than clearing the screen first, so the table does not flicker.
      else process.stdout.write(`\x1b[H${formatWatchScreen(snapshot, url, interval).replace(/\n/g, "\x1b[K\n")}\x1b[K\n\x1b[J`);
      await sleep(interval, undefined, { signal: stop.signal }).catch(() => undefined);
    }
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
export default command;
