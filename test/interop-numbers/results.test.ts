import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBroker, Message, Worker, createResultBackend, setBroker, setResultBackend, type ResultBackend } from "troupe";
import { REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { redisClient } from "../support/redis.js";
import { RawMemcached } from "../memcached/raw.js";
import { pythonBody } from "./python-shapes.js";

const suffix = uniqueName("");
process.env.TROUPE_TEST_WIRE_SUFFIX = suffix;
const module = fixture("wire-results");
const q = `wire_results_q${suffix}`;

/**
 * Results a Troupe actor stores follow the messages' number rule: with `bigints: true` the integers beyond 2^53 it
 * got from Python, and those it computes, are stored as the exact JSON integers a Python reader gets as ints;
 * `getResult({ bigints: true })` reads a Python result's integers exactly. Read and written raw on each backend,
 * as Dramatiq's backends do.
 */
describe("results written by Troupe keep integers beyond 2^53 exact (Redis and memcached backends)", () => {
  const broker = setBroker(new MemoryBroker());
  const namespace = uniqueName("wire-results");
  const redis = redisClient(REDIS_URL);
  let memcached: RawMemcached;
  let worker: Worker;
  const opened: ResultBackend[] = [];
  const keys: string[] = [];

  /** Each backend read and written as Dramatiq's does: a one-element Redis list, a memcached item with flags 0. */
  const backends: Record<string, { url: string; read: (key: string) => Promise<string | undefined>; write: (key: string, value: string) => Promise<unknown> }> = {
    redis: { url: REDIS_URL, read: async (key) => (await redis.lindex(key, 0)) ?? undefined, write: (key, value) => redis.multi().del(key).lpush(key, value).pexpire(key, 600_000).exec() },
    memcached: { url: "memcached://127.0.0.1:11211", read: async (key) => (await memcached.get(key))?.value.toString("utf8"), write: (key, value) => memcached.set(key, value, 0, 600) },
  };

  before(async () => {
    memcached = await RawMemcached.open();
    await import(module);
    worker = new Worker(broker, { modules: [module], threads: 1, queues: [q] });
    await worker.start();
  });
  after(async () => {
    await worker.stop(5000);
    if (keys.length) await redis.del(...keys);
    await memcached.delete(...keys);
    for (const backend of opened) await backend.close();
    memcached.close();
    redis.disconnect();
  });

  for (const [name, { url, read, write }] of Object.entries(backends)) {
    test(`${name}: an actor with bigints returns Python's integers and one it computed, or relays a Python result: the stored result is exact`, async () => {
      const backend = setResultBackend(createResultBackend(url, { namespace }));
      opened.push(backend);
      const run = async (actor: string, args: string): Promise<string | undefined> => {
        const message = Message.decode(pythonBody({ queue: q, actor, args, kwargs: "{}", messageId: uniqueName("m") }));
        keys.push(backend.buildMessageKey(message));
        await broker.enqueue(message);
        await backend.getResult(message, { block: true, timeout: 20_000 });
        return read(backend.buildMessageKey(message));
      };
      assert.equal(await run("wire_big_result", "[9223372036854775807,-18446744073709551617]"), "[9223372036854775807,-18446744073709551617,9223372036854775808]");
      // Without the option the actor computes with the nearest number, and that is what it returns.
      assert.equal(await run("wire_number_result", "[9223372036854775807]"), "9223372036854776000");

      // A Python actor's result read with bigints, by a caller and by a Troupe actor that stores it as its own.
      const python = new Message({ queueName: q, actorName: "py_source", messageId: uniqueName("py") });
      keys.push(backend.buildMessageKey(python));
      await write(backend.buildMessageKey(python), "[9223372036854775807,-18446744073709551617,1.0]");
      assert.deepEqual(await python.getResult({ bigints: true }), [9223372036854775807n, -18446744073709551617n, 1]);
      assert.deepEqual(await python.getResult(), [9223372036854775807, -18446744073709551617, 1], "without the option: the nearest numbers");
      assert.equal(await run("wire_relay_result", `["${python.messageId}"]`), "[9223372036854775807,-18446744073709551617,1]");
    });
  }
});
