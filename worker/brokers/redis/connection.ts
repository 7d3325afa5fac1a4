import type * as IORedis from "ioredis";
import type { Redis, RedisOptions } from "ioredis";
import { lazyRequire } from "../../lazy.js";
import { BrokerError, ConnectionClosed, ConnectionFailed } from "../../errors.js";
import { getLogger, redactUrl } from "../../logging.js";

const ioredis = lazyRequire<typeof IORedis>("ioredis");

const log = getLogger("redis");

/** Redis connection settings shared by the broker, the results backend and the rate-limiter backend. */
export interface RedisConnectionOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…` for TLS (default redis://127.0.0.1:6379/0). */
  url?: string;
  /**
   * Extra ioredis options, merged over the URL: e.g. `{ sentinels: [{ host, port }], name: "mymaster" }` for
   * Sentinel, `tls: { ca }`, `connectTimeout`.
   */
  redis?: RedisOptions;
}

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0";

/**
 * A lazily connecting ioredis client that reconnects forever with a capped backoff. Errors are logged once
 * per outage with the URL redacted, so a flapping server does not flood the log and no password is logged.
 */
export function createRedisClient(options: RedisConnectionOptions, purpose: string, overrides: RedisOptions = {}): Redis {
  const url = options.url ?? DEFAULT_REDIS_URL;
  const client = new (ioredis().Redis)(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    connectionName: `troupe-${purpose}`,
    ...sentinelsFromEnv(),
    ...options.redis,
    ...overrides,
  });
  return watchRedisClient(client, purpose, url);
}

/**
 * Sentinel for command-line use: TROUPE_REDIS_SENTINELS="host:port,host:port" and TROUPE_REDIS_SENTINEL_NAME
 * (master name, default "mymaster"); the URL then only supplies the password and db.
 */
function sentinelsFromEnv(): RedisOptions {
  const list = process.env.TROUPE_REDIS_SENTINELS;
  if (!list) return {};
  const sentinels = list.split(",").map((entry) => {
    const [host, port] = entry.trim().split(":");
    return { host: host || "127.0.0.1", port: Number(port || 26379) };
  });
  return { sentinels, name: process.env.TROUPE_REDIS_SENTINEL_NAME || "mymaster" };
}

/** Another connection with `client`'s settings (for blocking commands), logged the same way. */
export function duplicateRedisClient(client: Redis, purpose: string, url: string | undefined): Redis {
  return watchRedisClient(client.duplicate({ connectionName: `troupe-${purpose}` }), purpose, url ?? DEFAULT_REDIS_URL);
}

const lastError = new WeakMap<Redis, Error>();

function watchRedisClient(client: Redis, purpose: string, url: string): Redis {
  const where = redactUrl(url);
  let healthy = true;
  client.on("error", (err: Error) => {
    lastError.set(client, err);
    if (!healthy) return;
    healthy = false;
    log.warn("redis connection lost; reconnecting", { purpose, url: where, err });
  });
  client.on("ready", () => {
    if (healthy) return;
    healthy = true;
    log.info("redis connection restored", { purpose, url: where });
  });
  return client;
}

/** Connect now; on failure stop retrying and raise ConnectionFailed naming the redacted URL and the cause. */
export async function connectRedis(client: Redis, url: string | undefined): Promise<void> {
  if (client.status === "ready") return;
  try {
    if (client.status === "wait") await client.connect();
    else await client.ping();
  } catch (err) {
    const cause = lastError.get(client) ?? err;
    client.disconnect();
    throw new ConnectionFailed(`cannot connect to Redis at ${redactUrl(url ?? DEFAULT_REDIS_URL)}: ${(cause as Error).message}`, { cause });
  }
}

/** Redis replied with an error (bad script, wrong type): not worth retrying. Anything else is the connection. */
export function asBrokerError(err: unknown, what: string): Error {
  if (err instanceof BrokerError) return err;
  const name = (err as Error | undefined)?.name;
  const message = `${what}: ${(err as Error | undefined)?.message ?? String(err)}`;
  if (name === "ReplyError") return new BrokerError(message, { cause: err });
  return new ConnectionClosed(message, { cause: err });
}

/** MULTI/EXEC and pipelines report per-command errors in their reply; raise the first one. */
export function checkExec(replies: [Error | null, unknown][] | null): void {
  if (!replies) throw new BrokerError("redis transaction was aborted");
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
}
