import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/**
 * The Lua scripts sit beside this module: `npm run build` copies them into dist/ (scripts/copy-lua.mjs), so the
 * installed package, the image and a checkout all read them from where the compiled code is.
 */
export const SCRIPT_DIR = new URL("./", import.meta.url);

const BROKER_SCRIPTS = ["enqueue", "fetch", "ack", "nack", "dead-letter-listed-body", "requeue", "promote", "purge", "maintenance", "stats"] as const;
/** Scripts of the console's tools (worker/brokers/redis/dead-letters.ts, worker/brokers/redis/queued.ts). */
const DEAD_LETTER_SCRIPTS = ["dead-letters-requeue", "dead-letters-delete", "queued-messages"] as const;
/** Rate-limit scripts with their key count (undefined: the caller passes it, for variable key lists). */
const RATE_LIMIT_SCRIPTS = { "rate-limit-adjust": 1, "rate-limit-incr-and-sum": undefined } as const;
/** The schedules' tick election (worker/schedules/store.ts): in one step on a Redis broker, in two on RabbitMQ. */
const SCHEDULE_SCRIPTS = ["schedule-fire", "schedule-claim", "schedule-commit"] as const;
type ScriptName = (typeof BROKER_SCRIPTS)[number] | (typeof DEAD_LETTER_SCRIPTS)[number] | keyof typeof RATE_LIMIT_SCRIPTS | (typeof SCHEDULE_SCRIPTS)[number];

const sources = new Map<ScriptName, string>();

/** Read a script once per process, with `-- @include <name>` lines replaced by `includes/<name>.lua`. */
function source(name: ScriptName): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    lua = readFileSync(new URL(`${name}.lua`, SCRIPT_DIR), "utf8").replace(/^-- @include ([\w-]+)$/gm, (_line, include: string) =>
      readFileSync(new URL(`includes/${include}.lua`, SCRIPT_DIR), "utf8"),
    );
    sources.set(name, lua);
  }
  return lua;
}

type Arg = string | number | Buffer;

/** The broker's scripts as client commands: KEYS[1] = namespace, then ARGV. */
export interface BrokerCommands {
  troupeEnqueue(ns: string, ...argv: Arg[]): Promise<number>;
  troupeFetchBuffer(ns: string, ...argv: Arg[]): Promise<[Buffer[], (Buffer | null)[]] | []>;
  troupeAck(ns: string, ...argv: Arg[]): Promise<number>;
  troupeNack(ns: string, ...argv: Arg[]): Promise<number>;
  troupeDeadLetterListedBody(ns: string, ...argv: Arg[]): Promise<number>;
  troupeRequeue(ns: string, ...argv: Arg[]): Promise<number>;
  troupePromote(ns: string, ...argv: Arg[]): Promise<number>;
  troupePurge(ns: string, ...argv: Arg[]): Promise<number>;
  troupeMaintenance(ns: string, ...argv: Arg[]): Promise<number>;
  troupeStats(ns: string, queue: string): Promise<[number, number, number, number]>;
}

/** KEYS[1] = namespace, ARGV[1] = canonical queue, then the script's items. */
export interface DeadLetterCommands {
  troupeDeadLettersRequeue(ns: string, queue: string, ...triples: string[]): Promise<number>;
  troupeDeadLettersDelete(ns: string, queue: string, ...ids: string[]): Promise<number>;
  /** ARGV: source list (q or q.DQ), "delete" | "run-now", then (id, body) pairs; resolves to the ids acted on. */
  troupeQueuedMessages(ns: string, queue: string, source: string, op: "delete" | "run-now", ...pairs: string[]): Promise<string[]>;
}

export interface RateLimitCommands {
  troupeRateLimitAdjust(key: string, amount: number, bound: number, ttl: number, mode: "max" | "min"): Promise<number>;
  troupeRateLimitIncrAndSum(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<number>;
}

/** KEYS[1] = namespace; ARGV and replies as in each script's header. */
export interface ScheduleCommands {
  /** [elected 1/0/2 paused, previously recorded tick or -1]. */
  troupeScheduleFire(ns: string, ...argv: Arg[]): Promise<[number, number]>;
  /** [status 1 held/0 refused/2 paused/3 held by another, previous tick or -1, lease left ms, holder or ""]. */
  troupeScheduleClaim(ns: string, name: string, tick: number, electionTtl: number, lease: number, claimant: string): Promise<[number, number, number, string]>;
  /** 1 committed now, 0 committed already. */
  troupeScheduleCommit(ns: string, name: string, tick: number, committer: string, record: string): Promise<number>;
}

function commandName(name: ScriptName): string {
  return "troupe" + name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
}

/**
 * Register scripts on a client: ioredis sends EVALSHA and falls back to EVAL when the server answers NOSCRIPT
 * (a restarted or flushed server), so each script body crosses the wire once per connection at most.
 */
export function withBrokerScripts(client: Redis): Redis & BrokerCommands {
  for (const name of BROKER_SCRIPTS) {
    client.defineCommand(commandName(name), { lua: source(name), numberOfKeys: 1, readOnly: name === "stats" });
  }
  return client as Redis & BrokerCommands;
}

export function withDeadLetterScripts(client: Redis): Redis & DeadLetterCommands {
  for (const name of DEAD_LETTER_SCRIPTS) client.defineCommand(commandName(name), { lua: source(name), numberOfKeys: 1 });
  return client as Redis & DeadLetterCommands;
}

export function withRateLimitScripts(client: Redis): Redis & RateLimitCommands {
  for (const [name, numberOfKeys] of Object.entries(RATE_LIMIT_SCRIPTS) as [ScriptName, number | undefined][]) {
    client.defineCommand(commandName(name), { lua: source(name), numberOfKeys });
  }
  return client as Redis & RateLimitCommands;
}

export function withScheduleScripts(client: Redis): Redis & ScheduleCommands {
  for (const name of SCHEDULE_SCRIPTS) client.defineCommand(commandName(name), { lua: source(name), numberOfKeys: 1 });
  return client as Redis & ScheduleCommands;
}
