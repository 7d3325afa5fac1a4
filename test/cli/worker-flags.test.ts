import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Message, RedisBroker } from "troupe";
import { REDIS_URL, fixture, repoRoot, uniqueName } from "../support/env.js";
import { CliProcess, runCli } from "../support/process.js";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";

const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;

/** A worker of the process-actors fixture on its own queue and namespace, reporting to a file; removed by `close`. */
class FixtureWorker {
  readonly dir = mkdtempSync(join(tmpdir(), "troupe-flags-"));
  readonly queue = uniqueName("flags_q");
  readonly namespace = uniqueName("flags_ns");
  readonly out = join(this.dir, "out.txt");
  readonly env = { TEST_QUEUE: this.queue, TEST_OUT: this.out, TROUPE_REDIS_NAMESPACE: this.namespace };
  private readonly started: CliProcess[] = [];

  start(args: string[], { module = fixture("process-actors"), cwd }: { module?: string; cwd?: string } = {}): CliProcess {
    const cli = new CliProcess(["worker", module, "-b", REDIS_URL, "-p", "1", "-t", "1", ...args], this.env, { cwd });
    this.started.push(cli);
    return cli;
  }

  booted(cli: CliProcess): Promise<unknown> {
    return cli.waitForLog((l) => l.msg === "worker started", "the worker to start", 60_000);
  }

  /** Send proc_record(id) and wait until a worker process has run it. */
  async runs(id: string): Promise<void> {
    const producer = new RedisBroker(REDIS_URL, { namespace: this.namespace });
    try {
      await producer.enqueue(new Message({ queueName: this.queue, actorName: "proc_record", args: [id] }));
      await until(() => existsSync(this.out) && readFileSync(this.out, "utf8").includes(`${id} `), `${id} run`, { timeout: 30_000 });
    } finally {
      await producer.close();
    }
  }

