import type { Redis } from "ioredis";
import { tallyKeys } from "./probe.js";
import { RateMeter, acksSince, type AckBuckets } from "./stats.js";
import { progress } from "./progress.js";
import { deleteKeys } from "./redis-keys.js";

export interface PhaseCount {
  meter: RateMeter;
  failed: number;
}

export interface ProcessSpan {
  pid: number;
  count: number;
  failed: number;
  first: number;
  last: number;
  buckets: AckBuckets;
}

/** A worker process's thread boots so far, and when its last thread was ready (wall ms). */
export interface ThreadBoots {
  pid: number;
  boots: number;
  lastBootAt: number;
}

/** Latency of one message: from the send to the actor's start, and to the ack. */
export interface LatencySample {
  toStart: number;
  toFinish: number;
}

/** The bench's side of the probes: reads what the worker processes reported under one key. */
export class Tally {
  constructor(
    private readonly redis: Redis,
    readonly key: string,
  ) {}

  /** Forget earlier boots and stops, before starting another worker. */
  async forgetWorkers(): Promise<void> {
    await this.redis.del(tallyKeys.ready(this.key), tallyKeys.booted(this.key), tallyKeys.stopped(this.key), tallyKeys.threads(this.key));
  }

  async count(phase: string): Promise<PhaseCount> {
    const meter = new RateMeter();
    let failed = 0;
    for (const reported of await this.perProcess(phase)) {
      meter.merge(reported);
      failed += reported.failed;
    }
    return { meter, failed };
  }

  /** What each worker process reported for `phase`: its count, and its first and last ack (wall ms). */
  async perProcess(phase: string): Promise<ProcessSpan[]> {
    const fields = await this.redis.hgetall(tallyKeys.phase(this.key, phase));
    return Object.entries(fields).map(([pid, raw]) => {
      const reported = JSON.parse(raw) as { count: number; failed: number; first: number | null; last: number | null; buckets: AckBuckets };
      // JSON turns ±Infinity (no ack yet) into null.
      return { pid: Number(pid), count: reported.count, failed: reported.failed, first: reported.first ?? Infinity, last: reported.last ?? -Infinity, buckets: reported.buckets };
    });
  }

  /** Acks of `phase` from `from` (wall ms, rounded up to a bucket) on, and where that count starts. */
  async acksSince(phase: string, from: number): Promise<{ count: number; start: number }> {
    return acksSince((await this.perProcess(phase)).map((p) => p.buckets), from);
  }

  /** What each worker process reported of its thread boots. */
  async threadBoots(): Promise<ThreadBoots[]> {
    const fields = await this.redis.hgetall(tallyKeys.threads(this.key));
    return Object.entries(fields).map(([pid, raw]) => ({ pid: Number(pid), ...(JSON.parse(raw) as { boots: number; lastBootAt: number }) }));
  }

  async samples(phase: string): Promise<LatencySample[]> {
    const chunks = await this.redis.lrange(tallyKeys.samples(this.key, phase), 0, -1);
    const out: LatencySample[] = [];
    for (const chunk of chunks) {
      const flat = JSON.parse(chunk) as number[];
      for (let i = 0; i + 2 < flat.length; i += 3) out.push({ toStart: flat[i + 1]! - flat[i]!, toFinish: flat[i + 2]! - flat[i]! });
    }
    return out;
  }

  /**
   * Poll until `expected` messages of `phase` are acked, reporting progress; fails when one is dead-lettered
   * or when nothing moves for `stallTimeout` ms. With a `budget` (ms), returns early once that much time has
   * passed since the first ack, with the count reached by then.
   */
  async waitFor(phase: string, expected: number, stallTimeout: number, label: string, budget = Infinity): Promise<RateMeter> {
    let seen = -1;
    let movedAt = Date.now();
    let reportedAt = Date.now();
    let firstAckAt: number | undefined;
    for (;;) {
      const { meter, failed } = await this.count(phase);
      if (failed > 0) throw new Error(`${label}: ${failed} bench messages failed in the worker (see its stderr)`);
      if (meter.count >= expected) return meter;
      const now = Date.now();
      if (meter.count > 0) firstAckAt ??= now;
      if (firstAckAt !== undefined && now - firstAckAt >= budget && meter.count > 1) {
        progress(`${label}: time budget of ${budget / 1000} s reached at ${meter.count}/${expected}; measured over those`);
        return meter;
      }
      if (meter.count !== seen) {
        seen = meter.count;
        movedAt = now;
      } else if (now - movedAt > stallTimeout) {
        throw new Error(`${label}: stalled at ${meter.count}/${expected} messages for ${stallTimeout / 1000} s`);
      }
      if (now - reportedAt >= 2000) {
        reportedAt = now;
        progress(`${label}: ${meter.count}/${expected}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Wait until `processes` worker processes have booted (their probe reports afterWorkerBoot). */
  waitForBoot(processes: number, timeout: number): Promise<void> {
    return this.waitForMarks(tallyKeys.booted(this.key), processes, timeout, "boot");
  }

  /** Wait until `processes` worker processes have finished their graceful stop (afterWorkerShutdown). */
  waitForStop(processes: number, timeout: number): Promise<void> {
    return this.waitForMarks(tallyKeys.stopped(this.key), processes, timeout, "stop");
  }

  private async waitForMarks(key: string, processes: number, timeout: number, what: string): Promise<void> {
    const deadline = Date.now() + timeout;
    while ((await this.redis.hlen(key)) < processes) {
      if (Date.now() > deadline) throw new Error(`worker processes did not ${what} within ${timeout / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async clear(): Promise<void> {
    await deleteKeys(this.redis, `${this.key}:*`);
  }
}
