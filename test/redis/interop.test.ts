import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { Message, RedisBroker, RedisRateLimiterBackend, RedisResultBackend, ResultFailure, group, pipeline, resultBackendFor, setRateLimiterBackend, setResultBackend } from "troupe";
import { REDIS_URL, fixture, goldenDir, uniqueName } from "../support/env.js";
import { RedisWorkerHarness, deleteNamespace, dumpNamespace } from "../support/redis.js";

interface GoldenKey {
  type: string;
  value: unknown;
}
const layout = JSON.parse(readFileSync(join(goldenDir, "redis-layout.json"), "utf8")).redis_after_enqueue as Record<string, GoldenKey>;
const afterProcessing = JSON.parse(readFileSync(join(goldenDir, "redis-after-processing.json"), "utf8")) as {
  sent_message_ids: string[];
  redis_after_processing: Record<string, GoldenKey>;
};

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** Ids and timestamps vary by run; everything else must be byte-identical. */
function normalize(body: string): string {
  return body.replace(UUID, "<uuid>").replace(/\b\d{13}\b/g, "<ms>");
}

/**
 * Write golden keys (named `dramatiq:<rest>`) under `namespace` exactly as Dramatiq left them, bodies before
 * queue entries as Dramatiq's enqueue does (a consumer may fetch as soon as an id is listed).
 */
async function seed(client: Redis, namespace: string, keys: Record<string, GoldenKey>): Promise<void> {
  const order = (type: string) => (type === "hash" ? 0 : 1);
  const entries = Object.entries(keys).sort(([, a], [, b]) => order(a.type) - order(b.type));
  for (const [name, { type, value }] of entries) {
    if (!name.startsWith("dramatiq:")) continue;
    const key = `${namespace}:${name.slice("dramatiq:".length)}`;
    if (type === "list") await client.rpush(key, ...(value as string[]));
    else if (type === "hash") await client.hset(key, value as Record<string, string>);
    else if (type === "zset") for (const [member, score] of value as [string, number][]) await client.zadd(key, score, member);
  }
}

const modules = [fixture("redis-golden")];

