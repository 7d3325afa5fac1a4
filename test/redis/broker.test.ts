import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ConnectionFailed, Message, RedisBroker, type MessageProxy, type Worker } from "troupe";
import { REDIS_URL, cliPath, fixture, uniqueName } from "../support/env.js";
import { RedisWorkerHarness, freePort, redisSuite } from "../support/redis.js";
import { until } from "../support/wait.js";

const run = promisify(execFile);
const modules = [fixture("redis-golden")];

describe("redis broker with a Troupe worker", () => {
  const namespace = uniqueName("rb");
  // A short heartbeat timeout makes maintenance run every second, so dead-worker recovery is quick to see.
  const harness = new RedisWorkerHarness(REDIS_URL, namespace, modules, { heartbeatTimeout: 2000 });
  const { client, broker, events } = harness;
  let worker: Worker;

  before(async () => {
    worker = await harness.start();
  });

  after(() => harness.close());

  test("garbage in the message hash is dead-lettered with a reason and the worker keeps running", async () => {
    const key = `${namespace}:golden_q`;
    const garbage: [string, string | Buffer][] = [
      ["g-json", "{not json"],
      ["g-utf8", Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
      ["g-keys", JSON.stringify({ queue_name: "golden_q", actor_name: "record", args: [] })],
      ["g-extra", JSON.stringify({ queue_name: "golden_q", actor_name: "record", args: [], kwargs: {}, options: {}, surprise: 1 })],
    ];
    for (const [id, body] of garbage) await client.hset(`${key}.msgs`, id, body);
    await client.rpush(key, ...garbage.map(([id]) => id));
    const { record } = await import(modules[0]!);
    await record.send("after-garbage");
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "after-garbage"), "a message after the garbage");
    await until(async () => (await broker.queueStats("golden_q")).dead === garbage.length, "garbage dead-lettered");
    // The message after the garbage is recorded before it is acked: wait for its ack before checking the hash.
    await broker.join("golden_q");

    const dead = await broker.deadLetters("golden_q");
    assert.equal(dead.length, garbage.length);
    assert.ok(dead.every((d) => d.message === undefined && d.reason), "listed with reasons, undecoded");
    const byId = Object.fromEntries(await Promise.all(garbage.map(async ([id]) => [id, await client.hget(`${key}.XQ.reasons`, id)] as const)));
    assert.match(byId["g-json"] ?? "", /not valid JSON/);
    assert.match(byId["g-utf8"] ?? "", /not valid UTF-8/);
    assert.match(byId["g-keys"] ?? "", /lacks the required key 'kwargs'/);
    assert.match(byId["g-extra"] ?? "", /unknown top-level key 'surprise'/);
    assert.deepEqual((await client.zrange(`${key}.XQ`, 0, -1)).sort(), garbage.map(([id]) => id).sort());
    assert.deepEqual(await client.hgetallBuffer(`${key}.XQ.msgs`).then((h) => h["g-utf8"]), Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), "the stored bytes are kept as they were");
    assert.equal(worker.stats.undecodable, garbage.length);
    assert.equal(await client.exists(`${key}.msgs`), 0, "nothing left in the queue's hash");
    assert.equal(await client.scard(`${namespace}:__acks__.${broker.workerId}.golden_q`), 0, "nothing stranded in the ack set");
    await broker.purge("golden_q");
  });

  test("a message body pushed straight onto the queue list (RPUSH, no hash entry) is dead-lettered with its bytes and a reason, not dropped", async () => {
    const key = `${namespace}:golden_q`;
    const body = JSON.stringify({ queue_name: "golden_q", actor_name: "record", args: ["pushed-raw"], kwargs: {}, options: {}, message_id: "raw-1", message_timestamp: 1 });
    const notJson = '{"half": ';
    await client.rpush(key, body, notJson, "bodiless-id");
    const undecodableBefore = worker.stats.undecodable;
    const { record } = await import(modules[0]!);
    await record.send("after-raw");
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "after-raw"), "a message after the raw pushes");
    await until(async () => (await broker.queueStats("golden_q")).dead === 2, "both pushed bodies dead-lettered");
    await broker.join("golden_q");

    assert.equal(await client.hget(`${key}.XQ.msgs`, "raw-1"), body, "kept byte for byte under its own message id");
    assert.match((await client.hget(`${key}.XQ.reasons`, "raw-1")) ?? "", /message body instead of a message id/);
    const others = (await client.zrange(`${key}.XQ`, 0, -1)).filter((id) => id !== "raw-1");
    assert.equal(others.length, 1, "the undecodable pushed body got an id of its own");
    assert.equal(await client.hget(`${key}.XQ.msgs`, others[0]!), notJson);
    assert.ok(!events.of("record").some((e) => e.id === "pushed-raw"), "a body that skipped the enqueue never runs");
    assert.equal(worker.stats.undecodable - undecodableBefore, 2);
    assert.equal(await client.scard(`${namespace}:__acks__.${broker.workerId}.golden_q`), 0, "nothing stranded in the ack set");
    await broker.purge("golden_q");
  });

  test("delayed messages wait in .DQ and are promoted atomically with a fresh redis id", async () => {
    const { record } = await import(modules[0]!);
    const sent = await record.sendWithOptions({ args: ["delayed"], delay: 300 });
    assert.equal(sent.queueName, "golden_q.DQ");
    assert.equal(typeof sent.options.eta, "number");
    assert.deepEqual(Object.keys(sent.options), ["redis_message_id", "eta"], "Dramatiq's option order");
    const stats = await broker.queueStats("golden_q");
    assert.equal(stats.delayed, 1);
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "delayed"), "the delayed message");
    assert.ok(Date.now() >= (sent.options.eta as number), "not run before its eta");
    await broker.join("golden_q");
    assert.equal(await client.exists(`${namespace}:golden_q.DQ.msgs`, `${namespace}:golden_q.DQ`, `${namespace}:golden_q.msgs`), 0);
  });

  test("a failed message is retried through .DQ with the same message id and a new redis id", async () => {
    const { flaky } = await import(modules[0]!);
    const sent = await flaky.send("f1");
    await events.waitFor((e) => e.filter((x) => x.kind === "flaky" && x.tag === "f1").length >= 2, "two attempts");
    await broker.join("golden_q");
    const attempts = events.of("flaky").filter((x) => x.tag === "f1");
    assert.equal(attempts.length, 2);
    assert.deepEqual(attempts.map((a) => a.retries), [0, 1]);
    assert.ok(attempts.every((a) => a.messageId === sent.messageId));
    assert.notEqual(attempts[0]!.redisMessageId, attempts[1]!.redisMessageId);
    assert.equal((await broker.queueStats("golden_q")).dead, 0);
  });

  test("a dead worker's unacked messages (a Python peer's ack set) are recovered by maintenance", async () => {
    const deadWorker = "0d1e5a7b-0000-4000-8000-00000000dead";
    const message = new Message({ queueName: "golden_q", actorName: "record", args: ["from-dead-worker"], options: { redis_message_id: "r-dead-1" } });
    await client.hset(`${namespace}:golden_q.msgs`, "r-dead-1", message.encode());
    await client.sadd(`${namespace}:__acks__.${deadWorker}.golden_q`, "r-dead-1");
    await client.zadd(`${namespace}:__heartbeats__`, Date.now() - 120_000, deadWorker);
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "from-dead-worker"), "the recovered message");
    await broker.join("golden_q");
    assert.equal(await client.exists(`${namespace}:__acks__.${deadWorker}.golden_q`), 0);
    assert.equal(await client.zscore(`${namespace}:__heartbeats__`, deadWorker), null, "a dead worker with no ack set left is forgotten");
  });

  test("enqueueMany publishes a batch with a fresh redis id per message", async () => {
    const { record } = await import(modules[0]!);
    const ids = Array.from({ length: 300 }, (_, i) => `batch-${i}`);
    const sent = await broker.enqueueMany(ids.map((id) => record.message(id)));
    assert.equal(new Set(sent.map((m) => m.options.redis_message_id)).size, ids.length, "a fresh redis id per message");
    await events.waitFor((e) => e.filter((x) => x.kind === "record" && String(x.id).startsWith("batch-")).length >= ids.length, "the batch");
    await broker.join("golden_q");
  });
});

