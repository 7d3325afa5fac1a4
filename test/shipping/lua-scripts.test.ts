import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { SCRIPT_DIR } from "../../worker/redis/scripts.js";
import { repoRoot } from "./tools.js";

const sources = ["worker", "operator"].flatMap((dir) =>
  readdirSync(join(repoRoot, dir), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".lua"))
    .map((f) => join(dir, f)),
);

test("every Lua script is in dist/ beside the module that loads it, and the loader reads it there", () => {
  assert.ok(sources.length > 15, `only ${sources.length} Lua scripts found`);
  for (const file of sources) assert.equal(readFileSync(join(repoRoot, "dist", file), "utf8"), readFileSync(join(repoRoot, file), "utf8"), file);
  assert.equal(fileURLToPath(SCRIPT_DIR), join(repoRoot, "dist", "worker", "redis") + sep);
});

test("the packed package carries the Lua scripts inside dist/ and no source tree for them", () => {
  const pack = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: repoRoot, encoding: "utf8", maxBuffer: 16 << 20 });
  assert.equal(pack.status, 0, pack.stderr);
  const paths = new Set((JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  assert.deepEqual(sources.filter((file) => !paths.has(`dist/${file}`)), [], "scripts missing from the tarball");
  assert.deepEqual([...paths].filter((p) => /^(worker|operator)\/.*\.lua$/.test(p)), [], "Lua sources shipped beside dist/");
});
