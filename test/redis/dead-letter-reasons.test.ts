import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { RedisWorkerHarness } from "../support/redis.js";
import { until } from "../support/wait.js";

const modules = [fixture("redis-golden")];
const queue = "golden_q";

/** Dramatiq 2.2's dead-letter expiry (SPEC §3.5 step 3), as its dispatch.lua runs it for `queue`. */
const DRAMATIQ_EXPIRE = `
local xq = KEYS[1] .. ":" .. ARGV[1] .. ".XQ"
local expired = redis.call("zrangebyscore", xq, "-inf", tonumber(ARGV[2]) - tonumber(ARGV[3]))
if #expired > 0 then
  redis.call("zrem", xq, unpack(expired))
  redis.call("hdel", xq .. ".msgs", unpack(expired))
end
return #expired`;

/** Dramatiq 2.2's purge (SPEC §3.4), which `broker.flush(queue)` runs for `queue` and `queue.DQ`. */
const DRAMATIQ_PURGE = `
local ns, q = KEYS[1], ARGV[1]
local xq = ns .. ":" .. string.gsub(q, "%.DQ$", "") .. ".XQ"
redis.call("del", ns .. ":" .. q, ns .. ":" .. q .. ".msgs", ns .. ":__acks__." .. ARGV[2] .. "." .. q, xq, xq .. ".msgs")
return 0`;

/** Undecodable bodies, which a Troupe worker dead-letters with a reason each. */
async function deadLetterGarbage(harness: RedisWorkerHarness, ids: string[]): Promise<void> {
  const key = `${harness.namespace}:${queue}`;
  const before = await harness.client.zcard(`${key}.XQ`);
  for (const id of ids) await harness.client.hset(`${key}.msgs`, id, `{"not json ${id}`);
  await harness.client.rpush(key, ...ids);
  await until(async () => (await harness.client.zcard(`${key}.XQ`)) === before + ids.length, `${ids.length} dead letters`);
}

function reasonKeys(client: Redis, namespace: string): Promise<[string[], string[]]> {
  const xq = `${namespace}:${queue}.XQ`;
  return Promise.all([client.hkeys(`${xq}.reasons`).then((k) => k.sort()), client.zrange(`${xq}.reasons.at`, 0, -1).then((k) => k.sort())]);
}

describe("dead-letter reasons never outlive their dead letters", () => {
  test("Python's maintenance expiring some dead letters and its flush removing the rest take their reasons along (Troupe's maintenance sweeps)", async () => {
    const namespace = uniqueName("xqr");
    const harness = new RedisWorkerHarness(REDIS_URL, namespace, modules, { maintenanceInterval: 100, deadMessageTtl: 3_600_000 });
    after(() => harness.close());
    await harness.start();
    const { client } = harness;
    const xq = `${namespace}:${queue}.XQ`;

    const old = Array.from({ length: 25 }, (_, i) => `old-${i}`);
    await deadLetterGarbage(harness, old);
    const boundary = Number((await client.zrange(xq, -1, -1, "WITHSCORES"))[1]);
    await until(async () => Date.now() > boundary, "the clock past the first batch's dead-letter time", { interval: 1 });
    const fresh = Array.from({ length: 25 }, (_, i) => `new-${i}`);
    await deadLetterGarbage(harness, fresh);
    assert.deepEqual(await reasonKeys(client, namespace), [[...old, ...fresh].sort(), [...old, ...fresh].sort()]);
    for (const key of [`${xq}.reasons`, `${xq}.reasons.at`]) {
      const ttl = await client.pttl(key);
      assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `${key} expires with the dead-message TTL (pttl ${ttl})`);
    }

    // A Python peer with dead_message_ttl = 1 h whose clock reads boundary + 1 h expires exactly the first batch.
    assert.equal(await client.eval(DRAMATIQ_EXPIRE, 1, namespace, queue, boundary + 3_600_000, 3_600_000), old.length);
    await until(async () => (await client.hlen(`${xq}.reasons`)) === fresh.length, "the expired letters' reasons swept");
    assert.deepEqual(await reasonKeys(client, namespace), [[...fresh].sort(), [...fresh].sort()], "only the reasons of live dead letters are left");
    assert.deepEqual((await client.zrange(xq, 0, -1)).sort(), [...fresh].sort());

    // `broker.flush("golden_q")` on a Python peer: purge of q and q.DQ.
    for (const name of [queue, `${queue}.DQ`]) await client.eval(DRAMATIQ_PURGE, 1, namespace, name, "python-worker");
    await until(async () => (await client.exists(`${xq}.reasons`, `${xq}.reasons.at`)) === 0, "the flushed letters' reasons swept");
    const left = (await client.keys(`${namespace}:${queue}.XQ*`)).sort();
    assert.deepEqual(left, [], "nothing of the dead-letter queue is left");
  });

  test("with no Troupe process left to sweep, the reasons expire on their own once Python has expired the dead letters", async () => {
    const namespace = uniqueName("xqt");
    const ttl = 1500;
    // This worker never runs maintenance, as if no Troupe process were left: only Python's expiry and the key TTL act.
    const harness = new RedisWorkerHarness(REDIS_URL, namespace, modules, { maintenanceInterval: 3_600_000, maintenanceChance: 0, deadMessageTtl: ttl });
    after(() => harness.close());
    await harness.start();
    const { client } = harness;
    const xq = `${namespace}:${queue}.XQ`;
    await deadLetterGarbage(harness, ["a", "b", "c"]);
    assert.equal(await client.hlen(`${xq}.reasons`), 3);

    const deadAt = Number((await client.zrange(xq, -1, -1, "WITHSCORES"))[1]);
    assert.equal(await client.eval(DRAMATIQ_EXPIRE, 1, namespace, queue, deadAt + ttl, ttl), 3);
    await until(async () => (await client.exists(`${xq}.reasons`, `${xq}.reasons.at`)) === 0, "the reasons' own expiry", { timeout: ttl + 5000 });
    assert.deepEqual(await client.keys(`${namespace}:${queue}.XQ*`), []);
  });
});
