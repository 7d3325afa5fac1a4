import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Barrier, RabbitmqBroker, RedisRateLimiterBackend, Worker, deadLetterStore, setBroker, setRateLimiterBackend } from "troupe";
import { AMQP_URL, REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";
import { PY_CUSTOM, pythonBody } from "./python-shapes.js";
import { argsWith, assertKept, pythonDict } from "./paths.js";

const suffix = uniqueName("");
process.env.TROUPE_TEST_WIRE_SUFFIX = suffix;
const module = fixture("wire-paths");
const q = `wire_q${suffix}`;
const callbacks = `wire_cb_q${suffix}`;

/**
 * The same paths on RabbitMQ, read back with a plain AMQP client: what Troupe published for a message Python
 * enqueued keeps every part Troupe did not change as Python wrote it.
 */
describe("RabbitMQ: Troupe's re-publications keep Python's bytes", () => {
  const broker = setBroker(new RabbitmqBroker(AMQP_URL)) as RabbitmqBroker;
  // Group barriers need a shared backend; RabbitMQ has none, so Redis, as a mixed fleet would configure it.
  const limits = setRateLimiterBackend(new RedisRateLimiterBackend({ url: REDIS_URL }));
  const created = [q, callbacks];
  let raw: RawAmqp;
  let worker: Worker;

  /** Publish as Python's RabbitMQ broker does: persistent, default exchange, routing key = queue. */
  async function pythonSend(queue: string, actor: string, options: string, serverQueue = queue): Promise<{ body: string; messageId: string }> {
    const messageId = randomUUID();
    const body = pythonBody({ queue, actor, messageId, options });
    await broker.topology.ensure(queue.replace(/\.DQ$/, ""));
    raw.channel.sendToQueue(serverQueue, Buffer.from(body), { deliveryMode: 2 });
    return { body, messageId };
  }

  /** The next message on a server queue nobody consumes. */
  function next(queue: string): Promise<string> {
    return until(async () => {
      const got = await raw.channel.get(queue, { noAck: true });
      return got ? got.content.toString("utf8") : undefined;
    }, `a message on ${queue}`);
  }

  before(async () => {
    raw = await RawAmqp.open();
    await import(module);
    worker = new Worker(broker, { modules: [module], threads: 2, queues: [q] });
    await worker.start();
  });
  after(async () => {
    await worker.stop(5000);
    await broker.close();
    await limits.close?.();
    await raw.deleteQueues(...created);
    await raw.close();
  });

  test("promotion q.DQ → q, then dead-lettering by the broker (unknown actor): eta dropped, all else as Python wrote it", async () => {
    const { messageId } = await pythonSend(`${q}.DQ`, "wire_unknown", `${PY_CUSTOM},"eta":${Date.now() - 1000}`);
    assert.equal(await next(`${q}.XQ`), pythonBody({ queue: q, actor: "wire_unknown", messageId, options: PY_CUSTOM }));
  });

  test("retry, promotion and dead-lettering in a row: the dead letter is the retried publication, Python's parts intact", async () => {
    const { messageId } = await pythonSend(q, "wire_fails_twice", PY_CUSTOM);
    const options = assertKept(await next(`${q}.XQ`), { queue: q, actor: "wire_fails_twice", messageId });
    assert.match(options, /"retries":1/);
    assert.doesNotMatch(options, /"eta"/);
  });

  test("redrive with retries reset changes only retries", async () => {
    const idle = uniqueName("wire_idle");
    created.push(idle);
    // As the broker dead-letters it: the body Python published to q, now on q.XQ.
    const { body } = await pythonSend(idle, "wire_py", `${PY_CUSTOM},"retries":3`, `${idle}.XQ`);
    const store = deadLetterStore(broker);
    try {
      await until(async () => (await store.requeue(idle, { resetRetries: true })).requeued === 1, "the dead letter requeued");
    } finally {
      await store.close();
    }
    assert.equal(await next(idle), body.replace('"retries":3', '"retries":0'));
  });

  test("pipeline: the next step is pipe_target as Python wrote it with the result appended to its args", async () => {
    const target = pythonDict(uniqueName("py_pipe_q"), "wire_py");
    created.push(target.queue);
    await broker.topology.ensure(target.queue);
    await pythonSend(q, "wire_echo", `"pipe_target":${target.text}`);
    assert.equal(await next(target.queue), pythonBody({ queue: target.queue, actor: "wire_py", messageId: target.messageId, args: argsWith('"r"'), options: PY_CUSTOM }));
  });

  test("group completion callback: published as Python wrote it inside the members' options", async () => {
    const callback = pythonDict(uniqueName("py_group_q"), "wire_py");
    created.push(callback.queue);
    await broker.topology.ensure(callback.queue);
    const uuid = randomUUID();
    assert.equal(await new Barrier(uuid, { backend: limits }).create(2), true);
    for (let i = 0; i < 2; i++) await pythonSend(q, "wire_echo", `"group_completion_uuid":"${uuid}","group_completion_callbacks":[${callback.text}]`);
    assert.equal(await next(callback.queue), callback.text);
  });

  test("on_success: the callback's message dict is the body Python wrote, byte for byte", async () => {
    await broker.topology.ensure(callbacks);
    const { body: sent } = await pythonSend(q, "wire_echo", `"on_success":"wire_py",${PY_CUSTOM}`);
    const body = await next(callbacks);
    assert.ok(body.startsWith(`{"queue_name":"${callbacks}","actor_name":"wire_py","args":[${sent},"r"],"kwargs":{},"options":{`), body);
  });
});
