import { test } from "node:test";
import assert from "node:assert/strict";
import v8 from "node:v8";
import { BroadcastChannel } from "node:worker_threads";
import { releaseMemory } from "../../worker/runtime/memory.js";
import { readFileSync } from "node:fs";
import { workerProcessEnv, workerProcessExecArgv } from "../../worker/runtime/supervisor.js";
import { ThreadPool } from "../../worker/runtime/thread-pool.js";
import { Message } from "../../worker/message.js";
import { fixture, REDIS_URL, uniqueName } from "../support/env.js";
import { childrenOf, CliProcess } from "../support/process.js";
import { until } from "../support/wait.js";

test("worker threads start as load asks, one boot at a time: one at start, another when a message finds every thread busy", async () => {
  const name = uniqueName("boot");
  process.env.TEST_BOOT_CHANNEL = name;
  const channel = new BroadcastChannel(name);
  const pool = new ThreadPool({ size: 3, concurrency: 1, modules: [fixture("boot-gate"), fixture("basic")] });
  const readyWhenBooting: number[] = [];
  channel.onmessage = (event) => {
    const [what, threadId] = String((event as MessageEvent).data).split(" ");
    if (what !== "booting") return;
    // The thread waits for "go", so it cannot be ready yet: readyThreads counts the threads booted before it.
    readyWhenBooting.push(pool.readyThreads);
    channel.postMessage(`go ${threadId}`);
  };
  // Naps long enough to hold their thread for the whole test; the pool's stop ends them.
  const nap = (id: string) => pool.run("nap", new Message({ queueName: "default", actorName: "nap", args: [id, 60_000] }).encode()).id;
  try {
    await pool.start();
    assert.deepEqual({ ready: pool.readyThreads, started: pool.startedThreads }, { ready: 1, started: 1 });
    nap("n0");
    assert.equal(pool.startedThreads, 1, "the first thread was free");
    const sentAhead = [nap("n1")];
    assert.equal(pool.startedThreads, 2, "every thread busy: another starts");
    sentAhead.push(nap("n2"));
    assert.equal(pool.startedThreads, 2, "not while one boots");
    await until(() => pool.readyThreads === 2, "the second thread to boot");
    // n1 and n2 were sent ahead behind n0, a 60 s nap: the new thread takes one back instead of idling.
    await until(() => sentAhead.some((id) => pool.startTimeOf(id) !== undefined), "the new thread to take back a nap waiting behind n0");
    nap("n3");
    assert.equal(pool.startedThreads, 3, "every thread busy again: the third starts");
    await until(() => pool.readyThreads === 3, "the third thread to boot");
    for (let i = 5; i < 10; i++) nap(`n${i}`);
    assert.equal(pool.startedThreads, 3, "never more than the pool's size");
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

test("worker processes get 4 MB semi-spaces unless the user set a size, in execArgv or NODE_OPTIONS", () => {
  assert.deepEqual(workerProcessExecArgv(["--enable-source-maps"], {}), ["--enable-source-maps", "--max-semi-space-size=4"]);
  assert.deepEqual(workerProcessExecArgv(["--max-semi-space-size=16"], {}), ["--max-semi-space-size=16"]);
  assert.deepEqual(workerProcessExecArgv([], { NODE_OPTIONS: "--max-old-space-size=512 --max-semi-space-size=32" }), []);
});

test("a supervised worker process runs with the semi-space flag", async (t) => {
  const worker = new CliProcess(["worker", fixture("basic"), "-Q", uniqueName("semi"), "-p", "1", "-b", REDIS_URL], { TROUPE_LOG_LEVEL: "info", TROUPE_METRICS_PORT: "off" });
  t.after(() => worker.kill());
  await worker.waitForLog((l) => l.msg === "worker started", "the worker process to boot");
  const [child] = childrenOf(worker.pid);
  assert.ok(child, "the supervisor forked a worker process");
  const argv = readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0");
  assert.ok(argv.includes("--max-semi-space-size=4"), argv.join(" "));
});
