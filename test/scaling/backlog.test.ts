import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Message, RabbitmqBroker, RedisBroker, type Consumer } from "troupe";
import { BacklogReader } from "../../operator/brokers/backlog.js";
import { BrokerConnections } from "../../operator/brokers/connections.js";
import { managementUrlOf } from "../../operator/brokers/management-url.js";
import { backlogSignals, nextPollInMs } from "../../operator/scaling/backlog-sizer.js";
import { autoscalingWithDefaults } from "../../operator/api/types.js";
import type { WorkerLoad } from "../../operator/scaling/pod-load.js";
import type { WorkerPoolSpec } from "../../operator/api/types.js";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { managementUrl, RawAmqp } from "../support/rabbitmq.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

const load = (inFlightByQueue: Record<string, number>): WorkerLoad => ({ inFlight: Object.values(inFlightByQueue).reduce((a, b) => a + b, 0), inFlightByQueue, processed: 0 });

describe("backlog on Redis: delayed messages by eta (delayed-due.lua)", () => {
  const namespace = uniqueName("backlog");
  const queue = "mail";
  const redis = redisClient(REDIS_URL);
  const producer = new RedisBroker(REDIS_URL, { namespace });
  const connections = new BrokerConnections((url) => new RedisBroker(url, { namespace }));
  const reader = new BacklogReader(connections);

  before(() => producer.connect());
  after(async () => {
    await reader.close();
    await connections.close();
    await producer.close();
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  });

  test("counts what comes due by the deadline over several script pages, and bodies without a readable eta", async () => {
    const message = (i: number) => new Message({ queueName: queue, actorName: "send", args: [i] });
    await producer.enqueueMany(Array.from({ length: 2500 }, (_, i) => message(i)), { delay: 2_000 });
    await producer.enqueueMany(Array.from({ length: 300 }, (_, i) => message(i)), { delay: 3_600_000 });
    await producer.enqueueMany(Array.from({ length: 7 }, (_, i) => message(i)));
    // What a foreign producer could leave: a body that is not JSON, and one with no eta.
    await redis.hset(`${namespace}:${queue}.DQ.msgs`, "garbled", "\x80\x04not json", "no-eta", JSON.stringify({ ...(JSON.parse(message(0).encode()) as object), options: {} }));

    const now = Date.now();
    const soon = await reader.read(REDIS_URL, [queue], { dueBy: now + 30_000 });
    assert.equal(soon.inFlightUnseen, undefined);
    // The earliest of the hour-ahead ones: when the next poll must look again.
    const next = soon.queues[0]!.nextEtaAfterHorizon!;
    assert.ok(next > now + 3_500_000 && next <= now + 3_600_000, `the earliest eta after the horizon, ${next - now} ms ahead`);
    assert.deepEqual(soon.queues.map(({ queue: q, ready, delayed, delayedDue, delayedUnknownEta, inFlight }) => ({ q, ready, delayed, delayedDue, delayedUnknownEta, inFlight })), [
      { q: queue, ready: 7, delayed: 2802, delayedDue: 2500, delayedUnknownEta: 2, inFlight: 0 },
    ]);
    const later = await reader.read(REDIS_URL, [queue], { dueBy: now + 2 * 3_600_000 });
    assert.equal(later.queues[0]!.delayedDue, 2800);
    assert.equal(later.queues[0]!.nextEtaAfterHorizon, undefined, "nothing is due later");
    const none = await reader.read(REDIS_URL, [queue], { dueBy: now });
    assert.equal(none.queues[0]!.delayedDue, 0);
  });
});

