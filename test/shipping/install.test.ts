import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REDIS_URL, repoRoot, uniqueName } from "../support/env.js";
import { deleteNamespace, redisClient } from "../support/redis.js";

const run = promisify(execFile);

/** The version of a package the repository itself installed, so the app installs it from npm's cache. */
async function installedVersion(name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(repoRoot, "node_modules", name, "package.json"), "utf8")) as { version: string };
  return manifest.version;
}

/** `node_modules/.bin/NAME` of the app, run with its output captured; a failure shows everything it printed. */
async function inApp(app: string, file: string, args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<string> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd: app, env: { ...process.env, ...env }, timeout, maxBuffer: 16 << 20 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

const ACTORS_TS = `import { actor } from "troupe";

export interface Order {
  id: string;
  items: number[];
}

export const total = actor("install_total", (order: Order): number => order.items.reduce((a, b) => a + b, 0), {
  queue: process.env.APP_QUEUE ?? "default",
  storeResults: true,
});
`;

const SEND_TS = `import { total } from "./actors.js";

const message = await total.send({ id: "o-1", items: [2, 3, 5] });
const result: number = await message.getResult({ block: true, timeout: 30_000 });
console.log(JSON.stringify({ result }));
process.exit(0);
`;

test("the packed package installs into a fresh app: typed actors compile with tsc --strict, a worker runs the .ts module (no tsx installed by the user) and returns a result over Redis", { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "troupe-install-"));
  const namespace = uniqueName("install");
  const queue = uniqueName("install_q");
  const redis = redisClient(REDIS_URL);
  let worker: ReturnType<typeof execFile> | undefined;
  try {
    // The build is what `npm test` just made; --ignore-scripts keeps pack from rebuilding it.
    const packed = JSON.parse((await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: repoRoot, maxBuffer: 16 << 20 })).stdout) as { filename: string; files: { path: string }[] }[];
    const tarball = join(dir, packed[0]!.filename);
    const paths = packed[0]!.files.map((f) => f.path);
    assert.ok(paths.includes("dist/worker/index.d.ts"), "the tarball carries the type declarations");
    assert.ok(!paths.some((p) => p.startsWith("dist/test/")), "the tarball leaves the tests out");

    const app = join(dir, "app");
    await mkdir(join(app, "src"), { recursive: true });
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "my-app", private: true, type: "module" }, null, 2));
    await writeFile(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, outDir: "dist", rootDir: "src", types: ["node"] }, include: ["src"] }),
    );
    await writeFile(join(app, "src", "actors.ts"), ACTORS_TS);
    await writeFile(join(app, "src", "send.ts"), SEND_TS);
    const typescript = `typescript@${await installedVersion("typescript")}`;
    const nodeTypes = `@types/node@${await installedVersion("@types/node")}`;
    await inApp(app, "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball]);
    await inApp(app, "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--save-dev", typescript, nodeTypes]);

    const manifest = JSON.parse(await readFile(join(app, "node_modules", "troupe", "package.json"), "utf8")) as { dependencies: Record<string, string> };
    assert.equal(manifest.dependencies.troupe, undefined, "no self-dependency leaks to users");

    await inApp(app, join(app, "node_modules", ".bin", "tsc"), ["-p", "."]);

    const env = { TROUPE_BROKER_URL: REDIS_URL, TROUPE_REDIS_NAMESPACE: namespace, APP_QUEUE: queue, TROUPE_METRICS_PORT: "off", TROUPE_LOG_LEVEL: "info" };
    let logs = "";
    const started = new Promise<void>((resolve, reject) => {
      worker = execFile(join(app, "node_modules", ".bin", "troupe"), ["worker", "src/actors.ts", "-p", "1", "-t", "1"], { cwd: app, env: { ...process.env, ...env } });
      worker.stderr!.on("data", (chunk: Buffer) => {
        logs += chunk.toString();
        if (logs.includes("worker started")) resolve();
      });
      worker.once("exit", (code) => reject(new Error(`the worker exited ${code} before starting:\n${logs}`)));
    });
    await started;
    const out = await inApp(app, process.execPath, ["dist/send.js"], env, 60_000);
    assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1)!), { result: 10 });
  } finally {
    worker?.kill("SIGKILL");
    await deleteNamespace(redis, namespace);
    redis.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
});
