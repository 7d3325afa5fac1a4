import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AMQP_URL, REDIS_URL, cliPath, fixture, uniqueName } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

const run = promisify(execFile);

/** Run the CLI, keeping stdout and stderr apart; a non-zero exit is returned, not thrown. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cliPath, ...args], { env: { ...process.env, TROUPE_METRICS_PORT: "off", TROUPE_LOG_LEVEL: "info", ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test("a password the Redis server does not need is reported as a JSON log line, not ioredis' plain-text [WARN]", async () => {
  const namespace = uniqueName("logs");
  const redis = redisClient(REDIS_URL);
  try {
    const withPassword = REDIS_URL.replace("redis://", "redis://:not-needed@");
    const { code, stderr } = await cli(["enqueue", "logs_actor", "-q", "logs_q", "-b", withPassword], { TROUPE_REDIS_NAMESPACE: namespace });
    assert.equal(code, 0, stderr);
    const lines = stderr.split("\n").filter(Boolean);
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
    const warning = lines.map((l) => JSON.parse(l) as { level: string; msg: string }).find((l) => /does not require a password/.test(l.msg));
    assert.ok(warning, `the warning is kept, as JSON: ${stderr}`);
    assert.equal(warning.level, "warn");
    assert.doesNotMatch(stderr, /not-needed/, "the password is never printed");
  } finally {
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  }
});

test("a broker URL with a port out of range is a usage error naming the URL, password redacted", async () => {
  for (const url of ["redis://:secret@127.0.0.1:99999/0", "amqp://user:secret@127.0.0.1:70000/"]) {
    const { code, stderr } = await cli(["enqueue", "logs_actor", "-q", "logs_q", "-b", url]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, new RegExp(`broker URL ${url.replace("secret", "***").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is not a valid URL`));
    assert.match(stderr, /port is a number from 1 to 65535/);
    assert.doesNotMatch(stderr, /secret/);
  }
});

test("an undecodable RabbitMQ message is logged once, as an error, and counted in dramatiq_message_rejects_total", async () => {
  const queue = uniqueName("logs_rabbit");
  const dir = await mkdtemp(join(tmpdir(), "troupe-logs-"));
  const tallyFile = join(dir, "tally");
  const metricsPort = await freePort();
  const amqp = await RawAmqp.open();
  const worker = new CliProcess(["worker", fixture("rabbitmq"), "-b", AMQP_URL, "-p", "1", "-t", "1"], {
    TROUPE_TEST_RABBIT_QUEUE: queue,
    TROUPE_TEST_TALLY_FILE: tallyFile,
    TROUPE_METRICS_PORT: String(metricsPort),
    TROUPE_METRICS_HOST: "127.0.0.1",
  });
  try {
    await worker.waitForLog((l) => l.msg === "worker started", "the worker to start");
    const channel = await amqp.scratch();
    channel.sendToQueue(queue, Buffer.from("{not json"), { persistent: true });
    await worker.waitForLog((l) => l.msg === "undecodable message dead-lettered", "the undecodable message to be dead-lettered");
    // A valid message behind it: once it ran, anything the worker logs about the bad one has been logged.
    await run(process.execPath, [cliPath, "enqueue", "tally", "-q", queue, "--args", '["after-bad"]', "-b", AMQP_URL], { env: { ...process.env, TROUPE_METRICS_PORT: "off" } });
    await until(async () => (await readFile(tallyFile, "utf8").catch(() => "")).includes("after-bad"), "the message after the bad one to run");
    const about = worker.logs.filter((l) => /undecodable/.test(l.msg));
    assert.equal(about.length, 1, `logged once: ${JSON.stringify(about)}`);
    assert.equal(about[0]!.level, "error");
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, new RegExp(`dramatiq_message_rejects_total\\{queue_name="${queue}",actor_name=""\\} 1\\b`));
  } finally {
    await worker.stop();
    await amqp.deleteQueues(queue, `${queue}.DQ`, `${queue}.XQ`);
    await amqp.close();
    await rm(dir, { recursive: true, force: true });
  }
});
