import { test } from "node:test";
import assert from "node:assert/strict";
import { redactUrl } from "troupe";

test("redactUrl hides the password, even one with '/', '@' or ':' in it, and keeps the rest", () => {
  const cases: [string, string][] = [
    ["redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"],
    ["amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"],
    ["redis://:ab/cd@host:1/0", "redis://:***@host:1/0"],
    ["amqps://u:p@ss:w/rd@rabbit.example:5671/vh", "amqps://u:***@rabbit.example:5671/vh"],
    ["rediss://user:@host", "rediss://user:***@host"],
    ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"],
    ["amqp://user@host/v", "amqp://user@host/v"],
    ["memory://", "memory://"],
  ];
  for (const [url, expected] of cases) assert.equal(redactUrl(url), expected, url);
});

test("an invalid broker URL stops troupe worker with exit code 2 and no password in the output", async () => {
  const { spawnSync } = await import("node:child_process");
  const { cliPath, fixture } = await import("../support/env.js");
  const run = spawnSync(process.execPath, [cliPath, "worker", fixture("process-actors"), "--broker", "redis://:Sl/ash-pw@127.0.0.1:bad/0", "--processes", "1"], {
    encoding: "utf8",
    env: { ...process.env, TROUPE_METRICS_PORT: "0" },
    timeout: 30_000,
  });
  assert.equal(run.status, 2, run.stderr);
  assert.doesNotMatch(run.stdout + run.stderr, /Sl\/ash-pw/);
});
