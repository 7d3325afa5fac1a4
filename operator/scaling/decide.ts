import type { AutoscalingSpec, ScalingPolicy, ScalingRules } from "../api/types.js";

/** The signals one decision is made from: the backlog seen in one poll, who is busy, and the measured drain rate. */
export interface ScaleSignals {
  /**
   * Messages that need a worker now: ready + in-flight over the pool's queues. `undefined` when no queue could be
   * read (unreachable, timed out, no credentials): the decision then holds the current size.
   */
  backlog: number | undefined;
  /** Delayed messages due within the horizon (`delayedHorizonSeconds`): sized as if they were ready now. */
  delayedDue?: number;
  /**
   * Delayed messages whose eta could not be seen (RabbitMQ, an undecodable body): a worker must be running to
   * promote them when due, so while any exist the pool keeps one replica.
   */
  delayedUnknownEta?: number;
  /** Measured messages per second one replica completes; `undefined` until there is a measurement. */
  throughputPerReplica?: number;
  /**
   * Measured messages per second arriving at the pool's queues. With a drain rate, the pool is sized to keep up with
   * them as well as to drain the backlog; `undefined` (or without a drain rate) sizes on the backlog alone.
   */
  arrivalRate?: number;
  /**
   * Pods running at least one message; while their messages may be long, the pool never shrinks below
   * min(busyPods, current). `undefined`: unknown.
   */
  busyPods?: number;
  /**
   * Measured mean seconds a message runs. When it is at most a poll interval, a removed pod finishes its messages
   * within moments of its SIGTERM and the busy-pod floor does not apply; `undefined`: not measured, the floor holds.
   */
  messageSeconds?: number;
  /** False when part of the backlog could not be read (one queue of several, in-flight counts): never scale down. */
  complete?: boolean;
}

/** One past raw recommendation, for the stabilisation windows. */
export interface Recommendation {
  /** ms since the epoch. */
  time: number;
  replicas: number;
}

/** One past change of size (positive: up), for the behaviour policies' "per period" limits. */
export interface ScaleEvent {
  /** ms since the epoch. */
  time: number;
  change: number;
}

export type ScaleReason =
  | "MetricsUnavailable"
  | "Idle"
  | "DelayedMessages"
  | "Backlog"
  | "DrainRate"
  // Why a size that should move did not: only when the result is the current size.
  | "Stabilizing"
  | "RateLimited"
  | "BusyPods"
  | "BacklogIncomplete"
  | "Steady";

export interface ScaleInput {
  spec: AutoscalingSpec;
  observation: ScaleSignals;
  currentReplicas: number;
  /** ms since the epoch. */
  now: number;
  history: readonly Recommendation[];
  /** Past changes of size; none means none within any policy's period. */
  events?: readonly ScaleEvent[];
}

export interface ScaleDecision {
  replicas: number;
  /** The unstabilised recommendation of this poll (after tolerance and bounds). */
  recommended: number;
  reason: ScaleReason;
  message: string;
  /** History to pass to the next decision (old entries dropped). */
  history: Recommendation[];
  /** Scale events to pass to the next decision (old entries dropped, this decision's change added). */
  events: ScaleEvent[];
}

/** What one step of the decision did: the size it let through, and why, when it moved the size. */
interface Step {
  replicas: number;
  held?: ScaleReason;
  note?: string;
}

/**
 * Desired replicas of a pool: a pure function of spec, signals, current size, time and history. The steps, in order:
 *
 * 1. **Size** the backlog (ready + in-flight + delayed due within the horizon): with a target drain time and a
 *    measured per-replica throughput, exactly enough replicas to drain it in that time while keeping up with the
 *    measured arrival rate, (backlog / targetDrainSeconds + arrivals) / throughput; otherwise one replica per
 *    `targetBacklogPerReplica`. A running pool within `tolerance` of that size keeps its size; a pool at zero starts
 *    only above `activationBacklog`. Bounded to [max(min, 1), max] while there is work or arrivals.
 * 2. **Stabilise** as the HPA: a scale-up takes the lowest recommendation of the up window, a scale-down the
 *    highest of the down window.
 * 3. **Rate-limit** with the behaviour policies, counted from the size at the start of each policy's period.
 * 4. **Floors**: never below the pods still running messages (unless messages are measured to last at most a poll
 *    interval), and no scale-down at all on an incomplete reading.
 * 5. **Bounds** [min, max].
 *
 * An unreadable broker holds the current size: a pool is never scaled to zero because its broker cannot be read.
 */
