/**
 * Static checks of the Dockerfile (parsed with dockerfile-ast). The image itself is built and run by
 * scripts/image-test.sh, which needs podman and minutes rather than milliseconds.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { DockerfileParser, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { repoRoot } from "./tools.js";

const dockerfile = DockerfileParser.parse(readFileSync(join(repoRoot, "Dockerfile"), "utf8"));
const instructions = dockerfile.getInstructions();
const lastFrom = instructions.map((i) => i.getKeyword()).lastIndexOf("FROM");
const runtime = instructions.slice(lastFrom);
const args = (i: Instruction) => i.getArgumentsContent() ?? "";
const keyword = (list: Instruction[], k: string) => list.filter((i) => i.getKeyword() === k);
const json = (i: Instruction) => (i as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());

test("two stages, both on the Node 20 slim base", () => {
  const froms = dockerfile.getFROMs();
  assert.equal(froms.length, 2);
  const base = keyword(instructions, "ARG").map(args).find((a) => a.startsWith("NODE_IMAGE="));
  assert.equal(base, "NODE_IMAGE=node:20-bookworm-slim");
  for (const from of froms) assert.equal(from.getImage(), "${NODE_IMAGE}");
  assert.equal(froms[0]!.getBuildStage(), "build");
});

test("the runtime stage has production dependencies only, without lifecycle scripts", () => {
  const npm = keyword(runtime, "RUN").map(args).find((a) => a.includes("npm ci"));
  assert.ok(npm, "runtime stage runs npm ci");
  assert.match(npm, /npm ci --omit=dev --ignore-scripts/);
  assert.ok(!keyword(runtime, "COPY").some((c) => /node_modules/.test(args(c))), "no node_modules copied from the build stage");
});

test("non-root numeric user, tini as PID 1, no HEALTHCHECK, no ADD", () => {
  const user = keyword(runtime, "USER").map(args).at(-1);
  assert.match(user ?? "", /^[1-9]\d*:[1-9]\d*$/, "numeric non-root USER uid:gid");
  const entrypoint = keyword(runtime, "ENTRYPOINT").at(-1);
  assert.ok(entrypoint);
  assert.deepEqual(json(entrypoint).slice(0, 3), ["/usr/bin/tini", "--", "node"]);
  assert.ok(existsSync(join(repoRoot, "worker", "cli", "main.ts")), "the entrypoint's source exists");
  assert.equal(json(entrypoint)[3], "/app/dist/worker/cli/main.js");
  assert.match(keyword(runtime, "RUN").map(args).join("\n"), /apt-get install -y --no-install-recommends tini/);
  assert.equal(keyword(instructions, "HEALTHCHECK").length, 0);
  assert.equal(keyword(instructions, "ADD").length, 0);
});

test("every COPY source from the build context exists and is not excluded by .dockerignore", () => {
  const ignored = readFileSync(join(repoRoot, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  for (const copy of dockerfile.getCOPYs()) {
    if (copy.getFromFlag()) continue;
    const sources = copy.getArguments().slice(0, -1).map((a) => a.getValue());
    for (const source of sources) {
      assert.ok(existsSync(join(repoRoot, source)), `COPY ${source}: missing from the build context`);
      assert.ok(!ignored.some((p) => p === source || p === `**/${source}`), `COPY ${source}: excluded by .dockerignore`);
    }
  }
});

test("the only non-TypeScript files the runtime reads from worker/ and operator/ are the Lua scripts, which the build puts into dist/, and the dashboard's static files, which the image copies", () => {
  const assets = ["worker", "operator"]
    .flatMap((dir) => readdirSync(join(repoRoot, dir), { recursive: true }).map((f) => join(repoRoot, dir, String(f))))
    .filter((f) => /\.[a-z]+$/.test(f) && !f.endsWith(".ts"))
    .map((f) => relative(repoRoot, f));
  const unexpected = assets.filter((f) => !f.endsWith(".lua") && !f.startsWith("worker/console/static/"));
  assert.deepEqual(unexpected, [], "add these to the Dockerfile's runtime stage");
  assert.match(keyword(instructions, "RUN").map(args).join("\n"), /cp -r --parents worker\/console\/static /);
  assert.match(keyword(instructions, "RUN").map(args).join("\n"), /npm run build/, "npm run build copies the Lua scripts into dist/ (tsc alone does not)");
});
