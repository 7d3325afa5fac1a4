/** Counts completions and the span from the first to the last one, which gives a rate free of start-up time. */
export class RateMeter {
  count = 0;
  first = Infinity;
  last = -Infinity;

  tick(at: number): void {
    this.count++;
    if (at < this.first) this.first = at;
    if (at > this.last) this.last = at;
  }

  /** Merge another meter's span (the same phase seen by another process). */
  merge(other: { count: number; first: number; last: number }): void {
    this.count += other.count;
    this.first = Math.min(this.first, other.first);
    this.last = Math.max(this.last, other.last);
  }

  /** Completions per second between the first and the last one. */
  get rate(): number {
    return this.count > 1 && this.last > this.first ? ((this.count - 1) * 1000) / (this.last - this.first) : 0;
  }
}

/** Messages per second of `count` operations that took `ms`. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

/** Nearest-rank percentile of unsorted values (`p` in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * msg/s of `step` run up to `count` times, each awaited before the next, stopping early once `budget` ms have
 * passed (sends that wait for a disk sync each can take minutes for 20,000). A zero budget skips the loop.
 */
export async function sequentialRate(count: number, budget: number, step: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let done = 0;
  while (done < count && performance.now() - start < budget) {
    await step();
    done++;
  }
  return perSecond(done, performance.now() - start);
}

/** Run `fn` and return how long it took in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}
