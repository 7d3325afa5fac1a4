import { test } from "node:test";
import assert from "node:assert/strict";
import { Message, RabbitmqBroker, RedisBroker } from "troupe";
import { formatWatchScreen } from "../../worker/cli/commands/queues.js";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { RawAmqp, managementUrl } from "../support/rabbitmq.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

interface WatchLine {
  at: number;
  queues: { queue: string; ready: number; dead: number; donePerSec?: number; deadPerSec?: number }[];
}

/** The JSON lines a `troupe queues --watch` process printed so far. */
function samples(watch: CliProcess): WatchLine[] {
  return watch.text.filter((line) => line.startsWith("{\"at\"")).map((line) => JSON.parse(line) as WatchLine);
}

test("troupe queues --watch on Redis prints a JSON line per sample off a terminal, with dead letters per second from their death times", async () => {
  const ns = uniqueName("watch");
  const queue = "watched";
  const client = redisClient(REDIS_URL);
  const broker = new RedisBroker(REDIS_URL, { namespace: ns });
  const watch = new CliProcess(["queues", "--watch", "--interval", "200ms", "-Q", queue, "-b", REDIS_URL], { TROUPE_REDIS_NAMESPACE: ns });
  try {
    await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [1] }));
    const first = await until(() => samples(watch)[0], "a first sample");
    assert.equal(first.queues[0]!.ready, 1);
    assert.equal(first.queues[0]!.deadPerSec, undefined, "a rate needs two samples");
    // Three letters die now (the score is the death time, as a nack leaves it).
    for (const id of ["a", "b", "c"]) {
      await client.hset(`${ns}:${queue}.XQ.msgs`, id, new Message({ queueName: queue, actorName: "work", args: [id] }).encode());
      await client.zadd(`${ns}:${queue}.XQ`, Date.now(), id);
    }
    const dying = await until(() => samples(watch).find((s) => (s.queues[0]!.deadPerSec ?? 0) > 0), "a sample with DEAD/s above 0");
    assert.equal(dying.queues[0]!.dead, 3);
    assert.equal(dying.queues[0]!.donePerSec, undefined, "Redis counts no acks");
    assert.equal(await watch.stop(), 0, watch.output);
  } finally {
    await watch.kill();
    await deleteNamespace(client, ns);
    await broker.close();
    client.disconnect();
  }
});

test("troupe queues --watch on RabbitMQ with the management API measures acks per second and dead letters per second", async (t) => {
  const management = await managementUrl();
  if (!management) return t.diagnostic("RabbitMQ's management API is not available here: the rates it gives are not checked");
  const queue = uniqueName("watch");
  const broker = new RabbitmqBroker(AMQP_URL, { managementUrl: management });
  const amqp = await RawAmqp.open();
  const watch = new CliProcess(["queues", "--watch", "--json", "--interval", "500ms", "-Q", queue, "-b", AMQP_URL], { TROUPE_RABBITMQ_MANAGEMENT_URL: management });
  try {
    await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [] }));
    await until(() => samples(watch).length >= 1, "a first sample");
    const channel = await amqp.scratch();
    for (let i = 0; i < 20; i++) await broker.enqueue(new Message({ queueName: queue, actorName: "work", args: [i] }));
    for (let got = await channel.get(queue, { noAck: false }); got; got = await channel.get(queue, { noAck: false })) channel.ack(got);
    channel.sendToQueue(`${queue}.XQ`, Buffer.from(new Message({ queueName: queue, actorName: "work", args: ["dead"] }).encode()));
    // The management API refreshes its counters every few seconds, so the rates show up in a later sample.
    await until(() => samples(watch).find((s) => (s.queues[0]!.donePerSec ?? 0) > 0), "a sample with DONE/s above 0", { timeout: 30_000, interval: 100 });
    await until(() => samples(watch).find((s) => (s.queues[0]!.deadPerSec ?? 0) > 0), "a sample with DEAD/s above 0", { timeout: 30_000, interval: 100 });
    await channel.close();
    assert.equal(await watch.stop(), 0, watch.output);
  } finally {
    await watch.kill();
    await broker.close();
    await amqp.deleteQueues(queue, `${queue}.DQ`, `${queue}.XQ`);
    await amqp.close();
  }
});

test("the watch screen shows throughput columns, says why DONE/s is missing and carries the broker's blind spots", () => {
  const screen = formatWatchScreen(
    { at: Date.UTC(2026, 0, 1), queues: [{ queue: "emails", ready: 3, delayed: 1, inFlight: 2, dead: 7, deadPerSec: 0.5 }], blindSpots: "in-flight counts are partial" },
    "redis://:***@h:6379/0",
    2000,
  );
  assert.match(screen, /every 2s — 2026-01-01T00:00:00.000Z/);
  assert.match(screen, /QUEUE\s+READY\s+DELAYED\s+IN-FLIGHT\s+DEAD\s+DONE\/s\s+DEAD\/s/);
  assert.match(screen, /emails\s+3\s+1\s+2\s+7\s+-\s+0\.5/);
  assert.match(screen, /DONE\/s: this broker counts no acks/);
  assert.match(screen, /warning: in-flight counts are partial/);
});
