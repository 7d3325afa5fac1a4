import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { GroupCallbacks, ResultFailure, defaultMiddleware, group, pipeline, rateLimiterBackendFor, resultBackendFor, setRateLimiterBackend, setResultBackend, type RateLimiterBackend, type ResultBackend } from "troupe";
import { RedisBroker } from "../../worker/brokers/redis.js";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { actors, startWorker, type Fixture, type Running } from "../support/middleware.js";

describe("Retries, Results, Pipelines and GroupCallbacks on the Redis broker", () => {
  const namespace = uniqueName("mwredis");
  let run: Running;
  let a: Fixture;
  let redis: Redis;
  let broker: RedisBroker;
  let results: ResultBackend;
  let limits: RateLimiterBackend;

  before(async () => {
    redis = new Redis(REDIS_URL);
    // Group barriers use raw keys (as Dramatiq's); a short TTL makes sure this test's expire soon.
    const middleware = defaultMiddleware().map((m) => (m instanceof GroupCallbacks ? new GroupCallbacks({ barrierTtl: 60_000 }) : m));
    broker = new RedisBroker(REDIS_URL, { namespace, middleware });
    results = setResultBackend(resultBackendFor(broker, { namespace: `${namespace}-results` })!);
    limits = setRateLimiterBackend(rateLimiterBackendFor(broker)!);
    run = await startWorker({ broker });
    a = await actors();
  });

  after(async () => {
    await run.stop();
    await broker.close();
    await results.close();
    await limits.close?.();
    const keys = await redis.keys(`${namespace}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  test("a failing message is retried through the delay queue until it succeeds, and its result is stored", async () => {
    const sent = await a.flaky.send("rf1", 2);
    assert.equal(await sent.getResult({ block: true, timeout: 15_000 }), 2);
    assert.deepEqual(run.events.of("flaky").filter((e) => e.id === "rf1").map((e) => e.retries), [0, 1, 2]);
  });

  test("exhausted retries end in the Redis dead-letter queue with a stored failure", async () => {
    const sent = await a.alwaysFails.send("rx1");
    await assert.rejects(sent.getResult({ block: true, timeout: 15_000 }), (err: unknown) => err instanceof ResultFailure && err.origExcType === "RangeError");
    await run.events.waitFor((e) => e.some((x) => x.kind === "exhausted" && x.id === "rx1"), "on_retry_exhausted");
    const dead = await broker.deadLetters("default");
    const entry = dead.find((d) => d.message?.messageId === sent.messageId);
    assert.ok(entry, "in q.XQ");
    assert.equal(entry.message?.options.retries, 2, "the last published body, as Dramatiq keeps it");
    assert.equal(await redis.zcard(`${namespace}:default.XQ`), dead.length);
  });

  test("a pipeline runs across the Redis queues and passes results along", async () => {
    const p = await pipeline([a.double.message(5), a.double.messageWithOptions(), a.sum.messageWithOptions({ args: [1] })]).run();
    assert.deepEqual(await p.getResults({ block: true, timeout: 15_000 }), [10, 20, 21]);
  });

  test("a group's completion callback fires exactly once", async () => {
    const tag = uniqueName("rg");
    const g = group([...Array.from({ length: 10 }, (_, i) => a.identity.message(i)), pipeline([a.double.message(1), a.double.messageWithOptions()])]);
    g.addCompletionCallback(a.groupDone.message(tag));
    await g.run();
    await run.events.waitFor((e) => e.some((x) => x.kind === "group_done" && x.tag === tag), "group completion callback");
    assert.deepEqual(await g.getResults({ block: true, timeout: 15_000 }), [...Array.from({ length: 10 }, (_, i) => i), 4]);
    await broker.join("default");
    assert.equal(run.events.of("group_done").filter((e) => e.tag === tag).length, 1);
  });
});
