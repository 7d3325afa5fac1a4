import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryBroker, Worker, setBroker } from "troupe";
import { watchActorOverrides, type ActorOverrides } from "../../worker/runtime/overrides.js";
import { EventLog } from "../support/events.js";
import { fixture } from "../support/env.js";
import { until } from "../support/wait.js";

const modules = [fixture("basic")];

test("actor overrides from a watched file change a running worker's retry policy without a restart", async () => {
  const actors = await import(modules[0]!);
  const dir = mkdtempSync(join(tmpdir(), "troupe-overrides-"));
  const file = join(dir, "actors.yaml");
  // ConfigMap volumes swap files atomically; so does this test.
  const publish = (text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  publish("boom:\n  maxRetries: 2\n  minBackoff: 1\n  maxBackoff: 5\n");
  const broker = setBroker(new MemoryBroker()) as MemoryBroker;
  const worker = new Worker(broker, { modules, threads: 1 });
  const applied: ActorOverrides[] = [];
  const watcher = await watchActorOverrides((o) => {
    applied.push(o);
    worker.setOverrides(o);
  }, { path: file });
  const events = new EventLog();
  try {
    await worker.start();
    await actors.boom.send("first");
    await broker.join("default");
    await events.count("boom", 3);
    assert.equal(events.of("boom").length, 3, "declared maxRetries 0, overridden to 2: three attempts");

    publish("boom:\n  maxRetries: 0\n");
    await until(() => applied.length >= 2, "the changed overrides to be applied");
    await actors.boom.send("second");
    await broker.join("default");
    await events.count("boom", 4);
    assert.equal(events.of("boom").filter((e) => e.id === "second").length, 1, "one attempt after the change");
    assert.equal((await broker.deadLetters("default")).length, 2);
  } finally {
    watcher?.close();
    events.close();
    await worker.stop(1000);
    rmSync(dir, { recursive: true, force: true });
  }
});
