import type { Redis } from "ioredis";
import { BlockingConnections, blockingSeconds } from "../redis/blocking-pool.js";
import { asBrokerError, checkExec, connectRedis, createRedisClient, duplicateRedisClient, DEFAULT_REDIS_URL, type RedisConnectionOptions } from "../redis/connection.js";
import { withRateLimitScripts, type RateLimitCommands } from "../redis/scripts.js";
import type { RateLimiterBackend } from "./backend.js";

export type RedisRateLimiterBackendOptions = RedisConnectionOptions;

/**
 * Dramatiq's Redis rate-limiter backend on raw keys (no namespace), so Troupe and Python workers share limits,
 * mutexes and barriers. incr/decr/incrAndSum run as one Lua step each instead of Dramatiq's WATCH/MULTI retry
 * loop: the stored values, TTLs and outcomes are the same, without optimistic-lock retries under contention.
 */
export class RedisRateLimiterBackend implements RateLimiterBackend {
  private readonly client: Redis & RateLimitCommands;
  private readonly blocking: BlockingConnections;
  private readonly url: string;

  constructor(options: RedisRateLimiterBackendOptions = {}) {
    this.url = options.url ?? DEFAULT_REDIS_URL;
    this.client = withRateLimitScripts(createRedisClient(options, "rate-limits"));
    const base = this.client;
    this.blocking = new BlockingConnections(() => duplicateRedisClient(base, "rate-limits-wait", this.url));
  }

  /** Fail fast with a clear error when Redis is unreachable (otherwise the first call connects). */
  async connect(): Promise<void> {
    await connectRedis(this.client, this.url);
  }

  private async run<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw asBrokerError(err, `rate limiter ${what}`);
    }
  }

  async add(key: string, value: number, ttl: number): Promise<boolean> {
    return this.run("add", async () => (await this.client.set(key, String(Math.trunc(value)), "PX", ms(ttl), "NX")) === "OK");
  }

  async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    return this.run("incr", async () => (await this.client.troupeRateLimitAdjust(key, amount, maximum, ms(ttl), "max")) === 1);
  }

  async decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    return this.run("decr", async () => (await this.client.troupeRateLimitAdjust(key, -amount, minimum, ms(ttl), "min")) === 1);
  }

  async incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    return this.run("incrAndSum", async () => (await this.client.troupeRateLimitIncrAndSum(1 + keys.length, key, ...keys, amount, maximum, ms(ttl))) === 1);
  }

  /** BLMOVE key key (Dramatiq's BRPOPLPUSH): the "x" stays in the list for every other waiter. */
  async wait(key: string, timeout: number | undefined): Promise<boolean> {
    const seconds = timeout === undefined ? "0" : blockingSeconds(timeout);
    return this.run("wait", async () => (await this.blocking.use((c) => c.blmove(key, key, "RIGHT", "LEFT", seconds))) === "x");
  }

  async waitNotify(key: string, ttl: number): Promise<void> {
    await this.run("waitNotify", async () => checkExec(await this.client.pipeline().rpush(key, "x").pexpire(key, ms(ttl)).exec()));
  }

  async close(): Promise<void> {
    this.blocking.close();
    this.client.disconnect();
  }
}

function ms(ttl: number): number {
  return Math.max(1, Math.round(ttl));
}
