import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { Message, RedisBroker, deadLetterStore, type DeadLetterStore } from "troupe";
import { REDIS_URL, goldenDir, uniqueName } from "../support/env.js";
import { CliProcess, runCli } from "../support/process.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

interface GoldenKey {
  type: string;
  value: unknown;
}
const afterProcessing = JSON.parse(readFileSync(join(goldenDir, "redis-after-processing.json"), "utf8")).redis_after_processing as Record<string, GoldenKey>;
const layout = JSON.parse(readFileSync(join(goldenDir, "redis-layout.json"), "utf8")).redis_after_enqueue as Record<string, GoldenKey>;
/** Python Dramatiq's dead letter (actor `boom` failed) and its delayed message, as Dramatiq stored them. */
const pythonDead = afterProcessing["dramatiq:golden_q.XQ.msgs"]!.value as Record<string, string>;
const pythonDelayed = layout["dramatiq:golden_q.DQ.msgs"]!.value as Record<string, string>;

/** Store a dead letter the way Dramatiq's nack leaves it: id in `.XQ` (score = when), body in `.XQ.msgs`. */
async function bury(client: Redis, ns: string, queue: string, id: string, body: string, at: number, reason?: string): Promise<void> {
  await client.hset(`${ns}:${queue}.XQ.msgs`, id, body);
  await client.zadd(`${ns}:${queue}.XQ`, at, id);
  if (reason) await client.hset(`${ns}:${queue}.XQ.reasons`, id, reason);
}

/** A Troupe-shaped body for dead letter `i`. */
function body(queue: string, i: number, actor = "work", retries = 20): { id: string; raw: string } {
  const id = `rid-${i}`;
  const message = new Message({ queueName: queue, actorName: actor, args: [i], options: { retries, redis_message_id: id }, messageId: `mid-${i}`, messageTimestamp: 1_700_000_000_000 + i });
  return { id, raw: message.encode() };
}