describe("backlog on RabbitMQ: in-flight from the management API, else marked unseen", () => {
  const queue = uniqueName("backlog");
  const connections = new BrokerConnections();
  const reader = new BacklogReader(connections);
  const broker = new RabbitmqBroker(AMQP_URL, { managementUrl: "" });
  let consumer: Consumer | undefined;

  before(() => broker.connect());
  after(async () => {
    await consumer?.close();
    await reader.close();
    await connections.close();
    await broker.close();
    const raw = await RawAmqp.open();
    await raw.deleteQueues(queue);
    await raw.close();
  });

  test("no management API, a failing one, and a working one", async () => {
    await broker.enqueueMany(Array.from({ length: 5 }, (_, i) => new Message({ queueName: queue, actorName: "send", args: [i] })));
    // Two messages held (fetched, never acked) by a consumer in another connection than the reader's.
    let held = 0;
    consumer = broker.consume(queue, { prefetch: 2, onMessage: () => void held++ });
    await consumer.start();
    const none = await until(async () => {
      const r = await reader.read(AMQP_URL, [queue], { dueBy: Date.now() });
      return r.queues[0]!.ready === 3 ? r : undefined;
    }, "two messages delivered");
    assert.equal(none.inFlightUnseen?.cause, "NotConfigured");
    assert.match(none.inFlightUnseen.message, /no RabbitMQ management API is configured/);
    assert.equal(none.queues[0]!.inFlight, 0);

    const failing = await reader.read(AMQP_URL, [queue], { dueBy: Date.now(), management: { url: "http://guest:hunter2@127.0.0.1:1" } });
    assert.equal(failing.inFlightUnseen?.cause, "ManagementFailed");
    assert.match(failing.inFlightUnseen.message, /the RabbitMQ management API failed: .*127\.0\.0\.1:1/);
    assert.doesNotMatch(failing.inFlightUnseen.message, /hunter2/);

    const problem = await reader.read(AMQP_URL, [queue], { dueBy: Date.now(), management: { problem: "Secret rmq has no url key" } });
    assert.deepEqual(problem.inFlightUnseen, { cause: "ManagementFailed", message: "Secret rmq has no url key" });

    const url = await managementUrl();
    if (url) {
      // The management API refreshes its figures every few seconds: read until it has seen the deliveries.
      await until(async () => {
        const seen = await reader.read(AMQP_URL, [queue], { dueBy: Date.now(), management: { url } });
        assert.equal(seen.inFlightUnseen, undefined);
        return seen.queues[0]!.inFlight === 2;
      }, "the management API's unacked count", { timeout: 30_000, interval: 500 });
    }
    assert.equal(held, 2);
  });
});