export function decideReplicas(input: ScaleInput): ScaleDecision {
  const { spec, observation, now } = input;
  const current = Math.max(0, Math.floor(input.currentReplicas));
  const events = (input.events ?? []).filter((e) => e.time > now - longestPeriodMs(spec) && e.time <= now);
  const backlog = observation.backlog;
  if (!isCount(backlog)) {
    return {
      replicas: current,
      recommended: current,
      reason: "MetricsUnavailable",
      message: "queue depth unavailable: holding the current size",
      history: [...input.history],
      events,
    };
  }
  const sized = recommend(spec, observation, backlog, current);
  const recommended = clamp(sized.replicas, spec.minReplicas, spec.maxReplicas);
  const keep = Math.max(spec.scaleUpStabilizationSeconds, spec.scaleDownStabilizationSeconds) * 1000;
  const past = input.history.filter((r) => r.time > now - keep && r.time <= now);

  const steps: Step[] = [];
  let replicas = recommended;
  for (const step of [
    (r: number) => stabilise(spec, past, r, current, now),
    (r: number) => rateLimit(spec, events, r, current, now),
    (r: number) => busyFloor(spec, observation, r, current),
    (r: number) => completeness(observation, r, current),
  ]) {
    const s = step(replicas);
    if (s.replicas !== replicas) steps.push(s);
    replicas = s.replicas;
  }
  replicas = clamp(replicas, spec.minReplicas, spec.maxReplicas);

  const limits = steps.map((s) => s.note).filter((n): n is string => n !== undefined);
  const heldBy = [...steps].reverse().find((s) => s.held !== undefined)?.held;
  let reason: ScaleReason = sized.reason;
  if (replicas === current) reason = heldBy !== undefined && recommended !== current ? heldBy : "Steady";
  const message = [sized.message, ...limits].join("; ");
  return {
    replicas,
    recommended,
    reason,
    message: replicas !== recommended && limits.length ? `${message}: ${replicas === current ? "holding" : "going to"} ${replicas}` : message,
    history: [...past, { time: now, replicas: recommended }].slice(-1000),
    events: replicas === current ? events : [...events, { time: now, change: replicas - current }],
  };
}

