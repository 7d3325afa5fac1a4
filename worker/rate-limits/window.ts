import { RateLimiter, type RateLimiterOptions } from "./rate-limiter.js";

export interface WindowRateLimiterOptions extends RateLimiterOptions {
  /** Acquisitions per window (default 1). */
  limit?: number;
  /** Window length in whole **seconds**, as Dramatiq (default 1). */
  window?: number;
}

/**
 * Dramatiq's WindowRateLimiter: at most `limit` acquisitions in any sliding window of `window` seconds, counted
 * per second under `<key>@<unix seconds>`. Nothing is released.
 */
export class WindowRateLimiter extends RateLimiter {
  readonly limit: number;
  readonly window: number;

  constructor(key: string, { limit = 1, window = 1, ...options }: WindowRateLimiterOptions = {}) {
    super(key, options);
    this.limit = limit;
    this.window = window;
  }

  async tryAcquire(): Promise<boolean> {
    const second = Math.floor(Date.now() / 1000);
    const keys = Array.from({ length: this.window }, (_, i) => `${this.key}@${second - i}`);
    return this.backend.incrAndSum(keys[0]!, keys, 1, this.limit, this.window * 1000);
  }

  async release(): Promise<void> {}
}
