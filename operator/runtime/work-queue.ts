/** The overall limit on retries, client-go's default: a token bucket of 10 per second with a burst of 100. */
export interface BucketLimit {
  qps: number;
  burst: number;
}

/**
 * A rate-limited work queue in the manner of client-go's: a key is queued at most once, is never handed to two
 * workers at once (a key added while it is being processed is queued again when it is done), can be delayed, and
 * backs off exponentially per key after failures until `forget`. As with client-go's default controller rate
 * limiter, a retry also takes a token from a bucket shared by every key and waits for whichever delay is longer, so
 * a storm of failing keys cannot retry faster than `bucket.qps` overall once the burst is spent.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirtyWhileProcessing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly baseDelayMs = 5,
    private readonly maxDelayMs = 60_000,
    private readonly bucket: BucketLimit = { qps: 10, burst: 100 },
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = bucket.burst;
    this.refilledAt = now();
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirtyWhileProcessing.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  /** Add after `ms`; when the key already waits, the earlier of the two times wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const due = this.now() + ms;
    const pending = this.timers.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { timer, due });
  }

  /** Add after the key's next backoff delay: base × 2^failures, capped. */
  addRateLimited(key: string, baseDelayMs = this.baseDelayMs): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.max(Math.min(baseDelayMs * 2 ** failures, this.maxDelayMs), this.reserveToken());
    this.addAfter(key, delay);
    return delay;
  }

  /** Take a token (the bucket may go into debt, as golang.org/x/time/rate's Reserve does): how long until it is ours. */
  private reserveToken(): number {
    const now = this.now();
    this.tokens = Math.min(this.bucket.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.bucket.qps);
    this.refilledAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.bucket.qps) * 1000);
  }

  /** Clear the key's failure count after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Mark a key from `get` as processed. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirtyWhileProcessing.delete(key)) this.add(key);
  }

  get length(): number {
    return this.queue.length;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters) waiter(undefined);
    this.waiters = [];
  }
}