describe("redis broker interop with Dramatiq's golden data", () => {
  const namespace = uniqueName("golden");
  const harness = new RedisWorkerHarness(REDIS_URL, namespace, modules);
  const { client, broker, events } = harness;
  const results = setResultBackend(resultBackendFor(broker)!) as RedisResultBackend;
  const limiter = setRateLimiterBackend(new RedisRateLimiterBackend({ url: REDIS_URL })) as RedisRateLimiterBackend;
  const rawKeys: string[] = [];

  before(() => harness.start());

  after(async () => {
    if (rawKeys.length) await client.del(...rawKeys);
    await harness.close();
    await limiter.close();
    await results.close();
  });

  test("messages written by Dramatiq are consumed by a Troupe worker, leaving nothing behind", async () => {
    const seeded = Object.fromEntries(Object.entries(layout).filter(([key]) => key !== "dramatiq:__heartbeats__"));
    // The group's barrier, as Python's group.run() creates it on the shared rate-limiter store (raw key).
    const groupId = "fb3c9f72-b1f9-4acb-b663-4a1714e9f3cb";
    rawKeys.push(groupId, `${groupId}@events`);
    await client.set(groupId, "2", "PX", 60_000);
    await seed(client, namespace, seeded);

    await events.waitFor((e) => e.filter((x) => x.kind === "add").length >= 8 && e.filter((x) => x.kind === "hello").length >= 3 && e.some((x) => x.kind === "on_ok") && e.some((x) => x.kind === "prio"), "every golden message and its follow-ups");
    await broker.join("golden_q");
    const adds = events.of("add").map((e) => (e.args as number[]).join("+")).sort();
    assert.deepEqual(adds, ["1+1", "1+2", "1+2", "2+2", "3+3", "3+4", "5+6", "9+9"]);
    const hellos = events.of("hello").map((e) => JSON.stringify([e.who, e.greeting ?? null])).sort();
    assert.deepEqual(hellos, [JSON.stringify(["Zo\u00eb \u2713", "h\u00e9llo"]), JSON.stringify(["done", null]), JSON.stringify([{ a: [1, { b: null, c: 1.5 }], t: true }, null])].sort());
    assert.equal(events.of("on_ok")[0]!.result, 11);

    const left = await dumpNamespace(client, namespace);
    assert.deepEqual(Object.keys(left), ["__heartbeats__"], `keys left: ${JSON.stringify(left)}`);
    // The Python producer's stale heartbeat was never seeded; ours is the only one.
    assert.deepEqual(left.__heartbeats__!.value, [broker.workerId]);
  });

  test("results land under Dramatiq's keys and dead letters match what Dramatiq stores", async () => {
    const [addId, boomId] = afterProcessing.sent_message_ids as [string, string];
    const golden = afterProcessing.redis_after_processing;
    const goldenDead = golden["dramatiq:golden_q.XQ.msgs"]!.value as Record<string, string>;
    const [boomRedisId, boomBody] = Object.entries(goldenDead)[0]!;
    const addRedisId = "0b7c4a1e-5a7e-4d0c-9d43-6f1b2a8c9e01";
    const addBody = `{"queue_name":"golden_q","actor_name":"add","args":[1,2],"kwargs":{},"options":{"redis_message_id":"${addRedisId}"},"message_id":"${addId}","message_timestamp":1795488997058}`;
    const resultKeys = Object.keys(golden).filter((k) => !k.startsWith("dramatiq:"));
    rawKeys.push(...resultKeys);
    await client.del(...resultKeys);

    await client.hset(`${namespace}:golden_q.msgs`, addRedisId, addBody, boomRedisId, boomBody);
    await client.rpush(`${namespace}:golden_q`, addRedisId, boomRedisId);
    await events.waitFor((e) => e.some((x) => x.kind === "add" && x.messageId === addId) && e.some((x) => x.kind === "boom"), "add and boom");
    await broker.join("golden_q");

    const md5 = (raw: string) => createHash("md5").update(raw).digest("hex");
    const addKey = md5(`dramatiq-results:golden_q:add:${addId}`);
    const boomKey = md5(`dramatiq-results:golden_q:boom:${boomId}`);
    assert.deepEqual(new Set([addKey, boomKey]), new Set(resultKeys), "same MD5 keys as Dramatiq");
    for (const key of resultKeys) {
      assert.equal(await client.type(key), "list");
      assert.deepEqual(await client.lrange(key, 0, -1), golden[key]!.value, `value of ${key}`);
      const ttl = await client.pttl(key);
      assert.ok(ttl > 500_000 && ttl <= 600_000, `result TTL ≈ 10 minutes, got ${ttl}`);
    }
    const addMessage = Message.decode(addBody);
    assert.equal(await addMessage.getResult(), 3);
    await assert.rejects(Message.decode(boomBody).getResult(), (err) => err instanceof ResultFailure && err.origExcType === "ValueError" && err.origExcMsg === "bad 7");

    assert.deepEqual(await client.zrange(`${namespace}:golden_q.XQ`, 0, -1), [boomRedisId]);
    assert.deepEqual(await client.hgetall(`${namespace}:golden_q.XQ.msgs`), goldenDead, "dead letter keeps the stored body byte for byte");
    const [dead] = await broker.deadLetters("golden_q");
    assert.equal(dead?.message?.messageId, boomId);
    assert.match(dead?.reason ?? "", /retries exhausted/);
    assert.equal((await broker.queueStats("golden_q")).dead, 1);
    await broker.purge("golden_q");
    assert.equal((await broker.queueStats("golden_q")).dead, 0);
  });

  test("what a Troupe producer writes matches Dramatiq's layout key by key and field by field", async () => {
    const producerNs = uniqueName("golden_out");
    const producer = new RedisBroker(REDIS_URL, { namespace: producerNs });
    const { add, hello, prio } = await import(modules[0]!);
    try {
      await producer.enqueue(add.message(1, 2));
      await producer.enqueue(hello.messageWithOptions({ args: ["Zo\u00eb \u2713"], kwargs: { greeting: "h\u00e9llo" } }));
      await producer.enqueue(hello.message({ a: [1, { b: null, c: 1.5 }], t: true }));
      await producer.enqueue(add.message(3, 4), { delay: 60_000 });
      await producer.enqueue(prio.message(1));
      await producer.enqueue(add.messageWithOptions({ args: [5, 6], onSuccess: "on_ok", onFailure: "on_bad" }));
      await pipeline([add.message(1, 2), add.message(3), add.messageWithOptions({ args: [9, 9], pipeIgnore: true })], { broker: producer }).run();
      const members = group([add.message(1, 1), add.message(2, 2)], { broker: producer }).addCompletionCallback(hello.message("done"));
      await members.run();

      const ours = await dumpNamespace(client, producerNs);
      const groupId = JSON.parse(Object.values(ours["golden_q.msgs"]!.value as Record<string, string>).find((b) => b.includes("group_completion_uuid"))!).options.group_completion_uuid as string;
      rawKeys.push(groupId);
      const expected = Object.fromEntries(Object.entries(layout).map(([k, v]) => [k.slice("dramatiq:".length), v]));
      assert.deepEqual(Object.keys(ours).sort(), Object.keys(expected).sort(), "same keys");
      for (const [key, golden] of Object.entries(expected)) assert.equal(ours[key]!.type, golden.type, `type of ${key}`);
      for (const queue of ["golden_q", "golden_q.DQ"]) {
        const ids = ours[queue]!.value as string[];
        const goldenIds = expected[queue]!.value as string[];
        assert.equal(ids.length, goldenIds.length, `length of ${queue}`);
        const bodies = ours[`${queue}.msgs`]!.value as Record<string, string>;
        const goldenBodies = expected[`${queue}.msgs`]!.value as Record<string, string>;
        assert.equal(Object.keys(bodies).length, ids.length, `${queue}.msgs holds exactly the listed ids`);
        ids.forEach((id, i) => {
          const body = bodies[id]!;
          assert.equal(JSON.parse(body).options.redis_message_id, id, "hash field = list entry = options.redis_message_id");
          assert.equal(normalize(body), normalize(goldenBodies[goldenIds[i]!]!), `${queue}[${i}]`);
        });
      }
      assert.deepEqual(ours.__heartbeats__!.value, [producer.workerId]);
    } finally {
      await producer.close();
      await deleteNamespace(client, producerNs);
    }
  });
});
