import type { Redis } from "ioredis";
import { asBrokerError, checkExec, connectRedis, createRedisClient, duplicateRedisClient, DEFAULT_REDIS_URL, type RedisConnectionOptions } from "../redis/connection.js";
import { BlockingConnections, blockingSeconds } from "../redis/blocking-pool.js";
import { ResultBackend, type ResultBackendOptions } from "./backend.js";

export interface RedisResultBackendOptions extends ResultBackendOptions, RedisConnectionOptions {
  /** Use this client instead of connecting from `url` (it is not closed by `close`). */
  client?: Redis;
}

/**
 * Dramatiq's Redis results backend: a one-element list per result (MULTI DEL/LPUSH/PEXPIRE), read with
 * LINDEX, awaited with BLMOVE key key — the value goes back where it was, so every waiter can read it.
 */
export class RedisResultBackend extends ResultBackend {
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly blocking: BlockingConnections;
  private readonly url: string;

  constructor(options: RedisResultBackendOptions = {}) {
    super(options);
    this.url = options.url ?? DEFAULT_REDIS_URL;
    this.client = options.client ?? createRedisClient(options, "results");
    this.ownsClient = options.client === undefined;
    const base = this.client;
    this.blocking = new BlockingConnections(() => duplicateRedisClient(base, "results-wait", this.url));
  }

  /** Fail fast with a clear error when Redis is unreachable (otherwise the first store or get connects). */
  override async connect(): Promise<void> {
    await connectRedis(this.client, this.url);
  }

  protected async storeRaw(key: string, value: string, ttl: number): Promise<void> {
    try {
      checkExec(await this.client.multi().del(key).lpush(key, value).pexpire(key, Math.max(1, Math.round(ttl))).exec());
    } catch (err) {
      throw asBrokerError(err, "storing a result in redis");
    }
  }

  protected async getRaw(key: string, block: boolean, timeout: number): Promise<string | undefined> {
    try {
      if (!block || timeout <= 0) return (await this.client.lindex(key, 0)) ?? undefined;
      const value = await this.blocking.use((c) => c.blmove(key, key, "RIGHT", "LEFT", blockingSeconds(timeout)));
      return value ?? undefined;
    } catch (err) {
      throw asBrokerError(err, "reading a result from redis");
    }
  }

  async close(): Promise<void> {
    this.blocking.close();
    if (this.ownsClient) this.client.disconnect();
  }
}
