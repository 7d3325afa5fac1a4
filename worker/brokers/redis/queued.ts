import { decodeOrUndefined } from "../../dead-letters/types.js";
import type { Message } from "../../message.js";
import { dqName, qName } from "../../queues.js";
import { ConsoleRedisClient } from "./console-client.js";

export type QueuedKind = "ready" | "delayed";

/** A message waiting in `q` or `q.DQ`, not yet fetched by a worker. */
export interface QueuedEntry {
  /** The `redis_message_id`. */
  id: string;
  raw: string;
  message?: Message;
  /** Delayed: when it is due (ms since the epoch). */
  eta?: number;
}

export interface QueuedPage {
  entries: QueuedEntry[];
  /** Ids in the list (waiting, not fetched). */
  total: number;
  /** Delayed messages a worker fetched and holds until they are due: not in the list, so not on a page. */
  held: number;
  /** Position to continue from; absent at the end of the list. */
  next?: number;
  /** With a search: list entries read for this page. */
  scanned?: number;
}

/** Entries read per round trip while searching. */
const CHUNK = 500;
/** Most entries one search request reads; it then stops and gives `next` to go on. */
const SEARCH_BUDGET = 20_000;

/**
 * Ready and delayed messages of Dramatiq's Redis layout, for the console: ids in the lists `ns:q` and `ns:q.DQ`
 * (fetched from the head, so a page starts with the next to run), bodies in `.msgs`. A page reads only itself (one
 * LRANGE, one HMGET); a search by message id, redis id or actor reads the list a chunk at a time, at most
 * SEARCH_BUDGET entries per request. Delete and "run now" act on ids still in the list in one atomic script, so a
 * message a worker fetched meanwhile is left to it.
 */
export class RedisQueuedMessages extends ConsoleRedisClient {
  private source(queue: string, kind: QueuedKind): string {
    return kind === "ready" ? qName(queue) : dqName(qName(queue));
  }

  private async entries(list: string, ids: string[]): Promise<QueuedEntry[]> {
    if (ids.length === 0) return [];
    const bodies = await (await this.ready()).hmget(`${list}.msgs`, ...ids);
    const out: QueuedEntry[] = [];
    ids.forEach((id, i) => {
      const raw = bodies[i];
      if (raw === null || raw === undefined) return;
      const message = decodeOrUndefined(raw);
      const eta = message?.options.eta;
      out.push({ id, raw, message, eta: typeof eta === "number" ? eta : undefined });
    });
    return out;
  }

  async list(queue: string, kind: QueuedKind, options: { cursor?: number; limit?: number; search?: string } = {}): Promise<QueuedPage> {
    const client = await this.ready();
    const list = `${this.namespace}:${this.source(queue, kind)}`;
    const limit = Math.max(1, options.limit ?? 25);
    const [total, stored] = await Promise.all([client.llen(list), client.hlen(`${list}.msgs`)]);
    const held = kind === "delayed" ? Math.max(0, stored - total) : 0;
    let position = options.cursor ?? 0;
    const search = options.search?.trim().toLowerCase();
    if (!search) {
      const entries = await this.entries(list, await client.lrange(list, position, position + limit - 1));
      position += limit;
      return { entries, total, held, next: position < total ? position : undefined };
    }
    const entries: QueuedEntry[] = [];
    let scanned = 0;
    while (position < total && scanned < SEARCH_BUDGET && entries.length < limit) {
      const ids = await client.lrange(list, position, position + CHUNK - 1);
      if (ids.length === 0) break;
      const byId = new Map((await this.entries(list, ids)).map((e) => [e.id, e]));
      for (const id of ids) {
        position++;
        scanned++;
        const entry = byId.get(id);
        if (entry && matchesSearch(entry, search)) entries.push(entry);
        if (entries.length === limit) break;
      }
    }
    return { entries, total, held, next: position < total ? position : undefined, scanned };
  }

  async show(queue: string, kind: QueuedKind, id: string): Promise<QueuedEntry | undefined> {
    const [entry] = await this.entries(`${this.namespace}:${this.source(queue, kind)}`, [id]);
    return entry;
  }

  /** Delete waiting messages; returns the ids deleted (the others were fetched or gone). */
  async delete(queue: string, kind: QueuedKind, ids: string[]): Promise<string[]> {
    const client = await this.ready();
    return client.troupeQueuedMessages(this.namespace, qName(queue), this.source(queue, kind), "delete", ...ids.flatMap((id) => [id, ""]));
  }

  /**
   * Move delayed messages to the end of the ready queue now, as their consumer would when due: `queue_name` back
   * to `q` and `eta` removed. Returns the ids moved; one a worker already fetched is left to run at its eta.
   */
  async runNow(queue: string, ids: string[]): Promise<string[]> {
    const client = await this.ready();
    const canonical = qName(queue);
    const entries = await this.entries(`${this.namespace}:${dqName(canonical)}`, ids);
    const pairs = entries.flatMap((e) => (e.message ? [e.id, e.message.copy({ queueName: canonical, options: { eta: undefined } }).encode()] : []));
    if (pairs.length === 0) return [];
    return client.troupeQueuedMessages(this.namespace, canonical, dqName(canonical), "run-now", ...pairs);
  }
}

function matchesSearch(entry: QueuedEntry, search: string): boolean {
  const m = entry.message;
  return entry.id.toLowerCase() === search || m?.messageId.toLowerCase() === search || (m?.actorName.toLowerCase().includes(search) ?? false);
}
