import { FLAGS_INTEGER, MemcachedClient, memcachedExptime, parseCounter, type MemcachedClientOptions } from "../memcached/connection.js";
import type { RateLimiterBackend } from "./backend.js";
import { BARRIER_EVENTS_SUFFIX } from "./barrier.js";

export interface MemcachedRateLimiterBackendOptions extends MemcachedClientOptions {
  /** `memcached://[user:password@]host[:port][,host2[:port]]` (default memcached://127.0.0.1:11211). */
  url?: string;
  /** Pause between polls of a blocking barrier wait, ms (default 20). */
  pollInterval?: number;
}

function integer(value: number): Buffer {
  return Buffer.from(String(Math.trunc(value)), "ascii");
}

/**
 * Dramatiq's memcached rate-limiter backend, item for item: counters are ASCII decimals with pylibmc's integer
 * flags (4), `add` then `incr`/`decr` for concurrent and bucket limits and barriers, `add 0` then a `gets`/`cas`
 * loop for window sums; keys verbatim; exptime in whole seconds set by `add` and `cas` only (incr/decr keep it).
 * Two deliberate differences, both invisible to a Python peer's reads: a failed `incr` is undone with a `decr` (Python
 * leaves the counter raised until it expires), and a blocking barrier wait (unsupported in Python) polls the counter.
 */
export class MemcachedRateLimiterBackend implements RateLimiterBackend {
  private readonly client: MemcachedClient;
  private readonly pollInterval: number;

  constructor({ url = "memcached://127.0.0.1:11211", pollInterval = 20, timeout }: MemcachedRateLimiterBackendOptions = {}) {
    this.client = new MemcachedClient(url, { timeout });
    this.pollInterval = pollInterval;
  }

  get displayUrl(): string {
    return this.client.displayUrl;
  }

  /** Fail fast with the redacted URL when a server is unreachable (otherwise the first call connects). */
  connect(): Promise<void> {
    return this.client.connect();
  }

  add(key: string, value: number, ttl: number): Promise<boolean> {
    return this.client.add(key, integer(value), FLAGS_INTEGER, memcachedExptime(ttl));
  }

  /** `incr`, kept only when the result is within `maximum`; a key that expired since is added again. */
  async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    for (;;) {
      const value = await this.client.adjust(key, amount, "incr");
      if (value === undefined) {
        if (await this.add(key, amount, ttl)) return amount <= maximum;
        continue;
      }
      if (value <= maximum) return true;
      await this.client.adjust(key, amount, "decr");
      return false;
    }
  }

  /** `decr` (memcached stops at 0); true while the result is at least `minimum`. A missing key is below any. */
  async decr(key: string, amount: number, minimum: number): Promise<boolean> {
    const value = await this.client.adjust(key, amount, "decr");
    return value !== undefined && value >= minimum;
  }

  async incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    const exptime = memcachedExptime(ttl);
    await this.client.add(key, integer(0), FLAGS_INTEGER, exptime);
    for (;;) {
      const current = await this.client.get(key);
      if (!current) return false;
      const value = parseCounter(current, key) + amount;
      if (value > maximum) return false;
      const items = await Promise.all(keys.map((k) => this.client.get(k)));
      const total = items.reduce((sum, item, i) => sum + (item ? parseCounter(item, keys[i]!) : 0), amount);
      if (total > maximum) return false;
      const outcome = await this.client.set(key, integer(value), FLAGS_INTEGER, exptime, current.cas);
      if (outcome === "stored") return true;
      if (outcome === "missing") return false;
    }
  }

  /**
   * A barrier's blocking wait. Dramatiq writes no notification on memcached, so a barrier cleared by any party,
   * Python or Troupe, shows only in its counter reaching 0: that is polled.
   */
  async wait(key: string, timeout: number | undefined): Promise<boolean> {
    const counter = key.endsWith(BARRIER_EVENTS_SUFFIX) ? key.slice(0, -BARRIER_EVENTS_SUFFIX.length) : key;
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
    for (;;) {
      const item = await this.client.get(counter);
      // A missing or expired barrier counts as cleared, as in Dramatiq.
      if (!item || parseCounter(item, counter) < 1) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.pollInterval, left)));
    }
  }

  /** Nothing to write: waiters watch the counter (and Dramatiq writes nothing either). */
  async waitNotify(): Promise<void> {}

  async close(): Promise<void> {
    this.client.close();
  }
}
