import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { WorkerPool } from "../../operator/api/types.js";
import { poolStatus, type PoolOutcome } from "../../operator/resources/workerpool-status.js";

const pool = (status?: WorkerPool["status"]): WorkerPool => ({
  apiVersion: "troupe.dev/v1alpha1",
  kind: "WorkerPool",
  metadata: { name: "p", namespace: "ns", generation: 4 },
  spec: { image: "i", modules: ["m"], queues: ["q"], broker: { secretRef: { name: "b" } } },
  status,
});
const stats = [{ queue: "q", ready: 40, delayed: 1, inFlight: 2, dead: 0 }];
const steady: PoolOutcome = { current: 3, desired: 3, reason: "Steady", message: "", problems: [], stats, deploymentStatus: { replicas: 3, readyReplicas: 2 } };

describe("WorkerPool status", () => {
  test("an unchanged outcome gives an identical status (no write), with stable transition times", () => {
    const first = poolStatus(pool(), steady, new Date("2026-01-01T00:00:00Z"));
    const second = poolStatus(pool(first), steady, new Date("2026-01-01T00:05:00Z"));
    assert.deepEqual(second, first);
    assert.equal(first.backlog, 42);
    assert.equal(first.observedGeneration, 4);
    assert.deepEqual(first.conditions!.map((c) => [c.type, c.status, c.reason]), [["Ready", "True", "Reconciled"], ["Scaling", "False", "Steady"], ["BrokerReachable", "True", "QueueDepthRead"]]);
  });

  test("a scale sets the time and reason; a broker outage keeps the last depth and says why", () => {
    const scaled = poolStatus(pool(), { ...steady, desired: 5, reason: "Backlog", message: "backlog 500" }, new Date("2026-01-01T00:00:00Z"));
    assert.equal(scaled.lastScaleTime, "2026-01-01T00:00:00.000Z");
    assert.equal(scaled.lastScaleReason, "backlog 500");
    assert.equal(scaled.conditions!.find((c) => c.type === "Scaling")!.reason, "ScaledUp");
    const outage = poolStatus(pool(scaled), { ...steady, current: 5, desired: 5, stats: undefined, brokerProblem: { reason: "BrokerUnreachable", message: "connect ECONNREFUSED" } }, new Date("2026-01-01T00:01:00Z"));
    assert.equal(outage.backlog, 42, "the last known depth stays");
    assert.deepEqual(outage.queues, scaled.queues);
    assert.equal(outage.lastScaleTime, scaled.lastScaleTime);
    const broker = outage.conditions!.find((c) => c.type === "BrokerReachable")!;
    assert.deepEqual([broker.status, broker.reason, broker.lastTransitionTime], ["False", "BrokerUnreachable", "2026-01-01T00:01:00.000Z"]);
  });

  test("problems make Ready false with every problem in the message", () => {
    const status = poolStatus(pool(), { ...steady, problems: ["no queues", "something else"] }, new Date());
    const ready = status.conditions!.find((c) => c.type === "Ready")!;
    assert.deepEqual([ready.status, ready.reason, ready.message], ["False", "InvalidSpec", "no queues; something else"]);
  });
});
