import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Message, RedisBroker } from "troupe";
import { REDIS_URL, repoRoot, uniqueName } from "../support/env.js";
import { CliProcess, childrenOf, isRunning, type LogLine } from "../support/process.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { globRegExp } from "../../worker/cli/watch.js";

interface Run {
  version: string;
  what: "start" | "done";
  id: string;
  pid: number;
}

/**
 * The actor module of a user's project, version `version`: `watch_work(id)` records its start and end in a Redis
 * list; `gated`, it waits between the two until the test sets the gate key (a message held in flight).
 */
function actorsModule(version: string, { gated = false } = {}): string {
  return `import { actor } from "troupe";
import { Redis } from "ioredis";

const redis = new Redis(process.env.TEST_REDIS_URL, { lazyConnect: true });
const record = (what, id) => redis.rpush(process.env.TEST_RECORD, JSON.stringify({ version: ${JSON.stringify(version)}, what, id, pid: process.pid }));

export const work = actor("watch_work", async (id) => {
  await record("start", id);
  ${gated ? "while ((await redis.get(process.env.TEST_GATE)) === null) await new Promise((resolve) => setTimeout(resolve, 20));" : ""}
  await record("done", id);
}, { queue: process.env.TEST_QUEUE, maxRetries: 0 });
`;
}

/** A project folder as after `npm install troupe`: "troupe" and "ioredis" resolve to this repository's. */
class Project {
  readonly dir = mkdtempSync(join(tmpdir(), "troupe-watch-"));
  readonly namespace = uniqueName("watch_ns");
  readonly queue = uniqueName("watch_q");
  readonly client = redisClient(REDIS_URL);
  readonly producer = new RedisBroker(REDIS_URL, { namespace: this.namespace });
  private readonly recordKey = `${this.namespace}:test-record`;
  readonly gateKey = `${this.namespace}:test-gate`;
  worker: CliProcess | undefined;

  constructor() {
    mkdirSync(join(this.dir, "node_modules"));
    symlinkSync(repoRoot, join(this.dir, "node_modules", "troupe"));
    symlinkSync(join(repoRoot, "node_modules", "ioredis"), join(this.dir, "node_modules", "ioredis"));
  }

  write(file: string, text: string): void {
    mkdirSync(dirname(join(this.dir, file)), { recursive: true });
    writeFileSync(join(this.dir, file), text);
  }

  /** `troupe worker actors.mjs --watch` in the project folder, booted. */
  async start(args: string[] = []): Promise<CliProcess> {
    this.worker = new CliProcess(
      ["worker", "actors.mjs", "-b", REDIS_URL, "-p", "1", "-t", "2", "--watch", ...args],
      { TROUPE_REDIS_NAMESPACE: this.namespace, TEST_QUEUE: this.queue, TEST_RECORD: this.recordKey, TEST_GATE: this.gateKey, TEST_REDIS_URL: REDIS_URL },
      { cwd: this.dir },
    );
    await this.worker.waitForLog((l) => l.msg === "watching for changes", "the watcher", 60_000);
    await this.worker.waitForLog((l) => l.msg === "worker started", "the first worker process", 60_000);
    return this.worker;
  }

  /** The `n`th (from 1) log line `msg` starts with. */
  logged(msg: string, n = 1): Promise<LogLine> {
    return this.worker!.waitForLog((l) => l.msg.startsWith(msg), `log line ${n} "${msg}"`, 60_000, n - 1);
  }

  count(msg: string): number {
    return this.worker!.logs.filter((l) => l.msg.startsWith(msg)).length;
  }

  /** Redis message ids (what ack sets hold) by the test's ids. */
  readonly messageIds = new Map<string, string>();

  async send(...ids: string[]): Promise<void> {
    const sent = await this.producer.enqueueMany(ids.map((id) => new Message({ queueName: this.queue, actorName: "watch_work", args: [id] })));
    for (const [i, message] of sent.entries()) this.messageIds.set(ids[i]!, String(message.options.redis_message_id));
  }

  /** The test ids of the messages in some worker's ack set (fetched, not yet acked), by ack set. */
  async unacked(): Promise<Record<string, string[]>> {
    const byMessageId = new Map([...this.messageIds].map(([id, messageId]) => [messageId, id]));
    const out: Record<string, string[]> = {};
    for (const key of await this.client.keys(`${this.namespace}:__acks__.*`)) {
      out[key.slice(this.namespace.length + 1)] = (await this.client.smembers(key)).map((m) => byMessageId.get(m) ?? m).sort();
    }
    return out;
  }

