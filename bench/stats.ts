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

/** Width (ms) of the buckets acks are counted in, to count afterwards those that came after a given moment. */
export const ACK_BUCKET_MS = 10;

/** Acks per bucket of ACK_BUCKET_MS wall time (bucket index → count). */
export type AckBuckets = Record<string, number>;

export function countAck(buckets: AckBuckets, at: number): void {
  const bucket = Math.floor(at / ACK_BUCKET_MS);
  buckets[bucket] = (buckets[bucket] ?? 0) + 1;
}

/** Acks from the first whole bucket at or after `from` on, and when that bucket starts, over several processes' buckets. */
export function acksSince(reported: readonly AckBuckets[], from: number): { count: number; start: number } {
  const first = Math.ceil(from / ACK_BUCKET_MS);
  let count = 0;
  for (const buckets of reported) for (const [bucket, n] of Object.entries(buckets)) if (Number(bucket) >= first) count += n;
  return { count, start: first * ACK_BUCKET_MS };
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

/** How many alternating rounds `interleavedRates` splits each loop's sends into. */
const ROUNDS = 10;

/**
 * msg/s of one-at-a-time loops (each `step` awaited before the next; `senders` such loops at once, sharing the
 * count, for many concurrent callers each awaiting its own send), measured in alternating rounds: a tenth of
 * `count` sends of the first loop, of the second, …, ten times over. This machine's speed drifts by a fifth within
 * minutes, and loops measured one after the other gave ratios from 56 % to 72 % for the same code; alternating
 * makes the drift hit every loop alike. Each loop's round stops early after a tenth of `budget` ms, so that a slow
 * loop (sends that each wait for a disk sync can take minutes for 20,000) is still measured across all rounds.
 * `warmup` sends of each loop run first, uncounted, for at most a tenth of `budget`: V8 runs a send path interpreted
 * and then half-optimised for its first few thousand calls (a Troupe send loop here ran at 5–11k msg/s for its
 * first 6,000 sends and 14–16k after), which is start-up, not the rate a long-running producer sees.
 */
export async function interleavedRates(steps: (() => Promise<unknown>)[], count: number, budget: number, warmup = 0, senders = 1): Promise<number[]> {
  const run = async (step: () => Promise<unknown>, limit: number, ms: number) => {
    const start = performance.now();
    let done = 0;
    const loop = async () => {
      while (done < limit && performance.now() - start < ms) {
        done++;
        await step();
      }
    };
    await Promise.all(Array.from({ length: senders }, loop));
    return { done, ms: performance.now() - start };
  };
  for (const step of steps) await run(step, warmup, budget / 10);
  const totals = steps.map(() => ({ done: 0, ms: 0 }));
  const share = Math.ceil(count / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, step] of steps.entries()) {
      const total = totals[i]!;
      const { done, ms } = await run(step, Math.min(share, count - total.done), budget / ROUNDS);
      total.done += done;
      total.ms += ms;
    }
  }
  return totals.map(({ done, ms }) => perSecond(done, ms));
}

/** Run `fn` and return how long it took in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}
