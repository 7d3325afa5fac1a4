import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests run from dist/test/...). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** Dramatiq's spec and golden data, copied into the repository (test/golden/README.md; never read from outside). */
export const dramatiqDir = join(repoRoot, "test", "golden");
export const goldenDir = join(dramatiqDir, "golden-basic");
export const goldenMemcachedDir = join(dramatiqDir, "golden-memcached");

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";
export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/";

/** A name no other test (or run) uses: queues, namespaces, keys. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** Absolute path of a compiled fixture module (test/fixtures/NAME.ts). */
export function fixture(name: string): string {
  return join(repoRoot, "dist", "test", "fixtures", `${name}.js`);
}

/** The CLI entry point, as `node <cli> worker ...`. */
export const cliPath = join(repoRoot, "dist", "worker", "cli", "main.js");
