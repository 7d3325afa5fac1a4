import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BrokerError, Message, RabbitmqBroker } from "troupe";
import { AMQP_URL, fixture, goldenDir, uniqueName } from "../support/env.js";
import { RawAmqp, globalRabbitmqBroker, listQueueLines, startFixtureWorker, type FixtureWorker } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";

const queue = uniqueName("rabbit_interop");
process.env.TROUPE_TEST_RABBIT_QUEUE = queue;
const modules = [fixture("rabbitmq")];

interface GoldenMessage {
  properties: Record<string, unknown>;
  body: string;
}
const golden = JSON.parse(readFileSync(join(goldenDir, "rabbitmq-messages.json"), "utf8")) as Record<string, GoldenMessage>;
const GOLDEN_QUEUE = "golden_ceo_q";

/** A golden body as Dramatiq would have written it for our queue. */
function goldenBody(name: string, changes: { eta?: number } = {}): string {
  let body = golden[name]!.body.split(GOLDEN_QUEUE).join(queue);
  if (changes.eta !== undefined) body = body.replace(/"eta":\d+/, `"eta":${changes.eta}`);
  return body;
}

/** amqplib reports every property; the ones a publisher set are the defined ones. */
function setProperties(properties: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined));
}

describe("RabbitMQ wire compatibility with Dramatiq", () => {
  let broker: RabbitmqBroker;
  let raw: RawAmqp;

  before(async () => {
    broker = await globalRabbitmqBroker();
    raw = await RawAmqp.open();
  });

  after(async () => {
    await raw.deleteQueues(queue);
    await raw.close();
    await broker.close();
  });

  test("declares q, q.DQ and q.XQ exactly as Dramatiq does", async () => {
    await broker.topology.ensure(queue);
    const expected = readFileSync(join(goldenDir, "rabbitmq-queues.txt"), "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split(GOLDEN_QUEUE).join(queue))
      .sort();
    assert.deepEqual(await listQueueLines([queue, `${queue}.DQ`, `${queue}.XQ`]), expected);
  });

  test("a peer declaring Dramatiq's arguments succeeds; other arguments fail with PRECONDITION_FAILED", async () => {
    await broker.topology.ensure(queue);
    const dramatiqArgs = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queue}.XQ` };
    await raw.channel.assertQueue(queue, { durable: true, arguments: dramatiqArgs });
    await raw.channel.assertQueue(`${queue}.DQ`, { durable: true, arguments: dramatiqArgs });
    await raw.channel.assertQueue(`${queue}.XQ`, { durable: true, arguments: { "x-message-ttl": 604_800_000 } });

    const scratch = await raw.scratch();
    await assert.rejects(scratch.assertQueue(queue, { durable: true, arguments: { ...dramatiqArgs, "x-max-priority": 10 } }), /PRECONDITION_FAILED/);

    const prioritized = new RabbitmqBroker(AMQP_URL, { maxPriority: 10 });
    await prioritized.connect();
    try {
      await assert.rejects(prioritized.topology.ensure(queue), (err: Error) => err instanceof BrokerError && /exists with other arguments/.test(err.message) && /maxPriority/.test(err.message));
    } finally {
      await prioritized.close();
    }
  });

  test("publishes the body and properties Dramatiq publishes, immediate and delayed", async () => {
    const immediate = new Message({ queueName: queue, actorName: "radd", args: [1, 2] });
    await broker.enqueue(immediate);
    const delayed = await broker.enqueue(new Message({ queueName: queue, actorName: "radd", args: [3, 4] }), { delay: 60_000 });

    const fromQ = await raw.channel.get(queue, { noAck: true });
    const fromDq = await raw.channel.get(`${queue}.DQ`, { noAck: true });
    assert.ok(fromQ && fromDq, "both messages are on their queues");
    for (const got of [fromQ, fromDq]) assert.deepEqual(setProperties(got.properties), { deliveryMode: golden[GOLDEN_QUEUE]!.properties.delivery_mode });

    const expectedQ = goldenBody(GOLDEN_QUEUE)
      .replace(/"message_id":"[^"]+"/, `"message_id":"${immediate.messageId}"`)
      .replace(/"message_timestamp":\d+/, `"message_timestamp":${immediate.messageTimestamp}`);
    assert.equal(fromQ.content.toString("utf8"), expectedQ);
    const expectedDq = goldenBody(`${GOLDEN_QUEUE}.DQ`, { eta: delayed.options.eta as number })
      .replace(/"message_id":"[^"]+"/, `"message_id":"${delayed.messageId}"`)
      .replace(/"message_timestamp":\d+/, `"message_timestamp":${delayed.messageTimestamp}`);
    assert.equal(fromDq.content.toString("utf8"), expectedDq);
  });

  test("a priority is published only from options.broker_priority, and a bad one is refused", async () => {
    await broker.enqueue(new Message({ queueName: queue, actorName: "radd", args: [1, 2], options: { broker_priority: 3 } }));
    const got = await raw.channel.get(queue, { noAck: true });
    assert.ok(got);
    assert.deepEqual(setProperties(got.properties), { deliveryMode: 2, priority: 3 });
    await assert.rejects(broker.enqueue(new Message({ queueName: queue, actorName: "radd", options: { broker_priority: "high" } })), /broker_priority must be an integer/);
  });

  describe("a Troupe worker on messages Dramatiq wrote", () => {
    let running: FixtureWorker;
    before(async () => (running = await startFixtureWorker(broker, { threads: 2 })));

    after(() => running.stop());

    test("runs an immediate message and a delayed one no earlier than its eta", async () => {
      const eta = Date.now() + 1500;
      await raw.channel.sendToQueue(`${queue}.DQ`, Buffer.from(goldenBody(`${GOLDEN_QUEUE}.DQ`, { eta })), { deliveryMode: 2 });
      await raw.channel.sendToQueue(queue, Buffer.from(goldenBody(GOLDEN_QUEUE)), { deliveryMode: 2 });
      await running.events.waitFor((e) => e.some((x) => x.kind === "radd" && x.a === 1 && x.b === 2), "radd(1, 2)");
      await running.events.waitFor((e) => e.some((x) => x.kind === "radd" && x.a === 3), "radd(3, 4)");
      const delayedRun = running.events.of("radd").find((x) => x.a === 3)!;
      assert.ok((delayedRun.at as number) >= eta, `ran ${eta - (delayedRun.at as number)} ms before its eta`);
      await until(async () => {
        const stats = await broker.queueStats(queue);
        return stats.ready + stats.delayed + stats.inFlight === 0;
      }, "queues drained");
    });

    test("undecodable bodies and failed messages are dead-lettered to q.XQ by RabbitMQ", async () => {
      const deadBefore = (await broker.queueStats(queue)).dead;
      await raw.channel.sendToQueue(queue, Buffer.from("{not json"), { deliveryMode: 2 });
      await raw.channel.sendToQueue(queue, Buffer.from([0xff, 0xfe]), { deliveryMode: 2 });
      const { fail } = await import(modules[0]!);
      await fail.send("f1");
      await running.events.waitFor((e) => e.some((x) => x.kind === "fail" && x.id === "f1"), "fail(f1)");
      await until(async () => (await broker.queueStats(queue)).dead === deadBefore + 3, "three dead letters");
      assert.equal(running.worker.stats.undecodable, 2);
      const letters = await broker.deadLetters(queue);
      const raws = letters.map((l) => l.raw);
      assert.ok(raws.includes("{not json"), `dead letters: ${raws}`);
      const failed = letters.find((l) => l.message?.actorName === "fail");
      assert.ok(failed, "the failed message is in q.XQ");
      assert.equal(failed.reason, "rejected");
      assert.ok(failed.deadAt && Math.abs(failed.deadAt - Date.now()) < 60_000, `deadAt ${failed.deadAt}`);
      assert.equal((await broker.queueStats(queue)).dead, deadBefore + 3, "reading dead letters leaves them in place");
    });
  });
});
