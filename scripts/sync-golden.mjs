/**
 * Copies Dramatiq's captured facts (SPEC.md, golden-basic/, golden-memcached/) from `../shared/dramatiq` beside
 * the checkout into `test/golden/`, which is what the tests read: a user's clone has no `../shared`, so the
 * tests never read outside the repository. Run it when the shared captures are newer or hold more cases:
 *
 *   node scripts/sync-golden.mjs [SOURCE_DIR]
 *
 * Files are replaced whole and files that vanished from the source are removed, so the copy stays exact.
 */
import { cpSync, existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const source = process.argv[2] ?? join(root, "..", "shared", "dramatiq");
const target = join(root, "test", "golden");
const entries = ["SPEC.md", "golden-basic", "golden-memcached"];

if (!existsSync(source)) {
  console.error(`[sync-golden] no captures at ${source}; pass the folder that holds SPEC.md and golden-*/`);
  process.exit(1);
}
for (const entry of entries) {
  const from = join(source, entry);
  if (!existsSync(from)) {
    console.error(`[sync-golden] ${from} is missing; keeping test/golden/${entry} as it is`);
    continue;
  }
  rmSync(join(target, entry), { recursive: true, force: true });
  cpSync(from, join(target, entry), { recursive: true });
  const count = statSync(from).isDirectory() ? readdirSync(from, { recursive: true }).length : 1;
  console.log(`[sync-golden] ${relative(root, join(target, entry))}: ${count} file(s) from ${from}`);
}
