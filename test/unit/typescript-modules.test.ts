import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { MemoryBroker, Worker, setBroker } from "troupe";
import { importModules } from "../../worker/runtime/load-modules.js";
import { EventLog } from "../support/events.js";
import { repoRoot } from "../support/env.js";

test("actor modules written in TypeScript load in the main thread and in worker threads without a build", async () => {
  const module = join(repoRoot, "test", "fixtures", "raw", "greet.mts");
  // The repository's tsconfig maps "troupe" to its sources for type-checking; a user's project has no such
  // mapping, so point tsx at a plain tsconfig and let "troupe" resolve to the built package.
  process.env.TSX_TSCONFIG_PATH = join(repoRoot, "test", "fixtures", "raw", "tsconfig.json");
  await importModules([module]);
  const { greet } = await import(module);
  const broker = setBroker(new MemoryBroker());
  const worker = new Worker(broker, { modules: [module], threads: 1 });
  const events = new EventLog();
  try {
    await worker.start();
    await greet.send({ name: "ts" });
    await events.count("greet", 1);
    assert.equal(events.of("greet")[0]!.text, "hello ts");
  } finally {
    events.close();
    await worker.stop(1000);
  }
});
