import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Message, RabbitmqBroker, deadLetterStore, type DeadLetterStore } from "troupe";
import { AMQP_URL, goldenDir, uniqueName } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";

/** Python Dramatiq's bodies for golden_ceo_q and its delay queue, as Dramatiq published them. */
const golden = JSON.parse(readFileSync(join(goldenDir, "rabbitmq-messages.json"), "utf8")) as Record<string, { body: string }>;

/** Declare `q`, `q.DQ`, `q.XQ` with Dramatiq's arguments. */
async function declare(raw: RawAmqp, queue: string): Promise<void> {
  const dead = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queue}.XQ` };
  await raw.channel.assertQueue(queue, { durable: true, arguments: dead });
  await raw.channel.assertQueue(`${queue}.DQ`, { durable: true, arguments: dead });
  await raw.channel.assertQueue(`${queue}.XQ`, { durable: true, arguments: { "x-message-ttl": 604_800_000 } });
}

/** Dead-letter bodies the way a worker's nack does: publish to the queue named in the body, reject without requeue. */
async function killOnQueue(raw: RawAmqp, bodies: string[]): Promise<void> {
  for (const body of bodies) {
    const target = (JSON.parse(body) as { queue_name: string }).queue_name;
    raw.channel.sendToQueue(target, Buffer.from(body), { persistent: true });
    const got = await until(async () => (await raw.channel.get(target)) || undefined, `the message on ${target}`);
    raw.channel.reject(got, false);
  }
}

async function bodiesOf(raw: RawAmqp, name: string): Promise<string[]> {
  const out: string[] = [];
  for (let got = await raw.channel.get(name, { noAck: true }); got; got = await raw.channel.get(name, { noAck: true })) out.push(got.content.toString());
  return out;
}

describe("dead letters on RabbitMQ", () => {
  let raw: RawAmqp;
  let broker: RabbitmqBroker;
  let store: DeadLetterStore;
  const queues: string[] = [];

  before(async () => {
    raw = await RawAmqp.open();
    broker = new RabbitmqBroker(AMQP_URL);
    store = deadLetterStore(broker);
  });
  after(async () => {
    await raw.deleteQueues(...queues);
    await raw.close();
    await store.close();
    await broker.close();
  });

  test("Python Dramatiq's dead letters are listed without being consumed and requeued byte for byte", async () => {
    const queue = uniqueName("golden_ceo_q");
    queues.push(queue);
    await declare(raw, queue);
    const plain = golden.golden_ceo_q!.body.replaceAll("golden_ceo_q", queue);
    const delayed = golden["golden_ceo_q.DQ"]!.body.replaceAll("golden_ceo_q", queue);
    await killOnQueue(raw, [plain, delayed]);

    const page = await store.list(queue, { limit: 1 });
    assert.equal(page.total, 2);
    assert.equal(page.next, 1);
    assert.equal(page.letters[0]!.raw, plain);
    assert.equal(page.letters[0]!.reason, "rejected");
    assert.ok(page.letters[0]!.deadAt! > Date.now() - 60_000);
    const again = await store.list(queue, { cursor: page.next });
    assert.deepEqual(again.letters.map((l) => l.raw), [delayed], "browsing gave the letters back in place");

    const id = Message.decode(delayed).messageId;
    assert.equal((await store.show(queue, id))?.raw, delayed);
    const result = await store.requeue(queue, { ids: [id, "missing-id"] });
    assert.deepEqual(result, { requeued: 1, missing: ["missing-id"] });
    assert.deepEqual(await bodiesOf(raw, `${queue}.DQ`), [delayed], "a delayed letter goes back to q.DQ as read");
    assert.equal((await store.list(queue)).total, 1);

    assert.equal((await store.requeue(queue, { filter: { actor: "radd" } })).requeued, 1);
    assert.deepEqual(await bodiesOf(raw, queue), [plain]);
    assert.equal((await store.list(queue)).total, 0);
  });

  test("filters, reset retries and purges by filter or whole", async () => {
    const queue = uniqueName("q");
    queues.push(queue);
    await declare(raw, queue);
    for (let i = 0; i < 12; i++) {
      const message = new Message({ queueName: queue, actorName: i % 2 ? "odd" : "even", args: [i], options: { retries: 5 }, messageId: `m-${i}` });
      raw.channel.sendToQueue(`${queue}.XQ`, Buffer.from(message.encode()), { persistent: true });
    }
    await until(async () => (await raw.channel.checkQueue(`${queue}.XQ`)).messageCount === 12, "12 dead letters");
    const odd = await store.list(queue, { limit: 4, filter: { actor: "odd" } });
    assert.deepEqual(odd.letters.map((l) => l.id), ["m-1", "m-3", "m-5", "m-7"]);
    assert.equal(odd.next, 9, "the next page starts at the fifth odd letter");
    assert.deepEqual((await store.list(queue, { limit: 4, filter: { actor: "odd" }, cursor: odd.next })).letters.map((l) => l.id), ["m-9", "m-11"]);

    assert.equal((await store.requeue(queue, { ids: ["m-0"], resetRetries: true })).requeued, 1);
    const [back] = await bodiesOf(raw, queue);
    assert.equal(Message.decode(back!).options.retries, 0);
    assert.equal(await store.purge(queue, { filter: { actor: "odd" } }), 6);
    assert.deepEqual((await store.list(queue, { limit: 100 })).letters.map((l) => l.id), ["m-2", "m-4", "m-6", "m-8", "m-10"]);
    assert.equal(await store.purge(queue), 5);
  });

  test("kill -9 in the middle of a requeue: every letter is still dead or back on its queue, none lost", async () => {
    const queue = uniqueName("q");
    queues.push(queue);
    await declare(raw, queue);
    const count = 2000;
    for (let i = 0; i < count; i++) {
      raw.channel.sendToQueue(`${queue}.XQ`, Buffer.from(new Message({ queueName: queue, actorName: "work", args: [i], messageId: `m-${i}` }).encode()), { persistent: true });
    }
    await until(async () => (await raw.channel.checkQueue(`${queue}.XQ`)).messageCount === count, "the dead letters");
    const requeue = new CliProcess(["dead-letters", "requeue", "--all", "--rate", "1000", "-Q", queue, "-b", AMQP_URL]);
    await until(async () => (await raw.channel.checkQueue(queue)).messageCount >= 300, "a part of the letters requeued");
    await requeue.kill();
    // The killed connection's unacked deliveries return to q.XQ; count both queues once they settled.
    await until(async () => (await raw.channel.checkQueue(`${queue}.XQ`)).consumerCount === 0, "the killed consumer gone");
    const back = (await bodiesOf(raw, queue)).map((b) => Message.decode(b).messageId);
    const dead = (await bodiesOf(raw, `${queue}.XQ`)).map((b) => Message.decode(b).messageId);
    assert.ok(back.length < count, "killed before the end");
    const all = new Set([...back, ...dead]);
    for (let i = 0; i < count; i++) assert.ok(all.has(`m-${i}`), `m-${i} lost`);
  });
});
