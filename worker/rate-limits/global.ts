import { TroupeError } from "../errors.js";
import { redactUrl } from "../logging.js";
import { inWorkerThread, registerMainHandler } from "../runtime/rpc.js";
import type { RateLimiterBackend } from "./backend.js";
import { MemoryRateLimiterBackend } from "./memory.js";
import { RATE_LIMITER_RPC, ThreadRateLimiterBackend, type RateLimiterOp } from "./thread.js";

let current: RateLimiterBackend | undefined;

/** Build the backend a URL names: `memory://` (this process only), `redis://` or `rediss://` (shared). */
export function createRateLimiterBackend(url: string): RateLimiterBackend {
  const scheme = url.split(":", 1)[0]?.toLowerCase();
  if (scheme === "memory") return new MemoryRateLimiterBackend();
  throw new TroupeError(`unsupported rate limiter URL ${redactUrl(url)}: use memory://, redis:// or rediss://`);
}

/**
 * The default backend: inside a worker thread the main thread's (over RPC); elsewhere TROUPE_RATE_LIMITER_URL,
 * else the broker's URL when it is Redis (limits shared by every process on that Redis), else in-memory.
 */
function defaultBackend(): RateLimiterBackend {
  if (inWorkerThread()) return new ThreadRateLimiterBackend();
  const url = process.env.TROUPE_RATE_LIMITER_URL || redisBrokerUrl();
  return url ? createRateLimiterBackend(url) : new MemoryRateLimiterBackend();
}

function redisBrokerUrl(): string | undefined {
  const url = process.env.TROUPE_BROKER_URL;
  return url && /^rediss?:/i.test(url) ? url : undefined;
}

export function getRateLimiterBackend(): RateLimiterBackend {
  current ??= defaultBackend();
  return current;
}

export function setRateLimiterBackend(backend: RateLimiterBackend): RateLimiterBackend {
  current = backend;
  return backend;
}

export function resetRateLimiterBackend(): void {
  current = undefined;
}

// Rate limiters and barriers used inside actors reach this process's backend through the main thread.
registerMainHandler(RATE_LIMITER_RPC, (op: RateLimiterOp, args: unknown[]) => {
  const backend = getRateLimiterBackend() as unknown as Record<RateLimiterOp, (...a: unknown[]) => Promise<unknown>>;
  return backend[op](...args);
});
