import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ActorRegistry, MemoryBroker, Message, MessageProxy, SkipMessage, type Middleware } from "troupe";

/** A middleware that records its before/after hooks, synchronously or after a turn of the event loop. */
function recorder(name: string, log: string[], async: boolean): Middleware {
  const record = (what: string) => {
    if (!async) return void log.push(what);
    return new Promise<void>((resolve) => setImmediate(() => resolve(void log.push(what))));
  };
  return {
    beforeProcessMessage: () => record(`${name}:before`),
    afterProcessMessage: () => record(`${name}:after`),
  };
}

function proxy(): MessageProxy {
  return new MessageProxy(new Message({ queueName: "q", actorName: "a" }), "q", "r1");
}

describe("middleware hook dispatch", () => {
  test("hooks that return nothing run at once; once one is async the rest wait for it, in order", async () => {
    const log: string[] = [];
    const broker = new MemoryBroker({ registry: new ActorRegistry(), middleware: [recorder("a", log, false), recorder("b", log, true), recorder("c", log, false)] });
    const before = broker.emitBefore("beforeProcessMessage", proxy());
    assert.deepEqual(log, ["a:before"]);
    assert.ok(before instanceof Promise);
    await before;
    assert.deepEqual(log, ["a:before", "b:before", "c:before"]);

    log.length = 0;
    const after = broker.emitAfter("afterProcessMessage", proxy(), {});
    assert.deepEqual(log, ["c:after"]);
    await after;
    assert.deepEqual(log, ["c:after", "b:after", "a:after"]);

    const allSync = new MemoryBroker({ registry: new ActorRegistry(), middleware: [recorder("x", log, false)] });
    assert.equal(allSync.emitBefore("beforeProcessMessage", proxy()), undefined);
  });

  test("a SkipMessage stops the before-hooks, raised at once from a sync hook and as a rejection from an async one", async () => {
    const log: string[] = [];
    const skipper: Middleware = {
      beforeProcessMessage: () => {
        throw new SkipMessage("not now");
      },
    };
    const broker = new MemoryBroker({ registry: new ActorRegistry(), middleware: [skipper, recorder("later", log, false)] });
    assert.throws(() => broker.emitBefore("beforeProcessMessage", proxy()), SkipMessage);
    const asyncSkipper: Middleware = { beforeProcessMessage: async () => Promise.reject(new SkipMessage("later")) };
    const second = new MemoryBroker({ registry: new ActorRegistry(), middleware: [asyncSkipper, recorder("later", log, false)] });
    await assert.rejects(async () => second.emitBefore("beforeProcessMessage", proxy()), SkipMessage);
    assert.deepEqual(log, []);
  });

  test("a failing hook is logged and the others still run; added and removed middleware take effect at once", async () => {
    const log: string[] = [];
    const broken: Middleware = {
      afterProcessMessage: () => {
        throw new Error("boom");
      },
    };
    const broker = new MemoryBroker({ registry: new ActorRegistry(), middleware: [recorder("a", log, false), broken] });
    await broker.emitAfter("afterProcessMessage", proxy(), {});
    assert.deepEqual(log, ["a:after"]);
    const added = recorder("added", log, false);
    broker.addMiddleware(added);
    await broker.emitAfter("afterProcessMessage", proxy(), {});
    assert.deepEqual(log, ["a:after", "added:after", "a:after"]);
    assert.equal(broker.removeMiddleware(added), true);
    assert.equal(broker.removeMiddleware(added), false);
    await broker.emitAfter("afterProcessMessage", proxy(), {});
    assert.deepEqual(log, ["a:after", "added:after", "a:after", "a:after"]);
  });
});
