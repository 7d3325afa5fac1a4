import { createInterface } from "node:readline/promises";
import type { Broker } from "../../broker.js";
import { createBroker } from "../../setup.js";
import { deadLetterStore } from "../../dead-letters/store.js";
import { letterJson, type DeadLetterEntry, type DeadLetterFilter, type DeadLetterStore } from "../../dead-letters/types.js";
import { qName } from "../../queues.js";
import { intOption, numberOption, parse, sharedBrokerUrlOption } from "../args.js";
import { UsageError, type Command } from "../command.js";
import { durationOption, formatAge } from "../duration.js";
import { ProgressBar } from "../progress-bar.js";

const common = `  -Q, --queue Q          the queue whose dead letters (Q.XQ) to use (default: default)
  -b, --broker URL       broker URL (default: $TROUPE_BROKER_URL)`;
const filters = `      --actor NAME       only letters of this actor
      --reason TEXT      only letters whose reason (else body) contains TEXT, case-insensitively
      --older-than AGE   only letters dead for at least AGE (90s, 15m, 2h, 7d)`;

const HELP: Record<string, string> = {
  list: `Usage: troupe dead-letters list [options]

List dead letters, newest first, a page at a time.

Options:
${common}
${filters}
      --limit N          letters per page (default 20)
      --offset N         skip the first N matching letters
      --cursor C         continue where the previous page stopped (it prints "next: C")
      --json             print the page as JSON`,
  show: `Usage: troupe dead-letters show ID [options]

Print one dead letter whole: actor, args, kwargs, options (retries, traceback), reason, when it died.
ID is the id 'list' prints (on Redis the redis_message_id; a message_id is found too).

Options:
${common}
      --json             print JSON`,
  requeue: `Usage: troupe dead-letters requeue [ID...] [options]

Put dead letters back on the queue they came from (Q, or Q.DQ for one that died delayed): the ids given, or
every letter matching the filters (--all with no filter: every letter). The stored body is written back as read,
so a message keeps its retry count; --reset-retries gives it its retries again. Redis moves each batch in one
atomic script; RabbitMQ acks a dead letter only after the broker confirmed its copy (a crash may duplicate, never
lose).

Options:
${common}
${filters}
      --all              requeue every letter when no id or filter is given
      --rate N           at most N letters per second (default: unbounded)
      --reset-retries    set options.retries to 0 (the body is re-encoded)
      --json             print the result as JSON`,
  purge: `Usage: troupe dead-letters purge [ID...] [options]

Delete dead letters: the ids given, those matching the filters, or all of them. Asks first unless --yes.

Options:
${common}
${filters}
  -y, --yes              do not ask for confirmation`,
};

const help = `Usage: troupe dead-letters <list|show|requeue|purge> [options]

See and repair dead-lettered messages (Q.XQ) on Redis or RabbitMQ, Troupe's or a Python Dramatiq fleet's.

  list      page through dead letters (filters: --actor, --reason, --older-than)
  show      print one dead letter whole
  requeue   put dead letters back on their queue, at a bounded rate (--rate N)
  purge     delete dead letters (asks unless --yes)

Run 'troupe dead-letters <subcommand> --help' for its options.`;

const OPTIONS = {
  queue: { type: "string", short: "Q" },
  broker: { type: "string", short: "b" },
  actor: { type: "string" },
  reason: { type: "string" },
  "older-than": { type: "string" },
  limit: { type: "string" },
  offset: { type: "string" },
  cursor: { type: "string" },
  json: { type: "boolean" },
  all: { type: "boolean" },
  rate: { type: "string" },
  "reset-retries": { type: "boolean" },
  yes: { type: "boolean", short: "y" },
} as const;

type Values = ReturnType<typeof parse<typeof OPTIONS>>["values"];

function filterOf(values: Values): DeadLetterFilter | undefined {
  const filter: DeadLetterFilter = {};
  if (values.actor !== undefined) filter.actor = values.actor;
  if (values.reason !== undefined) filter.reason = values.reason;
  const olderThan = durationOption(values["older-than"], "older-than");
  if (olderThan !== undefined) filter.olderThan = olderThan;
  return Object.keys(filter).length ? filter : undefined;
}

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

