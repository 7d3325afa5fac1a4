import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Message, RabbitmqBroker, type MessageProxy } from "troupe";
import { AMQP_URL, uniqueName } from "../support/env.js";
import { BrokerRelay, RawAmqp, ackingConsumer, captureLogs, globalRabbitmqBroker, managementUrl, startFixtureWorker } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";

const queue = uniqueName("rabbit_delivery");
process.env.TROUPE_TEST_RABBIT_QUEUE = queue;

function tallyMessage(id: string, options: Record<string, number> = {}): Message {
  return new Message({ queueName: queue, actorName: "tally", args: [id], options });
}

describe("RabbitMQ delivery", () => {
  let raw: RawAmqp;

  before(async () => {
    raw = await RawAmqp.open();
  });

  after(async () => {
    await raw.deleteQueues(queue);
    await raw.close();
  });

  test("priorities reorder ready messages when maxPriority is configured", async () => {
    const broker = await globalRabbitmqBroker({ maxPriority: 10 });
    await broker.enqueueMany(Array.from({ length: 10 }, (_, p) => tallyMessage(`p${p}`, { broker_priority: p })));
    const { events, stop } = await startFixtureWorker(broker, { threads: 1, prefetch: 1 });
    try {
      await events.count("tally", 10);
      assert.deepEqual(
        events.of("tally").map((e) => e.id),
        Array.from({ length: 10 }, (_, i) => `p${9 - i}`),
      );
    } finally {
      await stop();
      await broker.close();
      await raw.deleteQueues(queue);
    }
  });

  describe("one broker", () => {
    let broker: RabbitmqBroker;

    before(async () => {
      broker = new RabbitmqBroker(AMQP_URL, { managementUrl: await managementUrl() });
      await broker.connect();
    });

    after(async () => {
      await broker.close();
    });

    test("a batch publish is confirmed as a whole and every message arrives", async () => {
      const sent = await broker.enqueueMany(Array.from({ length: 500 }, (_, i) => tallyMessage(`b${i}`)));
      assert.equal(sent.length, 500);
      assert.equal((await broker.queueStats(queue)).ready, 500);
      await broker.purge(queue);
      assert.equal((await broker.queueStats(queue)).ready, 0);
    });

    test("a queue deleted at runtime is declared again on the next publish", async () => {
      await broker.enqueue(tallyMessage("before"));
      await raw.deleteQueues(queue);
      await broker.enqueue(tallyMessage("after"));
      const got = await raw.channel.get(queue, { noAck: true });
      assert.ok(got, "the message reached the re-declared queue");
      assert.equal(Message.decode(got.content).args[0], "after");
    });

    test("a consumer whose queue is deleted declares it again and keeps consuming", async () => {
      const { consumer, delivered, lost } = await ackingConsumer(broker, queue, 5);
      try {
        await raw.deleteQueues(queue);
        await until(() => lost() === 1, "the consumer to notice the deletion");
        await until(async () => (await raw.consumerCount(queue)) === 1, "the consumer to subscribe again");
        await broker.enqueue(tallyMessage("after-delete"));
        await until(() => delivered.includes("after-delete"), "the delivery after the re-declare");
      } finally {
        await consumer.close();
      }
    });

    test("queue stats count ready, delayed, unacked and dead messages; purge empties them", async (t) => {
      await broker.purge(queue);
      await broker.enqueueMany([tallyMessage("s1"), tallyMessage("s2"), tallyMessage("s3")]);
      await broker.enqueueMany([tallyMessage("d1"), tallyMessage("d2")], { delay: 60_000 });
      let delivered: MessageProxy[] = [];
      const consumer = broker.consume(queue, { prefetch: 2, onMessage: (proxy) => delivered.push(proxy) });
      await consumer.start();
      await until(() => delivered.length === 2, "two deliveries");
      assert.deepEqual(await broker.queueStats(queue), { queue, ready: 1, delayed: 2, inFlight: 2, dead: 0 });

      await consumer.nack(delivered[0]!);
      await consumer.requeue([delivered[1]!]);
      await until(() => delivered.length === 4, "the requeued delivery and the next one");
      delivered = delivered.slice(2);
      await until(async () => (await broker.queueStats(queue)).dead === 1, "the nacked message in q.XQ");

      if (!(await managementUrl())) {
        t.diagnostic("management API unavailable: unacked counts of other processes not checked");
      } else {
        // A second broker has no consumers of its own: its unacked count can only come from the management API.
        const observer = new RabbitmqBroker(AMQP_URL, { managementUrl: await managementUrl() });
        try {
          await until(async () => (await observer.queueStats(queue)).inFlight === 2, "the management API reporting two unacked", { timeout: 15_000, interval: 250 });
          assert.ok((await observer.listQueues()).includes(queue), "listQueues names the queue");
        } finally {
          await observer.close();
        }
      }
      for (const proxy of delivered) await consumer.ack(proxy);
      await consumer.close();
      await broker.purge(queue);
      const stats = await broker.queueStats(queue);
      assert.deepEqual({ ready: stats.ready, delayed: stats.delayed, dead: stats.dead }, { ready: 0, delayed: 0, dead: 0 });
    });

    test("acks batched out of order never settle a delivery that is still running", async () => {
      await broker.purge(queue);
      await broker.enqueueMany(Array.from({ length: 10 }, (_, i) => tallyMessage(`o${i}`)));
      const delivered: MessageProxy[] = [];
      const consumer = broker.consume(queue, { prefetch: 10, onMessage: (proxy) => delivered.push(proxy) });
      await consumer.start();
      await until(() => delivered.length === 10, "ten deliveries");
      // Everything but the oldest and a middle one finishes, newest first.
      const running = new Set([delivered[0]!, delivered[5]!]);
      for (const proxy of [...delivered].reverse()) if (!running.has(proxy)) await consumer.ack(proxy);
      await until(async () => (await broker.queueStats(queue)).inFlight === 2, "two deliveries still unacked");
      await consumer.close();
      assert.deepEqual((await raw.drainIds(queue)).sort(), ["o0", "o5"]);
    });

    test("stats of a missing queue are zero, even alongside concurrent stats of an existing one", async () => {
      await broker.purge(queue);
      await broker.enqueue(tallyMessage("present"));
      const missing = uniqueName("rabbit_missing");
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => broker.queueStats(i % 2 ? missing : queue)));
      for (const [i, stats] of results.entries()) assert.equal(stats.ready, i % 2 ? 0 : 1, `stats #${i}`);
      await broker.purge(queue);
    });

    test("without the management API, listQueues names the queues this broker declared", async () => {
      const plain = new RabbitmqBroker(AMQP_URL);
      try {
        await plain.enqueue(tallyMessage("listed"));
        assert.deepEqual(await plain.listQueues(), [queue]);
      } finally {
        await plain.purge(queue);
        await plain.close();
      }
    });
  });

  describe("confirmDelivery: false", () => {
    test("an enqueue resolves without a confirm (a silent broker does not hold it up) and every message arrives", async () => {
      const relay = new BrokerRelay();
      await relay.start();
      // Waiting for a confirm through the paused relay would reject after publishTimeout instead of resolving.
      const unconfirmed = new RabbitmqBroker(`amqp://guest:guest@127.0.0.1:${relay.port}/?confirm_delivery=false`, { publishTimeout: 2000 });
      try {
        await unconfirmed.enqueue(tallyMessage("u0"));
        relay.pause();
        for (let i = 1; i <= 100; i++) await unconfirmed.enqueue(tallyMessage(`u${i}`));
        relay.resume();
        await until(async () => (await raw.channel.checkQueue(queue)).messageCount === 101, "the 101 unconfirmed messages on the queue");
        assert.deepEqual(await raw.drainIds(queue), Array.from({ length: 101 }, (_, i) => `u${i}`));
      } finally {
        await unconfirmed.close();
        await relay.stop();
      }
    });

    test("the option wins over the URL parameter", async () => {
      const relay = new BrokerRelay();
      await relay.start();
      const viaRelay = new RabbitmqBroker(`amqp://guest:guest@127.0.0.1:${relay.port}/?confirm_delivery=false`, { confirmDelivery: true, publishTimeout: 300 });
      try {
        await viaRelay.enqueue(tallyMessage("c1"));
        relay.pause();
        await assert.rejects(viaRelay.enqueue(tallyMessage("c2")), /did not confirm/);
        relay.resume();
      } finally {
        await viaRelay.close();
        await relay.stop();
        await raw.channel.purgeQueue(queue);
      }
    });

    test("a message to a queue deleted at runtime is logged as lost and the next one declares the queue again", async () => {
      const unconfirmed = new RabbitmqBroker(AMQP_URL, { confirmDelivery: false });
      try {
        await unconfirmed.enqueue(tallyMessage("before"));
        await raw.deleteQueues(queue);
        const lines: string[] = [];
        await captureLogs(lines, async () => {
          await unconfirmed.enqueue(tallyMessage("returned"));
          await until(() => lines.some((l) => l.includes("returned an unconfirmed message as unroutable")), "the lost message to be logged");
        });
        assert.ok(lines.some((l) => l.includes(`"queue":"${queue}"`) && l.includes('"level":"error"')), lines.join("\n"));
        await unconfirmed.enqueue(tallyMessage("after"));
        await until(async () => (await raw.channel.checkQueue(queue)).messageCount === 1, "the next message on the re-declared queue");
        assert.deepEqual(await raw.drainIds(queue), ["after"]);
      } finally {
        await unconfirmed.close();
      }
    });
  });
});
