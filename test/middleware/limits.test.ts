import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Message, MiddlewareError, ResultFailure, SkipMessage, type Middleware } from "troupe";
import { actors, startWorker, workerForSuite } from "../support/middleware.js";

describe("TimeLimit, AgeLimit, skip and CurrentMessage on the memory broker", () => {
  const suite = workerForSuite({ threads: 1, concurrency: 1 });

  test("a CPU-bound loop under a 1 s time limit is stopped, its thread replaced, and the next message runs", async () => {
    const spin = await suite.a.spinLimited.send("loop");
    await suite.run.events.count("spin_start", 1);
    await suite.a.whoAmI.send("after-spin");
    await assert.rejects(
      spin.getResult({ block: true, timeout: 15_000 }),
      (err: unknown) => err instanceof ResultFailure && err.origExcType === "TimeLimitExceeded",
    );
    // With one thread, the next message can only run on the replacement thread.
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "who_am_i" && x.tag === "after-spin"), "the message after the spin");
  });

  test("a message older than max_age is skipped, dead-lettered and stored as a SkipMessage failure", async () => {
    const old = Message.fromData({ ...suite.a.aged.message("too-old").toData(), message_timestamp: Date.now() - 1000 });
    await suite.run.broker.enqueue(old);
    await assert.rejects(old.getResult({ block: true, timeout: 10_000 }), (err: unknown) => err instanceof ResultFailure && err.origExcType === "SkipMessage" && err.origExcMsg === "Message age limit exceeded");
    const dead = (await suite.run.broker.deadLetters("default")).find((d) => d.message?.messageId === old.messageId);
    assert.equal(dead?.reason, "Message age limit exceeded");
    assert.equal(suite.run.events.of("aged").length, 0, "the actor never ran");
  });

  test("a fresh message runs under the same max_age", async () => {
    const fresh = await suite.a.aged.sendWithOptions({ args: ["fresh"], maxAge: 60_000 });
    assert.equal(await fresh.getResult({ block: true, timeout: 10_000 }), null);
    await suite.run.events.count("aged", 1);
  });

  test("a user middleware can skip a message: it is acked without running and stores null", async () => {
    const skipper: Middleware = {
      beforeProcessMessage(_broker, message) {
        if (message.options.skip_me) throw new SkipMessage("not today");
      },
    };
    suite.run.broker.addMiddleware(skipper);
    try {
      const skipped = await suite.a.identity.sendWithOptions({ args: ["skipped"], options: { skip_me: true } });
      assert.equal(await skipped.getResult({ block: true, timeout: 10_000 }), null);
      const ran = await suite.a.identity.send("ran");
      assert.equal(await ran.getResult({ block: true, timeout: 10_000 }), "ran");
      assert.ok(!(await suite.run.broker.deadLetters("default")).some((d) => d.message?.messageId === skipped.messageId));
    } finally {
      suite.run.broker.removeMiddleware(skipper);
    }
  });

  test("any other error a before-hook raises fails the message as the actor's would, and Retries takes it from there", async () => {
    class Refused extends MiddlewareError {}
    const refuser: Middleware = {
      beforeProcessMessage(_broker, message) {
        if (message.options.refuse_me) throw new Refused("refused by policy");
      },
    };
    suite.run.broker.addMiddleware(refuser);
    try {
      const refused = await suite.a.identity.sendWithOptions({ args: ["refused"], maxRetries: 0, options: { refuse_me: true } });
      await assert.rejects(refused.getResult({ block: true, timeout: 10_000 }), (err: unknown) => err instanceof ResultFailure && err.origExcType === "Refused");
      const dead = (await suite.run.broker.deadLetters("default")).find((d) => d.message?.messageId === refused.messageId);
      assert.match(dead?.reason ?? "", /retries exhausted/);
    } finally {
      suite.run.broker.removeMiddleware(refuser);
    }
  });

  test("getCurrentMessage() inside an async actor, after an await, is the message being processed", async () => {
    const sent = await suite.a.whoAmI.send("me");
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "who_am_i" && x.tag === "me"), "who_am_i");
    const seen = suite.run.events.of("who_am_i").find((e) => e.tag === "me")!;
    assert.deepEqual({ id: seen.messageId, actor: seen.actor, shuttingDown: seen.shuttingDown }, { id: sent.messageId, actor: "mw_who_am_i", shuttingDown: false });
  });

  test("getCurrentMessage() and getAbortSignal() in a sync actor name its own message, from its first message on", async () => {
    const sent = [];
    for (let i = 0; i < 6; i++) sent.push(await suite.a.syncWhoAmI.send(`s${i}`));
    await suite.run.events.waitFor((e) => e.filter((x) => x.kind === "sync_who_am_i").length >= 6, "sync_who_am_i");
    const seen = new Map(suite.run.events.of("sync_who_am_i").map((e) => [e.tag, e]));
    for (let i = 0; i < 6; i++) assert.deepEqual({ id: seen.get(`s${i}`)?.messageId, signal: seen.get(`s${i}`)?.signal }, { id: sent[i]!.messageId, signal: true });
  });
});

describe("ShutdownNotifications", () => {
  test("an actor with notifyShutdown is aborted with Shutdown when the worker stops, and fails", async () => {
    const run = await startWorker({ threads: 1, concurrency: 2 });
    const a = await actors();
    const outcomes: unknown[] = [];
    run.broker.addMiddleware({ afterProcessMessage: (_b, message, { exception }) => void (message.actorName === "mw_waits_for_shutdown" && outcomes.push(exception)) });
    await a.waitsForShutdown.send("s1");
    await run.events.count("shutdown_wait", 1);
    await run.stop();
    // Without the notification the actor would have been left running until the shutdown timeout and requeued.
    assert.equal(outcomes.length, 1);
    assert.equal((outcomes[0] as Error).name, "Shutdown");
    const dead = await run.broker.deadLetters("default");
    assert.ok(dead.some((d) => d.message?.actorName === "mw_waits_for_shutdown"), "failed with max_retries 0, so dead-lettered");
  });
});

describe("CurrentMessage on a thread running several messages at once", () => {
  test("async actors interleaving on one thread (concurrency 4) each see their own message after an await", async () => {
    const run = await startWorker({ threads: 1, concurrency: 4 });
    try {
      const a = await actors();
      // One enqueueMany, so the thread gets them together and their awaits interleave.
      const sent = ["c0", "c1", "c2", "c3"].map((tag) => a.whoAmI.message(tag));
      await run.broker.enqueueMany(sent);
      await run.events.waitFor((e) => e.filter((x) => x.kind === "who_am_i" && String(x.tag).startsWith("c")).length >= 4, "four who_am_i");
      const seen = new Map(run.events.of("who_am_i").map((e) => [e.tag, e.messageId]));
      assert.deepEqual(["c0", "c1", "c2", "c3"].map((tag) => seen.get(tag)), sent.map((m) => m.messageId));
    } finally {
      await run.stop();
    }
  });
});
