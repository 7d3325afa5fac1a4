import assert from "node:assert/strict";
import { test } from "node:test";
import { releaseMemory } from "../../worker/runtime/memory.js";
import { workerProcessEnv } from "../../worker/runtime/supervisor.js";

test("worker processes start with two malloc arenas unless the environment says otherwise", () => {
  assert.deepEqual(workerProcessEnv(3, {}), { MALLOC_ARENA_MAX: "2", TROUPE_PROCESS_INDEX: "3" });
  assert.equal(workerProcessEnv(0, { MALLOC_ARENA_MAX: "4" }).MALLOC_ARENA_MAX, "4");
});

test("a memory-reducing collection can be run after boot on this Node, without a warning on stderr", async () => {
  const warnings: unknown[] = [];
  const onWarning = (warning: unknown) => warnings.push(warning);
  process.on("warning", onWarning);
  try {
    assert.equal(releaseMemory(), true);
    // process.emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings, []);
});
