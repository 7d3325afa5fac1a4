import type { AutoscalingSpec } from "../api/types.js";

/** The signals one decision is made from: the backlog seen in one poll and the measured drain rate. */
export interface ScaleSignals {
  /**
   * Messages that need a worker now: ready + in-flight over the pool's queues. `undefined` when the broker could not
   * be read (unreachable, timed out, no credentials): the decision then holds the current size.
   */
  backlog: number | undefined;
  /** Messages waiting for their eta (`q.DQ`): a worker must be running to promote them when due. */
  delayed?: number;
  /** Measured messages per second one replica completes; `undefined` until there is a measurement. */
  throughputPerReplica?: number;
}

/** One past raw recommendation, for the stabilisation windows. */
export interface Recommendation {
  /** ms since the epoch. */
  time: number;
  replicas: number;
}

export type ScaleReason = "MetricsUnavailable" | "Idle" | "DelayedMessages" | "Backlog" | "DrainRate" | "Stabilizing" | "Steady";

export interface ScaleInput {
  spec: AutoscalingSpec;
  observation: ScaleSignals;
  currentReplicas: number;
  /** ms since the epoch. */
  now: number;
  history: readonly Recommendation[];
}

export interface ScaleDecision {
  replicas: number;
  /** The unstabilised recommendation of this poll. */
  recommended: number;
  reason: ScaleReason;
  message: string;
  /** History to pass to the next decision (old entries dropped). */
  history: Recommendation[];
}

/**
 * Desired replicas of a pool: a pure function of spec, observation, current size, time and history.
 *
 * Sizing: with a target drain time and a measured per-replica throughput, exactly enough replicas to drain the backlog
 * in that time (no overshoot); otherwise one replica per `targetBacklogPerReplica` messages. Stabilisation works like
 * the HPA's: a scale-up takes the lowest recommendation of the up window, a scale-down the highest of the down
 * window, so a brief spike or dip does not move the pool. An unreadable broker holds the current size: a pool is
 * never scaled to zero because its broker is unreachable.
 */
export function decideReplicas(input: ScaleInput): ScaleDecision {
  const { spec, observation, now } = input;
  const current = Math.max(0, Math.floor(input.currentReplicas));
  const backlog = observation.backlog;
  if (backlog === undefined || !Number.isFinite(backlog) || backlog < 0) {
    return { replicas: current, recommended: current, reason: "MetricsUnavailable", message: "queue depth unavailable: holding the current size", history: [...input.history] };
  }
  const { replicas: recommended, reason: sizing, message: sizingMessage } = recommend(spec, observation, backlog);
  const keep = Math.max(spec.scaleUpStabilizationSeconds, spec.scaleDownStabilizationSeconds) * 1000;
  const past = input.history.filter((r) => r.time > now - keep && r.time <= now);
  const within = (seconds: number) => [...past.filter((r) => r.time > now - seconds * 1000).map((r) => r.replicas), recommended];

  let replicas = current;
  if (recommended > current) replicas = Math.max(current, Math.min(...within(spec.scaleUpStabilizationSeconds)));
  else if (recommended < current) replicas = Math.min(current, Math.max(...within(spec.scaleDownStabilizationSeconds)));
  replicas = clamp(replicas, spec.minReplicas, spec.maxReplicas);

  const held = replicas !== recommended;
  const window = recommended > current ? "scale-up" : "scale-down";
  return {
    replicas,
    recommended,
    reason: replicas === current ? (held ? "Stabilizing" : "Steady") : sizing,
    message: held ? `${sizingMessage}; ${replicas === current ? "holding" : "going to"} ${replicas} within the ${window} stabilisation window` : sizingMessage,
    history: [...past, { time: now, replicas: recommended }].slice(-1000),
  };
}

function recommend(spec: AutoscalingSpec, observation: ScaleSignals, backlog: number): { replicas: number; reason: ScaleReason; message: string } {
  const atLeastOne = Math.max(spec.minReplicas, 1);
  if (backlog === 0) {
    if ((observation.delayed ?? 0) > 0) {
      return { replicas: clamp(atLeastOne, spec.minReplicas, spec.maxReplicas), reason: "DelayedMessages", message: `${observation.delayed} delayed messages need a running worker` };
    }
    return { replicas: spec.minReplicas, reason: "Idle", message: "no backlog" };
  }
  const rate = observation.throughputPerReplica;
  if (spec.targetDrainSeconds !== undefined && rate !== undefined && Number.isFinite(rate) && rate > 0) {
    const needed = Math.ceil(backlog / (rate * spec.targetDrainSeconds));
    return {
      replicas: clamp(needed, atLeastOne, spec.maxReplicas),
      reason: "DrainRate",
      message: `backlog ${backlog} at ${round(rate)} msg/s per replica drains in ${spec.targetDrainSeconds}s with ${needed} replicas`,
    };
  }
  const needed = Math.ceil(backlog / spec.targetBacklogPerReplica);
  return {
    replicas: clamp(needed, atLeastOne, spec.maxReplicas),
    reason: "Backlog",
    message: `backlog ${backlog} at ${spec.targetBacklogPerReplica} per replica needs ${needed} replicas`,
  };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), Math.max(min, max));
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
