import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/** Beside this module in dist/, where `npm run build` copies it (scripts/copy-lua.mjs), as the worker's scripts. */
const SCRIPT = new URL("./delayed-due.lua", import.meta.url);
/** Hash entries per script call: a few ms of server time per page for bodies of a few hundred bytes. */
const PAGE = 1000;

let source: string | undefined;

interface DelayedDueCommand {
  troupeDelayedDue(ns: string, queue: string, deadline: number, cursor: string, count: number): Promise<[string, number, number, number]>;
}

export type DelayedDueClient = Redis & DelayedDueCommand;

/** Register the script once on a client (ioredis sends EVALSHA, and the body again only after a NOSCRIPT). */
export function withDelayedDueScript(client: Redis): DelayedDueClient {
  source ??= readFileSync(SCRIPT, "utf8");
  client.defineCommand("troupeDelayedDue", { lua: source, numberOfKeys: 1, readOnly: true });
  return client as DelayedDueClient;
}

export interface DelayedEtas {
  /** Delayed messages whose eta is at or before the deadline (already due ones included). */
  due: number;
  /** Delayed messages whose body or eta could not be read. */
  unknownEta: number;
  /** The earliest eta after the deadline (ms since the epoch); undefined when none is later. */
  nextEta?: number;
}

/** Count the delayed messages of a canonical queue due by `deadline` (ms since the epoch). */
export async function countDelayedDue(client: DelayedDueClient, namespace: string, queue: string, deadline: number): Promise<DelayedEtas> {
  let cursor = "0";
  let due = 0;
  let unknownEta = 0;
  let nextEta: number | undefined;
  do {
    const [next, pageDue, pageUnknown, pageLater] = await client.troupeDelayedDue(namespace, queue, deadline, cursor, PAGE);
    cursor = String(next);
    due += Number(pageDue);
    unknownEta += Number(pageUnknown);
    const later = Number(pageLater);
    if (later >= 0 && (nextEta === undefined || later < nextEta)) nextEta = later;
  } while (cursor !== "0");
  return { due, unknownEta, nextEta };
}
