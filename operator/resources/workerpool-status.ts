import type { QueueStats } from "../../worker/broker.js";
import { setCondition } from "../api/conditions.js";
import type { WorkerPool, WorkerPoolStatus } from "../api/types.js";
import type { BacklogCompleteness } from "../scaling/backlog-sizer.js";
import { poolSelectorLabels, selectorString } from "./labels.js";

/** What one reconcile of a pool found and did, as its status reports it. */
export interface PoolOutcome {
  current: number;
  desired: number;
  /** Why the size is what it is (a ScaleReason, or "Steady"). */
  reason: string;
  message: string;
  problems: readonly string[];
  /** A write of a child object the API server refused, or a child's name held by an object that is not ours. */
  rejection?: { reason: string; message: string };
  brokerProblem?: { reason: string; message: string };
  stats?: QueueStats[];
  throughput?: number;
  /** Autoscaled pools whose broker answered: whether the whole backlog was read. */
  completeness?: BacklogCompleteness;
  deploymentStatus?: { replicas?: number; readyReplicas?: number };
}

/**
 * The status of a pool after a reconcile: a pure function of the pool (its previous status) and the outcome, so
 * an unchanged outcome gives an identical status and no write.
 */
export function poolStatus(pool: WorkerPool, outcome: PoolOutcome, now: Date): WorkerPoolStatus {
  const { current, desired, reason, message, problems, rejection, brokerProblem, stats, throughput } = outcome;
  const observedGeneration = pool.metadata.generation;
  const previous = pool.status ?? {};
  const scaled = desired !== current;
  let conditions = setCondition(previous.conditions, problems.length || rejection
    ? { type: "Ready", status: "False", reason: problems.length ? "InvalidSpec" : rejection!.reason, message: [...problems, ...(rejection ? [rejection.message] : [])].join("; "), observedGeneration }
    : { type: "Ready", status: "True", reason: "Reconciled", message: `Deployment ${pool.metadata.name} at ${desired} replicas`, observedGeneration }, now);
  conditions = setCondition(conditions, scaled
    ? { type: "Scaling", status: "True", reason: desired > current ? "ScaledUp" : "ScaledDown", message: `${current} → ${desired}: ${message}`, observedGeneration }
    : { type: "Scaling", status: "False", reason, message: message || "size unchanged", observedGeneration }, now);
  conditions = setCondition(conditions, brokerProblem
    ? { type: "BrokerReachable", status: "False", reason: brokerProblem.reason, message: brokerProblem.message, observedGeneration }
    : stats
      ? { type: "BrokerReachable", status: "True", reason: "QueueDepthRead", message: `read ${stats.length} queues`, observedGeneration }
      : { type: "BrokerReachable", status: "Unknown", reason: "NotRead", message: "queue depth not read", observedGeneration }, now);
  if (outcome.completeness) {
    const { complete, reason: why, message: detail } = outcome.completeness;
    conditions = setCondition(conditions, { type: "BacklogComplete", status: complete ? "True" : "False", reason: why, message: complete ? detail : `${detail}: the pool does not scale down`, observedGeneration }, now);
  } else if (brokerProblem && pool.spec.autoscaling) {
    conditions = setCondition(conditions, { type: "BacklogComplete", status: "Unknown", reason: "BrokerUnreachable", message: "the broker could not be read", observedGeneration }, now);
  }
  const status: WorkerPoolStatus = {
    observedGeneration,
    replicas: outcome.deploymentStatus?.replicas ?? 0,
    readyReplicas: outcome.deploymentStatus?.readyReplicas ?? 0,
    desiredReplicas: desired,
    selector: selectorString(poolSelectorLabels(pool.metadata.name)),
    backlog: stats ? stats.reduce((n, s) => n + s.ready + s.inFlight, 0) : previous.backlog,
    drainRatePerReplica: throughput === undefined ? previous.drainRatePerReplica : throughput.toFixed(3),
    lastScaleTime: scaled ? now.toISOString() : previous.lastScaleTime,
    lastScaleReason: scaled ? message : previous.lastScaleReason,
    queues: stats ? stats.map((s) => ({ name: s.queue, ready: s.ready, delayed: s.delayed, inFlight: s.inFlight, dead: s.dead })) : previous.queues,
    conditions,
  };
  // Undefined fields out, so the status compares equal to what the API server returns.
  return JSON.parse(JSON.stringify(status)) as WorkerPoolStatus;
}
