/**
 * `npm test`: make sure Redis and RabbitMQ are up, build, then run every compiled test file with Node's test
 * runner. Extra arguments narrow the run to files whose path contains one of them (e.g. `npm test -- redis`).
 * The three-node RabbitMQ cluster tests are a separate step: `npm run test:cluster`.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { ensureServices } from "./services.mjs";

const root = new URL("..", import.meta.url).pathname;

try {
  await ensureServices();
} catch (err) {
  console.error(`[test] ${err.message}`);
  process.exit(1);
}

const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

const filters = process.argv.slice(2);
// Slow real-world checks that are documented separate steps (`npm run test:cluster`): they run only when a filter
// names them, so `npm test -- rabbitmq` stays quick.
const SEPARATE_STEPS = [{ path: "dist/test/rabbitmq/cluster.test.js", name: "cluster" }];
const separate = (f) => SEPARATE_STEPS.find((step) => relative(root, f) === step.path);
const testRoot = join(root, "dist", "test");
const files = readdirSync(testRoot, { recursive: true })
  .map((f) => join(testRoot, String(f)))
  .filter((f) => f.endsWith(".test.js"))
  .filter((f) => filters.length === 0 || filters.some((filter) => relative(root, f).includes(filter)))
  .filter((f) => !separate(f) || filters.some((filter) => filter.includes(separate(f).name)))
  .sort();
if (files.length === 0) {
  console.error(`[test] no test files matched ${filters.join(" ")}`);
  process.exit(1);
}

const run = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-timeout=300000", "--test-reporter=spec", ...files],
  { cwd: root, stdio: "inherit", env: { ...process.env, TROUPE_LOG_LEVEL: process.env.TROUPE_LOG_LEVEL ?? "critical" } },
);
process.exit(run.status ?? 1);
