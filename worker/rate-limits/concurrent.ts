import { RateLimiter, positive, type RateLimiterOptions } from "./rate-limiter.js";

export interface ConcurrentRateLimiterOptions extends RateLimiterOptions {
  /** ms after which a holder that never released (a crashed process) stops counting (default 15 minutes). */
  ttl?: number;
}

/**
 * Dramatiq's ConcurrentRateLimiter: at most `limit` holders of `key` at once, across every process sharing the
 * backend; `limit: 1` (the default) is a distributed mutex.
 */
export class ConcurrentRateLimiter extends RateLimiter {
  readonly ttl: number;

  constructor(key: string, { ttl = 900_000, ...options }: ConcurrentRateLimiterOptions = {}) {
    super(key, options);
    this.ttl = positive("ttl", ttl);
  }

  async tryAcquire(): Promise<boolean> {
    if (await this.backend.add(this.key, 1, this.ttl)) return true;
    return this.backend.incr(this.key, 1, this.limit, this.ttl);
  }

  async release(): Promise<void> {
    await this.backend.decr(this.key, 1, 0, this.ttl);
  }
}
