import { test } from "node:test";
import assert from "node:assert/strict";
import { Message, MemoryBroker, MemoryRateLimiterBackend, MemoryResultBackend, setRateLimiterBackend, setResultBackend } from "troupe";
import { mainHandlers } from "../../worker/runtime/main-handlers.js";
import type { MainHandlers, MainMethod } from "../../worker/runtime/main-rpc.js";
import { callMain, setMainHandlers } from "../../worker/runtime/rpc.js";

// Outside a worker thread callMain answers from the handler table directly: the same table, the same lookup.
test("every call of the RPC table reaches the main thread's broker and backends", async () => {
  const broker = new MemoryBroker();
  const results = setResultBackend(new MemoryResultBackend());
  setRateLimiterBackend(new MemoryRateLimiterBackend());
  setMainHandlers(mainHandlers(broker));
  const queue = `main-rpc-${process.pid}`;
  const message = new Message({ queueName: queue, actorName: "main_rpc_probe", args: [1] });

  const sent = await callMain("enqueueMany", [message.toData()], {});
  assert.deepEqual(sent.map((data) => data.message_id), [message.messageId]);
  assert.equal((await callMain("queueStats", queue)).ready, 1);
  await results.storeResult(message, 42);
  assert.equal(await callMain("getResult", message.toData(), {}), 42);
  const key = `${queue}-limit`;
  assert.equal(await callMain("rateLimiter.add", key, 1, 60_000), true);
  assert.equal(await callMain("rateLimiter.add", key, 1, 60_000), false);
  assert.equal(await callMain("rateLimiter.incr", key, 1, 2, 60_000), true);
  assert.equal(await callMain("rateLimiter.incr", key, 1, 2, 60_000), false);
  await callMain("rateLimiter.waitNotify", `${key}-barrier`, 60_000);
  assert.equal(await callMain("rateLimiter.wait", `${key}-barrier`, 0), true);
  await broker.close();
});

test("the compiler rejects a method outside the table, wrong arguments, and a handler table that is incomplete or answers wrongly", async () => {
  const broker = new MemoryBroker();
  // @ts-expect-error every method of the table needs a handler
  setMainHandlers({ ...mainHandlers(broker), queueStats: undefined });
  await assert.rejects(callMain("queueStats", "q"), /no main-thread handler for "queueStats"/);
  // @ts-expect-error there is no such method
  await assert.rejects(callMain("enqueue", []), /no main-thread handler for "enqueue"/);

  type ArgsOf<M extends MainMethod> = Parameters<typeof callMain<M>>;
  // @ts-expect-error queueStats takes one queue name
  const wrongArgs: ArgsOf<"queueStats"> = [42];
  // @ts-expect-error a handler answers with its method's result type
  const wrongResult: MainHandlers["rateLimiter.add"] = async () => "yes";
  assert.deepEqual([wrongArgs, await wrongResult("k", 1, 1)], [[42], "yes"]);
  await broker.close();
});
