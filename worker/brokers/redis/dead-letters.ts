import {
  decodeOrUndefined,
  hasFilter,
  matches,
  pageStart,
  Pacer,
  targetQueue,
  withRetriesReset,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterPage,
  type DeadLetterStore,
  type ListOptions,
  type PurgeOptions,
  type RequeueOptions,
  type RequeueResult,
} from "../../dead-letters/types.js";
import { qName } from "../../queues.js";
import { ConsoleRedisClient } from "./console-client.js";

/** Ids per script call; well under the Lua unpack limit, small enough not to stall Redis. */
const BATCH = 500;
/** Letters read per round trip while scanning for a filter. */
const SCAN_CHUNK = 1000;

/**
 * Dead letters on Dramatiq's Redis layout: ids in the sorted set `ns:q.XQ` (score = when they died), bodies in
 * `ns:q.XQ.msgs`, Troupe's reasons in `ns:q.XQ.reasons`. Pages read by rank (newest first), so the first page of a
 * huge queue costs one ZREVRANGE and two HMGETs of that page only.
 */
export class RedisDeadLetters extends ConsoleRedisClient implements DeadLetterStore {
  private key(queue: string): string {
    return `${this.namespace}:${qName(queue)}.XQ`;
  }

  /** Entries for ids with their scores, dropping ids whose body is gone (expired or moved meanwhile). */
  private async entries(xq: string, ids: string[], scores: (string | number | undefined)[]): Promise<DeadLetterEntry[]> {
    if (ids.length === 0) return [];
    const client = await this.ready();
    const [bodies, reasons] = await Promise.all([client.hmget(`${xq}.msgs`, ...ids), client.hmget(`${xq}.reasons`, ...ids)]);
    const out: DeadLetterEntry[] = [];
    ids.forEach((id, i) => {
      const raw = bodies[i];
      if (raw === null || raw === undefined) return;
      const score = scores[i];
      out.push({ id, raw, message: decodeOrUndefined(raw), reason: reasons[i] ?? undefined, deadAt: score === undefined ? undefined : Number(score) });
    });
    return out;
  }

  /** Ranks `from..from+count-1`, newest first. */
  private async byRank(xq: string, from: number, count: number): Promise<{ ids: string[]; scores: string[] }> {
    const client = await this.ready();
    const flat = await client.zrevrange(xq, from, from + count - 1, "WITHSCORES");
    const ids: string[] = [];
    const scores: string[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      ids.push(flat[i]!);
      scores.push(flat[i + 1]!);
    }
    return { ids, scores };
  }

  async list(queue: string, options: ListOptions = {}): Promise<DeadLetterPage> {
    const client = await this.ready();
    const xq = this.key(queue);
    const { limit, filtered, ...page } = pageStart(options);
    let { position, skip } = page;
    const total = await client.zcard(xq);
    const letters: DeadLetterEntry[] = [];
    const now = Date.now();
    while (position < total) {
      const want = filtered ? SCAN_CHUNK : limit - letters.length;
      const { ids, scores } = await this.byRank(xq, position, want);
      if (ids.length === 0) break;
      const found = await this.entries(xq, ids, scores);
      const byId = new Map(found.map((e) => [e.id, e]));
      for (const id of ids) {
        position++;
        const entry = byId.get(id);
        if (!entry || !matches(entry, options.filter, now)) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        letters.push(entry);
        if (letters.length === limit) return { letters, total, next: position < total ? position : undefined };
      }
    }
    return { letters, total };
  }

  /** By the Redis id (the sorted set's member), else by the body's message_id (a scan of the queue's bodies). */
  async show(queue: string, id: string): Promise<DeadLetterEntry | undefined> {
    const client = await this.ready();
    const xq = this.key(queue);
    const [direct] = await this.entries(xq, [id], [(await client.zscore(xq, id)) ?? undefined]);
    if (direct) return direct;
    for await (const entry of this.scan(queue)) if (entry.message?.messageId === id) return entry;
    return undefined;
  }

  /** Every letter of the queue, oldest first, a chunk per round trip (by rank: callers do not move letters meanwhile). */
  private async *scan(queue: string): AsyncGenerator<DeadLetterEntry> {
    const client = await this.ready();
    const xq = this.key(queue);
    for (let from = 0; ; from += SCAN_CHUNK) {
      const flat = await client.zrange(xq, from, from + SCAN_CHUNK - 1, "WITHSCORES");
      const ids = flat.filter((_, i) => i % 2 === 0);
      const scores = flat.filter((_, i) => i % 2 === 1);
      for (const entry of await this.entries(xq, ids, scores)) yield entry;
      if (ids.length < SCAN_CHUNK) return;
    }
  }

  /** Ids a requeue or purge applies to, oldest first. */
  private async select(queue: string, ids: string[] | undefined, filter: DeadLetterFilter | undefined): Promise<{ ids: string[]; missing: string[] }> {
    const client = await this.ready();
    const xq = this.key(queue);
    if (ids) {
      const known = await client.hmget(`${xq}.msgs`, ...ids);
      const found = ids.filter((_, i) => known[i] !== null);
      const unknown = ids.filter((_, i) => known[i] === null);
      if (unknown.length === 0) return { ids: found, missing: [] };
      // Ids the user copied from a message (message_id) rather than from the Redis layout.
      const wanted = new Set(unknown);
      for await (const entry of this.scan(queue)) {
        const messageId = entry.message?.messageId;
        if (messageId && wanted.delete(messageId)) found.push(entry.id);
      }
      return { ids: found, missing: [...wanted] };
    }
    if (!hasFilter(filter)) return { ids: await client.zrange(xq, 0, -1), missing: [] };
    const selected: string[] = [];
    const now = Date.now();
    for await (const entry of this.scan(queue)) if (matches(entry, filter, now)) selected.push(entry.id);
    return { ids: selected, missing: [] };
  }

  async requeue(queue: string, options: RequeueOptions): Promise<RequeueResult> {
    const client = await this.ready();
    const canonical = qName(queue);
    const xq = this.key(queue);
    const { ids, missing } = await this.select(queue, options.ids, options.filter);
    const pacer = new Pacer(options.rate);
    const size = pacer.batchSize(BATCH);
    let requeued = 0;
    for (let first = 0; first < ids.length; first += size) {
      const batch = ids.slice(first, first + size);
      // Bodies are read for their target queue (q or q.DQ); the script moves only letters still dead.
      const letters = await this.entries(xq, batch, []);
      const triples = letters.flatMap((entry) => [entry.id, targetQueue(canonical, entry), options.resetRetries ? withRetriesReset(entry) : ""]);
      if (triples.length > 0) requeued += await client.troupeDeadLettersRequeue(this.namespace, canonical, ...triples);
      options.onProgress?.(requeued, ids.length);
      await pacer.after(batch.length);
    }
    return { requeued, missing };
  }

  async purge(queue: string, options: PurgeOptions = {}): Promise<number> {
    const client = await this.ready();
    const canonical = qName(queue);
    const xq = this.key(queue);
    if (!options.ids && !hasFilter(options.filter)) {
      const replies = await client.multi().hlen(`${xq}.msgs`).del(xq, `${xq}.msgs`, `${xq}.reasons`, `${xq}.reasons.at`).exec();
      return Number(replies?.[0]?.[1] ?? 0);
    }
    const { ids } = await this.select(queue, options.ids, options.filter);
    let deleted = 0;
    for (let first = 0; first < ids.length; first += BATCH) {
      deleted += await client.troupeDeadLettersDelete(this.namespace, canonical, ...ids.slice(first, first + BATCH));
    }
    return deleted;
  }
}
