import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SETTINGS } from "../../worker/settings.js";
import { cliPath, repoRoot } from "../support/env.js";

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(ext))
    .map((entry) => join(entry.parentPath, entry.name));
}

const declaredEnv = new Set(SETTINGS.flatMap((s) => (s.env ? [s.env] : [])));
const declaredFlags = new Set(SETTINGS.flatMap((s) => (s.flag ? [s.flag] : [])));

test("every TROUPE_* variable the worker and operator source names is declared in worker/settings.ts", () => {
  const named = new Set<string>();
  for (const file of [...filesUnder("worker", ".ts"), ...filesUnder("operator", ".ts")]) {
    for (const match of readFileSync(file, "utf8").matchAll(/\bTROUPE_[A-Z][A-Z0-9_]*[A-Z0-9]\b/g)) named.add(match[0]);
  }
  assert.ok(named.has("TROUPE_BROKER_URL"));
  assert.deepEqual([...named].filter((name) => !declaredEnv.has(name)).sort(), [], "add these to SETTINGS in worker/settings.ts");
  assert.deepEqual([...declaredEnv].filter((name) => !named.has(name)).sort(), [], "declared but read nowhere");
});

test("every `troupe worker` flag is declared in worker/settings.ts, and every declared flag exists", () => {
  const help = spawnSync(process.execPath, [cliPath, "worker", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  const flags = new Set([...help.stdout.matchAll(/^\s+(?:-\w, )?--([a-z][a-z-]*)/gm)].map((m) => m[1]!));
  flags.delete("help");
  assert.ok(flags.has("threads"), help.stdout);
  assert.deepEqual([...flags].filter((flag) => !declaredFlags.has(flag)).sort(), [], "add these to SETTINGS in worker/settings.ts");
  assert.deepEqual([...declaredFlags].filter((flag) => !flags.has(flag)).sort(), [], "declared but not a flag of troupe worker");
});

test("every declared setting is documented in README.md or docs/", () => {
  const docs = [join(repoRoot, "README.md"), ...filesUnder("docs", ".md")].map((file) => readFileSync(file, "utf8")).join("\n");
  const missing = SETTINGS.flatMap((s) => [...(s.env && !docs.includes(s.env) ? [s.env] : []), ...(s.flag && !docs.includes(`--${s.flag}`) ? [`--${s.flag}`] : [])]);
  assert.deepEqual(missing, []);
});
