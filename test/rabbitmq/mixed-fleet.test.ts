import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import type { Channel } from "amqplib";
import { RabbitmqBroker, Worker, setBroker, type Middleware, type MessageProxy } from "troupe";
import { PY_ARGS, PY_CUSTOM, pythonBody } from "../interop-numbers/python-shapes.js";
import { argsWith, pythonDict } from "../interop-numbers/paths.js";
import { AMQP_URL, fixture, uniqueName } from "../support/env.js";
import { assertRanOnce, runs } from "../support/mixed-fleet.js";
import { CliProcess } from "../support/process.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";

/** Holds a Troupe thread far longer than any test, so a message taken by a killed worker never ran to its end. */
const FOREVER = 600_000;
const dir = await mkdtemp(join(tmpdir(), "troupe-mixed-rabbit-"));
/** The in-process worker's queue and tally; the killed `troupe worker` process gets others by its environment. */
const queue = uniqueName("mixed_rabbit");
const tally = join(dir, "in-process.txt");
process.env.TROUPE_TEST_MIXED_QUEUE = queue;
process.env.TROUPE_TEST_MIXED_FILE = tally;
const module = fixture("mixed-fleet");

/** `["<id>",<holdMs>,…Python's numbers…]`: the actor's two arguments, then the values a JS number cannot hold. */
function pythonArgs(id: string, holdMs: number): string {
  return `["${id}",${holdMs},${PY_ARGS.slice(1)}`;
}

interface Delivery {
  queue: string;
  body: string;
  redelivered: boolean;
}

/**
 * A Python Dramatiq worker as RabbitMQ sees it: a consumer with Dramatiq's prefetch on `q` and `q.DQ`, manual
 * acks, decoding each body; running `mixed_hold` is appending "ran <id> python" to the tally file. It acks what is
 * due and holds delayed deliveries unacked, as Dramatiq does until their eta.
 */
class PythonConsumer {
  readonly deliveries: Delivery[] = [];

  private constructor(
    private readonly raw: RawAmqp,
    private readonly tallyFile: string,
  ) {}

  static async start(name: string, tallyFile: string, { run }: { run: boolean }): Promise<PythonConsumer> {
    const consumer = new PythonConsumer(await RawAmqp.open(), tallyFile);
    const channel = consumer.raw.channel;
    try {
      await channel.prefetch(16);
      for (const serverQueue of [name, `${name}.DQ`]) await channel.consume(serverQueue, (msg) => msg && void consumer.deliver(channel, serverQueue, msg, run), { noAck: false });
    } catch (err) {
      await consumer.close();
      throw err;
    }
    return consumer;
  }

  private async deliver(channel: Channel, serverQueue: string, msg: { content: Buffer; fields: { redelivered: boolean } }, run: boolean): Promise<void> {
    const body = msg.content.toString("utf8");
    this.deliveries.push({ queue: serverQueue, body, redelivered: msg.fields.redelivered });
    // Python's json module reads NaN, Infinity and big ints; JSON.parse reads the rest of what the test needs.
    const [, id] = /"args":\["([^"]+)"/.exec(body)!;
    if (!run || body.includes('"eta":')) return;
    await appendFile(this.tallyFile, `ran ${id} python\n`);
    channel.ack(msg as Parameters<Channel["ack"]>[0]);
  }

  /** What a kill -9 shows the broker: the TCP connection gone without a close handshake; unacked deliveries return. */
  die(): void {
    (this.raw.connection.connection as unknown as { stream: Socket }).stream.destroy(new Error("the Python worker was killed"));
  }

  close(): Promise<void> {
    return this.raw.close();
  }
}