describe("redis broker across a dropped connection", () => {
  const namespace = uniqueName("rc");
  const suite = redisSuite(REDIS_URL, namespace, () => new RedisBroker(REDIS_URL, { namespace, redis: { connectionName: `troupe-test-${namespace}` } }));
  const { client } = suite;

  test("deliveries survive a reconnect and ids stranded in our ack set by a lost fetch reply are requeued", async () => {
    const make = (id: string) => new Message({ queueName: "conn_q", actorName: "record", args: [id] });
    await suite.value.enqueueMany(["a", "b"].map(make));
    const held: MessageProxy[] = [];
    const consumer = suite.value.consume("conn_q", { prefetch: 10, onMessage: (m) => held.push(m) });
    await consumer.start();
    await until(() => held.length === 2, "two deliveries");
    // What a fetch whose reply was lost leaves behind: an id in our ack set that nobody here holds.
    const lost = make("lost").copy({ options: { redis_message_id: "r-lost" } });
    await client.hset(`${namespace}:conn_q.msgs`, "r-lost", lost.encode());
    await client.sadd(`${namespace}:__acks__.${suite.value.workerId}.conn_q`, "r-lost");

    const list = String(await client.call("CLIENT", "LIST"));
    const ids = list.split("\n").filter((line) => line.includes(`name=troupe-test-${namespace}`)).map((line) => /id=(\d+)/.exec(line)![1]!);
    assert.ok(ids.length > 0, "found the broker's connections");
    for (const id of ids) await client.call("CLIENT", "KILL", "ID", id);

    await until(() => held.some((m) => m.message.args[0] === "lost"), "the stranded delivery handed out again");
    for (const message of held) await consumer.ack(message);
    await consumer.close();
    assert.deepEqual(held.map((m) => m.message.args[0]).sort(), ["a", "b", "lost"]);
    assert.deepEqual(await suite.value.queueStats("conn_q"), { queue: "conn_q", ready: 0, delayed: 0, inFlight: 0, dead: 0 });
    assert.equal(await client.exists(`${namespace}:conn_q.msgs`), 0, "every body acked away");
  });
});