describe("backlog signals: broker figures merged with the pods' in-progress gauges", () => {
  const q = (inFlight: number) => ({ queue: "mail", ready: 0, delayed: 4, inFlight, dead: 0, delayedDue: 3, delayedUnknownEta: 1 });

  const notConfigured = { cause: "NotConfigured", message: "no RabbitMQ management API is configured" } as const;

  test("RabbitMQ without a management API: the pods' gauges are the in-flight figure, complete only if every pod answered", () => {
    const pods = Array.from({ length: 8 }, () => load({ mail: 1 }));
    const all = backlogSignals({ queues: [q(0)], inFlightUnseen: notConfigured }, pods);
    assert.deepEqual(all.reading, { backlog: 8, delayedDue: 3, delayedUnknownEta: 1, busyPods: 8, complete: true });
    assert.equal(all.completeness.reason, "InFlightFromWorkers");
    assert.equal(all.queues[0]!.inFlight, 8);

    const partly = backlogSignals({ queues: [q(0)], inFlightUnseen: notConfigured }, [...pods.slice(0, 7), undefined]);
    assert.deepEqual(partly.reading, { backlog: 7, delayedDue: 3, delayedUnknownEta: 1, busyPods: 7, complete: false });
    assert.match(partly.completeness.message, /1 of 8 pods did not answer/);

    const unread = backlogSignals({ queues: [q(0)], inFlightUnseen: notConfigured }, undefined);
    assert.equal(unread.reading.complete, false);
    assert.equal(unread.reading.busyPods, undefined);
  });

  test("a configured management API that fails: in-flight from the pods' gauges, incomplete although every pod answered", () => {
    const pods = Array.from({ length: 3 }, () => load({ mail: 1 }));
    const failed = backlogSignals({ queues: [q(0)], inFlightUnseen: { cause: "ManagementFailed", message: "the RabbitMQ management API failed: ECONNREFUSED" } }, pods);
    assert.deepEqual(failed.reading, { backlog: 3, delayedDue: 3, delayedUnknownEta: 1, busyPods: 3, complete: false });
    assert.equal(failed.completeness.reason, "ManagementApiFailed");
    assert.match(failed.completeness.message, /^the RabbitMQ management API failed: ECONNREFUSED; in-flight messages from the 3 pods' dramatiq_messages_inprogress instead$/);
  });

  test("a broker that sees in-flight: the larger figure per queue, queues told apart by the gauge's label", () => {
    const pods = [load({ mail: 2, "mail.DQ": 1, other: 5 }), load({}), undefined];
    const { reading, queues, completeness } = backlogSignals({ queues: [q(1)] }, pods);
    // mail.DQ is the canonical mail; other is not one of the pool's queues here.
    assert.equal(queues[0]!.inFlight, 3);
    assert.deepEqual(reading, { backlog: 3, delayedDue: 3, delayedUnknownEta: 1, busyPods: 1, complete: true });
    assert.equal(completeness.reason, "AllRead");
    assert.equal(backlogSignals({ queues: [q(10)] }, pods).queues[0]!.inFlight, 10);
  });
});

describe("management API URL of a pool", () => {
  const spec = (management?: WorkerPoolSpec["broker"]["management"]) => ({ broker: { secretRef: { name: "b" }, management } }) as WorkerPoolSpec;
  const secrets: Record<string, string> = { "rmq/username": "ops@example", "rmq/password": "p:w/d", "full/url": "https://u:p@rmq.example:15671/" };
  const read = (name: string, key: string) => secrets[`${name}/${key}`];

  test("inline URL with the Secret's credentials, the Secret's URL, or the operator's default", async () => {
    const inline = await managementUrlOf(spec({ url: "http://rabbitmq:15672", secretRef: { name: "rmq" } }), read);
    const parsed = new URL(inline.url!);
    assert.deepEqual([decodeURIComponent(parsed.username), decodeURIComponent(parsed.password), parsed.host], ["ops@example", "p:w/d", "rabbitmq:15672"]);
    assert.equal((await managementUrlOf(spec({ url: "http://ignored:15672", secretRef: { name: "full" } }), read)).url, "https://u:p@rmq.example:15671/");
    assert.match((await managementUrlOf(spec({ secretRef: { name: "rmq" } }), read)).problem ?? "", /Secret rmq has no url key/);
    const saved = process.env.TROUPE_RABBITMQ_MANAGEMENT_URL;
    process.env.TROUPE_RABBITMQ_MANAGEMENT_URL = "http://guest:guest@default:15672";
    try {
      assert.equal((await managementUrlOf(spec(), read)).url, "http://guest:guest@default:15672");
    } finally {
      if (saved === undefined) delete process.env.TROUPE_RABBITMQ_MANAGEMENT_URL;
      else process.env.TROUPE_RABBITMQ_MANAGEMENT_URL = saved;
    }
  });
});

describe("next poll of a pool", () => {
  test("the poll interval, or sooner when a delayed message enters the horizon first", () => {
    const spec = autoscalingWithDefaults({ maxReplicas: 2, pollIntervalSeconds: 30 })!;
    assert.equal(nextPollInMs(spec, {}, 1000), 30_000);
    assert.equal(nextPollInMs(spec, { delayedEntersHorizonAt: 1000 + 12_345.2 }, 1000), 12_346);
    assert.equal(nextPollInMs(spec, { delayedEntersHorizonAt: 1000 + 90_000 }, 1000), 30_000);
    assert.equal(nextPollInMs(spec, { delayedEntersHorizonAt: 500 }, 1000), 1, "already inside: at once, never a negative delay");
  });
});