  /** Send `id` and check that code version `version` runs it. */
  async runsOn(id: string, version: string): Promise<Run> {
    await this.send(id);
    const run = await this.finished(id);
    assert.equal(run.version, version, `message ${id}`);
    return run;
  }

  async runs(): Promise<Run[]> {
    return (await this.client.lrange(this.recordKey, 0, -1)).map((line) => JSON.parse(line) as Run);
  }

  /** The version that ran `id` to the end, once it has. */
  async finished(id: string): Promise<Run> {
    return until(async () => (await this.runs()).find((r) => r.id === id && r.what === "done"), `message ${id} done`, { timeout: 60_000, interval: 20 });
  }

  async close(): Promise<void> {
    // A test that failed while messages waited at the gate would otherwise keep the worker draining.
    await this.client.set(this.gateKey, "open");
    if (this.worker) assert.equal(await this.worker.stop(), 0, "graceful exit after SIGTERM");
    await this.producer.close();
    await deleteNamespace(this.client, this.namespace);
    this.client.disconnect();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe("troupe worker --watch", () => {
  const projects: Project[] = [];
  const project = () => {
    const p = new Project();
    projects.push(p);
    return p;
  };
  after(async () => {
    for (const p of projects) await p.close();
  });

  test("an edited module is reloaded: the next message runs the new code, in a new process", async () => {
    const p = project();
    p.write("actors.mjs", actorsModule("v1"));
    await p.start();
    const first = await p.runsOn("a1", "v1");

    p.write("actors.mjs", actorsModule("v2"));
    const changed = await p.logged("files changed");
    assert.deepEqual(changed.files, ["actors.mjs"]);
    await p.logged("reloaded");
    const second = await p.runsOn("a2", "v2");
    assert.notEqual(second.pid, first.pid);
    await until(() => !isRunning(first.pid), "the previous worker process to exit");
  });

  test("a save that breaks the import keeps the previous code running with the error logged; the next good save recovers", async () => {
    const p = project();
    p.write("actors.mjs", actorsModule("v1"));
    await p.start();

    p.write("actors.mjs", `${actorsModule("broken")}\nexport const oops = ;\n`);
    await p.logged("reload failed");
    const syntax = p.worker!.logs.find((l) => l.msg === "an actor module failed to import");
    assert.equal(syntax?.errorType, "SyntaxError", JSON.stringify(syntax));
    await p.runsOn("b1", "v1");

    p.write("actors.mjs", `${actorsModule("throws")}\nthrow new Error("no database configured");\n`);
    await p.logged("reload failed", 2);
    assert.ok(p.worker!.logs.some((l) => l.msg === "an actor module failed to import" && l.error === "no database configured"), p.worker!.output);
    await p.runsOn("b2", "v1");

    p.write("actors.mjs", actorsModule("v2"));
    await p.logged("reloaded");
    await p.runsOn("b3", "v2");
    await until(() => childrenOf(p.worker!.pid).length === 1, "one worker process: the failed ones and the replaced one gone");
  });

  test("a reload whose new process never boots is abandoned after --watch-boot-timeout; the previous code keeps running", async () => {
    const p = project();
    p.write("actors.mjs", actorsModule("v1"));
    // Above a real boot on a loaded machine (several seconds), below the 60 s default.
    await p.start(["--watch-boot-timeout", "20"]);
    const [original] = childrenOf(p.worker!.pid);

    // An import that never settles: a top-level await on a connection that never answers, say.
    p.write("actors.mjs", `${actorsModule("hangs")}\nawait new Promise(() => setInterval(() => undefined, 1000));\n`);
    await p.logged("a reloaded worker process did not boot in time");
    await p.logged("reload failed");
    await until(() => childrenOf(p.worker!.pid).length === 1, "the hung process to be killed");
    assert.deepEqual(childrenOf(p.worker!.pid), [original]);
    await p.runsOn("c1", "v1");

    p.write("actors.mjs", actorsModule("v2"));
    await p.logged("reloaded");
    await p.runsOn("c2", "v2");
  });

  test("a reload with messages running and prefetched loses none and acks none early: running ones finish on the old code", async () => {
    const p = project();
    p.write("actors.mjs", actorsModule("v1", { gated: true }));
    await p.start();
    const ids = Array.from({ length: 12 }, (_, i) => `m${i}`);
    await p.send(...ids);
    // Both threads hold a message; the other ten are prefetched by the same process.
    const running = await until(async () => {
      const started = (await p.runs()).filter((r) => r.what === "start");
      return started.length === 2 && (await p.producer.queueStats(p.queue)).ready === 0 ? started : undefined;
    }, "two messages running and the rest prefetched");

    p.write("actors.mjs", actorsModule("v2"));
    await p.logged("reloaded");
    const drained = await until(async () => {
      const done = (await p.runs()).filter((r) => r.what === "done");
      return done.length === 10 ? done : undefined;
    }, "the ten prefetched messages given back and run by the new process", { timeout: 60_000 });
    assert.ok(drained.every((r) => r.version === "v2"));
    assert.deepEqual(drained.map((r) => r.id).sort(), ids.filter((id) => !running.some((r) => r.id === id)).sort());
    // Still running on the old code, so still unacked (a crash now would have them redelivered); the ten others are
    // acked once the new process has recorded them done.
    const held = running.map((r) => r.id).sort().join();
    await until(async () => Object.values(await p.unacked()).flat().sort().join() === held, `only ${held} unacked`);
    assert.ok(isRunning(running[0]!.pid), "the old process drains its running messages");

    await p.client.set(p.gateKey, "open");
    const done = await until(async () => {
      const runs = (await p.runs()).filter((r) => r.what === "done");
      return runs.length === 12 ? runs : undefined;
    }, "every message done");
    assert.deepEqual(done.map((r) => r.id).sort(), [...ids].sort(), "each message ran to the end exactly once");
    for (const r of running) assert.deepEqual(done.find((d) => d.id === r.id), { ...r, what: "done" }, "finished where it started, on the old code");
    await until(() => !isRunning(running[0]!.pid), "the old process to exit once drained");
    const stats = await p.producer.queueStats(p.queue);
    assert.deepEqual({ ...stats }, { ...stats, ready: 0, delayed: 0, inFlight: 0, dead: 0 });
    await until(async () => (await p.client.keys(`${p.namespace}:__acks__.*`)).length === 0, "no ack set left behind");
  });

  test("a burst of writes is one reload", async () => {
    const p = project();
    p.write("actors.mjs", actorsModule("v1"));
    await p.start();
    // Spaced by less than the 300 ms quiet time, as an editor or a build writes: half a second in all, still one reload.
    for (let i = 2; i <= 6; i++) {
      p.write(i % 2 ? "helper.mjs" : "actors.mjs", i % 2 ? `export const n = ${i};\n` : actorsModule(`v${i}`));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    p.write("actors.mjs", actorsModule("v7"));
    const changed = await p.logged("files changed");
    assert.deepEqual(changed.files, ["actors.mjs", "helper.mjs"]);
    await p.logged("reloaded");
    assert.equal(p.count("files changed"), 1);
    assert.equal(p.count("reloading worker processes"), 1);
    await p.runsOn("d1", "v7");
  });

  for (const poll of [false, true]) {
    test(`--watch-include and --watch-exclude choose the files that reload${poll ? ", with --watch-poll" : ""}, in folders made after the start too`, async () => {
      const p = project();
      p.write("actors.mjs", actorsModule("v1"));
      await p.start(["--watch-include", "**/*.mjs", "--watch-exclude", "ignored/**", ...(poll ? ["--watch-poll"] : [])]);
      assert.equal(p.worker!.logs.find((l) => l.msg === "watching for changes")?.poll, poll);
      p.write("notes.txt", "not included\n");
      p.write("ignored/skip.mjs", "export const excluded = true;\n");
      p.write("node_modules/dep/index.mjs", "export const replaced = true;\n");
      p.write("lib/new/helper.mjs", "export const included = true;\n");
      const changed = await p.logged("files changed");
      assert.deepEqual(changed.files, ["lib/new/helper.mjs"]);
      await p.logged("reloaded");
      p.write("ignored/skip.mjs", "export const excluded = 2;\n");
      p.write("lib/new/helper.mjs", "export const included = 2;\n");
      assert.deepEqual((await p.logged("files changed", 2)).files, ["lib/new/helper.mjs"]);
      await p.logged("reloaded", 2);
    });
  }
});

test("watch globs: ** spans folders, * and ? stay within a name, {a,b} are alternatives", () => {
  const matches = (glob: string, path: string) => globRegExp(glob).test(path);
  assert.ok(matches("**/*.{ts,mjs}", "a.ts"));
  assert.ok(matches("**/*.{ts,mjs}", "src/deep/a.mjs"));
  assert.ok(!matches("**/*.{ts,mjs}", "a.tsx"));
  assert.ok(matches("**/node_modules/**", "node_modules/x/y.js"));
  assert.ok(matches("**/node_modules/**", "pkg/node_modules/x.js"));
  assert.ok(!matches("src/*.ts", "src/a/b.ts"));
  assert.ok(matches("src/?.ts", "src/a.ts"));
  assert.ok(!matches("a.ts", "axts"), "a dot is a dot");
});