/** The size the backlog alone asks for (step 1). */
function recommend(spec: AutoscalingSpec, signals: ScaleSignals, backlog: number, current: number): { replicas: number; reason: ScaleReason; message: string } {
  const due = isCount(signals.delayedDue) ? signals.delayedDue : 0;
  const work = backlog + due;
  const what = due > 0 ? `backlog ${work} (${due} delayed, due within ${spec.delayedHorizonSeconds}s)` : `backlog ${work}`;
  const unknownEta = isCount(signals.delayedUnknownEta) ? signals.delayedUnknownEta : 0;
  const atLeastOne = Math.max(spec.minReplicas, 1);
  const rate = signals.throughputPerReplica;
  const byRate = spec.targetDrainSeconds !== undefined && isCount(rate) && rate > 0;
  // Arrivals count only next to a drain rate: messages per second mean replicas only at a measured rate per replica.
  const arrival = byRate && isCount(signals.arrivalRate) ? signals.arrivalRate : 0;
  if ((work === 0 && arrival === 0) || (current === 0 && work <= spec.activationBacklog)) {
    if (unknownEta > 0) return { replicas: atLeastOne, reason: "DelayedMessages", message: `${unknownEta} delayed messages with no visible eta need a running worker` };
    return { replicas: spec.minReplicas, reason: "Idle", message: work === 0 ? "no backlog" : `${what} is within the activation backlog ${spec.activationBacklog}` };
  }
  const perReplica = byRate ? rate * spec.targetDrainSeconds! : spec.targetBacklogPerReplica;
  // The work of the next targetDrainSeconds: what is there now and what will arrive meanwhile. Within the horizon at
  // least the delayed messages due in it will arrive, and the measured rate already holds those promoted lately, so
  // the horizon counts the larger of the two, not their sum.
  const demand = byRate ? work - due + Math.max(due, arrival * spec.delayedHorizonSeconds) + arrival * Math.max(0, spec.targetDrainSeconds! - spec.delayedHorizonSeconds) : work;
  const needed = Math.ceil(demand / perReplica);
  const reason: ScaleReason = byRate ? "DrainRate" : "Backlog";
  const sizing = !byRate
    ? `${what} at ${spec.targetBacklogPerReplica} per replica needs ${needed} replicas`
    : arrival > 0
      ? `${what} and ${round(arrival)} msg/s arriving, at ${round(rate)} msg/s per replica, drain in ${spec.targetDrainSeconds}s with ${needed} replicas`
      : `${what} at ${round(rate)} msg/s per replica drains in ${spec.targetDrainSeconds}s with ${needed} replicas`;
  // As the HPA: a running pool whose load is within the tolerance of its size keeps that size, so a depth that
  // wobbles around a boundary does not resize the pool every poll. From zero there is no ratio: activation decides.
  if (current > 0 && Math.abs(demand - perReplica * current) <= spec.tolerance * perReplica * current) {
    return { replicas: clamp(current, atLeastOne, spec.maxReplicas), reason, message: `${sizing}, within the ${round(spec.tolerance * 100)} % tolerance of ${current}` };
  }
  // Down to the fewest replicas whose load is within the tolerance: the size the pool would then keep. The exact
  // size (a ceiling) would stay above a load that sits a little over a whole number of replicas, which the
  // scale-down window then holds for good.
  const fewest = demand < perReplica * current ? Math.max(1, Math.ceil(demand / (perReplica * (1 + spec.tolerance)))) : needed;
  return { replicas: clamp(fewest, atLeastOne, spec.maxReplicas), reason, message: fewest === needed ? sizing : `${sizing}, ${fewest} within the ${round(spec.tolerance * 100)} % tolerance` };
}

/** Step 2: HPA stabilisation over the recommendations of the windows. */
function stabilise(spec: AutoscalingSpec, past: readonly Recommendation[], recommended: number, current: number, now: number): Step {
  const within = (seconds: number) => [...past.filter((r) => r.time > now - seconds * 1000).map((r) => r.replicas), recommended];
  if (recommended > current) {
    const replicas = Math.max(current, Math.min(...within(spec.scaleUpStabilizationSeconds)));
    return { replicas, held: "Stabilizing", note: `lowest recommendation of the ${spec.scaleUpStabilizationSeconds}s scale-up window is ${replicas}` };
  }
  if (recommended < current) {
    const replicas = Math.min(current, Math.max(...within(spec.scaleDownStabilizationSeconds)));
    return { replicas, held: "Stabilizing", note: `highest recommendation of the ${spec.scaleDownStabilizationSeconds}s scale-down window is ${replicas}` };
  }
  return { replicas: recommended };
}

/** Step 3: the behaviour policies, as the HPA computes them (k8s.io/kubernetes pkg/controller/podautoscaler). */
function rateLimit(spec: AutoscalingSpec, events: readonly ScaleEvent[], replicas: number, current: number, now: number): Step {
  if (replicas > current) {
    const rules = spec.behavior.scaleUp;
    // A pool at zero may always start one pod: a percentage of nothing is nothing (the activation step).
    const limit = Math.max(scaleUpLimit(rules, events, current, now), current === 0 ? 1 : current);
    if (replicas <= limit) return { replicas };
    return { replicas: limit, held: "RateLimited", note: `the scale-up policy (${describeRules(rules)}) allows ${limit}` };
  }
  if (replicas < current) {
    const rules = spec.behavior.scaleDown;
    const limit = Math.min(scaleDownLimit(rules, events, current, now), current);
    if (replicas >= limit) return { replicas };
    return { replicas: limit, held: "RateLimited", note: `the scale-down policy (${describeRules(rules)}) allows ${limit}` };
  }
  return { replicas };
}

