import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Message, RedisBroker } from "troupe";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { namespaceWithBroker, operatorSuite, workerPoolManifest } from "../support/operator.js";
import { until } from "../support/wait.js";

describe("WorkerPool on real Redis: a delayed message is sized when it enters the horizon, not at the next poll", () => {
  const queue = uniqueName("horizon");
  const producer = new RedisBroker(REDIS_URL);
  const suite = operatorSuite();

  before(() => producer.connect());
  after(async () => {
    await producer.purge(queue);
    await producer.close();
  });

  test("a 60 s poll and a 2 s horizon: the pool is polled again when the message enters the horizon and scales before its eta", async () => {
    const { kc, cr } = suite;
    const ns = await namespaceWithBroker(kc, REDIS_URL);
    const sent = await producer.enqueue(new Message({ queueName: queue, actorName: "later", args: [] }), { delay: 5000 });
    const eta = sent.options.eta as number;
    await cr.create(
      "workerpools",
      ns,
      workerPoolManifest("horizon", { queues: [queue], autoscaling: { minReplicas: 0, maxReplicas: 2, pollIntervalSeconds: 60, delayedHorizonSeconds: 2, scaleDownStabilizationSeconds: 0 } }),
    );
    // The first poll sees the message 5 s ahead, beyond the horizon: idle, and the next poll at eta - 2 s.
    const scaled = await until(async () => {
      const pool = await cr.get("workerpools", ns, "horizon");
      return pool.status?.desiredReplicas === 1 ? pool : undefined;
    }, "the scale-up for the delayed message", { timeout: 20_000 });
    const at = Date.parse(scaled.status.lastScaleTime);
    assert.match(scaled.status.lastScaleReason, /^backlog 1 \(1 delayed, due within 2s\) at 100 per replica needs 1 replicas$/);
    assert.ok(at >= eta - 2000, `not before the message entered the horizon: scaled ${eta - at} ms before its eta`);
    assert.ok(at < eta, `before the message comes due: scaled at ${scaled.status.lastScaleTime}, eta ${new Date(eta).toISOString()}`);
  });
});
