import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { loadCrdValidators } from "../../operator/api/crd-validator.js";
import { REDIS_URL, repoRoot, uniqueName } from "../support/env.js";
import { CliProcess, runCli } from "../support/process.js";
import { deleteNamespace, redisClient } from "../support/redis.js";

const run = promisify(execFile);
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
const GENERATED = ["Dockerfile", "actors.ts", "k8s", "package.json", "send.ts", "tsconfig.json"];

test("troupe init writes a project whose actor a worker runs at once, that compiles under tsc --strict, with valid manifests; it never overwrites", { timeout: 240_000 }, async () => {
  const parent = mkdtempSync(join(tmpdir(), "troupe-init-"));
  const app = join(parent, "My App");
  const namespace = uniqueName("init_ns");
  const redis = redisClient(REDIS_URL);
  const workers: CliProcess[] = [];
  try {
    const init = await runCli(["init", app]);
    assert.equal(init.code, 0, init.output);
    assert.deepEqual(readdirSync(app).filter((f) => f !== "node_modules").sort(), GENERATED);
    // /tmp has no node_modules: init links this troupe, so the worker runs without an install.
    assert.equal(realpathSync(join(app, "node_modules", "troupe")), realpathSync(repoRoot));
    assert.match(init.output, /linked node_modules\/troupe/);
    const manifest = JSON.parse(readFileSync(join(app, "package.json"), "utf8")) as { name: string; type: string; dependencies: Record<string, string> };
    assert.deepEqual({ name: manifest.name, type: manifest.type, troupe: manifest.dependencies.troupe }, { name: "my-app", type: "module", troupe: `^${version}` });

    // The one command: the schedule in actors.ts runs the user's actor on the in-memory broker.
    const local = new CliProcess(["worker", "actors.ts"], {}, { cwd: app });
    workers.push(local);
    const greeted = await local.waitForLog((l) => l.msg === "greeted", "the scheduled greet to run", 60_000);
    assert.deepEqual({ name: greeted.name, greeting: greeted.greeting }, { name: "schedule", greeting: "Hello, schedule!" });
    assert.equal(await local.stop(), 0);

    // The producer on Redis, as after `npm install` (its devDependencies linked from this repository's).
    for (const dep of ["tsx", "typescript", "@types"]) symlinkSync(join(repoRoot, "node_modules", dep), join(app, "node_modules", dep));
    const env = { TROUPE_REDIS_NAMESPACE: namespace, TROUPE_BROKER_URL: REDIS_URL };
    const shared = new CliProcess(["worker", "actors.ts", "-p", "1", "-t", "1"], env, { cwd: app });
    workers.push(shared);
    await shared.waitForLog((l) => l.msg === "worker started", "the Redis worker", 60_000);
    const sent = await run(process.execPath, ["--import", "tsx", "send.ts", "init-test"], { cwd: app, env: { ...process.env, ...env } });
    assert.match(sent.stdout, /^sent [0-9a-f-]{36} to queue default$/m);
    await shared.waitForLog((l) => l.msg === "greeted" && l.name === "init-test", "send.ts's message to run");
    assert.equal(await shared.stop(), 0);

    await run(join(repoRoot, "node_modules", ".bin", "tsc"), ["-p", join(app, "tsconfig.json")], { cwd: app }).catch((err: { stdout: string }) => assert.fail(`tsc --strict: ${err.stdout}`));
    assert.equal(JSON.parse(readFileSync(join(app, "tsconfig.json"), "utf8")).compilerOptions.strict, true);

    const validators = loadCrdValidators(join(repoRoot, "crds"), "reject");
    const docs = parseAllDocuments(readFileSync(join(app, "k8s", "workerpool.yaml"), "utf8")).map((d) => d.toJS() as { apiVersion: string; kind: string });
    assert.deepEqual(docs.map((d) => d.kind), ["WorkerPool", "Actor"]);
    for (const doc of docs) assert.deepEqual(validators.get(`${doc.apiVersion}/${doc.kind}`)!.check(doc as unknown as Record<string, unknown>), [], doc.kind);
    assert.match(readFileSync(join(app, "Dockerfile"), "utf8"), new RegExp(`^FROM ghcr\\.io/troupe-dev/troupe:${version.replaceAll(".", "\\.")}$`, "m"));

    const before = readFileSync(join(app, "actors.ts"), "utf8");
    const again = await runCli(["init", app]);
    assert.equal(again.code, 2, again.output);
    assert.match(again.output, /actors\.ts, send\.ts, package\.json, tsconfig\.json, Dockerfile, k8s\/workerpool\.yaml already exist in .*; nothing was written/);
    assert.equal(readFileSync(join(app, "actors.ts"), "utf8"), before);
  } finally {
    for (const worker of workers) await worker.stop();
    await deleteNamespace(redis, namespace);
    redis.disconnect();
    rmSync(parent, { recursive: true, force: true });
  }
});
