import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createBroker } from "troupe";
import { cliPath, fixture, REDIS_URL, uniqueName } from "../support/env.js";

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
