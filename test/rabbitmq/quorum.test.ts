import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BrokerError, Message, RabbitmqBroker, TroupeError, type Consumer } from "troupe";
import { API_VERSION, type WorkerPool } from "../../operator/api/types.js";
import { poolDeployment } from "../../operator/resources/workerpool.js";
import { AMQP_URL, uniqueName } from "../support/env.js";
import { runCli } from "../support/process.js";
import { RawAmqp, captureLogs, managementUrl, rabbitmqctl, startFixtureWorker } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";

const queue = uniqueName("rabbit_quorum");
process.env.TROUPE_TEST_RABBIT_QUEUE = queue;

/** The arguments Troupe declares quorum queues with, which a Python peer must declare too (docs/rabbitmq.md). */
function quorumArguments(name: string, deliveryLimit?: number): Record<string, Record<string, string | number>> {
  const deadLettered = { "x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${name}.XQ`, "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" };
  return {
    [name]: deliveryLimit === undefined ? deadLettered : { ...deadLettered, "x-delivery-limit": deliveryLimit },
    [`${name}.DQ`]: deadLettered,
    [`${name}.XQ`]: { "x-queue-type": "quorum", "x-message-ttl": 604_800_000 },
  };
}

/** `rabbitmqctl list_queues name type` for the server queues of `name`. */
async function queueTypes(name: string): Promise<Record<string, string>> {
  const out = await rabbitmqctl("list_queues", "--no-table-headers", "name", "type");
  const wanted = new Set([name, `${name}.DQ`, `${name}.XQ`]);
  return Object.fromEntries(
    out
      .split("\n")
      .map((line) => line.split("\t"))
      .filter(([n]) => wanted.has(n!)),
  );
}

function tallyMessage(name: string, id: string, options: Record<string, number> = {}): Message {
  return new Message({ queueName: name, actorName: "tally", args: [id], options });
}

/** Consume `name` without a worker, handing each delivery to `handle`, which settles it. */
async function consumeWith(broker: RabbitmqBroker, name: string, handle: (consumer: Consumer, proxy: Parameters<Parameters<RabbitmqBroker["consume"]>[1]["onMessage"]>[0]) => void): Promise<Consumer> {
  const consumer: Consumer = broker.consume(name, { prefetch: 10, onMessage: (proxy) => handle(consumer, proxy) });
  await consumer.start();
  return consumer;
}

describe("RabbitMQ quorum queues", () => {
  let raw: RawAmqp;
  const cleanup: string[] = [queue];

  before(async () => {
    raw = await RawAmqp.open();
  });

  after(async () => {
    await raw.deleteQueues(...cleanup);
    await raw.close();
  });

  function named(prefix: string): string {
    const name = uniqueName(prefix);
    cleanup.push(name);
    return name;
  }

  test("the option, the URL parameter and TROUPE_RABBITMQ_QUEUE_TYPE choose the queue type; the option wins", () => {
    assert.equal(new RabbitmqBroker(AMQP_URL).topology.options.queueType, "classic");
    assert.equal(new RabbitmqBroker(AMQP_URL, { queueType: "quorum" }).topology.options.queueType, "quorum");
    assert.equal(new RabbitmqBroker(`${AMQP_URL}?queue_type=quorum&delivery_limit=4`).topology.options.deliveryLimit, 4);
    process.env.TROUPE_RABBITMQ_QUEUE_TYPE = "quorum";
    try {
      assert.equal(new RabbitmqBroker(AMQP_URL).topology.options.queueType, "quorum");
      assert.equal(new RabbitmqBroker(AMQP_URL, { queueType: "classic" }).topology.options.queueType, "classic");
      assert.equal(new RabbitmqBroker(`${AMQP_URL}?queue_type=classic`).topology.options.queueType, "classic");
    } finally {
      delete process.env.TROUPE_RABBITMQ_QUEUE_TYPE;
    }
    assert.throws(() => new RabbitmqBroker(`${AMQP_URL}?queue_type=stream`), (err: Error) => err instanceof TroupeError && /queue_type must be "classic" or "quorum", got "stream"/.test(err.message));
    assert.throws(() => new RabbitmqBroker(AMQP_URL, { queueType: "quorum", maxPriority: 10 }), /maxPriority \(10\) cannot be used with quorum queues/);
    assert.throws(() => new RabbitmqBroker(AMQP_URL, { deliveryLimit: 3 }), /deliveryLimit \(3\) needs quorum queues/);
    assert.throws(() => new RabbitmqBroker(AMQP_URL, { queueType: "quorum", deliveryLimit: 0 }), /deliveryLimit must be a positive integer/);
  });

  test("a WorkerPool's queueType reaches its pods as TROUPE_RABBITMQ_QUEUE_TYPE", () => {
    const pool = (queueType?: "classic" | "quorum"): WorkerPool =>
      ({
        apiVersion: API_VERSION,
        kind: "WorkerPool",
        metadata: { name: "emails", namespace: "default", uid: "0b5e3c1e-7a0c-4a8e-9f1e-3d2b1c0a9f8e" },
        spec: { image: "troupe:test", modules: ["actors.js"], broker: { secretRef: { name: "broker" } }, ...(queueType ? { queueType } : {}) },
      }) as WorkerPool;
    const env = (p: WorkerPool) => (poolDeployment(p, ["emails"], 1) as unknown as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }).spec.template.spec.containers[0]!.env;
    assert.deepEqual(
      env(pool("quorum")).filter((e) => e.name === "TROUPE_RABBITMQ_QUEUE_TYPE"),
      [{ name: "TROUPE_RABBITMQ_QUEUE_TYPE", value: "quorum" }],
    );
    assert.equal(env(pool()).filter((e) => e.name === "TROUPE_RABBITMQ_QUEUE_TYPE").length, 0);
  });

  test("declares q, q.DQ and q.XQ as quorum queues with at-least-once dead-lettering", async () => {
    const name = named("rabbit_quorum_declare");
    const broker = new RabbitmqBroker(`${AMQP_URL}?queue_type=quorum&delivery_limit=5`);
    await broker.connect();
    try {
      await broker.topology.ensure(name);
    } finally {
      await broker.close();
    }
    assert.deepEqual(await queueTypes(name), { [name]: "quorum", [`${name}.DQ`]: "quorum", [`${name}.XQ`]: "quorum" });
    // A declaration with exactly these arguments is accepted (a no-op), so they are the queues' arguments.
    for (const [server, args] of Object.entries(quorumArguments(name, 5))) await raw.channel.assertQueue(server, { durable: true, arguments: args });
  });

  test("a queue of the other type is never re-declared: the error names the queue and both types", async () => {
    const classic = named("rabbit_quorum_vs_classic");
    const classicBroker = new RabbitmqBroker(AMQP_URL);
    const quorumBroker = new RabbitmqBroker(AMQP_URL, { queueType: "quorum" });
    await Promise.all([classicBroker.connect(), quorumBroker.connect()]);
    try {
      await classicBroker.topology.ensure(classic);
      await assert.rejects(
        quorumBroker.topology.ensure(classic),
        (err: Error) => err instanceof BrokerError && err.message.includes(`queue ${classic} exists as a classic queue, but this broker declares quorum queues`),
      );
      assert.deepEqual(await queueTypes(classic), { [classic]: "classic", [`${classic}.DQ`]: "classic", [`${classic}.XQ`]: "classic" });

      const quorum = named("rabbit_quorum_vs_quorum");
      await quorumBroker.topology.ensure(quorum);
      await assert.rejects(
        classicBroker.topology.ensure(quorum),
        (err: Error) => err instanceof BrokerError && err.message.includes(`queue ${quorum} exists as a quorum queue, but this broker declares classic queues`),
      );
      const limited = new RabbitmqBroker(AMQP_URL, { queueType: "quorum", deliveryLimit: 3 });
      await limited.connect();
      await assert.rejects(limited.topology.ensure(quorum), (err: Error) => err instanceof BrokerError && /exists with other arguments/.test(err.message) && /delivery limit/.test(err.message)).finally(() => limited.close());
    } finally {
      await Promise.all([classicBroker.close(), quorumBroker.close()]);
    }
  });

  test("a Dramatiq peer declaring its classic arguments is refused; one declaring the documented quorum arguments is not", async () => {
    const name = named("rabbit_quorum_python");
    const broker = new RabbitmqBroker(AMQP_URL, { queueType: "quorum" });
    await broker.connect();
    try {
      await broker.topology.ensure(name);
    } finally {
      await broker.close();
    }
    const scratch = await raw.scratch();
    await assert.rejects(scratch.assertQueue(name, { durable: true, arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${name}.XQ` } }), /PRECONDITION_FAILED/);
    for (const [server, args] of Object.entries(quorumArguments(name))) await raw.channel.assertQueue(server, { durable: true, arguments: args });
  });

  test("a message requeued past the delivery limit is dead-lettered (a poison message); delayed messages have no limit", async () => {
    const name = named("rabbit_quorum_poison");
    const broker = new RabbitmqBroker(AMQP_URL, { queueType: "quorum", deliveryLimit: 2 });
    await broker.connect();
    let deliveries = 0;
    let delayedDeliveries = 0;
    const consumers: Consumer[] = [];
    try {
      await broker.enqueue(tallyMessage(name, "poison"));
      // A worker that dies while running a message gives it back; requeue does the same without killing anything.
      consumers.push(
        await consumeWith(broker, name, (consumer, proxy) => {
          deliveries++;
          void consumer.requeue([proxy]);
        }),
      );
      await until(async () => (await broker.queueStats(name)).dead === 1, "the poison message in q.XQ");
      assert.equal(deliveries, 3, "delivered once and redelivered up to the limit of 2");
      const [letter] = await broker.deadLetters(name);
      assert.equal(letter?.message?.args[0], "poison");
      assert.equal(letter?.reason, "delivery_limit");

      await broker.enqueue(tallyMessage(name, "later"), { delay: 3_600_000 });
      consumers.push(
        await consumeWith(broker, `${name}.DQ`, (consumer, proxy) => {
          delayedDeliveries++;
          if (delayedDeliveries <= 5) void consumer.requeue([proxy]);
        }),
      );
      await until(() => delayedDeliveries === 6, "six deliveries of the delayed message");
      assert.equal((await broker.queueStats(name)).dead, 1, "the delayed message is not dead-lettered");
    } finally {
      await Promise.all(consumers.map((c) => c.close()));
      await broker.close();
    }
  });

  test("broker_priority has no effect: messages are delivered in publish order, with one warning per queue", async () => {
    const name = named("rabbit_quorum_priority");
    const broker = new RabbitmqBroker(AMQP_URL, { queueType: "quorum" });
    await broker.connect();
    const lines: string[] = [];
    const delivered: string[] = [];
    let consumer: Consumer | undefined;
    try {
      await captureLogs(lines, () => broker.enqueueMany(Array.from({ length: 5 }, (_, p) => tallyMessage(name, `p${p}`, { broker_priority: p }))));
      assert.equal(lines.filter((l) => l.includes("broker_priority has no effect on a quorum queue")).length, 1, lines.join("\n"));
      consumer = await consumeWith(broker, name, (c, proxy) => {
        delivered.push(proxy.message.args[0] as string);
        void c.ack(proxy);
      });
      await until(() => delivered.length === 5, "five deliveries");
      assert.deepEqual(delivered, ["p0", "p1", "p2", "p3", "p4"]);
    } finally {
      await consumer?.close();
      await broker.close();
    }
  });

  test("depth reads count ready, held and delayed messages of quorum queues, in this process and in troupe queues", async (t) => {
    const name = named("rabbit_quorum_depth");
    const broker = new RabbitmqBroker(AMQP_URL, { queueType: "quorum" });
    await broker.connect();
    const held: unknown[] = [];
    let consumer: Consumer | undefined;
    try {
      await broker.enqueueMany(Array.from({ length: 30 }, (_, i) => tallyMessage(name, `d${i}`)));
      await broker.enqueue(tallyMessage(name, "later"), { delay: 3_600_000 });
      assert.deepEqual(await broker.queueStats(name), { queue: name, ready: 30, delayed: 1, inFlight: 0, dead: 0 });
      consumer = await consumeWith(broker, name, (_c, proxy) => held.push(proxy));
      await until(() => held.length === 10, "ten deliveries held unacked");
      assert.deepEqual(await broker.queueStats(name), { queue: name, ready: 20, delayed: 1, inFlight: 10, dead: 0 });
      // Another process (troupe queues, the operator) sees the held deliveries through the management API only.
      const management = await managementUrl();
      if (!management) {
        t.diagnostic("the management API is not available: troupe queues not checked");
        return;
      }
      const env = { TROUPE_RABBITMQ_MANAGEMENT_URL: management };
      const listed = await until(
        async () => {
          const run = await runCli(["queues", "-Q", name, "-b", `${AMQP_URL}?queue_type=quorum`, "--json"], { env });
          assert.equal(run.code, 0, run.output);
          return /"inFlight": 10/.test(run.output) ? run.output : undefined;
        },
        "troupe queues to see the ten held deliveries (management statistics refresh every 5 s)",
        { timeout: 30_000, interval: 500 },
      );
      assert.match(listed, /"ready": 20/);
      assert.match(listed, /"delayed": 1/);
    } finally {
      await consumer?.close();
      await broker.close();
    }
  });

  test("a worker runs immediate and delayed messages and dead-letters failures", async () => {
    const broker = new RabbitmqBroker(AMQP_URL, { queueType: "quorum" });
    await broker.connect();
    const running = await startFixtureWorker(broker, { threads: 2 });
    try {
      await broker.enqueueMany(Array.from({ length: 200 }, (_, i) => tallyMessage(queue, `m${i}`)));
      await broker.enqueue(tallyMessage(queue, "delayed"), { delay: 500 });
      await broker.enqueue(new Message({ queueName: queue, actorName: "fail", args: ["f1"] }));
      await running.events.count("tally", 201);
      await until(async () => (await broker.queueStats(queue)).dead === 1, "the failure in q.XQ");
      const [letter] = await broker.deadLetters(queue);
      assert.equal(letter?.reason, "rejected");
      assert.equal(letter?.message?.args[0], "f1");
      await until(async () => {
        const stats = await broker.queueStats(queue);
        return stats.ready + stats.delayed + stats.inFlight === 0;
      }, "queues drained");
    } finally {
      await running.stop();
      await broker.close();
    }
  });
});