describe("RabbitMQ mixed fleet: unacked deliveries move between Troupe and Python Dramatiq consumers", () => {
  const broker = setBroker(new RabbitmqBroker(AMQP_URL)) as RabbitmqBroker;
  const created = [queue];
  let raw: RawAmqp;

  /** Publish as Python's RabbitMQ broker does: persistent, default exchange, routing key = the body's queue. */
  async function pythonSend(name: string, body: string): Promise<string> {
    await broker.topology.ensure(name.replace(/\.DQ$/, ""));
    raw.channel.sendToQueue(name, Buffer.from(body), { deliveryMode: 2 });
    return body;
  }

  before(async () => {
    await broker.connect();
    raw = await RawAmqp.open();
  });
  after(async () => {
    await broker.close();
    await raw.deleteQueues(...created);
    await raw.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("a troupe worker killed with SIGKILL holding unacked deliveries: RabbitMQ redelivers them to the Python consumer, bytes unchanged, each run once", async () => {
    const name = uniqueName("mixed_rabbit_kill");
    created.push(name);
    const file = join(dir, `${name}.txt`);
    const ids = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const sent = new Map<string, string>();
    for (const id of ids) sent.set(id, await pythonSend(name, pythonBody({ queue: name, actor: "mixed_hold", args: pythonArgs(id, FOREVER), options: PY_CUSTOM, messageId: randomUUID() })));
    // Not due for an hour: the Troupe worker holds it unacked on `q.DQ`, as Dramatiq does.
    sent.set("d0", await pythonSend(`${name}.DQ`, pythonBody({ queue: `${name}.DQ`, actor: "mixed_hold", args: pythonArgs("d0", 0), options: `${PY_CUSTOM},"eta":${Date.now() + 3_600_000}`, messageId: randomUUID() })));

    const troupe = new CliProcess(["worker", module, "--broker", AMQP_URL, "--processes", "1", "--threads", "4", "--prefetch", "8"], {
      TROUPE_TEST_MIXED_QUEUE: name,
      TROUPE_TEST_MIXED_FILE: file,
      TROUPE_METRICS_PORT: "off",
    });
    let python: PythonConsumer | undefined;
    try {
      await until(async () => (await runs(file)).started.length === 4 && (await raw.channel.checkQueue(name)).messageCount === 0 && (await raw.channel.checkQueue(`${name}.DQ`)).messageCount === 0, "the Troupe worker running 4 and holding all 9 unacked", { timeout: 60_000, interval: 50 });
      python = await PythonConsumer.start(name, file, { run: true });
      await until(async () => (await raw.consumerCount(name)) === 2, "both consumers on the queue");
      assert.equal(python.deliveries.length, 0, "nothing for the Python consumer while the Troupe worker holds it all");

      await troupe.kill();
      await until(async () => python!.deliveries.length === sent.size && (await runs(file)).ran.length === ids.length, "the Python consumer to get all 9 and run the 8 due", { timeout: 30_000, interval: 20 });
      for (const delivery of python.deliveries) {
        const id = /"args":\["([^"]+)"/.exec(delivery.body)![1]!;
        assert.equal(delivery.body, sent.get(id), `${id} redelivered with the bytes Python published`);
        assert.equal(delivery.redelivered, true, `${id} carries the redelivered flag`);
      }
      assert.equal(python.deliveries.find((d) => d.body.includes('"eta":'))?.queue, `${name}.DQ`);
      const { started, ran } = await runs(file);
      assertRanOnce(ids, ran, (by) => by === "python");
      assert.equal(started.length, 4, "the killed worker had 4 running");
    } finally {
      await troupe.kill();
      await python?.close();
    }
  });

  test("Python-written deliveries (big ints, 1.0, NaN, a delay, a pipeline) held by a Python consumer that dies: redelivered to Troupe, each run once, the next step's bytes as Python wrote them", async () => {
    const target = pythonDict(uniqueName("mixed_rabbit_next"), "py_next");
    created.push(target.queue);
    for (const name of [target.queue, queue]) await broker.topology.ensure(name);
    const python = await PythonConsumer.start(queue, tally, { run: false });
    const ids = ["n0", "n1", "n2", "delayed", "piped"];
    for (const id of ids.slice(0, 3)) await pythonSend(queue, pythonBody({ queue, actor: "mixed_hold", args: pythonArgs(id, 0), options: PY_CUSTOM, messageId: randomUUID() }));
    await pythonSend(`${queue}.DQ`, pythonBody({ queue: `${queue}.DQ`, actor: "mixed_hold", args: pythonArgs("delayed", 0), options: `${PY_CUSTOM},"eta":${Date.now() + 500}`, messageId: randomUUID() }));
    await pythonSend(queue, pythonBody({ queue, actor: "mixed_hold", args: pythonArgs("piped", 0), options: `"pipe_target":${target.text}`, messageId: randomUUID() }));
    await until(() => python.deliveries.length === ids.length, "the Python consumer holding all 5 unacked");

    const seen: { id: string; redelivered: boolean; hook: string }[] = [];
    const record = (hook: string) => (_: unknown, proxy: MessageProxy) => void seen.push({ id: proxy.message.args[0] as string, redelivered: proxy.redelivered, hook });
    const recorder: Middleware = { beforeDelayMessage: record("delay"), beforeProcessMessage: record("process") };
    broker.addMiddleware(recorder);
    await import(module);
    const worker = new Worker(broker, { modules: [module], threads: 2, queues: [queue] });
    try {
      await worker.start();
      await until(async () => (await raw.consumerCount(queue)) === 2, "the Troupe worker consuming beside the Python one");
      python.die();
      await until(async () => (await runs(tally)).ran.length >= ids.length, "Troupe to run all 5", { timeout: 30_000, interval: 20 });
      const next = await until(async () => (await raw.channel.get(target.queue, { noAck: true })) || undefined, "the pipeline's next step");
      assert.equal(next.content.toString("utf8"), pythonBody({ queue: target.queue, actor: "py_next", messageId: target.messageId, args: argsWith('"piped"'), options: PY_CUSTOM }));
      await until(async () => (await broker.queueStats(queue)).ready === 0, "nothing left ready");
      assertRanOnce(ids, (await runs(tally)).ran, (by) => by === String(process.pid));
      assert.deepEqual(
        seen.filter((s) => s.redelivered).map((s) => `${s.hook} ${s.id}`).sort(),
        ["delay delayed", "process n0", "process n1", "process n2", "process piped"],
        "Troupe got each of them as a redelivery (the delayed one on q.DQ; its promotion to q is a new publication)",
      );
      assert.equal((await raw.channel.checkQueue(`${queue}.XQ`)).messageCount, 0, "none was undecodable");
    } finally {
      await worker.stop(5000);
      broker.removeMiddleware(recorder);
      await python.close();
    }
  });
});
