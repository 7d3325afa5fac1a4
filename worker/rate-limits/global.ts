import { TroupeError } from "../errors.js";
import { getBroker, hasBroker } from "../global.js";
import { redactUrl } from "../logging.js";
import { inWorkerThread, registerMainHandler } from "../runtime/rpc.js";
import type { RateLimiterBackend } from "./backend.js";
import { MemoryRateLimiterBackend } from "./memory.js";
import { RedisRateLimiterBackend } from "./redis.js";
import { RATE_LIMITER_RPC, ThreadRateLimiterBackend, type RateLimiterOp } from "./thread.js";

let current: RateLimiterBackend | undefined;

/** Build the backend a URL names: `memory://` (this process only), `redis://` or `rediss://` (shared). */
export function createRateLimiterBackend(url: string): RateLimiterBackend {
  const scheme = url.split(":", 1)[0]?.toLowerCase();
  if (scheme === "memory") return new MemoryRateLimiterBackend();
  if (scheme === "redis" || scheme === "rediss") return new RedisRateLimiterBackend({ url });
  throw new TroupeError(`unsupported rate limiter URL ${redactUrl(url)}: use memory://, redis:// or rediss://`);
}

/**
 * The default backend: inside a worker thread the main thread's (over RPC); elsewhere TROUPE_RATE_LIMITER_URL,
 * else the global broker's own Redis when it is a Redis broker (limits shared by every process on it), else
 * in-memory (this process only).
 */
function defaultBackend(): RateLimiterBackend {
  if (inWorkerThread()) return new ThreadRateLimiterBackend();
  const url = process.env.TROUPE_RATE_LIMITER_URL;
  if (url) return createRateLimiterBackend(url);
  const broker = hasBroker() ? (getBroker() as { createRateLimiterBackend?: () => RateLimiterBackend }) : undefined;
  return broker?.createRateLimiterBackend?.() ?? new MemoryRateLimiterBackend();
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

/** Close the backend if one was created (a worker calls this on shutdown so its connection does not linger). */
export async function closeRateLimiterBackend(): Promise<void> {
  const backend = current;
  current = undefined;
  await backend?.close?.();
}
