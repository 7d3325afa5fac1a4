import { RateLimiter, positive, type RateLimiterOptions } from "./rate-limiter.js";

export interface WindowRateLimiterOptions extends RateLimiterOptions {
  /** Window length in whole **seconds**, as Dramatiq (default 1). */
  window?: number;
}

/**
 * Dramatiq's WindowRateLimiter: at most `limit` acquisitions in any sliding window of `window` seconds, counted
 * per second under `<key>@<unix seconds>`. Nothing is released.
 */
export class WindowRateLimiter extends RateLimiter {
  readonly window: number;

  constructor(key: string, { window = 1, ...options }: WindowRateLimiterOptions = {}) {
    super(key, options);
    this.window = positive("window", window, true);
  }

  async tryAcquire(): Promise<boolean> {
    const second = Math.floor(Date.now() / 1000);
    const keys = Array.from({ length: this.window }, (_, i) => `${this.key}@${second - i}`);
    return this.backend.incrAndSum(keys[0]!, keys, 1, this.limit, this.window * 1000);
  }

  async release(): Promise<void> {}
}
