import { TroupeError } from "../errors.js";
import { getBroker } from "../global.js";
import { redactUrl } from "../logging.js";
import { setResultLookup } from "../message.js";
import type { ResultBackend } from "./backend.js";
import { MemoryResultBackend } from "./memory.js";
import { RedisResultBackend } from "./redis.js";

let current: ResultBackend | undefined;

/**
 * Build the results backend a URL names. `memory://` keeps results in this process; Redis URLs are handled by
 * the Redis results backend.
 */
export function createResultBackend(url: string): ResultBackend {
  const scheme = url.split(":", 1)[0]?.toLowerCase();
  if (scheme === "memory") return new MemoryResultBackend();
  if (scheme === "redis" || scheme === "rediss") return new RedisResultBackend({ url });
  throw new TroupeError(`unsupported results URL ${redactUrl(url)}: use memory://, redis:// or rediss://`);
}

/** Choose the backend: TROUPE_RESULTS_URL, else the broker's own URL when it can hold results. */
function defaultResultBackend(): ResultBackend {
  const url = process.env.TROUPE_RESULTS_URL;
  if (url) return createResultBackend(url);
  const broker = getBroker();
  // Brokers that can hold results (Redis) offer a backend on their own connection settings.
  const own = (broker as { createResultBackend?: () => ResultBackend }).createResultBackend;
  if (own) return own.call(broker);
  const brokerUrl = broker.displayUrl;
  if (brokerUrl.startsWith("memory:")) return new MemoryResultBackend();
  throw new TroupeError(`no results backend for broker ${brokerUrl}: set TROUPE_RESULTS_URL to a redis:// URL`);
}

export function setResultBackend(backend: ResultBackend): ResultBackend {
  current = backend;
  return backend;
}

export function getResultBackend(): ResultBackend {
  current ??= defaultResultBackend();
  return current;
}

export function resetResultBackend(): void {
  current = undefined;
}

setResultLookup((message, options) => getResultBackend().getResult(message, options));

/** Close the backend if one was created (a worker calls this on shutdown so its connection does not linger). */
export async function closeResultBackend(): Promise<void> {
  const backend = current;
  current = undefined;
  await backend?.close();
}
