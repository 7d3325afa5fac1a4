import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBroker } from "troupe";
import { fixture, REDIS_URL, uniqueName } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { defaultProcesses } from "../../worker/runtime/supervisor.js";
import { until } from "../support/wait.js";

test("a worker process that dies is restarted by the supervisor, and its messages are not lost", async () => {
  const dir = mkdtempSync(join(tmpdir(), "troupe-supervisor-"));
  const out = join(dir, "out.txt");
  const queue = uniqueName("supervised");
  const namespace = uniqueName("ns");
  const env = { TEST_QUEUE: queue, TEST_OUT: out, TROUPE_REDIS_NAMESPACE: namespace, TROUPE_REDIS_HEARTBEAT_TIMEOUT: "1000" };
  process.env.TEST_QUEUE = queue;
  process.env.TROUPE_REDIS_NAMESPACE = namespace;
  const actors = await import(fixture("process-actors"));
  const broker = createBroker(REDIS_URL);
  const cli = new CliProcess(["worker", fixture("process-actors"), "--broker", REDIS_URL, "--processes", "2", "--threads", "1", "-Q", queue], env);
  try {
    const started = (n: number) => cli.waitForLog((l) => l.msg === "worker started", `${n} worker processes started`, 30_000, n - 1);
    await started(2);
    const pids = new Set(cli.logs.filter((l) => l.msg === "worker started").map((l) => l.pid));
    assert.equal(pids.size, 2);

    await (await import("troupe")).setBroker(broker);
    await actors.killProcess.send("k1");
    await cli.waitForLog((l) => l.msg === "worker process exited; restarting", "the supervisor to notice the death");
    await started(3);

    for (let i = 0; i < 20; i++) await actors.recordId.send(`m${i}`);
    const seen = await until(() => {
      const lines = readFileSync(out, "utf8").split("\n").filter((l) => l.startsWith("m"));
      return new Set(lines.map((l) => l.split(" ")[0])).size === 20 ? lines : undefined;
    }, "all 20 messages processed after the restart");
    assert.ok(seen.length >= 20);
    // The message that was running when its process died comes back once the heartbeat timeout passes.
    await until(() => readFileSync(out, "utf8").includes("survived k1 "), "the killed message redelivered and run again");
    assert.equal(await cli.stop(), 0, "graceful exit after SIGTERM");
  } finally {
    await cli.stop();
    await broker.purge(queue);
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the default process count gives every core a thread and no more processes than that takes", () => {
  assert.equal(defaultProcesses(2, 8), 1);
  assert.equal(defaultProcesses(8, 8), 1);
  assert.equal(defaultProcesses(9, 8), 2);
  assert.equal(defaultProcesses(16, 8), 2);
  assert.equal(defaultProcesses(4, 1), 4);
  assert.equal(defaultProcesses(1, 8), 1);
});
