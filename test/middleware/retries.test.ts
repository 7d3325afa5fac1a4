import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBroker, Message, MessageProxy, ResultFailure, Retries, computeBackoff } from "troupe";
import { workerForSuite } from "../support/middleware.js";

describe("compute_backoff", () => {
  test("doubles from the factor and stays within [base, 2 × base) while under the maximum", () => {
    for (let attempts = 0; attempts < 5; attempts++) {
      const [next, backoff] = computeBackoff(attempts, { factor: 15_000, maxBackoff: 7 * 24 * 3600 * 1000 });
      assert.equal(next, attempts + 1);
      assert.ok(backoff >= 15_000 * 2 ** attempts && backoff < 15_000 * 2 ** (attempts + 1), `attempt ${attempts}: ${backoff}`);
    }
  });

  test("past the maximum it is drawn from [max/2, max]; without jitter it is min(base, max)", () => {
    const [, capped] = computeBackoff(20, { factor: 15_000, maxBackoff: 1000 });
    assert.ok(capped >= 500 && capped <= 1000, String(capped));
    assert.deepEqual(computeBackoff(3, { factor: 5, jitter: false }), [4, 40]);
    assert.deepEqual(computeBackoff(40, { factor: 5, jitter: false, maxBackoff: 2000 }), [41, 2000]);
  });
});

describe("Retries on the memory broker", () => {
  const suite = workerForSuite();

  test("a failing message is retried with the same id until it succeeds; retries and traceback are on the message", async () => {
    const sent = await suite.a.flaky.send("f1", 2);
    assert.equal(await sent.getResult({ block: true, timeout: 10_000 }), 2);
    const attempts = suite.run.events.of("flaky").filter((e) => e.id === "f1");
    assert.deepEqual(attempts.map((e) => e.retries), [0, 1, 2]);
  });

  test("maxRetries N runs the actor N + 1 times, dead-letters it, sends on_retry_exhausted and stores the failure", async () => {
    const sent = await suite.a.alwaysFails.send("x1");
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "exhausted" && x.id === "x1"), "on_retry_exhausted");
    await assert.rejects(sent.getResult({ block: true, timeout: 10_000 }), (err: unknown) => err instanceof ResultFailure && err.origExcType === "RangeError" && err.origExcMsg === "always x1");
    assert.deepEqual(suite.run.events.of("always_fails").filter((e) => e.id === "x1").map((e) => e.retries), [0, 1, 2]);
    assert.deepEqual(suite.run.events.of("exhausted").find((e) => e.id === "x1")?.info, { retries: 2, max_retries: 2 });
    const dead = (await suite.run.broker.deadLetters("default")).find((d) => d.message?.messageId === sent.messageId);
    assert.ok(dead, "dead-lettered");
    assert.match(dead.reason ?? "", /retries exhausted \(2 of 2\)/);
    // As on Redis and RabbitMQ, the dead letter is the last published body: one retry behind (SPEC §10.9).
    assert.equal(dead.message?.options.retries, 2);
    assert.match(String(dead.message?.options.traceback), /RangeError: always x1/);
    assert.equal(typeof dead.message?.options.requeue_timestamp, "number");
  });

  test("on_failure is sent after every failure and already sees the incremented retry count", async () => {
    await suite.a.alwaysFails.send("x2");
    await suite.run.events.waitFor((e) => e.filter((x) => x.kind === "on_failure" && x.id === "x2").length === 3, "three on_failure callbacks");
    const seen = suite.run.events.of("on_failure").filter((e) => e.id === "x2");
    assert.deepEqual(seen.map((e) => e.retries).sort(), [1, 2, 3]);
    assert.deepEqual(seen[0]!.info, { type: "RangeError", message: "always x2" });
  });

  test("an error listed in throws is not retried and is dead-lettered at once", async () => {
    const sent = await suite.a.thrower.send("t1");
    await assert.rejects(sent.getResult({ block: true, timeout: 10_000 }), (err: unknown) => err instanceof ResultFailure && err.origExcType === "NotRetried");
    assert.deepEqual(suite.run.events.of("throws").map((e) => e.retries), [0]);
    const dead = (await suite.run.broker.deadLetters("default")).find((d) => d.message?.messageId === sent.messageId);
    assert.match(dead?.reason ?? "", /NotRetried is listed in throws/);
  });

  test("retryWhen decides: retried once, then given up", async () => {
    const sent = await suite.a.retryWhen.send("w1");
    await suite.run.events.count("retry_when", 2);
    await suite.run.broker.join("default");
    assert.deepEqual(suite.run.events.of("retry_when").map((e) => e.retries), [0, 1]);
    assert.ok((await suite.run.broker.deadLetters("default")).some((d) => d.message?.messageId === sent.messageId));
  });

  test("Retry(message, delay) uses its delay instead of the backoff", async () => {
    await suite.a.retryLater.send("r1", 150);
    await suite.run.events.count("retry_later", 2);
    const [first, second] = suite.run.events.of("retry_later");
    const waited = (second!.at as number) - (first!.at as number);
    assert.ok(waited >= 150 && waited < 10_000, `waited ${waited} ms (the actor's backoff is 60 s)`);
  });

  test("message-level max_retries overrides the actor's", async () => {
    const sent = await suite.a.flaky.sendWithOptions({ args: ["f0", 5], maxRetries: 0 });
    await assert.rejects(sent.getResult({ block: true, timeout: 10_000 }), ResultFailure);
    assert.deepEqual(suite.run.events.of("flaky").filter((e) => e.id === "f0").map((e) => e.retries), [0]);
  });
});

describe("Retries when the retry cannot be enqueued", () => {
  test("the message is failed with the reason instead of being acked and lost", async () => {
    class BrokenBroker extends MemoryBroker {
      override async enqueueMany(): Promise<Message[]> {
        throw new Error("broker down");
      }
    }
    const broker = new BrokenBroker();
    await import("../fixtures/middleware.js");
    const proxy = new MessageProxy(new Message({ queueName: "default", actorName: "mw_flaky", args: ["z", 1] }), "default", undefined);
    await new Retries().afterProcessMessage(broker, proxy, { exception: new Error("first failure") });
    assert.equal(proxy.failed, true);
    assert.match(proxy.deadLetterReason ?? "", /could not enqueue the retry: broker down/);
  });
});