describe("redis broker queue statistics and the queues command", () => {
  const namespace = uniqueName("rq");
  const suite = redisSuite(REDIS_URL, namespace, () => new RedisBroker(REDIS_URL, { namespace }));

  test("ready, delayed, in-flight and dead counts come from the broker's keys", async () => {
    const make = (id: string) => new Message({ queueName: "stats_q", actorName: "record", args: [id] });
    await suite.value.enqueueMany(["a", "b", "c", "d", "e"].map(make));
    await suite.value.enqueueMany(["x", "y"].map(make), { delay: 60_000 });
    await suite.value.enqueue(new Message({ queueName: "other_q", actorName: "record", args: ["o"] }));
    const held: MessageProxy[] = [];
    const consumer = suite.value.consume("stats_q", { prefetch: 2, onMessage: (m) => held.push(m) });
    await consumer.start();
    await until(() => held.length === 2, "two deliveries");
    await consumer.stop();
    // Dramatiq's fetch: ids leave the list for this worker's ack set; bodies stay in the hash until acked.
    const ackSet = `${namespace}:__acks__.${suite.value.workerId}.stats_q`;
    const heldIds = held.map((m) => m.options.redis_message_id as string).sort();
    assert.deepEqual((await suite.client.smembers(ackSet)).sort(), heldIds);
    assert.deepEqual(await suite.client.hmget(`${namespace}:stats_q.msgs`, ...heldIds).then((bodies) => bodies.every(Boolean)), true);
    await consumer.nack(held[0]!);
    assert.deepEqual(await suite.client.smembers(ackSet), [heldIds.find((id) => id !== held[0]!.options.redis_message_id)]);

    assert.deepEqual(await suite.value.queueStats("stats_q"), { queue: "stats_q", ready: 3, delayed: 2, inFlight: 1, dead: 1 });
    assert.deepEqual(await suite.value.listQueues(), ["other_q", "stats_q"]);

    const env = { ...process.env, TROUPE_REDIS_NAMESPACE: namespace };
    const { stdout } = await run(process.execPath, [cliPath, "queues", "--broker", REDIS_URL, "--json"], { env });
    const rows = JSON.parse(stdout) as { queue: string }[];
    assert.deepEqual(rows, [
      { queue: "other_q", ready: 1, delayed: 0, inFlight: 0, dead: 0 },
      { queue: "stats_q", ready: 3, delayed: 2, inFlight: 1, dead: 1 },
    ]);
    const table = await run(process.execPath, [cliPath, "queues", "--broker", REDIS_URL, "-Q", "stats_q"], { env });
    assert.match(table.stdout, /^QUEUE\s+READY\s+DELAYED\s+IN-FLIGHT\s+DEAD\nstats_q\s+3\s+2\s+1\s+1$/m);

    await consumer.close();
    assert.equal((await suite.value.queueStats("stats_q")).ready, 4, "close gave the held delivery back");
  });

  test("an unreachable Redis fails fast with the URL named and the password redacted", async () => {
    const port = await freePort();
    const url = `redis://:hunter2@127.0.0.1:${port}/0`;
    const unreachable = new RedisBroker(url, { namespace });
    await assert.rejects(unreachable.connect(), (err) => err instanceof ConnectionFailed && err.unreachable && err.message.includes(`redis://:***@127.0.0.1:${port}/0`) && !err.message.includes("hunter2") && /ECONNREFUSED/.test(err.message));
    await unreachable.close();
    const result = await run(process.execPath, [cliPath, "queues", "--broker", url], { env: process.env }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    assert.ok(result && result.code !== 0, "queues exits non-zero");
    assert.ok(!result.stderr.includes("hunter2"), "no password in the output");
  });
});
