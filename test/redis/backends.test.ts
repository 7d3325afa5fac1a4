import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Message, RedisRateLimiterBackend, RedisResultBackend, ResultFailure, ResultMissing, ResultTimeout } from "troupe";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { redisSuite } from "../support/redis.js";

describe("redis results backend", () => {
  const namespace = uniqueName("results");
  const suite = redisSuite(REDIS_URL, namespace, async () => {
    const backend = new RedisResultBackend({ url: REDIS_URL, namespace, useNamespacePrefixKeys: true });
    await backend.connect();
    return backend;
  });
  const { client } = suite;
  const message = () => new Message({ queueName: "q.DQ", actorName: "add" });

  test("a result is a one-element list with a TTL, under the canonical queue's key", async () => {
    const m = message();
    await suite.value.storeResult(m, { a: [1, "é"] }, 5000);
    const key = `${namespace}:q:add:${m.messageId}`;
    assert.equal(suite.value.buildMessageKey(m), key);
    assert.deepEqual(await client.lrange(key, 0, -1), ['{"a":[1,"\\u00e9"]}']);
    const ttl = await client.pttl(key);
    assert.ok(ttl > 0 && ttl <= 5000, `ttl ${ttl}`);
    assert.deepEqual(await suite.value.getResult(m), { a: [1, "é"] });
    await suite.value.storeResult(m, 2, 5000);
    assert.deepEqual(await client.lrange(key, 0, -1), ["2"], "a new value replaces the old one");
  });

  test("failures, missing results and timeouts raise Dramatiq's errors", async () => {
    const failed = message();
    await suite.value.storeException(failed, { name: "KeyError", message: "'k'" }, 5000);
    await assert.rejects(suite.value.getResult(failed), (err) => err instanceof ResultFailure && err.origExcType === "KeyError" && err.origExcMsg === "'k'");
    await assert.rejects(suite.value.getResult(message()), ResultMissing);
    await assert.rejects(suite.value.getResult(message(), { block: true, timeout: 150 }), ResultTimeout);
  });

  test("a blocking get wakes when the result is stored, and every waiter sees it", async () => {
    const m = message();
    const waiters = [suite.value.getResult(m, { block: true, timeout: 10_000 }), suite.value.getResult(m, { block: true, timeout: 10_000 })];
    await suite.value.storeResult(m, "done", 5000);
    assert.deepEqual(await Promise.all(waiters), ["done", "done"]);
    assert.deepEqual(await client.lrange(suite.value.buildMessageKey(m), 0, -1), ['"done"'], "the value is still there after the waits");
  });
});

describe("redis rate-limiter backend", () => {
  const prefix = uniqueName("limits");
  const limits = redisSuite(REDIS_URL, prefix, async () => {
    const backend = new RedisRateLimiterBackend({ url: REDIS_URL });
    await backend.connect();
    return backend;
  });
  const { client } = limits;
  const key = (name: string) => `${prefix}:${name}`;

  test("add sets a raw key once, with a TTL", async () => {
    assert.equal(await limits.value.add(key("add"), 1, 5000), true);
    assert.equal(await limits.value.add(key("add"), 7, 5000), false);
    assert.equal(await client.get(key("add")), "1");
    const ttl = await client.pttl(key("add"));
    assert.ok(ttl > 0 && ttl <= 5000);
  });

  test("incr and decr respect their bounds and refresh the TTL, as Dramatiq's WATCH loop does", async () => {
    const k = key("counter");
    assert.equal(await limits.value.incr(k, 1, 2, 5000), true, "a missing key counts as 0");
    assert.equal(await limits.value.incr(k, 1, 2, 5000), true);
    assert.equal(await limits.value.incr(k, 1, 2, 5000), false, "above the maximum");
    assert.equal(await client.get(k), "2");
    assert.equal(await limits.value.decr(k, 1, 1, 9000), true);
    assert.equal(await limits.value.decr(k, 1, 1, 9000), false, "below the minimum");
    assert.equal(await client.get(k), "1");
    assert.ok((await client.pttl(k)) > 5000, "TTL reset on change");
  });

  test("concurrent incr never passes the maximum", async () => {
    const k = key("mutex");
    const outcomes = await Promise.all(Array.from({ length: 32 }, () => limits.value.incr(k, 1, 4, 5000)));
    assert.equal(outcomes.filter(Boolean).length, 4);
    assert.equal(await client.get(k), "4");
  });

  test("incrAndSum counts the whole window", async () => {
    const window = [key("w@3"), key("w@2"), key("w@1")];
    await client.set(window[1]!, "1", "PX", 5000);
    assert.equal(await limits.value.incrAndSum(window[0]!, window, 1, 3, 5000), true);
    assert.equal(await limits.value.incrAndSum(window[0]!, window, 1, 3, 5000), true);
    assert.equal(await limits.value.incrAndSum(window[0]!, window, 1, 3, 5000), false, "1 + 2 + 1 > 3");
    assert.equal(await client.get(window[0]!), "2");
  });

  test("wait returns true after waitNotify, for waiters before and after, and false on timeout", async () => {
    const events = key("barrier@events");
    assert.equal(await limits.value.wait(events, 100), false);
    const early = limits.value.wait(events, 10_000);
    await limits.value.waitNotify(events, 5000);
    assert.equal(await early, true);
    assert.equal(await limits.value.wait(events, 1000), true, "a late waiter is released too");
    assert.deepEqual(await client.lrange(events, 0, -1), ["x"]);
    assert.ok((await client.pttl(events)) > 0);
  });
});
