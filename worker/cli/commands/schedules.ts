import type { Broker } from "../../broker.js";
import { iso, scheduleRows, type ScheduleRow } from "../../schedules/listing.js";
import { triggerMessage } from "../../schedules/schedule.js";
import { scheduleStoreFor, type ScheduleStore } from "../../schedules/store.js";
import { createBroker, setBroker } from "../../setup.js";
import { intOption, parse, sharedBrokerUrlOption } from "../args.js";
import { UsageError, type Command } from "../command.js";
import { formatAge } from "../duration.js";

const help = `Usage: troupe schedules [list] [options]
       troupe schedules pause NAME... | resume NAME... | trigger NAME... | forget NAME... [options]

Periodic schedules as the workers keep them in the broker's store (each worker process writes the schedules it
runs when it starts), so this works from any machine that reaches the broker, without the actors' code.

  list      every schedule: actor, queue, when, the next fire times, the last fired tick (by whom, how late),
            and whether it is paused (the default subcommand)
  pause     fire no tick of NAME until it is resumed, on every worker at once; paused ticks are not fired late
            after the resume and do not count as misfires
  resume    fire NAME again from its next tick
  trigger   enqueue one message of NAME now, with its arguments, outside its ticks (the ticks are unchanged)
  forget    drop what the store keeps of NAME (a schedule removed from the code); a worker still declaring it
            writes it back when it starts

Options:
  -b, --broker URL   broker URL (default: $TROUPE_BROKER_URL). On RabbitMQ the store is the Redis of
                     $TROUPE_RATE_LIMITER_URL (else $TROUPE_RESULTS_URL), as for the workers; on Redis the broker's,
                     in namespace $TROUPE_REDIS_NAMESPACE
  -n, --next N       next fire times to show per schedule (default 1)
      --json         print JSON`;

const SUBCOMMANDS = ["list", "pause", "resume", "trigger", "forget"] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

export function formatScheduleTable(rows: ScheduleRow[], now = Date.now()): string {
  const header = ["NAME", "ACTOR", "QUEUE", "WHEN", "NEXT", "LAST FIRED", "STATE"];
  const cells = rows.map((r) => [
    r.name,
    r.actor,
    r.queue,
    r.when,
    r.next.map((at) => `${at} (in ${formatAge(Date.parse(at) - now)})`).join(", ") || "never",
    r.lastFired ? `${iso(r.lastFired.tick)} (${formatAge(now - r.lastFired.tick)} ago, +${r.lastFired.lateMs} ms, ${r.lastFired.by})` : "-",
    r.paused ? `paused ${formatAge(now - r.paused.since)} ago by ${r.paused.by}` : "active",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...cells.map(line)].join("\n");
}

async function run(sub: Subcommand, names: string[], values: { json?: boolean; next?: string }, store: ScheduleStore, broker: Broker): Promise<number> {
  if (sub === "list") {
    if (names.length) throw new UsageError("list takes no positional arguments");
    const [definitions, records, paused] = await Promise.all([store.definitions(), store.records(), store.paused()]);
    const rows = scheduleRows(definitions, records, paused, intOption(values.next, "next", 1, 0, 1000));
    if (values.json) console.log(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) console.error(`troupe schedules: no schedule in ${store.description}: no worker with schedules has started against it`);
    else console.log(formatScheduleTable(rows));
    return 0;
  }
  if (names.length === 0) throw new UsageError(`${sub} needs the name of a schedule (troupe schedules lists them)`);
  const definitions = await store.definitions();
  const unknown = names.filter((name) => !definitions.has(name));
  // forget is also how a record left without its definition goes, so it accepts any name.
  if (unknown.length && sub !== "forget") {
    console.error(`troupe schedules: no schedule named ${unknown.map((n) => `"${n}"`).join(", ")} in ${store.description}`);
    return 1;
  }
  for (const name of names) {
    if (sub === "pause" || sub === "resume") {
      const changed = await store.setPaused(name, sub === "pause");
      console.log(`${name}: ${changed ? (sub === "pause" ? "paused" : "resumed") : sub === "pause" ? "already paused" : "was not paused"}`);
    } else if (sub === "forget") {
      console.log(`${name}: ${(await store.forget(name)) ? "forgotten" : "unknown"}`);
    } else {
      console.log((await broker.enqueue(triggerMessage(definitions.get(name)!))).encode());
    }
  }
  return 0;
}

const command: Command = {
  summary: "list, pause, resume or trigger periodic schedules",
  help,
  async run(argv) {
    const first = argv[0];
    const sub: Subcommand = first === undefined || first.startsWith("-") ? "list" : (first as Subcommand);
    if (!SUBCOMMANDS.includes(sub)) throw new UsageError(`unknown subcommand "${first}": use ${SUBCOMMANDS.join(", ")}`);
    const { values, positionals } = parse(sub === first ? argv.slice(1) : argv, {
      broker: { type: "string", short: "b" },
      next: { type: "string", short: "n" },
      json: { type: "boolean" },
    });
    // The process's broker, so that middleware resolve what a triggered message needs (a results backend).
    const broker = setBroker(createBroker(sharedBrokerUrlOption(values.broker, "troupe schedules")));
    const store = scheduleStoreFor(broker);
    try {
      await store.connect();
      return await run(sub, positionals, values, store, broker);
    } finally {
      await store.close();
      await broker.close();
    }
  },
};
export default command;
