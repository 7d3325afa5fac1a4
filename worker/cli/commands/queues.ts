import type { QueueStats } from "../../broker.js";
import { createBroker } from "../../setup.js";
import { listOption, parse, sharedBrokerUrlOption } from "../args.js";
import type { Command } from "../command.js";

const help = `Usage: troupe queues [options]

Show, per queue, the messages ready, delayed, in flight (fetched, not yet acked) and dead-lettered, read from the
broker (the operator measures queue depth with the same code).

Options:
  -Q, --queues Q[,Q...]  queues to show (default: every queue found on the broker)
  -b, --broker URL       broker URL (default: $TROUPE_BROKER_URL)
      --json             print JSON instead of a table`;

export function formatQueueTable(rows: QueueStats[]): string {
  const header = ["QUEUE", "READY", "DELAYED", "IN-FLIGHT", "DEAD"];
  const cells = rows.map((r) => [r.queue, String(r.ready), String(r.delayed), String(r.inFlight), String(r.dead)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  return [line(header), ...cells.map(line)].join("\n");
}

const command: Command = {
  summary: "show ready / delayed / in-flight / dead-lettered counts per queue",
  help,
  async run(argv) {
    const { values } = parse(argv, {
      queues: { type: "string", short: "Q", multiple: true },
      broker: { type: "string", short: "b" },
      json: { type: "boolean" },
    }, false);
    const broker = createBroker(sharedBrokerUrlOption(values.broker, "troupe queues"));
    try {
      await broker.connect();
      const named = listOption(values.queues);
      const blindSpots = broker.statsBlindSpots();
      const queues = named.length ? named : await broker.listQueues();
      if (queues.length === 0 && blindSpots) {
        console.error(`troupe queues: no queue to show: name them with -Q, or let the broker list them: ${blindSpots}`);
        return 2;
      }
      const rows = await Promise.all(queues.map((q) => broker.queueStats(q)));
      console.log(values.json ? JSON.stringify(rows, null, 2) : formatQueueTable(rows));
      if (blindSpots) console.error(`troupe queues: warning: ${blindSpots}`);
      return 0;
    } finally {
      await broker.close();
    }
  },
};
export default command;