/** The most replicas the scale-up rules allow now; for `Disabled`, the current size. */
export function scaleUpLimit(rules: ScalingRules, events: readonly ScaleEvent[], current: number, now: number): number {
  if (rules.selectPolicy === "Disabled" || rules.policies.length === 0) return current;
  const proposals = rules.policies.map((p) => {
    const start = periodStart(p, events, current, now);
    return p.type === "Pods" ? start + p.value : Math.ceil(start * (1 + p.value / 100));
  });
  // Max picks the policy that allows the biggest change: for a scale-up, the highest limit.
  return rules.selectPolicy === "Max" ? Math.max(...proposals) : Math.min(...proposals);
}

/** The fewest replicas the scale-down rules allow now; for `Disabled`, the current size. */
export function scaleDownLimit(rules: ScalingRules, events: readonly ScaleEvent[], current: number, now: number): number {
  if (rules.selectPolicy === "Disabled" || rules.policies.length === 0) return current;
  const proposals = rules.policies.map((p) => {
    const start = periodStart(p, events, current, now);
    return Math.max(0, p.type === "Pods" ? start - p.value : Math.floor(start * (1 - p.value / 100)));
  });
  return rules.selectPolicy === "Max" ? Math.min(...proposals) : Math.max(...proposals);
}

/** The size at the start of the policy's period: the current size with the changes made within the period undone. */
function periodStart(policy: ScalingPolicy, events: readonly ScaleEvent[], current: number, now: number): number {
  const since = now - policy.periodSeconds * 1000;
  return Math.max(0, events.reduce((size, e) => (e.time > since && e.time <= now ? size - e.change : size), current));
}

/**
 * Step 4a: pods still running messages are not taken away, since the ReplicaSet might pick a busy one and its
 * messages could outlast the grace period. Not when messages are measured to take at most a poll interval: a
 * removed pod then stops consuming and finishes what it runs within seconds, and the deletion cost set before a
 * scale-down has the ReplicaSet remove the least busy pods first. Otherwise a steady stream that keeps every pod a
 * little busy would hold the pool at its peak size.
 */
function busyFloor(spec: AutoscalingSpec, signals: ScaleSignals, replicas: number, current: number): Step {
  if (!isCount(signals.busyPods) || replicas >= current) return { replicas };
  if (isCount(signals.messageSeconds) && signals.messageSeconds <= spec.pollIntervalSeconds) return { replicas };
  const floor = Math.min(signals.busyPods, current);
  if (replicas >= floor) return { replicas };
  return { replicas: floor, held: "BusyPods", note: `${signals.busyPods} pods are still running messages` };
}

/** Step 4b: an incomplete reading may hide work, so it can grow the pool but never shrink it. */
function completeness(signals: ScaleSignals, replicas: number, current: number): Step {
  if (signals.complete !== false || replicas >= current) return { replicas };
  return { replicas: current, held: "BacklogIncomplete", note: "part of the backlog could not be read, so the pool does not shrink" };
}

function describeRules(rules: ScalingRules): string {
  return `${rules.selectPolicy} of ${rules.policies.map((p) => `${p.value}${p.type === "Percent" ? " %" : " pods"} per ${p.periodSeconds}s`).join(", ")}`;
}

function longestPeriodMs(spec: AutoscalingSpec): number {
  return Math.max(0, ...[...spec.behavior.scaleUp.policies, ...spec.behavior.scaleDown.policies].map((p) => p.periodSeconds)) * 1000;
}

function isCount(value: number | undefined): value is number {
  return value !== undefined && Number.isFinite(value) && value >= 0;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), Math.max(min, max));
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
