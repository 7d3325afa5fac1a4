import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Barrier, RedisBroker, Worker, closeBackends, deadLetterStore, getRateLimiterBackend, setBroker } from "troupe";
import { REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { PY_CUSTOM, pythonBody } from "./python-shapes.js";
import { TIMESTAMP, argsWith, assertKept, pythonDict } from "./paths.js";

const module = fixture("wire-paths");
const q = "wire_q";

/**
 * Every path on which a Troupe worker on Redis re-publishes a message Python enqueued, read back from Redis: what
 * Troupe did not change is byte for byte what Python wrote (numbers beyond 2^53 and 2^64, 1.0, -0.0, 1e400, NaN…).
 */
describe("Redis: Troupe's re-publications keep Python's bytes", () => {
  const namespace = uniqueName("wirepaths");
  const client = redisClient(REDIS_URL);
  const broker = setBroker(new RedisBroker(REDIS_URL, { namespace })) as RedisBroker;
  let worker: Worker;

  /** Enqueue a body the way Python's Redis broker does: the hash entry, then the id on the list. */
  async function pythonSend(queue: string, actor: string, options: string): Promise<{ body: string; messageId: string }> {
    const id = randomUUID();
    const messageId = randomUUID();
    const body = pythonBody({ queue, actor, messageId, options: options.replace("<rid>", id) });
    await client.hset(`${namespace}:${queue}.msgs`, id, body);
    await client.rpush(`${namespace}:${queue}`, id);
    return { body, messageId };
  }

  /** The one body Troupe wrote into `queue`'s hash (a queue no worker consumes), with its id. */
  async function written(queue: string): Promise<[id: string, body: string]> {
    const hash = await until(async () => {
      const all = await client.hgetall(`${namespace}:${queue}.msgs`);
      return Object.keys(all).length > 0 ? all : undefined;
    }, `a publication on ${queue}`);
    const entries = Object.entries(hash);
    assert.equal(entries.length, 1, `one publication on ${queue}`);
    return entries[0]!;
  }

  async function deadLetter(messageId: string): Promise<[id: string, body: string]> {
    return until(async () => {
      for (const [id, body] of Object.entries(await client.hgetall(`${namespace}:${q}.XQ.msgs`))) if (body.includes(`"message_id":"${messageId}"`)) return [id, body] as [string, string];
      return undefined;
    }, `the dead letter of ${messageId}`);
  }

  before(async () => {
    await import(module);
    worker = new Worker(broker, { modules: [module], threads: 2, queues: [q] });
    await worker.start();
  });
  after(async () => {
    await worker.stop(5000);
    await Promise.all([broker.close(), closeBackends()]);
    await deleteNamespace(client, namespace);
    client.disconnect();
  });

  test("promotion q.DQ → q, then dead-lettering (unknown actor): eta dropped, a new redis_message_id in place, all else as Python wrote it", async () => {
    const { messageId } = await pythonSend(`${q}.DQ`, "wire_unknown", `${PY_CUSTOM},"redis_message_id":"<rid>","eta":${Date.now() - 1000}`);
    const [id, body] = await deadLetter(messageId);
    assert.equal(body, pythonBody({ queue: q, actor: "wire_unknown", messageId, options: `${PY_CUSTOM},"redis_message_id":"${id}"` }));
  });

  test("retry: the re-publication on q.DQ adds retries, traceback and eta, and keeps Python's args, kwargs and options", async () => {
    const { messageId } = await pythonSend(q, "wire_fails_later", `${PY_CUSTOM},"redis_message_id":"<rid>"`);
    const body = await until(async () => Object.values(await client.hgetall(`${namespace}:${q}.DQ.msgs`)).find((b) => b.includes(messageId)), "the retry on q.DQ");
    const options = assertKept(body, { queue: `${q}.DQ`, actor: "wire_fails_later", messageId });
    assert.match(options, /"retries":1/);
    assert.match(options, /"eta":\d+/);
  });

  test("retry, promotion and dead-lettering in a row: the dead letter is the retried publication, Python's parts intact", async () => {
    const { messageId } = await pythonSend(q, "wire_fails_twice", `${PY_CUSTOM},"redis_message_id":"<rid>"`);
    const [, body] = await deadLetter(messageId);
    const options = assertKept(body, { queue: q, actor: "wire_fails_twice", messageId });
    assert.match(options, /"retries":1/);
    assert.doesNotMatch(options, /"eta"/);
  });

  test("redrive with retries reset (troupe dead-letters requeue --reset-retries) changes only retries", async () => {
    const idle = uniqueName("wire_idle");
    const id = randomUUID();
    const messageId = randomUUID();
    const body = pythonBody({ queue: idle, actor: "wire_py", messageId, options: `${PY_CUSTOM},"redis_message_id":"${id}","retries":3` });
    await client.zadd(`${namespace}:${idle}.XQ`, Date.now(), id);
    await client.hset(`${namespace}:${idle}.XQ.msgs`, id, body);
    const store = deadLetterStore(broker);
    try {
      assert.equal((await store.requeue(idle, { resetRetries: true })).requeued, 1);
      const back = await client.hget(`${namespace}:${idle}.msgs`, id);
      assert.equal(back, body.replace('"retries":3', '"retries":0'));
    } finally {
      await store.close();
    }
  });

  test("pipeline: the next step is pipe_target as Python wrote it with the result appended to its args", async () => {
    const target = pythonDict(uniqueName("py_pipe_q"), "wire_py");
    await pythonSend(q, "wire_echo", `"pipe_target":${target.text},"redis_message_id":"<rid>"`);
    const { queue } = target;
    const [id, body] = await written(queue);
    assert.equal(body, pythonBody({ queue, actor: "wire_py", messageId: target.messageId, args: argsWith('"r"'), options: `${PY_CUSTOM},"redis_message_id":"${id}"` }));
  });

  test("group completion callback: enqueued as Python wrote it inside the members' options", async () => {
    const callback = pythonDict(uniqueName("py_group_q"), "wire_py");
    const uuid = randomUUID();
    assert.equal(await new Barrier(uuid, { backend: getRateLimiterBackend() }).create(2), true);
    for (let i = 0; i < 2; i++) await pythonSend(q, "wire_echo", `"group_completion_uuid":"${uuid}","group_completion_callbacks":[${callback.text}],"redis_message_id":"<rid>"`);
    const { queue } = callback;
    const [id, body] = await written(queue);
    assert.equal(body, pythonBody({ queue, actor: "wire_py", messageId: callback.messageId, options: `${PY_CUSTOM},"redis_message_id":"${id}"` }));
  });

  test("on_success: the callback's message dict is the body Python wrote, byte for byte", async () => {
    const { body: sent } = await pythonSend(q, "wire_echo", `"on_success":"wire_py",${PY_CUSTOM},"redis_message_id":"<rid>"`);
    const [, body] = await written("wire_cb_q");
    assert.ok(body.startsWith(`{"queue_name":"wire_cb_q","actor_name":"wire_py","args":[${sent},"r"],"kwargs":{},"options":{`), body);
    assert.ok(!body.endsWith(`"message_timestamp":${TIMESTAMP}}`), "the callback is a new message");
  });
});
