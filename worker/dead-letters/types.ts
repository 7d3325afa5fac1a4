import { Message } from "../message.js";

/** Which dead letters an operation applies to; every given field must match. */
export interface DeadLetterFilter {
  /** Exact actor name. */
  actor?: string;
  /** Text the reason (or, failing one, the raw body) contains, case-insensitively. */
  reason?: string;
  /** Only letters dead for at least this many ms. */
  olderThan?: number;
}

/** One dead letter of a queue, as the console and the CLI show it. */
export interface DeadLetterEntry {
  /** The broker's id for it: Redis `redis_message_id`, RabbitMQ the body's `message_id` (else `raw:<hash>`). */
  id: string;
  /** The stored body exactly as read; requeue writes these bytes back unless asked to reset retries. */
  raw: string;
  /** The decoded message, when the body decodes. */
  message?: Message;
  reason?: string;
  /** When it was dead-lettered (ms since the epoch), where the broker records it. */
  deadAt?: number;
}

export interface DeadLetterPage {
  letters: DeadLetterEntry[];
  /** Dead letters in the queue, unfiltered. */
  total: number;
  /** Pass as `cursor` to read the page after this one; absent on the last page. */
  next?: number;
}

export interface ListOptions {
  limit?: number;
  /** Matching letters to skip before the page (costs a scan of what is skipped). */
  offset?: number;
  /** Where the previous page stopped (its `next`): a position in the queue, no scan needed. */
  cursor?: number;
  filter?: DeadLetterFilter;
}

export interface RequeueOptions {
  /** Requeue these ids only; otherwise every letter that matches `filter`. */
  ids?: string[];
  filter?: DeadLetterFilter;
  /** Most letters moved per second (default unbounded). */
  rate?: number;
  /**
   * Set `options.retries` to 0 so the message gets its full retries again. Off by default: the stored body is
   * written back byte for byte, so a message that fails once more is dead-lettered again at once.
   */
  resetRetries?: boolean;
  /** Called after each batch with the running count. */
  onProgress?: (moved: number, planned: number) => void;
}

export interface RequeueResult {
  /** Letters put back on their queue. */
  requeued: number;
  /** Requested ids that were not (or no longer) dead. */
  missing: string[];
}

export interface PurgeOptions {
  ids?: string[];
  filter?: DeadLetterFilter;
}

/** Dead-letter tools of one broker: the library API behind `troupe dead-letters` and the dashboard. */
export interface DeadLetterStore {
  list(queue: string, options?: ListOptions): Promise<DeadLetterPage>;
  show(queue: string, id: string): Promise<DeadLetterEntry | undefined>;
  requeue(queue: string, options: RequeueOptions): Promise<RequeueResult>;
  /** Delete what matches (every letter of the queue when neither ids nor a filter is given); returns the count. */
  purge(queue: string, options?: PurgeOptions): Promise<number>;
  close(): Promise<void>;
}

export function decodeOrUndefined(raw: string): Message | undefined {
  try {
    return Message.decode(raw);
  } catch {
    return undefined;
  }
}

/** A letter as JSON (`--json`, the dashboard's API): the message decoded, else the body as stored. */
export function letterJson(entry: DeadLetterEntry): Record<string, unknown> {
  return { id: entry.id, deadAt: entry.deadAt, reason: entry.reason, message: entry.message?.toData(), raw: entry.message ? undefined : entry.raw };
}

export function hasFilter(filter: DeadLetterFilter | undefined): boolean {
  return filter !== undefined && (filter.actor !== undefined || filter.reason !== undefined || filter.olderThan !== undefined);
}

/**
 * Where a page of `list` starts, the same on every broker: `cursor` is a position in the queue; without it, `offset`
 * is a position too when nothing is filtered, and a count of matching letters to skip from the start when something is.
 */
export function pageStart(options: ListOptions): { limit: number; filtered: boolean; position: number; skip: number } {
  const filtered = hasFilter(options.filter);
  return {
    limit: Math.max(1, options.limit ?? 50),
    filtered,
    position: options.cursor ?? (filtered ? 0 : (options.offset ?? 0)),
    skip: filtered && options.cursor === undefined ? (options.offset ?? 0) : 0,
  };
}

export function matches(entry: DeadLetterEntry, filter: DeadLetterFilter | undefined, now = Date.now()): boolean {
  if (!filter) return true;
  if (filter.actor !== undefined && entry.message?.actorName !== filter.actor) return false;
  if (filter.reason !== undefined && !(entry.reason ?? entry.raw).toLowerCase().includes(filter.reason.toLowerCase())) return false;
  if (filter.olderThan !== undefined && (entry.deadAt === undefined || now - entry.deadAt < filter.olderThan)) return false;
  return true;
}

/** The body with `options.retries` set to 0 (re-encoded by the library), or the body itself when it does not decode. */
export function withRetriesReset(entry: DeadLetterEntry): string {
  return entry.message ? entry.message.copy({ options: { retries: 0 } }).encode() : entry.raw;
}

/** Which queue a letter goes back to: the one in its body (`q` or `q.DQ` of this queue), else the canonical one. */
export function targetQueue(canonical: string, entry: DeadLetterEntry): string {
  const named = entry.message?.queueName;
  return named === `${canonical}.DQ` ? named : canonical;
}

/** Paces batches to at most `rate` items per second over the whole run (not per batch). */
export class Pacer {
  private readonly started = Date.now();
  private done = 0;

  constructor(private readonly rate: number | undefined) {}

  /** Items per batch so that a batch takes about a tenth of a second at the rate. */
  batchSize(max: number): number {
    return this.rate === undefined ? max : Math.max(1, Math.min(max, Math.floor(this.rate / 10)));
  }

  async after(count: number): Promise<void> {
    this.done += count;
    if (this.rate === undefined) return;
    const due = this.started + (this.done / this.rate) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
