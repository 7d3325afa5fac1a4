import { RateLimiter, positive, type RateLimiterOptions } from "./rate-limiter.js";

export interface BucketRateLimiterOptions extends RateLimiterOptions {
  /** Bucket length in ms (default 1 000); buckets are aligned to multiples of it. */
  bucket?: number;
}

/**
 * Dramatiq's BucketRateLimiter: at most `limit` acquisitions per fixed window of `bucket` ms, counted under
 * `<key>@<bucket start ms>`. Nothing is released; up to 2 × limit can pass around a bucket boundary.
 */
export class BucketRateLimiter extends RateLimiter {
  readonly bucket: number;

  constructor(key: string, { bucket = 1000, ...options }: BucketRateLimiterOptions = {}) {
    super(key, options);
    this.bucket = positive("bucket", bucket);
  }

  async tryAcquire(): Promise<boolean> {
    const now = Date.now();
    const key = `${this.key}@${now - (now % this.bucket)}`;
    if (await this.backend.add(key, 1, this.bucket)) return true;
    return this.backend.incr(key, 1, this.limit, this.bucket);
  }

  async release(): Promise<void> {}
}