export function formatLetterTable(letters: DeadLetterEntry[], now = Date.now()): string {
  const header = ["ID", "ACTOR", "AGE", "RETRIES", "REASON"];
  const rows = letters.map((e) => [
    e.id,
    e.message?.actorName ?? "(undecodable)",
    e.deadAt === undefined ? "?" : formatAge(now - e.deadAt),
    String(e.message?.options.retries ?? 0),
    oneLine(e.reason ?? "", 60),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

function formatLetter(entry: DeadLetterEntry): string {
  const m = entry.message;
  const lines = [`id:        ${entry.id}`, `dead at:   ${entry.deadAt === undefined ? "unknown" : new Date(entry.deadAt).toISOString()}`, `reason:    ${entry.reason ?? "(none recorded)"}`];
  if (!m) return [...lines, "body (does not decode as a Dramatiq message):", entry.raw].join("\n");
  lines.push(
    `actor:     ${m.actorName}`,
    `queue:     ${m.queueName}`,
    `message:   ${m.messageId} (sent ${new Date(m.messageTimestamp).toISOString()})`,
    `retries:   ${String(m.options.retries ?? 0)}`,
    `args:      ${JSON.stringify(m.args)}`,
    `kwargs:    ${JSON.stringify(m.kwargs)}`,
    `options:   ${JSON.stringify(m.options, null, 2).replace(/\n/g, "\n           ")}`,
  );
  const traceback = m.options.traceback;
  if (typeof traceback === "string") lines.push("traceback:", traceback);
  return lines.join("\n");
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError("purge needs --yes when stdin is not a terminal");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

async function run(sub: string, ids: string[], values: Values, store: DeadLetterStore, queue: string): Promise<number> {
  const filter = filterOf(values);
  switch (sub) {
    case "list": {
      const page = await store.list(queue, {
        limit: intOption(values.limit, "limit", 20),
        offset: values.offset === undefined ? undefined : intOption(values.offset, "offset", 0, 0),
        cursor: values.cursor === undefined ? undefined : intOption(values.cursor, "cursor", 0, 0),
        filter,
      });
      if (values.json) console.log(JSON.stringify({ total: page.total, next: page.next, letters: page.letters.map(letterJson) }, null, 2));
      else {
        console.log(page.letters.length ? formatLetterTable(page.letters) : `no dead letters${filter ? " match" : ""} in ${queue}.XQ`);
        console.log(`\n${page.letters.length} shown of ${page.total} dead in ${queue}.XQ${page.next === undefined ? "" : `; next: --cursor ${page.next}`}`);
      }
      return 0;
    }
    case "show": {
      if (ids.length !== 1) throw new UsageError("show takes exactly one ID");
      const entry = await store.show(queue, ids[0]!);
      if (!entry) {
        console.error(`no dead letter ${ids[0]} in ${queue}.XQ`);
        return 1;
      }
      console.log(values.json ? JSON.stringify(letterJson(entry), null, 2) : formatLetter(entry));
      return 0;
    }
    case "requeue": {
      if (ids.length === 0 && !filter && !values.all) throw new UsageError("requeue takes IDs, a filter (--actor, --reason, --older-than) or --all");
      const rate = values.rate === undefined ? undefined : numberOption(values.rate.replace(/\/s$/, ""), "rate", 0, 0.001);
      const bar = new ProgressBar(process.stderr, "requeueing");
      const result = await store.requeue(queue, {
        ids: ids.length ? ids : undefined,
        filter,
        rate,
        resetRetries: values["reset-retries"] ?? false,
        onProgress: (done, planned) => bar.update(done, planned),
      });
      bar.end();
      if (values.json) console.log(JSON.stringify(result));
      else {
        console.log(`requeued ${result.requeued} dead letter${result.requeued === 1 ? "" : "s"} of ${queue}`);
        if (result.missing.length) console.log(`not dead (or gone): ${result.missing.join(" ")}`);
      }
      return result.missing.length ? 1 : 0;
    }
    case "purge": {
      const what = ids.length ? `${ids.length} dead letter(s)` : filter ? "the matching dead letters" : "EVERY dead letter";
      if (!values.yes && !(await confirm(`delete ${what} of ${queue}.XQ?`))) {
        console.error("nothing deleted");
        return 1;
      }
      const deleted = await store.purge(queue, { ids: ids.length ? ids : undefined, filter });
      console.log(`deleted ${deleted} dead letter${deleted === 1 ? "" : "s"} of ${queue}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand "${sub}": use list, show, requeue or purge`);
  }
}

const command: Command = {
  summary: "list, show, requeue or purge dead-lettered messages",
  help,
  helpFor(argv) {
    return HELP[argv[0] ?? ""];
  },
  async run(argv) {
    const [sub, ...rest] = argv;
    if (!sub) throw new UsageError("name a subcommand: list, show, requeue or purge");
    if (!(sub in HELP)) throw new UsageError(`unknown subcommand "${sub}": use list, show, requeue or purge`);
    const { values, positionals } = parse(rest, OPTIONS);
    if (sub !== "show" && sub !== "requeue" && sub !== "purge" && positionals.length) throw new UsageError(`${sub} takes no positional arguments`);
    const queue = qName(values.queue ?? "default");
    const broker: Broker = createBroker(sharedBrokerUrlOption(values.broker, "troupe dead-letters"));
    const store = deadLetterStore(broker);
    try {
      return await run(sub, positionals, values, store, queue);
    } finally {
      await store.close();
      await broker.close();
    }
  },
};
export default command;
