import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { group, rateLimiterBackendFor, setBroker, setRateLimiterBackend, type RateLimiterBackend } from "troupe";
import { RedisBroker } from "../../worker/brokers/redis.js";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { actors, middlewareFixture } from "../support/middleware.js";
import { CliProcess } from "../support/process.js";
import { until } from "../support/wait.js";

/** `troupe worker` on the middleware fixture with N processes, on its own Redis namespace. */
async function startCluster(namespace: string, processes: number, threads: number): Promise<CliProcess> {
  const cli = new CliProcess(["worker", middlewareFixture, "--broker", REDIS_URL, "--processes", String(processes), "--threads", String(threads), "--concurrency", "2"], {
    TROUPE_REDIS_NAMESPACE: namespace,
  });
  await cli.waitForLog((l) => l.msg === "worker started", `${processes} worker processes to start`, 60_000, processes - 1);
  return cli;
}

describe("middleware across worker processes (Redis)", () => {
  const namespace = uniqueName("mwproc");
  const probe = uniqueName("mwprobe");
  let redis: Redis;
  let broker: RedisBroker;
  let limits: RateLimiterBackend;

  before(async () => {
    redis = new Redis(REDIS_URL);
    broker = new RedisBroker(REDIS_URL, { namespace });
    setBroker(broker);
    limits = setRateLimiterBackend(rateLimiterBackendFor(broker)!);
  });

  after(async () => {
    await broker.close();
    await limits.close?.();
    const keys = [...(await redis.keys(`${namespace}*`)), ...(await redis.keys(`${probe}*`))];
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  test("a group of 1,000 members processed by 4 worker processes fires its completion callback exactly once", async () => {
    const cli = await startCluster(namespace, 4, 2);
    try {
      const a = await actors();
      const g = group(Array.from({ length: 1000 }, () => a.member.message(probe)));
      g.addCompletionCallback(a.membersDone.message(probe));
      await g.run();
      await until(async () => Number(await redis.get(`${probe}:callbacks`)) >= 1, "the completion callback", { timeout: 60_000, interval: 50 });
      assert.equal(await redis.get(`${probe}:members`), "1000");
      await broker.join("default", { timeout: 30_000 });
      assert.equal(await redis.get(`${probe}:callbacks`), "1");
      // Every member was handled by the cluster; none is left in the dead-letter queue.
      assert.equal((await broker.queueStats("default")).dead, 0);
      assert.equal(await cli.stop(), 0, "clean exit on SIGTERM");
    } finally {
      await cli.stop();
    }
  });

  test("a concurrent limiter with limit 3 never lets more than 3 actors in at once across 2 processes", async () => {
    const cli = await startCluster(namespace, 2, 4);
    try {
      const a = await actors();
      const key = uniqueName("mwlimit3");
      const limiterProbe = `${probe}:limit`;
      // Held 250 ms each: a worker starts with one thread and adds the others as this backlog asks (a boot is 100 ms
      // to over a second on a loaded machine), so the drain lasts long enough for more than 3 to be able to run.
      await broker.enqueueMany(Array.from({ length: 24 }, () => a.limited.message(key, 3, limiterProbe, 250)));
      await until(async () => Number(await redis.get(`${limiterProbe}:done`)) === 24, "24 limited messages to finish", { timeout: 60_000, interval: 50 });
      // 16 actors could run at once (2 processes × 4 threads × 2); the limiter kept it to 3.
      assert.equal(await redis.get(`${limiterProbe}:max`), "3");
      await redis.del(key);
      assert.equal(await cli.stop(), 0, "clean exit on SIGTERM");
    } finally {
      await cli.stop();
    }
  });
});
