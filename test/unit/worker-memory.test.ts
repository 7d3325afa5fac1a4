import { test } from "node:test";
import assert from "node:assert/strict";
import v8 from "node:v8";
import { BroadcastChannel } from "node:worker_threads";
import { releaseMemory } from "../../worker/runtime/memory.js";
import { workerProcessEnv } from "../../worker/runtime/supervisor.js";
import { ThreadPool } from "../../worker/runtime/thread-pool.js";
import { fixture, uniqueName } from "../support/env.js";

test("worker threads boot one at a time: a thread starts importing once the previous one is ready", async () => {
  const name = uniqueName("boot");
  process.env.TEST_BOOT_CHANNEL = name;
  const channel = new BroadcastChannel(name);
  const pool = new ThreadPool({ size: 3, concurrency: 1, modules: [fixture("boot-gate")] });
  const readyWhenBooting: number[] = [];
  channel.onmessage = (event) => {
    const [what, threadId] = String((event as MessageEvent).data).split(" ");
    if (what !== "booting") return;
    // The thread waits for "go", so it cannot be ready yet: readyThreads counts the threads booted before it.
    readyWhenBooting.push(pool.readyThreads);
    channel.postMessage(`go ${threadId}`);
  };
  try {
    await pool.start();
    assert.equal(pool.readyThreads, 3);
    assert.deepEqual(readyWhenBooting, [0, 1, 2]);
  } finally {
    await pool.stop();
    channel.close();
    delete process.env.TEST_BOOT_CHANNEL;
  }
});

test("releaseMemory collects without printing v8.queryObjects' ExperimentalWarning", async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  const emitWarning = process.emitWarning;
  process.on("warning", onWarning);
  try {
    assert.equal(releaseMemory(), typeof v8.queryObjects === "function");
    assert.equal(process.emitWarning, emitWarning, "emitWarning is put back");
    // A warning is emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings.map((w) => w.message), []);
  } finally {
    process.off("warning", onWarning);
  }
});

test("worker processes get one malloc arena unless the environment says otherwise", () => {
  assert.deepEqual(workerProcessEnv(3, {}), { MALLOC_ARENA_MAX: "1", TROUPE_PROCESS_INDEX: "3" });
  assert.equal(workerProcessEnv(0, { MALLOC_ARENA_MAX: "4" }).MALLOC_ARENA_MAX, "4");
});
