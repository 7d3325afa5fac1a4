import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Message } from "troupe";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { runCli, type CliRun } from "../support/process.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { Fleet, SECOND, nextSecond, redisQueueTicks, type TickSource } from "./fleet.js";

interface Row {
  name: string;
  actor: string;
  queue: string;
  when: string;
  next: string[];
  lastFired?: { tick: number; by: string; lateMs: number };
  paused?: { since: number };
}

async function schedulesCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  // A loaded machine (the suite runs files side by side) may take seconds to start a CLI process.
  const run = await runCli(["schedules", ...args], { env, timeout: 60_000 });
  assert.equal(run.code, 0, run.output);
  return run;
}

async function listed(brokerUrl: string, env: Record<string, string>): Promise<Row[]> {
  return JSON.parse((await schedulesCli(["--json", "-n", "3", "-b", brokerUrl], env)).output) as Row[];
}

describe("troupe schedules on a Redis broker", () => {
  const client = redisClient(REDIS_URL);
  const namespace = uniqueName("sched-cli");
  const env = { TROUPE_REDIS_NAMESPACE: namespace };
  const fleet = new Fleet(client, namespace, redisQueueTicks(client, namespace, "ticks"));
  after(async () => {
    await fleet.kill();
    await deleteNamespace(client, namespace);
    client.disconnect();
  });

  test("lists what the workers declared with next and last fires; pause, resume, trigger and forget act on every worker", async () => {
    await fleet.start(2, REDIS_URL, {});
    await fleet.firedThrough(nextSecond(Date.now()));

    const rows = await listed(REDIS_URL, env);
    assert.deepEqual(rows.map((r) => [r.name, r.actor, r.queue, r.when]), [["tick-grace", "ticked", "ticks", "every 1s"], ["tick-skip", "ticked", "ticks", "every 1s"]]);
    for (const row of rows) {
      const next = row.next.map((at) => Date.parse(at));
      assert.deepEqual(next.slice(1), [next[0]! + SECOND, next[0]! + 2 * SECOND], "consecutive seconds");
      assert.ok(row.lastFired && row.lastFired.tick < next[0]! && row.lastFired.lateMs >= 0, JSON.stringify(row));
      assert.equal(row.paused, undefined);
    }
    const table = (await schedulesCli(["-b", REDIS_URL], env)).output;
    assert.match(table, /^NAME\s+ACTOR\s+QUEUE\s+WHEN\s+NEXT\s+LAST FIRED\s+STATE$/m);
    assert.match(table, /^tick-skip\s+ticked\s+ticks\s+every 1s\s+.*\s+active$/m);

    assert.match((await schedulesCli(["pause", "tick-skip", "tick-grace", "-b", REDIS_URL], env)).output, /tick-skip: paused\ntick-grace: paused/);
    const paused = Date.now();
    assert.match((await schedulesCli(["pause", "tick-skip", "-b", REDIS_URL], env)).output, /tick-skip: already paused/);
    assert.match((await schedulesCli(["-b", REDIS_URL], env)).output, /^tick-skip\s.*paused \d+s ago by /m);
    // Two ticks pass paused: the workers elect them, fire neither, and keep them as skipped.
    const skippedThrough = nextSecond(paused) + SECOND;
    const skipped = async (name: string) => Number(await client.hget(`${namespace}:schedules.skipped`, name));
    await until(async () => (await skipped("tick-skip")) >= skippedThrough && (await skipped("tick-grace")) >= skippedThrough, "two paused ticks to be skipped");
    assert.match((await schedulesCli(["resume", "tick-skip", "tick-grace", "-b", REDIS_URL], env)).output, /tick-skip: resumed\ntick-grace: resumed/);
    const resumed = Date.now();
    await fleet.firedThrough(nextSecond(resumed) + SECOND);
    const ticks = await fleet.source.ticks();
    for (const name of ["tick-skip", "tick-grace"]) {
      assert.deepEqual(ticks[name]!.filter((t) => t > paused && t <= resumed), [], `${name} fired nothing while paused, and nothing late after`);
    }

    const before = await client.hlen(`${namespace}:ticks.msgs`);
    const triggered = Message.decode(Buffer.from((await schedulesCli(["trigger", "tick-skip", "-b", REDIS_URL], env)).output.trim()));
    assert.deepEqual([triggered.actorName, triggered.queueName, triggered.args, triggered.options.schedule, triggered.options.schedule_triggered], ["ticked", "ticks", ["tick-skip"], "tick-skip", true]);
    assert.ok((await client.hget(`${namespace}:ticks.msgs`, String(triggered.options.redis_message_id))) !== null, "the triggered message is in the queue");
    assert.ok((await client.hlen(`${namespace}:ticks.msgs`)) > before);

    const unknown = await runCli(["schedules", "pause", "nope", "-b", REDIS_URL], { env });
    assert.equal(unknown.code, 1);
    assert.match(unknown.output, /no schedule named "nope"/);

    await fleet.stop();
    assert.match((await schedulesCli(["forget", "tick-skip", "-b", REDIS_URL], env)).output, /tick-skip: forgotten/);
    assert.deepEqual((await listed(REDIS_URL, env)).map((r) => r.name), ["tick-grace"]);
  });
});

describe("troupe schedules on a RabbitMQ broker", () => {
  const client = redisClient(REDIS_URL);
  const namespace = uniqueName("sched-cli-amqp");
  const env = { TROUPE_REDIS_NAMESPACE: namespace, TROUPE_RATE_LIMITER_URL: REDIS_URL, TEST_TICK_QUEUE: `${namespace}-ticks`, TEST_IDLE_QUEUE: `${namespace}-idle` };
  const noTicks: TickSource = { ticks: async () => ({}), close: async () => undefined };
  const fleet = new Fleet(client, namespace, noTicks);
  after(async () => {
    await fleet.kill();
    const raw = await RawAmqp.open();
    await raw.deleteQueues(env.TEST_TICK_QUEUE, env.TEST_IDLE_QUEUE);
    await raw.close();
    await deleteNamespace(client, namespace);
    client.disconnect();
  });

  test("reads the election Redis the workers use and triggers on RabbitMQ", async () => {
    await fleet.start(1, AMQP_URL, env);
    await until(() => fleet.lastFired("tick-skip"), "a first fire");
    const rows = await listed(AMQP_URL, env);
    assert.deepEqual(rows.map((r) => [r.name, r.queue, r.lastFired !== undefined]), [["tick-grace", env.TEST_TICK_QUEUE, true], ["tick-skip", env.TEST_TICK_QUEUE, true]]);
    await fleet.stop();
    const raw = await RawAmqp.open();
    await raw.channel.purgeQueue(env.TEST_TICK_QUEUE);
    await schedulesCli(["trigger", "tick-grace", "-b", AMQP_URL], env);
    assert.deepEqual(await raw.drainIds(env.TEST_TICK_QUEUE), ["tick-grace"]);
    await raw.close();
    const missing = await runCli(["schedules", "-b", AMQP_URL], { env: { ...env, TROUPE_RATE_LIMITER_URL: "" } });
    assert.equal(missing.code, 1);
    assert.match(missing.output, /TROUPE_RATE_LIMITER_URL/);
  });
});
