import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { chartDir, promtool, repoRoot } from "./tools.js";

test("promtool check rules accepts the chart's rule file", () => {
  const r = promtool(["check", "rules", join(chartDir, "rules", "troupe-rules.yaml")]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
});

test("promtool test rules: every alert fires when it should and stays quiet when it should not", () => {
  const dir = join(repoRoot, "test", "shipping");
  const r = promtool(["test", "rules", "troupe-rules.promtest.yaml"], dir);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);
});
