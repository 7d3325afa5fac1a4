import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createBroker, RedisBroker } from "troupe";
import { Redis } from "ioredis";
import { cliPath, fixture, REDIS_URL, uniqueName } from "../support/env.js";
import { deleteNamespace } from "../support/redis.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function troupe(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, TROUPE_METRICS_PORT: "0", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("troupe CLI", () => {
  test("every command answers --help", async () => {
    const top = await troupe(["--help"]);
    assert.equal(top.code, 0);
    for (const command of ["worker", "enqueue", "queues", "demo"]) {
      assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
      const run = await troupe([command, "--help"]);
      assert.equal(run.code, 0, `${command} --help`);
      assert.match(run.stdout, new RegExp(`Usage: troupe ${command}`));
    }
  });

  test("bad arguments exit 2 with a reason", async () => {
    const missing = await troupe(["worker", "no/such/module.js"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /actor module not found: no\/such\/module\.js/);
    const badJson = await troupe(["enqueue", "add", "--args", "{"]);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /--args is not valid JSON/);
    const unknown = await troupe(["frobnicate"]);
    assert.equal(unknown.code, 2);
  });

  test("an unreachable Redis fails fast, naming the URL with the password redacted", async () => {
    const run = await troupe(["worker", fixture("process-actors"), "--broker", "redis://:hunter2secret@127.0.0.1:1/0", "--processes", "1"]);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/);
    assert.doesNotMatch(run.stdout + run.stderr, /hunter2secret/);
  });

  test("wrong RabbitMQ credentials fail fast, naming the URL with the password redacted", async () => {
    const run = await troupe(["enqueue", "add", "--broker", "amqp://guest:wrong-pass-xyz@127.0.0.1:5672/"]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672/);
    assert.doesNotMatch(run.stdout + run.stderr, /wrong-pass-xyz/);
  });

  test("enqueue then queues shows the message waiting, in Dramatiq's format", async () => {
    const queue = uniqueName("cli");
    const namespace = uniqueName("ns");
    const env = { TROUPE_REDIS_NAMESPACE: namespace };
    const sent = await troupe(["enqueue", "add", "-q", queue, "--args", "[1,2]", "--broker", REDIS_URL], env);
    assert.equal(sent.code, 0, sent.stderr);
    const message = JSON.parse(sent.stdout);
    assert.deepEqual({ q: message.queue_name, a: message.actor_name, args: message.args }, { q: queue, a: "add", args: [1, 2] });
    assert.match(message.options.redis_message_id, /^[0-9a-f-]{36}$/);
    const stats = await troupe(["queues", "-Q", queue, "--json", "--broker", REDIS_URL], env);
    assert.equal(stats.code, 0, stats.stderr);
    assert.deepEqual(JSON.parse(stats.stdout), [{ queue, ready: 1, delayed: 0, inFlight: 0, dead: 0 }]);
    process.env.TROUPE_REDIS_NAMESPACE = namespace;
    const broker = createBroker(REDIS_URL);
    await broker.purge(queue);
    await broker.close();
  });
});

describe("troupe CLI: the first hour's silent failures", () => {
  test("thread, process and concurrency counts outside their range are refused with the range, negative ones too", async () => {
    for (const [flag, value, range] of [["-t", "100000", "1 to 256"], ["-t", "-3", "1 to 256"], ["-p", "0", "1 to 256"], ["-c", "-1", "1 to 10000"]] as const) {
      const run = await troupe(["worker", fixture("process-actors"), flag, value, "-b", REDIS_URL]);
      assert.equal(run.code, 2, `${flag} ${value}`);
      assert.match(run.stderr, new RegExp(`must be an integer from ${range}, got "${value}"`));
    }
  });

  test("a separate command on the memory broker is an error, whether the URL is missing, empty or memory://", async () => {
    for (const env of [{ TROUPE_BROKER_URL: "" }, { TROUPE_BROKER_URL: "memory://" }]) {
      for (const args of [["enqueue", "add", "-q", "x"], ["queues"]]) {
        const run = await troupe(args, env);
        assert.equal(run.code, 2, `${args.join(" ")} with ${JSON.stringify(env)}`);
        assert.match(run.stderr, /needs a broker that other processes share/);
      }
    }
  });

  test("enqueue takes the queue from the actor's module, refuses a contradicting -q, and warns without either", async () => {
    const queue = uniqueName("cli_module_queue");
    const namespace = uniqueName("cli_ns");
    const env = { TEST_QUEUE: queue, TROUPE_REDIS_NAMESPACE: namespace };
    const broker = new RedisBroker(REDIS_URL, { namespace });
    try {
      const ownQueue = await troupe(["enqueue", "proc_record", "-m", fixture("process-actors"), "--args", '["x"]', "-b", REDIS_URL], env);
      assert.equal(ownQueue.code, 0, ownQueue.stderr);
      assert.equal((JSON.parse(ownQueue.stdout) as { queue_name: string }).queue_name, queue);
      await broker.connect();
      assert.equal((await broker.queueStats(queue)).ready, 1);
      const wrong = await troupe(["enqueue", "proc_record", "-m", fixture("process-actors"), "-q", "elsewhere", "-b", REDIS_URL], env);
      assert.equal(wrong.code, 2);
      assert.match(wrong.stderr, new RegExp(`consumes queue "${queue}", not "elsewhere"`));
      // A closed port: the warning comes before the send, and nothing lands in a shared "default" queue.
      const unnamed = await troupe(["enqueue", "cli_nobody_runs_this", "-b", "redis://127.0.0.1:1/0"]);
      assert.match(unnamed.stderr, /no --queue or --module given: sending "cli_nobody_runs_this" to queue "default"/);
    } finally {
      await broker.close();
      const client = new Redis(REDIS_URL);
      await deleteNamespace(client, namespace);
      await client.quit();
    }
  });
});
