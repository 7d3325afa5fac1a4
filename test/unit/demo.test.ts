import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cliPath } from "../support/env.js";

test("troupe demo finishes on its own with progress and a summary", () => {
  const run = spawnSync(process.execPath, [cliPath, "demo"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const out = run.stdout;
  assert.match(out, /\[\s*[\d.]+s\] processed/);
  assert.match(out, /processed\s+\d+ succeeded, \d+ failed attempts/);
  assert.match(out, /dead-lettered\s+3\b/);
  assert.match(out, /charge\(\["4000-0000-0000-0002"\]\): /);
  assert.match(out, /validate\(.*quantity must be positive/);
  assert.match(out, /pipeline add\(2, 3\) \| multiply\(10\) \| format\(\) → "total = 50"/);
  assert.match(out, /group of 10 squares → \[1,4,9,16,25,36,49,64,81,100\]/);
  assert.match(out, /group completion callback → "group squares finished"/);
  const retried = Number(/retried\s+(\d+) retries/.exec(out)?.[1]);
  assert.ok(retried >= 22, `10 flaky x 2 + 2 charges x 1 retries, got ${retried}`);
});
