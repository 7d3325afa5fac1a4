import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GroupCallbacks, MemoryBroker, ResultFailure, ResultMissing, group, pipeline } from "troupe";
import { actors, workerForSuite } from "../support/middleware.js";

describe("Callbacks, Results, Pipelines and GroupCallbacks on the memory broker", () => {
  const suite = workerForSuite();

  test("on_success receives the message dict and the result", async () => {
    const sent = await suite.a.succeeds.send("cb1");
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "on_success" && x.id === "cb1"), "on_success");
    const seen = suite.run.events.of("on_success").find((e) => e.id === "cb1")!;
    assert.deepEqual({ messageId: seen.messageId, result: seen.result }, { messageId: sent.messageId, result: "ok cb1" });
  });

  test("results: stored values, ResultMissing before, ResultTimeout-free blocking get", async () => {
    const message = suite.a.identity.message({ nested: [1, "two"] });
    await assert.rejects(message.getResult(), ResultMissing);
    await suite.run.broker.enqueue(message);
    assert.deepEqual(await message.getResult({ block: true, timeout: 10_000 }), { nested: [1, "two"] });
  });

  test("step() builds typed pipeline steps: the previous result fills the last parameter", async () => {
    const { double, sum } = suite.a;
    // Type-checked by the build: step() leaves out the parameter the previous result fills; message() does not.
    // @ts-expect-error double takes one number: as a plain message it needs it
    assert.deepEqual(double.message().args, []);
    // @ts-expect-error the previous result already fills double's only parameter
    void double.step(1);
    const p = pipeline([double.message(2), double.step(), sum.step(100)]);
    assert.deepEqual(p.messages.map((m) => m.args), [[2], [], [100]]);
    await p.run();
    assert.equal(await p.getResult({ block: true, timeout: 10_000 }), 108);
  });

  test("a pipeline passes each result to the next step; pipeIgnore drops it", async () => {
    const p = pipeline([suite.a.double.message(3), suite.a.double.messageWithOptions(), suite.a.constant.messageWithOptions(), suite.a.sum.messageWithOptions({ args: [10] })]);
    assert.equal(p.length, 4);
    assert.equal(typeof (p.messages[0]!.options.pipe_target as { options: { pipe_target: unknown } }).options.pipe_target, "object", "pipe_target is fully nested");
    await p.run();
    // mw_constant is declared with pipeIgnore, so its result is not passed on (the sender's actor option counts).
    assert.equal(await p.getResult({ block: true, timeout: 10_000 }), 10);
    assert.deepEqual(await p.getResults({ block: true, timeout: 10_000 }), [6, 12, "constant", 10]);
    assert.equal(await p.completedCount(), 4);
    assert.equal(await p.completed(), true);
  });

  test("pipe_ignore on the receiving message, and the step's own delay", async () => {
    const p = pipeline([suite.a.double.message(1), suite.a.sum.messageWithOptions({ args: [7], pipeIgnore: true, delay: 100 })]);
    const started = Date.now();
    await p.run();
    assert.equal(await p.getResult({ block: true, timeout: 10_000 }), 7);
    assert.ok(Date.now() - started >= 100, "the second step waited for its delay");
  });

  test("a failed step stops the pipeline", async () => {
    const p = pipeline([suite.a.failOnce.message(1), suite.a.double.messageWithOptions()]);
    await p.run();
    await assert.rejects(p.messages[0]!.getResult({ block: true, timeout: 10_000 }), ResultFailure);
    await suite.run.broker.join("default");
    assert.equal(await p.completed(), false);
    // As Dramatiq's completed_count, a failed step's ResultFailure surfaces.
    await assert.rejects(p.completedCount(), ResultFailure);
  });

  test("a group runs members in parallel, nested pipelines and groups included, and collects results in order", async () => {
    const g = group([suite.a.identity.message("a"), pipeline([suite.a.double.message(2), suite.a.double.messageWithOptions()]), group([suite.a.identity.message("x"), suite.a.identity.message("y")])]);
    await g.run();
    await g.wait({ timeout: 10_000 });
    assert.deepEqual(await g.getResults(), ["a", 8, ["x", "y"]]);
    assert.equal(await g.completedCount(), 3);
  });

  test("a group's completion callback fires once, after every member (pipelines included) succeeded", async () => {
    const tag = `g-${Date.now()}`;
    const members = Array.from({ length: 20 }, (_, i) => suite.a.identity.message(i));
    const g = group([...members, pipeline([suite.a.double.message(1), suite.a.double.messageWithOptions()])]);
    g.addCompletionCallback(suite.a.groupDone.message(tag));
    await g.run();
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "group_done" && x.tag === tag), "group completion callback");
    assert.deepEqual((await g.getResults()).slice(-1), [4]);
    await suite.run.broker.join("default");
    assert.equal(suite.run.events.of("group_done").filter((e) => e.tag === tag).length, 1);
  });

  test("a group with a member that fails for good never fires its callback (as in Dramatiq)", async () => {
    const tag = `failed-${Date.now()}`;
    const g = group([suite.a.identity.message("fine"), suite.a.failOnce.message(1)]);
    g.addCompletionCallback(suite.a.groupDone.message(tag));
    await g.run();
    await assert.rejects(g.getResults({ block: true, timeout: 10_000 }), ResultFailure);
    await suite.run.broker.join("default");
    assert.equal(suite.run.events.of("group_done").filter((e) => e.tag === tag).length, 0);
  });

  test("pipelines and groups built inside an actor run through the main thread", async () => {
    const tag = `inside-${Date.now()}`;
    const sent = await suite.a.composeInside.send(tag);
    assert.deepEqual(await sent.getResult({ block: true, timeout: 15_000 }), [4, ["a", "b"]]);
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "group_done" && x.tag === tag), "callback of the group built in an actor");
  });
});

describe("composition errors", () => {
  test("completion callbacks need GroupCallbacks; groups cannot be pipeline steps", async () => {
    const a = await actors();
    const broker = new MemoryBroker({ middleware: [] });
    const g = group([a.identity.message(1)], { broker }).addCompletionCallback(a.groupDone.message("never"));
    await assert.rejects(g.run(), /GroupCallbacks middleware not found/);
    assert.throws(() => pipeline([a.identity.message(1), group([a.identity.message(2)]) as never]), /a group cannot be a pipeline step/);
    const nested = group([group([a.identity.message(1)])], { broker: new MemoryBroker({ middleware: [new GroupCallbacks()] }) }).addCompletionCallback(a.groupDone.message("never"));
    await assert.rejects(nested.run(), /contains a group are not supported/);
  });
});
