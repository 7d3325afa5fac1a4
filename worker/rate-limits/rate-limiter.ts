import { RateLimitExceeded } from "../errors.js";
import { computeBackoff } from "../middleware/backoff.js";
import type { RateLimiterBackend } from "./backend.js";
import { getRateLimiterBackend } from "../global.js";

export interface RateLimiterOptions {
  /** Where the counters live (default: `getRateLimiterBackend()`). */
  backend?: RateLimiterBackend;
  /** Holders at once (concurrent) or acquisitions per bucket / window (default 1). */
  limit?: number;
}

export interface AcquireOptions {
  /** Throw `RateLimitExceeded` when the limit is reached (default true); otherwise run `fn(false)`. */
  raiseOnFailure?: boolean;
  /**
   * Wait up to this many ms for room instead of failing at once, re-trying with a jittered backoff (10 ms doubling
   * to 1 s). Useful for a short wait; for long waits let the message fail and be retried.
   */
  wait?: number;
}

/** Check a limiter setting at construction, so a typo fails where it was made rather than at the first acquire. */
export function positive(name: string, value: number, integer = false): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new RangeError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`);
  }
  return value;
}

/**
 * Dramatiq's RateLimiter: `acquire` runs `fn` holding the limit and releases it afterwards (for the limiters that
 * release). `fn` receives whether the limit was acquired, as Dramatiq's `with limiter.acquire(...) as acquired`.
 */
export abstract class RateLimiter {
  private configured: RateLimiterBackend | undefined;
  readonly limit: number;

  constructor(
    readonly key: string,
    { backend, limit = 1 }: RateLimiterOptions = {},
  ) {
    this.configured = backend;
    this.limit = positive("limit", limit, true);
  }

  /** Resolved on first use, so that a limiter declared at import time finds the process wired by then. */
  get backend(): RateLimiterBackend {
    this.configured ??= getRateLimiterBackend();
    return this.configured;
  }

  /** One attempt to take the limit; true when taken. */
  abstract tryAcquire(): Promise<boolean>;
  /** Give back what `tryAcquire` took (nothing, for limiters that only count). */
  abstract release(): Promise<void>;

  async acquire<T>(fn: (acquired: boolean) => T | Promise<T>, { raiseOnFailure = true, wait = 0 }: AcquireOptions = {}): Promise<T> {
    const acquired = await this.acquireWithin(wait);
    if (!acquired && raiseOnFailure) throw new RateLimitExceeded(`rate limit exceeded for key '${this.key}'`);
    try {
      return await fn(acquired);
    } finally {
      if (acquired) await this.release();
    }
  }

  private async acquireWithin(wait: number): Promise<boolean> {
    const deadline = Date.now() + wait;
    for (let attempt = 0; ; ) {
      if (await this.tryAcquire()) return true;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      let pause: number;
      [attempt, pause] = computeBackoff(attempt, { factor: 10, maxBackoff: 1000 });
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, remaining)));
    }
  }
}
