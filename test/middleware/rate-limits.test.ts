import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Barrier, BucketRateLimiter, ConcurrentRateLimiter, MemoryRateLimiterBackend, RateLimitExceeded, WindowRateLimiter, type RateLimiterBackend } from "troupe";
import { RedisRateLimiterBackend } from "../../worker/rate-limits/redis.js";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { actors, startWorker } from "../support/middleware.js";
import { until } from "../support/wait.js";

/** `n` attempts at once, none releasing in between: how many got in. Then give back what was taken. */
async function contend(limiter: ConcurrentRateLimiter, n: number): Promise<number> {
  const outcomes = await Promise.all(Array.from({ length: n }, () => limiter.tryAcquire()));
  const acquired = outcomes.filter(Boolean).length;
  for (let i = 0; i < acquired; i++) await limiter.release();
  return acquired;
}

const backends: { name: string; make: () => RateLimiterBackend }[] = [
  { name: "memory", make: () => new MemoryRateLimiterBackend() },
  { name: "redis", make: () => new RedisRateLimiterBackend({ url: REDIS_URL }) },
];

for (const { name, make } of backends) {
  describe(`rate limiters and barriers on the ${name} backend`, () => {
    let backend: RateLimiterBackend;
    let redis: Redis;
    const prefix = uniqueName("mwrl");

    before(() => {
      backend = make();
      redis = new Redis(REDIS_URL);
    });
    after(async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await backend.close?.();
    });

    test("a concurrent limiter with limit 1 is a mutex, released after each use", async () => {
      const mutex = new ConcurrentRateLimiter(`${prefix}:mutex`, { backend });
      for (let i = 0; i < 3; i++) assert.equal(await mutex.acquire(() => "ran"), "ran");
      assert.equal(await contend(mutex, 8), 1);
    });

    test("a concurrent limiter with limit 4 lets exactly 4 of 32 in; raiseOnFailure throws RateLimitExceeded", async () => {
      const limiter = new ConcurrentRateLimiter(`${prefix}:four`, { backend, limit: 4 });
      assert.equal(await contend(limiter, 32), 4);
      await limiter.acquire(async () => {
        const mutex = new ConcurrentRateLimiter(`${prefix}:held`, { backend });
        await mutex.acquire(async () => {
          await assert.rejects(mutex.acquire(() => undefined), (err: unknown) => err instanceof RateLimitExceeded && err.message === `rate limit exceeded for key '${prefix}:held'`);
        });
      });
    });

    test("a limited caller can wait for room instead of failing", async () => {
      const mutex = new ConcurrentRateLimiter(`${prefix}:wait`, { backend });
      let release!: () => void;
      const holder = mutex.acquire(() => new Promise<void>((resolve) => (release = resolve)));
      const waiter = mutex.acquire(() => "got it", { wait: 10_000 });
      setTimeout(() => release(), 50);
      assert.equal(await waiter, "got it");
      await holder;
    });

    test("a bucket limiter counts per aligned bucket under <key>@<bucket start>", async () => {
      const bucket = 3_600_000;
      const limiter = new BucketRateLimiter(`${prefix}:bucket`, { backend, limit: 2, bucket });
      const outcomes = [];
      for (let i = 0; i < 5; i++) outcomes.push(await limiter.acquire((ok) => ok, { raiseOnFailure: false }));
      assert.deepEqual(outcomes, [true, true, false, false, false]);
      if (name === "redis") {
        const now = Date.now();
        assert.equal(await redis.get(`${prefix}:bucket@${now - (now % bucket)}`), "2");
      }
    });

    test("a window limiter counts per second over a sliding window under <key>@<unix seconds>", async () => {
      const limiter = new WindowRateLimiter(`${prefix}:window`, { backend, limit: 3, window: 5 });
      let passed = 0;
      for (let i = 0; i < 6; i++) if (await limiter.acquire((ok) => ok, { raiseOnFailure: false })) passed++;
      assert.equal(passed, 3);
      if (name === "redis") {
        const keys = await redis.keys(`${prefix}:window@*`);
        const total = (await Promise.all(keys.map((k) => redis.get(k)))).reduce((s, v) => s + Number(v), 0);
        assert.equal(total, 3);
        assert.ok(keys.every((k) => /@\d{10}$/.test(k)), keys.join());
      }
    });

    test("a barrier is created once and cleared by its last party; blocking waiters are released together", async () => {
      const key = `${prefix}:barrier`;
      const barrier = new Barrier(key, { backend });
      assert.equal(await barrier.create(3), true);
      assert.equal(await barrier.create(3), false);
      const first = barrier.wait({ timeout: 10_000 });
      const second = barrier.wait({ timeout: 10_000 });
      assert.equal(await new Barrier(key, { backend }).wait({ block: false }), true);
      assert.deepEqual(await Promise.all([first, second]), [true, true]);
      if (name === "redis") {
        assert.equal(await redis.get(key), "1");
        assert.deepEqual(await redis.lrange(`${key}@events`, 0, -1), ["x"]);
      }
    });

    test("a blocking wait times out when the barrier is not cleared", async () => {
      const barrier = new Barrier(`${prefix}:stuck`, { backend });
      await barrier.create(3);
      assert.equal(await barrier.wait({ timeout: 1000 }), false);
      assert.equal(await barrier.wait({ block: false }), false);
    });
  });
}

describe("limiter settings", () => {
  test("bad settings fail at construction with a clear error", () => {
    const backend = new MemoryRateLimiterBackend();
    assert.throws(() => new ConcurrentRateLimiter("k", { backend, limit: 0 }), /limit must be a positive integer, got 0/);
    assert.throws(() => new BucketRateLimiter("k", { backend, bucket: -5 }), /bucket must be a positive number, got -5/);
    assert.throws(() => new WindowRateLimiter("k", { backend, window: 1.5 }), /window must be a positive integer, got 1.5/);
    assert.throws(() => new Barrier("k", { backend, ttl: Number.NaN }), /ttl must be a positive number, got NaN/);
    assert.throws(() => new Barrier("k", { backend }).create(0), /a barrier needs a positive number of parties, got 0/);
  });
});

describe("a concurrent limiter inside actors (worker threads, through the main thread's backend)", () => {
  test("limit 2 is never exceeded by 8 messages on 2 threads × 4 concurrency", async () => {
    const run = await startWorker({ threads: 2, concurrency: 4 });
    const redis = new Redis(REDIS_URL);
    const probe = uniqueName("mwprobe");
    try {
      const a = await actors();
      const key = uniqueName("mwlimit");
      for (let i = 0; i < 8; i++) await a.limited.send(key, 2, probe, 30);
      await until(async () => Number(await redis.get(`${probe}:done`)) === 8, "all 8 limited messages to finish", { interval: 20 });
      assert.equal(await redis.get(`${probe}:max`), "2");
    } finally {
      await redis.del(`${probe}:now`, `${probe}:max`, `${probe}:done`);
      redis.disconnect();
      await run.stop();
    }
  });
});