describe("dead letters on Redis", () => {
  const ns = uniqueName("dl");
  let client: Redis;
  let broker: RedisBroker;
  let store: DeadLetterStore;

  before(() => {
    client = redisClient(REDIS_URL);
    broker = new RedisBroker(REDIS_URL, { namespace: ns });
    store = deadLetterStore(broker);
  });
  after(async () => {
    await deleteNamespace(client, ns);
    await store.close();
    await broker.close();
    client.disconnect();
  });

  test("Python Dramatiq's dead letters are listed, shown and requeued byte for byte, a delayed one onto q.DQ", async () => {
    const queue = "golden_q";
    const [deadId, deadBody] = Object.entries(pythonDead)[0]!;
    const [delayedId, delayedBody] = Object.entries(pythonDelayed)[0]!;
    await bury(client, ns, queue, deadId, deadBody, Date.now() - 60_000);
    await bury(client, ns, queue, delayedId, delayedBody, Date.now(), "TypeError: nope");

    const page = await store.list(queue);
    assert.equal(page.total, 2);
    assert.deepEqual(page.letters.map((l) => l.id), [delayedId, deadId], "newest first");
    assert.equal(page.letters[0]!.reason, "TypeError: nope");
    assert.equal(page.letters[1]!.message?.actorName, "boom");

    const byMessageId = await store.show(queue, Message.decode(deadBody).messageId);
    assert.equal(byMessageId?.raw, deadBody);

    const result = await store.requeue(queue, { ids: [deadId, delayedId, "nope"] });
    assert.deepEqual(result, { requeued: 2, missing: ["nope"] });
    assert.equal(await client.hget(`${ns}:${queue}.msgs`, deadId), deadBody, "the body is written back as read");
    assert.deepEqual(await client.lrange(`${ns}:${queue}`, 0, -1), [deadId]);
    assert.equal(await client.hget(`${ns}:${queue}.DQ.msgs`, delayedId), delayedBody);
    assert.deepEqual(await client.lrange(`${ns}:${queue}.DQ`, 0, -1), [delayedId]);
    assert.equal(await client.exists(`${ns}:${queue}.XQ`, `${ns}:${queue}.XQ.msgs`, `${ns}:${queue}.XQ.reasons`), 0);
  });

  test("pages by cursor and offset, filters by actor, reason and age, resets retries on request, purges", async () => {
    const queue = uniqueName("q");
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      const { id, raw } = body(queue, i, i % 3 === 0 ? "send_mail" : "work");
      await bury(client, ns, queue, id, raw, now - (30 - i) * 60_000, i % 2 ? "ValueError: odd" : "KeyError: even");
    }
    const seen: string[] = [];
    let cursor: number | undefined = 0;
    while (cursor !== undefined) {
      const page = await store.list(queue, { limit: 7, cursor });
      seen.push(...page.letters.map((l) => l.id));
      cursor = page.next;
    }
    assert.equal(seen.length, 30);
    assert.equal(new Set(seen).size, 30);
    assert.equal(seen[0], "rid-29");

    assert.deepEqual((await store.list(queue, { limit: 3, offset: 2 })).letters.map((l) => l.id), ["rid-27", "rid-26", "rid-25"]);
    const mail = await store.list(queue, { limit: 100, filter: { actor: "send_mail" } });
    assert.equal(mail.letters.length, 10);
    const oddOld = await store.list(queue, { limit: 100, filter: { reason: "valueerror", olderThan: 20 * 60_000 } });
    assert.deepEqual(oddOld.letters.map((l) => l.id), ["rid-9", "rid-7", "rid-5", "rid-3", "rid-1"]);
    const filteredPage = await store.list(queue, { limit: 2, filter: { actor: "send_mail" } });
    const secondPage = await store.list(queue, { limit: 2, filter: { actor: "send_mail" }, cursor: filteredPage.next });
    assert.deepEqual([...filteredPage.letters, ...secondPage.letters].map((l) => l.id), ["rid-27", "rid-24", "rid-21", "rid-18"]);

    const reset = await store.requeue(queue, { filter: { actor: "send_mail" }, resetRetries: true });
    assert.equal(reset.requeued, 10);
    const requeued = Message.decode((await client.hget(`${ns}:${queue}.msgs`, "rid-0"))!);
    assert.equal(requeued.options.retries, 0);
    assert.equal(requeued.messageId, "mid-0");
    assert.equal(await client.llen(`${ns}:${queue}`), 10);

    assert.equal(await store.purge(queue, { filter: { reason: "KeyError" } }), 10);
    assert.equal(await store.purge(queue), 10);
    assert.equal((await store.list(queue)).total, 0);
  });

  test("the CLI lists, shows and (with --yes) purges; requeue without ids, filter or --all is refused", async () => {
    const queue = uniqueName("q");
    const { id, raw } = body(queue, 1);
    await bury(client, ns, queue, id, raw, Date.now(), "ValueError: <boom>");
    const env = { TROUPE_REDIS_NAMESPACE: ns };
    const list = await runCli(["dead-letters", "list", "-Q", queue, "-b", REDIS_URL], { env });
    assert.equal(list.code, 0, list.output);
    assert.match(list.output, /rid-1\s+work\s+\d+s\s+20\s+ValueError: <boom>/);
    const show = await runCli(["dead-letters", "show", "mid-1", "-Q", queue, "-b", REDIS_URL, "--json"], { env });
    assert.equal(show.code, 0, show.output);
    assert.equal((JSON.parse(show.output) as { message: { args: number[] } }).message.args[0], 1);
    const refused = await runCli(["dead-letters", "requeue", "-Q", queue, "-b", REDIS_URL], { env });
    assert.equal(refused.code, 2);
    assert.match(refused.output, /IDs, a filter .* or --all/);
    const help = await runCli(["dead-letters", "requeue", "--help"]);
    assert.match(help.output, /--rate N/);
    const purge = await runCli(["dead-letters", "purge", "-Q", queue, "-b", REDIS_URL, "--yes"], { env });
    assert.match(purge.output, /deleted 1 dead letter of/);
  });

  test("kill -9 in the middle of a requeue: every letter is either still dead or back on its queue, once", async () => {
    const queue = uniqueName("q");
    const count = 3000;
    const pipeline = client.pipeline();
    const now = Date.now();
    const bodies = new Map<string, string>();
    for (let i = 0; i < count; i++) {
      const { id, raw } = body(queue, i);
      bodies.set(id, raw);
      pipeline.hset(`${ns}:${queue}.XQ.msgs`, id, raw).zadd(`${ns}:${queue}.XQ`, now + i, id);
    }
    await pipeline.exec();
    const requeue = new CliProcess(["dead-letters", "requeue", "--all", "--rate", "1000", "-Q", queue, "-b", REDIS_URL], { TROUPE_REDIS_NAMESPACE: ns });
    await until(async () => (await client.llen(`${ns}:${queue}`)) >= 500, "a part of the letters requeued");
    await requeue.kill();
    const dead = new Set(await client.zrange(`${ns}:${queue}.XQ`, 0, -1));
    const back = await client.lrange(`${ns}:${queue}`, 0, -1);
    assert.ok(back.length < count, "killed before the end");
    assert.equal(new Set(back).size, back.length, "no id twice on the queue");
    for (const id of back) assert.ok(!dead.has(id), `${id} is both dead and back`);
    assert.equal(dead.size + back.length, count, "none lost");
    const [deadBodies, backBodies] = await Promise.all([client.hgetall(`${ns}:${queue}.XQ.msgs`), client.hgetall(`${ns}:${queue}.msgs`)]);
    for (const id of dead) assert.equal(deadBodies[id], bodies.get(id));
    for (const id of back) assert.equal(backBodies[id], bodies.get(id));
  });
});
