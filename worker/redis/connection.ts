import type * as IORedis from "ioredis";
import type { Redis, RedisOptions } from "ioredis";
import { lazyRequire } from "../lazy.js";
import { BrokerError, ConnectionClosed, ConnectionFailed } from "../errors.js";
import { getLogger, redactUrl } from "../logging.js";

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
  // ioredis would throw a bare "Invalid URL" that names neither the URL nor what is wrong with it.
  if (!URL.canParse(url)) throw new ConnectionFailed(`invalid Redis URL ${redactUrl(url)}: check the scheme, the host, and that the port is a number from 1 to 65535`);
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

/**
 * What happens when a connection's SELECT is refused, at boot or on any reconnect: the library logs it and stops
 * the client (its commands then fail instead of silently using db 0); the CLI replaces this to exit with code 3.
 */
let onUnusableDatabase: (err: ConnectionFailed) => void = () => undefined;

export function setUnusableDatabaseHandler(handler: (err: ConnectionFailed) => void): void {
  onUnusableDatabase = handler;
}

/**
 * ioredis sends SELECT on every (re)connection and only emits its failure as an `error` event, then carries on
 * in db 0. A refused SELECT (db out of range) is a configuration error, not an outage: stop the client.
 */
function isRefusedSelect(err: Error): boolean {
  return err.name === "ReplyError" && (err as Error & { command?: { name?: string } }).command?.name === "select";
}

function watchRedisClient(client: Redis, purpose: string, url: string): Redis {
  const where = redactUrl(url);
  let healthy = true;
  client.on("error", (err: Error) => {
    lastError.set(client, err);
    if (isRefusedSelect(err)) {
      const failure = new ConnectionFailed(`Redis at ${where} refused the database: ${err.message}`, { cause: err });
      lastError.set(client, failure);
      client.disconnect();
      log.critical("redis refused the database in the URL; not falling back to db 0", { purpose, url: where, err });
      onUnusableDatabase(failure);
      return;
    }
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
    // A refused SELECT arrives before "ready" but does not fail connect(): check for it.
    const refused = lastError.get(client);
    if (refused instanceof ConnectionFailed) throw refused;
  } catch (err) {
    const cause = lastError.get(client) ?? err;
    if (cause instanceof ConnectionFailed) throw cause;
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
