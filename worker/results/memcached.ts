import { ResultError } from "../errors.js";
import type { Message } from "../message.js";
import { FLAGS_BYTES, MemcachedClient, ValueTooLarge, memcachedExptime, type MemcachedClientOptions } from "../memcached/connection.js";
import { ResultBackend, type ResultBackendOptions } from "./backend.js";

export interface MemcachedResultBackendOptions extends ResultBackendOptions, MemcachedClientOptions {
  /** `memcached://[user:password@]host[:port][,host2[:port]]` (default memcached://127.0.0.1:11211). */
  url?: string;
  /** First pause between polls of a blocking read, ms (default 5); doubles up to `maxPollInterval`. */
  minPollInterval?: number;
  /** Longest pause between polls, ms (default 50): the most a blocking read lags behind the store. */
  maxPollInterval?: number;
}

/** pylibmc's flag bits a reader may ignore (it does): its reads of flags 0, 32, 64 and 256 all give bytes. */
const IGNORED_FLAG_BITS = 32 | 64 | 256;

/**
 * Dramatiq's MemcachedBackend for results: the same MD5 (or prefixed) keys, Dramatiq's JSON as the value with
 * pylibmc's bytes flags (0), exptime in seconds. Memcached has no blocking read, so `getResult({ block: true })`
 * polls with backoff — 5 ms doubling to 50 ms by default, against Dramatiq's 100 ms to 2 s.
 */
export class MemcachedResultBackend extends ResultBackend {
  private readonly client: MemcachedClient;
  private readonly minPollInterval: number;
  private readonly maxPollInterval: number;

  constructor({ url = "memcached://127.0.0.1:11211", minPollInterval = 5, maxPollInterval = 50, timeout, ...options }: MemcachedResultBackendOptions = {}) {
    super(options);
    this.client = new MemcachedClient(url, { timeout });
    this.minPollInterval = minPollInterval;
    this.maxPollInterval = Math.max(minPollInterval, maxPollInterval);
  }

  get displayUrl(): string {
    return this.client.displayUrl;
  }

  /** Fail fast with the redacted URL when a server is unreachable (otherwise the first store or get connects). */
  override connect(): Promise<void> {
    return this.client.connect();
  }

  override async storeResult(message: Message, result: unknown, ttl?: number): Promise<void> {
    await this.naming(message, () => super.storeResult(message, result, ttl));
  }

  override async storeException(message: Message, error: { name: string; message: string }, ttl?: number): Promise<void> {
    await this.naming(message, () => super.storeException(message, error, ttl));
  }

  /** A result memcached refuses for its size is a lost result: say whose, so that it is never a silent drop. */
  private async naming(message: Message, store: () => Promise<void>): Promise<void> {
    try {
      await store();
    } catch (err) {
      if (err instanceof ValueTooLarge) throw new ResultError(`the result of message ${message.messageId} (${message.actorName}) was not stored: ${err.message}`, { cause: err });
      throw err;
    }
  }

  protected async storeRaw(key: string, value: string, ttl: number): Promise<void> {
    await this.client.set(key, Buffer.from(value, "utf8"), FLAGS_BYTES, memcachedExptime(ttl));
  }

  private async read(key: string): Promise<string | undefined> {
    const item = await this.client.get(key);
    if (!item) return undefined;
    // pylibmc would unpickle (1), inflate (8) or read an int (2, 4) or text (16); Dramatiq only writes bytes (0).
    // Integers and text are the same bytes as their JSON, so they are read as such; pickles and zlib are not JSON.
    const flags = item.flags & ~IGNORED_FLAG_BITS;
    if (flags & (1 | 8)) throw new ResultError(`result ${key} was stored by another client with pylibmc flags ${item.flags} (pickled or compressed), not as Dramatiq's JSON`);
    return item.value.toString("utf8");
  }

  protected async getRaw(key: string, block: boolean, timeout: number): Promise<string | undefined> {
    const deadline = Date.now() + timeout;
    let pause = this.minPollInterval;
    for (;;) {
      const value = await this.read(key);
      if (value !== undefined || !block) return value;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      pause = Math.min(pause * 2, this.maxPollInterval);
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
