import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { encodeJson, redactUrl } from "troupe";
import { HOSTILE_ACTOR_NAMES } from "../support/bad-messages.js";
import { chaosActors, onRabbitmq, onRedis, startMemoryWorker, type BrokerRun } from "../support/chaos.js";
import { runCli, type CliRun } from "../support/process.js";
import { OwnRabbitServer } from "../support/own-rabbitmq.js";
import { freePort, OwnRedisServer, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

/** How long `troupe worker` may take to give up on a broker it cannot use (a boot failure stops the group). */
const BOOT_DEADLINE = 15_000;

const secret = (label: string) => `${label}-${randomBytes(6).toString("hex")}`;

/** Everything a run printed must be free of every secret, and must have mentioned the broker (redacted). */
function assertNoSecrets(output: string, secrets: string[]): void {
  for (const s of secrets) {
    const at = output.indexOf(s);
    assert.equal(at, -1, `secret printed: …${output.slice(Math.max(0, at - 200), at + s.length + 50)}…`);
  }
  assert.match(output, /:\*\*\*@/, "the output names the broker with its password redacted (so the check above is not vacuous)");
}

/**
 * Everything a user does with a password-protected broker URL, printed at debug level: run a worker, enqueue,
 * list queues, start a worker with a wrong password, lose the broker, enqueue while it is down, recover.
 */
async function passwordScenario({ cluster, queue }: BrokerRun, url: string, password: string, server: { kill(): Promise<void>; start(): Promise<void> }): Promise<void> {
  const wrong = secret("Wrong-Secret");
  const env = { ...cluster.options.env, TROUPE_LOG_LEVEL: "debug" };
  const enqueue = (id: string) => runCli(["enqueue", "chaos_record", "-q", queue, "--args", JSON.stringify([id]), "--broker", url], { env });
  await cluster.waitForProcesses(1);
  const sent = await enqueue("s1");
  assert.equal(sent.code, 0, sent.output);
  await until(() => cluster.tally().counts.has("s1"), "the message to run");
  const queues = await runCli(["queues", "-Q", queue, "--broker", url], { env });
  assert.equal(queues.code, 0, queues.output);
  const denied = await runCli(["worker", chaosActors, "-Q", queue, "--processes", "1", "--broker", url.replace(password, wrong)], { env, timeout: BOOT_DEADLINE });
  await server.kill();
  await until(() => /lost|retrying/i.test(cluster.output), "the worker to log the lost connection");
  const down = await enqueue("s2");
  assert.notEqual(down.code, 0, down.output);
  await server.start();
  const after = await enqueue("s3");
  await until(() => cluster.tally().counts.has("s3"), "the worker to recover and run a message", { timeout: 30_000 });
  assertNoSecrets([cluster.output, sent.output, queues.output, denied.output, down.output, after.output].join("\n"), [password, wrong]);
  assertBootFailure(denied, [3]);
}

function assertBootFailure(run: CliRun, codes: number[]): void {
  const got = run.code === undefined ? `still running ${BOOT_DEADLINE / 1000} s later` : `exit code ${run.code}`;
  assert.ok(run.code !== undefined && run.code !== null && codes.includes(run.code), `troupe worker should exit with ${codes.join(" or ")} at boot; ${got}:\n${run.output.slice(0, 1500)}`);
}

describe("chaos: security", () => {
  test("a message cannot make a worker run anything but a registered actor", async (t) => {
    const memory = await startMemoryWorker();
    const { broker, queue } = memory;
    try {
      const envelope = (actor: string, args: unknown[], options: object = {}) =>
        encodeJson({ queue_name: queue, actor_name: actor, args, kwargs: {}, options, message_id: `${actor}-${args[0]}`, message_timestamp: Date.now() });
      HOSTILE_ACTOR_NAMES.forEach((name, i) => broker.enqueueRaw(queue, envelope(name, [`h${i}`])));
      // Callbacks naming hostile targets: the message runs (or fails) and the callback is dropped, never resolved.
      HOSTILE_ACTOR_NAMES.forEach((name, i) => broker.enqueueRaw(queue, envelope("chaos_record", [`cb${i}`], { on_success: name, on_failure: name })));
      broker.enqueueRaw(queue, envelope("chaos_record", [7], { on_failure: "constructor" }));
      // JSON's "__proto__" is an own key after parsing: it must reach the actor as data, not as a prototype.
      broker.enqueueRaw(queue, `{"queue_name":"${queue}","actor_name":"chaos_record","args":["proto"],"kwargs":{"__proto__":{"polluted":"yes"}},"options":{}}`);
      const expectedDead = HOSTILE_ACTOR_NAMES.length + 1;
      const dead = await until(async () => {
        const letters = await broker.deadLetters(queue);
        const tally = memory.tally();
        return letters.length >= expectedDead && tally.counts.has("proto") && HOSTILE_ACTOR_NAMES.every((_, i) => tally.counts.has(`cb${i}`)) ? letters : undefined;
      }, "hostile messages to be dead-lettered and the others to run");
      const unknown = dead.filter((d) => /no actor named/.test(d.reason ?? ""));
      assert.deepEqual(unknown.map((d) => d.message?.actorName).sort(), [...HOSTILE_ACTOR_NAMES].sort(), "every hostile name is dead-lettered as an unknown actor");
      assert.equal(dead.length, expectedDead, "nothing else was dead-lettered");
      const tally = memory.tally();
      assert.ok(HOSTILE_ACTOR_NAMES.every((_, i) => !tally.counts.has(`h${i}`)), "no hostile message ran");
      assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype is untouched");
      assert.deepEqual(await broker.listQueues(), [queue], "no callback created or reached another queue");
      await until(async () => {
        const stats = await broker.queueStats(queue);
        return stats.ready + stats.inFlight === 0;
      }, "the last acks");
      t.diagnostic(`${HOSTILE_ACTOR_NAMES.length} hostile actor names and ${HOSTILE_ACTOR_NAMES.length} hostile callback targets: none ran, the worker kept going`);
    } finally {
      await memory.stop();
    }
  });

  test("redactUrl hides a password whatever characters it contains", () => {
    const chars = fc.constantFrom(..."abcXYZ019!$&'()*+,;=-._~:/?#[]@% ");
    fc.assert(
      fc.property(fc.constantFrom("redis", "rediss", "amqp", "amqps"), fc.constantFrom("", "user"), fc.string({ minLength: 8, maxLength: 24, unit: chars }), (scheme, user, password) => {
        const shown = redactUrl(`${scheme}://${user}:${password}@broker.example:1234/0`);
        assert.ok(!shown.includes(password), `password ${JSON.stringify(password)} shown in ${shown}`);
      }),
      { numRuns: 2000 },
    );
  });

  test("an unparseable broker URL fails troupe worker at boot (exit 2 or 3) and is reported without its password", async () => {
    const password = `Sl/ash-${secret("pw")}`;
    const enqueue = await runCli(["enqueue", "chaos_record", "--args", '["x"]', "--broker", `amqp://guest:${password}@127.0.0.1:5672/`]);
    assert.notEqual(enqueue.code, 0, enqueue.output);
    const worker = await runCli(["worker", chaosActors, "-Q", "never_used", "--processes", "1", "--broker", `redis://:${password}@127.0.0.1:6379/0`], { timeout: BOOT_DEADLINE });
    assert.equal(enqueue.output.includes(password) || worker.output.includes(password), false, `password printed:\n${enqueue.output}\n${worker.output}`);
    assertBootFailure(worker, [2, 3]);
  });

  test("Redis with requirepass: the password never appears in any output; a wrong one fails troupe worker at boot (exit 3)", async () => {
    const server = new OwnRedisServer(await freePort());
    await server.start();
    const password = secret("Redis-Chaos-Secret");
    const admin = redisClient(server.url);
    await admin.config("SET", "requirepass", password);
    admin.disconnect();
    // Restarted, the server has no password (CONFIG SET is not persisted): reconnects then send an AUTH that fails.
    const url = `redis://:${password}@127.0.0.1:${server.port}/0`;
    try {
      await onRedis(url, { processes: 1, threads: 1, env: { TROUPE_LOG_LEVEL: "debug" } }, (run) => passwordScenario(run, url, password, server));
    } finally {
      await server.stop();
    }
  });

  test("RabbitMQ with its own user: the password never appears in any output; a wrong one fails troupe worker at boot (exit 3)", async () => {
    const password = secret("Rabbit-Chaos-Secret");
    const server = await OwnRabbitServer.create({ user: "chaos", password });
    await server.start();
    try {
      await onRabbitmq(server.url, { processes: 1, threads: 1, env: { TROUPE_LOG_LEVEL: "debug" } }, (run) => passwordScenario(run, server.url, password, server));
    } finally {
      await server.stop();
    }
  });
});