  async close(): Promise<void> {
    for (const cli of this.started) await cli.stop();
    const producer = new RedisBroker(REDIS_URL, { namespace: this.namespace });
    await producer.purge(this.queue);
    await producer.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function withWorker(body: (w: FixtureWorker) => Promise<void>): Promise<void> {
  const w = new FixtureWorker();
  try {
    await body(w);
  } finally {
    await w.close();
  }
}

describe("troupe worker: Dramatiq's flags", () => {
  test("--version prints the package version and exits 0, as `troupe --version` does", async () => {
    for (const args of [["worker", "--version"], ["--version"]]) {
      const run = await runCli(args);
      assert.equal(run.code, 0);
      assert.equal(run.output.trim(), version);
    }
  });

  test("--pid-file holds the supervisor's pid while it runs and is removed at a clean exit (0)", () =>
    withWorker(async (w) => {
      const pidFile = join(w.dir, "worker.pid");
      const cli = w.start(["--pid-file", pidFile]);
      await w.booted(cli);
      assert.equal(readFileSync(pidFile, "utf8").trim(), String(cli.pid));
      assert.equal(await cli.stop(), 0);
      assert.equal(existsSync(pidFile), false);
    }));

  test("a --pid-file naming a running process exits 4 and leaves the file alone; a stale one is taken over", () =>
    withWorker(async (w) => {
      const pidFile = join(w.dir, "worker.pid");
      const first = w.start(["--pid-file", pidFile]);
      await w.booted(first);
      const second = await runCli(["worker", fixture("process-actors"), "-b", REDIS_URL, "-p", "1", "--pid-file", pidFile], { env: w.env });
      assert.equal(second.code, 4, second.output);
      assert.match(second.output, new RegExp(`the pid file ${pidFile} names a running process`));
      assert.equal(readFileSync(pidFile, "utf8").trim(), String(first.pid));
      assert.equal(await first.stop(), 0);

      const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
      writeFileSync(pidFile, `${gone}\n`);
      const third = w.start(["--pid-file", pidFile]);
      await w.booted(third);
      assert.equal(readFileSync(pidFile, "utf8").trim(), String(third.pid));
    }));

  test("--log-file gets every process's JSON lines, stderr none of them", () =>
    withWorker(async (w) => {
      const logFile = join(w.dir, "worker.log");
      const cli = w.start(["--log-file", logFile]);
      await until(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes('"worker started"'), "the worker's start in the log file", { timeout: 60_000 });
      await w.runs("logged");
      assert.equal(await cli.stop(), 0);
      const lines = readFileSync(logFile, "utf8").trim().split("\n").map((line) => JSON.parse(line) as { msg: string; pid: number });
      const pids = new Set(lines.map((l) => l.pid));
      assert.ok(pids.has(cli.pid) && pids.size >= 2, "the supervisor's lines and its worker process's");
      assert.ok(lines.some((l) => l.msg === "stopping worker processes"));
      assert.deepEqual(cli.logs, [], "no JSON line on stderr");
    }));

  test("--path finds a module (a dotted name too) in another folder; one found nowhere names where it looked (exit 2)", () =>
    withWorker(async (w) => {
      const fixtures = join(repoRoot, "dist", "test", "fixtures");
      const dotted = w.start(["--path", join(repoRoot, "dist", "test")], { module: "fixtures.process-actors", cwd: w.dir });
      const plain = w.start(["--path", fixtures], { module: "process-actors", cwd: w.dir });
      await w.booted(dotted);
      await w.booted(plain);
      await w.runs("found");
      const missing = await runCli(["worker", "nowhere", "--path", fixtures, "-b", REDIS_URL]);
      assert.equal(missing.code, 2);
      assert.match(missing.output, new RegExp(`actor module not found: nowhere \\(looked in \\., ${fixtures}\\)`));
    }));

  test("-v logs at debug level; without it there is no debug line", () =>
    withWorker(async (w) => {
      const verbose = w.start(["-v"]);
      await verbose.waitForLog((l) => l.level === "debug", "a debug line", 60_000);
      const quiet = w.start([]);
      await w.booted(quiet);
      assert.equal(await quiet.stop(), 0);
      assert.deepEqual(quiet.logs.filter((l) => l.level === "debug"), []);
    }));

  test("a module that throws or does not parse at import exits 2 with its error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-flags-"));
    try {
      for (const [name, text, error] of [["throws.mjs", 'throw new Error("no database configured");\n', /no database configured/], ["syntax.mjs", "export const = ;\n", /SyntaxError/]] as const) {
        writeFileSync(join(dir, name), text);
        const run = await runCli(["worker", join(dir, name), "-b", REDIS_URL, "-p", "1"]);
        assert.equal(run.code, 2, run.output);
        assert.match(run.output, /an actor module failed to import/);
        assert.match(run.output, error);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a worker whose processes cannot boot exits 2 while a scraper holds a request open on its metrics port", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-flags-"));
    const gate = join(dir, "gate");
    const metricsPort = await freePort();
    let scraper: Socket | undefined;
    try {
      // The module fails only once the scraper is connected, so the supervisor stops its metrics endpoint with a
      // request in progress (a Prometheus or `troupe up` scrape at the wrong moment).
      writeFileSync(join(dir, "gated.mjs"), `import { existsSync } from "node:fs";\nwhile (!existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 20));\nthrow new Error("no database configured");\n`);
      const cli = new CliProcess(["worker", join(dir, "gated.mjs"), "-b", REDIS_URL, "-p", "1"], { TROUPE_METRICS_PORT: String(metricsPort), TROUPE_METRICS_HOST: "127.0.0.1" });
      await cli.waitForLog((l) => l.msg === "metrics endpoint listening", "the metrics endpoint", 30_000);
      scraper = createConnection(metricsPort, "127.0.0.1");
      await once(scraper, "connect");
      scraper.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      writeFileSync(gate, "");
      const code = await Promise.race([cli.exited, new Promise<string>((resolve) => setTimeout(() => resolve("still running after 30 s"), 30_000).unref())]);
      if (code !== 2) await cli.kill();
      assert.equal(code, 2);
    } finally {
      scraper?.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
