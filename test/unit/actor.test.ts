import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Actor, ActorNotFound, ActorRegistry, MemoryBroker, TroupeError, dqName, qName, xqName } from "troupe";

describe("actors and the registry", () => {
  test("a duplicate actor name is an error", () => {
    const registry = new ActorRegistry();
    new Actor("dup", () => 1, {}, registry);
    assert.throws(() => new Actor("dup", () => 2, {}, registry), /already declared/);
  });

  test("unknown options and invalid queue names are rejected at declaration", () => {
    const registry = new ActorRegistry();
    assert.throws(() => new Actor("x", () => 1, { maxRetrys: 3 } as never, registry), /unknown option "maxRetrys"/);
    assert.throws(() => new Actor("y", () => 1, { queue: "1bad" }, registry), /invalid queue name/);
    assert.throws(() => new Actor("z", () => 1, { queue: "q.DQ" }, registry), /invalid queue name/);
  });

  test("looking up an unknown actor raises ActorNotFound", () => {
    assert.throws(() => new ActorRegistry().require("ghost"), ActorNotFound);
  });

  test("send options become Dramatiq's snake_case wire options; actors become names", () => {
    const registry = new ActorRegistry();
    const cb = new Actor("cb", () => 1, {}, registry);
    const a = new Actor("a", (x: number) => x, { queue: "work" }, registry);
    const m = a.messageWithOptions({ args: [1], maxRetries: 2, onSuccess: cb, timeLimit: 500, priority: 7, options: { custom: "x" } });
    assert.equal(m.queueName, "work");
    assert.deepEqual(m.options, { max_retries: 2, time_limit: 500, on_success: "cb", custom: "x", broker_priority: 7 });
  });

  test("arguments that are not JSON fail at send time with their path", () => {
    const a = new Actor("j", (_x: unknown) => 1, {}, new ActorRegistry());
    assert.throws(() => a.message(new Date()), /args\[0\] is a Date/);
    assert.throws(() => a.message({ f: () => 1 }), /args\[0\]\.f is a function/);
    assert.throws(() => a.message(Symbol("s") as never), /symbol/);
  });

  test("a bigint argument is sent as the JSON integer it is (Python reads it exactly)", () => {
    const a = new Actor("big", (_x: unknown) => 1, {}, new ActorRegistry());
    assert.match(a.message(12345678901234567890n as never).encode(), /"args":\[12345678901234567890\]/);
  });

  test("overrides published at run time win over declared options", () => {
    const registry = new ActorRegistry();
    const a = new Actor("o", () => 1, { maxRetries: 3, timeLimit: 1000 }, registry);
    registry.setOverrides({ o: { maxRetries: 0 } });
    assert.deepEqual(a.options, { maxRetries: 0, timeLimit: 1000 });
  });

  test("queue-name helpers never produce q.DQ.XQ", () => {
    assert.equal(xqName("q.DQ"), "q.XQ");
    assert.equal(dqName("q.XQ"), "q.DQ");
    assert.equal(qName("q.DQ"), "q");
    assert.equal(dqName("q.DQ"), "q.DQ");
  });

  test("a delayed enqueue goes to q.DQ with an eta, keeping id and timestamp", async () => {
    const registry = new ActorRegistry();
    const broker = new MemoryBroker({ registry });
    const a = new Actor("d", () => 1, {}, registry);
    const m = a.message();
    const before = Date.now();
    const sent = await broker.enqueue(m, { delay: 5000 });
    assert.equal(sent.queueName, "default.DQ");
    assert.equal(sent.messageId, m.messageId);
    assert.ok((sent.options.eta as number) >= before + 5000);
    assert.deepEqual(await broker.queueStats("default"), { queue: "default", ready: 0, delayed: 1, inFlight: 0, dead: 0 });
    await assert.rejects(broker.enqueue(m, { delay: -1 }), TroupeError);
  });
});
