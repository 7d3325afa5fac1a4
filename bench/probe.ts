import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { ChurnMap, type Broker, type Middleware, type MessageProxy, type ProcessOutcome } from "troupe";
import { wallNow } from "./clock.js";
import { CpuProfile } from "./profiler.js";
import { RateMeter, countAck, type AckBuckets } from "./stats.js";

/** How often a worker process reports its tallies: coarse enough to cost nothing, fine enough to see progress. */
const FLUSH_MS = 25;
/** Longest a process waits for the others at the start barrier (a crashed sibling must not hang the bench). */
const BARRIER_TIMEOUT_MS = 60_000;

interface PhaseTally {
  meter: RateMeter;
  buckets: AckBuckets;
  failed: number;
  /** Flat (sentAt, startedAt, finishedAt) triples not yet reported. */
  samples: number[];
  dirty: boolean;
}

/** Redis keys where the probes report and the bench reads (see tally.ts). */
export const tallyKeys = {
  ready: (key: string) => `${key}:ready`,
  booted: (key: string) => `${key}:booted`,
  threads: (key: string) => `${key}:threads`,
  stopped: (key: string) => `${key}:stopped`,
  phase: (key: string, phase: string) => `${key}:phase:${phase}`,
  samples: (key: string, phase: string) => `${key}:samples:${phase}`,
};

/**
 * Middleware the bench installs in each worker process's main thread. Bench messages carry `[phase, sentAt?]`
 * as args and their actor returns the time it started, so at ack time the probe knows the whole story of a
 * message: it counts completions per phase with the first and last ack time, and keeps latency triples for
 * messages stamped with `sentAt`. Every 25 ms it reports to Redis in one pipeline, one hash field per process,
 * so counting never sits on the path of a message.
 */
export class BenchProbe implements Middleware {
  private readonly phases = new Map<string, PhaseTally>();
  /** Start times reported by the actors, until the message's ack (a ChurnMap, as middleware should use: see churn.ts). */
  private readonly starts = new ChurnMap<MessageProxy, number>();
  private readonly timer: NodeJS.Timeout;
  /** Worker threads booted in this process (the pool starts them as load asks) and when the last one was ready. */
  private threadBoots = { boots: 0, lastBootAt: 0, dirty: false };

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    /** Worker processes of this `troupe worker` (BENCH_WORKER_PROCESSES, set by worker-process.ts): how many `beforeWorkerBoot` waits for. */
    private readonly processes: number,
    private readonly profile?: { profiler: CpuProfile; dir: string },
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /**
   * A barrier: runs once this process's threads have booted, before it starts consuming, and returns when every
   * process of the worker got there. Processes forked together boot in turn on 2 cores (each boots 8 threads,
   * with a collection after each), and the last one used to start acking 1.8 s after the first: a third of a
   * 1 ms I/O drain then ran on one process, and the 2 × 8 figure measured the boot skew, which a long-running
   * worker never sees (as the boot of a single process is not counted either).
   */
  async beforeWorkerBoot(): Promise<void> {
    await this.redis.hset(tallyKeys.ready(this.key), String(process.pid), "1");
    const deadline = Date.now() + BARRIER_TIMEOUT_MS;
    while ((await this.redis.hlen(tallyKeys.ready(this.key))) < this.processes && Date.now() < deadline) await sleep(5);
  }

  afterWorkerThreadBoot(): void {
    this.threadBoots = { boots: this.threadBoots.boots + 1, lastBootAt: wallNow(), dirty: true };
  }

  async afterWorkerBoot(): Promise<void> {
    await this.redis.hset(tallyKeys.booted(this.key), String(process.pid), "1");
  }

  afterProcessMessage(_broker: Broker, message: MessageProxy, outcome: ProcessOutcome): void {
    if (typeof outcome.result === "number") this.starts.set(message, outcome.result);
  }

  afterAck(_broker: Broker, message: MessageProxy): void {
    this.record(message, true);
  }

  afterNack(_broker: Broker, message: MessageProxy): void {
    this.record(message, false);
  }

  async afterWorkerShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.profile?.profiler.save(this.profile.dir);
    await this.flush();
    await this.redis.hset(tallyKeys.stopped(this.key), String(process.pid), "1");
    this.redis.disconnect();
  }

  private record(message: MessageProxy, ok: boolean): void {
    const now = wallNow();
    const startedAt = this.starts.get(message);
    this.starts.delete(message);
    const [phase, sentAt] = message.message.args;
    if (typeof phase !== "string") return;
    let tally = this.phases.get(phase);
    if (!tally) {
      tally = { meter: new RateMeter(), buckets: {}, failed: 0, samples: [], dirty: false };
      this.phases.set(phase, tally);
    }
    tally.dirty = true;
    if (!ok) {
      tally.failed++;
      return;
    }
    tally.meter.tick(now);
    countAck(tally.buckets, now);
    if (typeof sentAt === "number" && startedAt !== undefined) tally.samples.push(sentAt, startedAt, now);
  }

  private async flush(): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const [phase, tally] of this.phases) {
      if (!tally.dirty) continue;
      tally.dirty = false;
      const { count, first, last } = tally.meter;
      pipeline.hset(tallyKeys.phase(this.key, phase), String(process.pid), JSON.stringify({ count, failed: tally.failed, first, last, buckets: tally.buckets }));
      if (tally.samples.length) pipeline.rpush(tallyKeys.samples(this.key, phase), JSON.stringify(tally.samples.splice(0)));
    }
    if (this.threadBoots.dirty) {
      this.threadBoots.dirty = false;
      const { boots, lastBootAt } = this.threadBoots;
      pipeline.hset(tallyKeys.threads(this.key), String(process.pid), JSON.stringify({ boots, lastBootAt }));
    }
    if (pipeline.length) await pipeline.exec().catch(() => undefined);
  }
}

/**
 * Install the probe on this process's broker, reporting to BENCH_TALLY_URL under BENCH_TALLY_KEY; with
 * BENCH_CPU_PROF=<dir> it also profiles this (main) thread into that directory.
 */
export function installProbe(broker: Broker, env: NodeJS.ProcessEnv = process.env): void {
  const url = env.BENCH_TALLY_URL;
  const key = env.BENCH_TALLY_KEY;
  if (!url || !key) throw new Error("the bench actor module needs BENCH_TALLY_URL and BENCH_TALLY_KEY (it is started by npm run bench)");
  const dir = env.BENCH_CPU_PROF;
  const processes = Number(env.BENCH_WORKER_PROCESSES) || 1;
  broker.addMiddleware(new BenchProbe(new Redis(url), key, processes, dir ? { profiler: new CpuProfile(), dir } : undefined));
}
