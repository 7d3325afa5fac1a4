import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkQueue } from "../../operator/runtime/work-queue.js";

describe("rate-limited work queue", () => {
  test("a key is queued once and never handed out twice at a time", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    assert.equal(q.length, 2);
    const first = await q.get();
    assert.equal(first, "a");
    q.add("a"); // re-added while processing: held until done
    assert.equal(await q.get(), "b");
    assert.equal(q.length, 0);
    q.done("a");
    assert.equal(await q.get(), "a", "the re-add is delivered after done");
    q.shutDown();
    assert.equal(await q.get(), undefined);
  });

  test("per-key exponential backoff, reset by forget", () => {
    const q = new WorkQueue(10, 50);
    assert.deepEqual([q.addRateLimited("k"), q.addRateLimited("k"), q.addRateLimited("k"), q.addRateLimited("k")], [10, 20, 40, 50]);
    assert.equal(q.addRateLimited("other"), 10, "backoff is per key");
    q.forget("k");
    assert.equal(q.failureCount("k"), 0);
    assert.equal(q.addRateLimited("k"), 10);
    q.shutDown();
  });

  test("retries over all keys are held to a token bucket (10 per second, burst 100) once the burst is spent", () => {
    let now = 0;
    const q = new WorkQueue(5, 60_000, { qps: 10, burst: 100 }, () => now);
    const first = Array.from({ length: 100 }, (_, i) => q.addRateLimited(`k${i}`));
    assert.deepEqual(new Set(first), new Set([5]), "the burst: only the per-key backoff");
    assert.deepEqual([q.addRateLimited("a"), q.addRateLimited("b"), q.addRateLimited("c")], [100, 200, 300], "then one every 100 ms");
    now = 10_000;
    assert.equal(q.addRateLimited("d"), 5, "the bucket refills over time");
    q.shutDown();
  });

  test("a delayed key arrives at the earlier of two requested times", async () => {
    const q = new WorkQueue();
    // The queue's timers do not hold the process open (an operator exits on SIGTERM without waiting for them).
    const keepAlive = setInterval(() => undefined, 1000);
    const started = Date.now();
    q.addAfter("k", 10_000);
    q.addAfter("k", 20);
    assert.equal(await q.get(), "k");
    assert.ok(Date.now() - started < 5_000);
    q.shutDown();
    clearInterval(keepAlive);
  });
});
