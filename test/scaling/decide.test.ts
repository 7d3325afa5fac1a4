import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { autoscalingWithDefaults, type AutoscalingSpec, type ScalingRules } from "../../operator/api/types.js";
import { SizeDecider } from "../../operator/scaling/size-decider.js";
import { decideReplicas, scaleDownLimit, scaleUpLimit, type Recommendation, type ScaleEvent, type ScaleSignals } from "../../operator/scaling/decide.js";
import { deletionCosts } from "../../operator/scaling/deletion-cost.js";
import { intervals, measureRates, measureThroughputPerReplica, type ThroughputSample } from "../../operator/scaling/throughput.js";
import { answeredCounters } from "../../operator/scaling/pod-load.js";

const spec = (over: Partial<AutoscalingSpec> = {}): AutoscalingSpec => ({ ...autoscalingWithDefaults({ maxReplicas: 10 })!, ...over });
const rules = (selectPolicy: ScalingRules["selectPolicy"], ...policies: ScalingRules["policies"]): ScalingRules => ({ selectPolicy, policies });
const up = (r: ScalingRules) => ({ behavior: { scaleUp: r, scaleDown: spec().behavior.scaleDown } });
const down = (r: ScalingRules) => ({ behavior: { scaleUp: spec().behavior.scaleUp, scaleDown: r } });
const T = 1_700_000_000_000;

describe("decideReplicas: table", () => {
  const cases: { name: string; spec?: Partial<AutoscalingSpec>; obs: ScaleSignals; current: number; history?: Recommendation[]; events?: ScaleEvent[]; want: number; reason: string }[] = [
    { name: "idle pool stays at zero", obs: { backlog: 0 }, current: 0, want: 0, reason: "Steady" },
    { name: "backlog on an idle pool scales up at once", obs: { backlog: 1 }, current: 0, want: 1, reason: "Backlog" },
    { name: "backlog per replica", obs: { backlog: 450 }, current: 1, want: 5, reason: "Backlog" },
    { name: "capped at maxReplicas", obs: { backlog: 100_000 }, current: 6, want: 10, reason: "Backlog" },
    { name: "floor at minReplicas", spec: { minReplicas: 2 }, obs: { backlog: 0 }, current: 2, want: 2, reason: "Steady" },
    { name: "broker unreachable holds a running pool", obs: { backlog: undefined }, current: 4, want: 4, reason: "MetricsUnavailable" },
    { name: "broker unreachable never scales to zero", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: undefined }, current: 3, want: 3, reason: "MetricsUnavailable" },
    { name: "NaN depth counts as missing", obs: { backlog: Number.NaN }, current: 2, want: 2, reason: "MetricsUnavailable" },
    { name: "delayed messages with no visible eta keep one worker", obs: { backlog: 0, delayedUnknownEta: 3 }, current: 0, want: 1, reason: "DelayedMessages" },
    { name: "delayed messages due within the horizon are sized like ready ones", obs: { backlog: 0, delayedDue: 300 }, current: 0, want: 3, reason: "Backlog" },
    { name: "delayed messages beyond the horizon let the pool go to zero", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 0, delayedDue: 0 }, current: 2, want: 0, reason: "Idle" },
    { name: "delayed due adds to the ready backlog", obs: { backlog: 250, delayedDue: 250 }, current: 1, want: 5, reason: "Backlog" },
    // Tolerance, as the HPA's: |needed / current - 1| <= tolerance keeps the size.
    { name: "within the tolerance a running pool keeps its size", obs: { backlog: 440 }, current: 4, want: 4, reason: "Steady" },
    { name: "within the tolerance on the way down too", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 370 }, current: 4, want: 4, reason: "Steady" },
    { name: "beyond the tolerance the pool grows", obs: { backlog: 460 }, current: 4, want: 5, reason: "Backlog" },
    { name: "tolerance 0 follows every change", spec: { tolerance: 0 }, obs: { backlog: 410 }, current: 4, want: 5, reason: "Backlog" },
    { name: "no tolerance from zero: any backlog starts the pool", spec: { tolerance: 0.5 }, obs: { backlog: 120 }, current: 0, want: 2, reason: "Backlog" },
    // Activation: the 0 -> 1 step has a threshold of its own.
    { name: "a backlog at the activation threshold leaves the pool at zero", spec: { activationBacklog: 50 }, obs: { backlog: 50 }, current: 0, want: 0, reason: "Steady" },
    { name: "a backlog above the activation threshold starts the pool", spec: { activationBacklog: 50 }, obs: { backlog: 51 }, current: 0, want: 1, reason: "Backlog" },
    { name: "activation does not stop a running pool", spec: { activationBacklog: 50, scaleDownStabilizationSeconds: 0 }, obs: { backlog: 40 }, current: 3, want: 1, reason: "Backlog" },
    { name: "activation with delayed messages of unknown eta keeps one", spec: { activationBacklog: 50 }, obs: { backlog: 10, delayedUnknownEta: 1 }, current: 0, want: 1, reason: "DelayedMessages" },
    // Behaviour policies.
    { name: "default scale-up from zero: 4 pods per 15 s", spec: { maxReplicas: 30 }, obs: { backlog: 2000 }, current: 0, want: 4, reason: "Backlog" },
    { name: "default scale-up: Max of 4 pods and 100 %", spec: { maxReplicas: 50 }, obs: { backlog: 5000 }, current: 10, want: 20, reason: "Backlog" },
    { name: "selectPolicy Min takes the smaller change", spec: { maxReplicas: 50, ...up(rules("Min", { type: "Pods", value: 4, periodSeconds: 15 }, { type: "Percent", value: 100, periodSeconds: 15 })) }, obs: { backlog: 5000 }, current: 10, want: 14, reason: "Backlog" },
    { name: "a Percent-only policy still starts a pool at zero", spec: up(rules("Max", { type: "Percent", value: 100, periodSeconds: 15 })), obs: { backlog: 900 }, current: 0, want: 1, reason: "Backlog" },
    { name: "scale-up Disabled holds", spec: up(rules("Disabled", { type: "Pods", value: 4, periodSeconds: 15 })), obs: { backlog: 1000 }, current: 2, want: 2, reason: "RateLimited" },
    { name: "scale-down Disabled holds", spec: { scaleDownStabilizationSeconds: 0, ...down(rules("Disabled")) }, obs: { backlog: 0 }, current: 5, want: 5, reason: "RateLimited" },
    {
      name: "the limit counts from the size at the period's start",
      spec: { maxReplicas: 30, ...up(rules("Max", { type: "Pods", value: 4, periodSeconds: 15 })) },
      obs: { backlog: 3000 },
      current: 8,
      events: [{ time: T - 10_000, change: 4 }],
      want: 8,
      reason: "RateLimited",
    },
    {
      name: "changes older than the period do not count",
      spec: { maxReplicas: 30, ...up(rules("Max", { type: "Pods", value: 4, periodSeconds: 15 })) },
      obs: { backlog: 3000 },
      current: 8,
      events: [{ time: T - 20_000, change: 4 }],
      want: 12,
      reason: "Backlog",
    },
    { name: "scale-down by Pods per period", spec: { scaleDownStabilizationSeconds: 0, ...down(rules("Max", { type: "Pods", value: 1, periodSeconds: 60 })) }, obs: { backlog: 0 }, current: 5, want: 4, reason: "Idle" },
    { name: "scale-down by Percent rounds towards keeping pods", spec: { scaleDownStabilizationSeconds: 0, ...down(rules("Max", { type: "Percent", value: 50, periodSeconds: 60 })) }, obs: { backlog: 0 }, current: 5, want: 2, reason: "Idle" },
    {
      name: "a scale-down earlier in the period uses up the scale-down budget",
      spec: { scaleDownStabilizationSeconds: 0, ...down(rules("Max", { type: "Pods", value: 2, periodSeconds: 60 })) },
      obs: { backlog: 0 },
      current: 4,
      events: [{ time: T - 30_000, change: -2 }],
      want: 4,
      reason: "RateLimited",
    },
    { name: "minReplicas wins over a disabled scale-up", spec: { minReplicas: 3, ...up(rules("Disabled")) }, obs: { backlog: 0 }, current: 1, want: 3, reason: "Idle" },
    // Pods with work in flight, and incomplete readings.
    { name: "never below the pods still running messages", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 8, busyPods: 8 }, current: 8, want: 8, reason: "BusyPods" },
    { name: "down to the busy pods, not below", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 3, busyPods: 3 }, current: 8, want: 3, reason: "Backlog" },
    { name: "busy pods beyond the current size floor at the current size", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 10, busyPods: 12 }, current: 4, want: 4, reason: "BusyPods" },
    { name: "busy pods do not stop a scale-up", obs: { backlog: 900, busyPods: 1 }, current: 2, want: 6, reason: "Backlog" },
    { name: "a lowered max wins over busy pods", spec: { maxReplicas: 2, scaleDownStabilizationSeconds: 0 }, obs: { backlog: 5, busyPods: 5 }, current: 5, want: 2, reason: "Backlog" },
    { name: "an incomplete reading never shrinks", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 0, complete: false }, current: 3, want: 3, reason: "BacklogIncomplete" },
    { name: "an incomplete reading may still grow the pool", obs: { backlog: 900, complete: false }, current: 3, want: 7, reason: "Backlog" },
    {
      name: "drained pool scales to zero after the down window",
      spec: { scaleDownStabilizationSeconds: 30 },
      obs: { backlog: 0 },
      current: 3,
      history: [{ time: T - 31_000, replicas: 3 }],
      want: 0,
      reason: "Idle",
    },
    {
      name: "drained pool holds within the down window",
      spec: { scaleDownStabilizationSeconds: 30 },
      obs: { backlog: 0 },
      current: 3,
      history: [{ time: T - 10_000, replicas: 3 }],
      want: 3,
      reason: "Stabilizing",
    },
    {
      name: "scale-down goes to the highest recommendation of the window",
      spec: { scaleDownStabilizationSeconds: 30 },
      obs: { backlog: 100 },
      current: 6,
      history: [{ time: T - 40_000, replicas: 6 }, { time: T - 20_000, replicas: 4 }, { time: T - 5_000, replicas: 2 }],
      want: 4,
      reason: "Backlog",
    },
    {
      name: "scale-up stabilisation takes the lowest recommendation of the window",
      spec: { scaleUpStabilizationSeconds: 30 },
      obs: { backlog: 900 },
      current: 1,
      history: [{ time: T - 20_000, replicas: 3 }, { time: T - 10_000, replicas: 5 }],
      want: 3,
      reason: "Backlog",
    },
    {
      name: "drain rate sizes exactly for the target drain time",
      spec: { targetDrainSeconds: 60 },
      obs: { backlog: 1200, throughputPerReplica: 5 },
      current: 1,
      want: 4,
      reason: "DrainRate",
    },
    {
      name: "drain rate avoids the overshoot of backlog sizing",
      spec: { targetDrainSeconds: 60, targetBacklogPerReplica: 10 },
      obs: { backlog: 60, throughputPerReplica: 1 },
      current: 1,
      want: 1,
      reason: "Steady",
    },
    { name: "without a measured rate the backlog target applies", spec: { targetDrainSeconds: 60 }, obs: { backlog: 250 }, current: 0, want: 3, reason: "Backlog" },
    { name: "current above a lowered max comes down", spec: { maxReplicas: 2, scaleDownStabilizationSeconds: 0 }, obs: { backlog: 1000 }, current: 5, want: 2, reason: "Backlog" },
    // Arrivals: with a drain rate, (backlog + arrivals over the drain time) / (rate × drain time). The default
    // horizon is 35 s (5 s poll + 30 s start-up); the drain time here 60 s or 120 s.
    { name: "arrivals at a measured rate are sized on as well as the backlog", spec: { targetDrainSeconds: 60 }, obs: { backlog: 300, throughputPerReplica: 5, arrivalRate: 20 }, current: 1, want: 5, reason: "DrainRate" },
    { name: "arrivals keep a pool with an empty backlog at what keeps up with them", spec: { targetDrainSeconds: 120, scaleDownStabilizationSeconds: 0 }, obs: { backlog: 0, throughputPerReplica: 4, arrivalRate: 20 }, current: 5, want: 5, reason: "Steady" },
    { name: "arrivals without a drain target are not sized on", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 0, throughputPerReplica: 4, arrivalRate: 20 }, current: 5, want: 0, reason: "Idle" },
    { name: "arrivals without a measured rate are not sized on", spec: { targetDrainSeconds: 120, scaleDownStabilizationSeconds: 0 }, obs: { backlog: 0, arrivalRate: 20 }, current: 5, want: 0, reason: "Idle" },
    { name: "delayed messages due within the horizon are not added to the arrivals they are part of", spec: { targetDrainSeconds: 120 }, obs: { backlog: 0, delayedDue: 700, throughputPerReplica: 4, arrivalRate: 20 }, current: 5, want: 5, reason: "Steady" },
    { name: "a delayed wave above the measured arrivals counts in full", spec: { targetDrainSeconds: 120 }, obs: { backlog: 0, delayedDue: 1400, throughputPerReplica: 4, arrivalRate: 20 }, current: 5, want: 7, reason: "DrainRate" },
    // Scale-down to the fewest replicas within the tolerance of the load, not to its ceiling.
    { name: "a scale-down goes to the fewest replicas within the tolerance", spec: { targetDrainSeconds: 120, scaleDownStabilizationSeconds: 0 }, obs: { backlog: 0, throughputPerReplica: 4, arrivalRate: 20.6 }, current: 6, want: 5, reason: "DrainRate" },
    { name: "the fewest within the tolerance, by backlog per replica", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 520 }, current: 7, want: 5, reason: "Backlog" },
    { name: "a scale-down stops where the tolerance would no longer hold", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 560 }, current: 8, want: 6, reason: "Backlog" },
    // The busy-pod floor holds only while messages may be long.
    { name: "messages measured to take at most a poll: busy pods do not hold the size", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 8, busyPods: 8, messageSeconds: 5 }, current: 8, want: 1, reason: "Backlog" },
    { name: "messages measured to take longer than a poll: busy pods hold the size", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: 8, busyPods: 8, messageSeconds: 5.5 }, current: 8, want: 8, reason: "BusyPods" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideReplicas({ spec: spec(c.spec), observation: c.obs, currentReplicas: c.current, now: T, history: c.history ?? [], events: c.events });
      assert.equal(d.replicas, c.want, d.message);
      assert.equal(d.reason, c.reason, d.message);
    });
  }
});

const arbPolicy = fc.record({ type: fc.constantFrom("Pods" as const, "Percent" as const), value: fc.integer({ min: 1, max: 200 }), periodSeconds: fc.integer({ min: 1, max: 1800 }) });
const arbRules = fc.record({ selectPolicy: fc.constantFrom("Max" as const, "Min" as const, "Disabled" as const), policies: fc.array(arbPolicy, { minLength: 1, maxLength: 3 }) });
const arbSpec = fc
  .record({
    minReplicas: fc.integer({ min: 0, max: 5 }),
    extra: fc.integer({ min: 0, max: 20 }),
    targetBacklogPerReplica: fc.integer({ min: 1, max: 500 }),
    targetDrainSeconds: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    up: fc.integer({ min: 0, max: 120 }),
    down: fc.integer({ min: 0, max: 600 }),
    tolerance: fc.constantFrom(0, 0.05, 0.1, 0.5),
    activationBacklog: fc.integer({ min: 0, max: 50 }),
    behavior: fc.option(fc.record({ scaleUp: arbRules, scaleDown: arbRules }), { nil: undefined }),
  })
  .map((r) =>
    spec({
      minReplicas: r.minReplicas,
      maxReplicas: Math.max(1, r.minReplicas + r.extra),
      targetBacklogPerReplica: r.targetBacklogPerReplica,
      targetDrainSeconds: r.targetDrainSeconds,
      scaleUpStabilizationSeconds: r.up,
      scaleDownStabilizationSeconds: r.down,
      tolerance: r.tolerance,
      activationBacklog: r.activationBacklog,
      ...(r.behavior ? { behavior: r.behavior } : {}),
    }),
  );
const arbObservation = fc.record({
  backlog: fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined }),
  delayedDue: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
  delayedUnknownEta: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
  throughputPerReplica: fc.option(fc.double({ min: 0.001, max: 10_000, noNaN: true }), { nil: undefined }),
  arrivalRate: fc.option(fc.double({ min: 0, max: 10_000, noNaN: true }), { nil: undefined }),
  busyPods: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  messageSeconds: fc.option(fc.double({ min: 0, max: 3600, noNaN: true }), { nil: undefined }),
  complete: fc.option(fc.boolean(), { nil: undefined }),
});
const arbHistory = fc.array(fc.record({ time: fc.integer({ min: T - 700_000, max: T }), replicas: fc.integer({ min: 0, max: 30 }) }), { maxLength: 20 });
const arbEvents = fc.array(fc.record({ time: fc.integer({ min: T - 2_000_000, max: T }), change: fc.integer({ min: -10, max: 10 }).filter((n) => n !== 0) }), { maxLength: 10 });
const arbInput = fc.record({ spec: arbSpec, observation: arbObservation, currentReplicas: fc.integer({ min: 0, max: 30 }), now: fc.constant(T), history: arbHistory, events: arbEvents });

describe("decideReplicas: properties", () => {
  test("stays within [min, max] whenever the depth is known", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        fc.pre(input.observation.backlog !== undefined);
        const d = decideReplicas(input);
        assert.ok(d.replicas >= input.spec.minReplicas && d.replicas <= input.spec.maxReplicas, `${d.replicas} not in [${input.spec.minReplicas}, ${input.spec.maxReplicas}]`);
      }),
    );
  });

  test("missing depth never changes the size", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const d = decideReplicas({ ...input, observation: { ...input.observation, backlog: undefined } });
        assert.equal(d.replicas, input.currentReplicas);
      }),
    );
  });

  test("a backlog above the activation threshold always has a replica without an up window, unless scale-up is disabled", () => {
    fc.assert(
      fc.property(arbInput, fc.integer({ min: 51, max: 1_000_000 }), (input, backlog) => {
        fc.pre(input.spec.behavior.scaleUp.selectPolicy !== "Disabled" || input.currentReplicas > 0);
        const d = decideReplicas({ ...input, spec: { ...input.spec, scaleUpStabilizationSeconds: 0 }, observation: { ...input.observation, backlog } });
        assert.ok(d.replicas >= 1);
      }),
    );
  });

  test("more backlog, or more delayed work due, never means fewer replicas", () => {
    fc.assert(
      fc.property(arbInput, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), fc.boolean(), (input, a, b, asDue) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const at = (n: number) => decideReplicas({ ...input, observation: { ...input.observation, ...(asDue ? { backlog: input.observation.backlog ?? 0, delayedDue: n } : { backlog: n }) } });
        assert.ok(at(hi).replicas >= at(lo).replicas);
      }),
    );
  });

  test("deterministic: the same inputs give the same decision", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        assert.deepEqual(decideReplicas(input), decideReplicas(input));
      }),
    );
  });

  test("never below the busy pods (up to the current size), unless max is lower, while messages may be long", () => {
    fc.assert(
      fc.property(arbInput, fc.integer({ min: 0, max: 40 }), (input, busyPods) => {
        fc.pre(input.observation.backlog !== undefined);
        const seconds = input.observation.messageSeconds;
        fc.pre(seconds === undefined || seconds > input.spec.pollIntervalSeconds);
        const d = decideReplicas({ ...input, observation: { ...input.observation, busyPods } });
        assert.ok(d.replicas >= Math.min(busyPods, input.currentReplicas, input.spec.maxReplicas), `${d.replicas} < min(${busyPods}, ${input.currentReplicas})`);
      }),
    );
  });

  test("messages measured to take at most a poll: busy pods change nothing", () => {
    fc.assert(
      fc.property(arbInput, fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (input, busyPods, share) => {
        const observation = { ...input.observation, messageSeconds: share * input.spec.pollIntervalSeconds };
        const busy = decideReplicas({ ...input, observation: { ...observation, busyPods } });
        const unknown = decideReplicas({ ...input, observation: { ...observation, busyPods: undefined } });
        assert.equal(busy.replicas, unknown.replicas);
      }),
    );
  });

  test("more arrivals never mean fewer replicas", () => {
    fc.assert(
      fc.property(arbInput, fc.double({ min: 0, max: 10_000, noNaN: true }), fc.double({ min: 0, max: 10_000, noNaN: true }), (input, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const at = (arrivalRate: number) => decideReplicas({ ...input, observation: { ...input.observation, arrivalRate } });
        assert.ok(at(hi).replicas >= at(lo).replicas);
      }),
    );
  });

  test("an incomplete reading never shrinks the pool, unless max is lower", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const d = decideReplicas({ ...input, observation: { ...input.observation, complete: false } });
        assert.ok(d.replicas >= Math.min(input.currentReplicas, input.spec.maxReplicas));
      }),
    );
  });

  test("every change stays within the behaviour policies, unless the bounds force it", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        fc.pre(input.observation.backlog !== undefined);
        const { spec: s, currentReplicas: current, events, now } = input;
        const d = decideReplicas(input);
        const kept = events.filter((e) => e.time <= now);
        if (d.replicas > current && d.replicas > s.minReplicas) assert.ok(d.replicas <= Math.max(scaleUpLimit(s.behavior.scaleUp, kept, current, now), current === 0 ? 1 : current));
        if (d.replicas < current && d.replicas < s.maxReplicas) assert.ok(d.replicas >= scaleDownLimit(s.behavior.scaleDown, kept, current, now));
      }),
    );
  });

  test("within the tolerance of a running pool, nothing moves", () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 10 }), fc.double({ min: -1, max: 1, noNaN: true }), (s, current, wobble) => {
        fc.pre(current >= s.minReplicas && current <= s.maxReplicas);
        const backlog = Math.max(1, Math.round(current * s.targetBacklogPerReplica * (1 + wobble * s.tolerance * 0.99)));
        // Rounding to a whole message can carry a backlog just inside the band across its edge (12.5 → 13 at 6 per
        // replica, 2 replicas, 5 %): only backlogs really within the tolerance are the property's.
        fc.pre(Math.abs(backlog - current * s.targetBacklogPerReplica) <= s.tolerance * current * s.targetBacklogPerReplica);
        fc.pre(backlog > s.activationBacklog);
        const d = decideReplicas({ spec: { ...s, targetDrainSeconds: undefined }, observation: { backlog }, currentReplicas: current, now: T, history: [] });
        assert.equal(d.replicas, current, d.message);
      }),
    );
  });

  test("with a measured rate, the pool drains within the target time and one replica fewer would not", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0.01, max: 1000, noNaN: true }), fc.integer({ min: 1, max: 600 }), (backlog, rate, drain) => {
        const s = spec({ maxReplicas: 1e12, targetDrainSeconds: drain, scaleDownStabilizationSeconds: 0, behavior: { scaleUp: rules("Max", { type: "Pods", value: 1e12, periodSeconds: 1 }), scaleDown: spec().behavior.scaleDown } });
        const d = decideReplicas({ spec: s, observation: { backlog, throughputPerReplica: rate }, currentReplicas: 0, now: T, history: [] });
        assert.ok(d.replicas * rate * drain >= backlog - 1e-6, "drains in time");
        if (d.replicas > 1) assert.ok((d.replicas - 1) * rate * drain < backlog + 1e-6, "no overshoot");
      }),
    );
  });

  test("with a measured rate and arrivals, the pool drains the backlog within the target time while keeping up, and one replica fewer would not", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.double({ min: 0.01, max: 1000, noNaN: true }), fc.double({ min: 0, max: 1000, noNaN: true }), fc.integer({ min: 1, max: 600 }), (backlog, rate, arrivals, drain) => {
        // A pool at zero starts on a backlog; arrivals are only measured on a running pool.
        fc.pre(backlog > 0);
        const s = spec({ maxReplicas: 1e12, targetDrainSeconds: drain, scaleDownStabilizationSeconds: 0, behavior: { scaleUp: rules("Max", { type: "Pods", value: 1e12, periodSeconds: 1 }), scaleDown: spec().behavior.scaleDown } });
        const d = decideReplicas({ spec: s, observation: { backlog, throughputPerReplica: rate, arrivalRate: arrivals }, currentReplicas: 0, now: T, history: [] });
        // Arrivals count over the drain time, and at least over the horizon a delayed message is sized ahead of.
        const work = backlog + arrivals * Math.max(drain, s.delayedHorizonSeconds);
        assert.ok(d.replicas * rate * drain >= work * (1 - 1e-9), "drains in time");
        if (d.replicas > 1) assert.ok((d.replicas - 1) * rate * drain < work * (1 + 1e-9), "no overshoot");
      }),
    );
  });

  test("flapping depth inside the down window does not shrink the pool", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 2, maxLength: 40 }), (depths) => {
        const s = spec({ scaleDownStabilizationSeconds: 600, maxReplicas: 10 });
        let current = 0;
        let history: Recommendation[] = [];
        let events: ScaleEvent[] = [];
        let peak = 0;
        depths.forEach((backlog, i) => {
          const d = decideReplicas({ spec: s, observation: { backlog }, currentReplicas: current, now: T + i * 5000, history, events });
          assert.ok(d.replicas >= Math.min(peak, current), "no shrink below the window's peak");
          peak = Math.max(peak, d.recommended);
          current = d.replicas;
          history = d.history;
          events = d.events;
        });
      }),
    );
  });

  test("over a run of polls, a change never takes the size further than a Pods policy allows from where its period started", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 2, maxLength: 60 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 5, max: 60 }), (depths, pods, period) => {
        const only = rules("Max", { type: "Pods", value: pods, periodSeconds: period });
        const s = spec({ maxReplicas: 40, scaleDownStabilizationSeconds: 0, behavior: { scaleUp: only, scaleDown: only } });
        let current = 0;
        let history: Recommendation[] = [];
        let events: ScaleEvent[] = [];
        const sizes: { time: number; replicas: number }[] = [{ time: -Infinity, replicas: 0 }];
        depths.forEach((backlog, i) => {
          const now = T + i * 5000;
          const d = decideReplicas({ spec: s, observation: { backlog }, currentReplicas: current, now, history, events });
          const atStart = sizes.filter((z) => z.time <= now - period * 1000).at(-1)!.replicas;
          if (d.replicas > current) assert.ok(d.replicas <= Math.max(1, atStart + pods), `${atStart} → ${d.replicas} within ${period}s: ${d.message}`);
          if (d.replicas < current) assert.ok(d.replicas >= atStart - pods, `${atStart} → ${d.replicas} within ${period}s: ${d.message}`);
          ({ history, events } = d);
          current = d.replicas;
          sizes.push({ time: now, replicas: current });
        });
      }),
    );
  });

  test("an idle, fully read pool reaches minReplicas once its windows and periods have passed", () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 0, max: 30 }), (s, start) => {
        fc.pre(s.behavior.scaleDown.selectPolicy !== "Disabled");
        let current = start;
        let history: Recommendation[] = [{ time: T, replicas: start }];
        let events: ScaleEvent[] = [];
        const step = Math.max(s.scaleDownStabilizationSeconds, ...s.behavior.scaleDown.policies.map((p) => p.periodSeconds)) * 1000 + 1000;
        for (let i = 1; i <= 40 && current !== Math.min(Math.max(current, s.minReplicas), s.minReplicas); i++) {
          const d = decideReplicas({ spec: s, observation: { backlog: 0, busyPods: 0 }, currentReplicas: current, now: T + i * step, history, events });
          ({ history, events } = d);
          current = d.replicas;
        }
        if (start >= s.minReplicas || s.behavior.scaleUp.selectPolicy !== "Disabled") assert.equal(current, s.minReplicas);
      }),
    );
  });
});

describe("scale to zero and back", () => {
  test("a pool follows a backlog up, holds, and returns to zero after the window", () => {
    const autoscaler = new SizeDecider();
    const s = spec({ scaleDownStabilizationSeconds: 20, maxReplicas: 5 });
    const steps: [number, number][] = [
      [0, 0],
      [350, 4],
      [200, 4],
      [0, 4],
      [0, 4],
      // The 4 of step 1 has left the 20 s window; the 2 of step 2 has not.
      [0, 2],
      [0, 0],
      [10, 1],
    ];
    steps.forEach(([backlog, want], i) => {
      const current = i === 0 ? 0 : steps[i - 1]![1];
      const d = autoscaler.decide(s, { backlog }, current, T + i * 5_000);
      assert.equal(d.replicas, want, `step ${i}: ${d.message}`);
    });
  });

  test("a new autoscaler (a new leader) does not shrink before a full down window", () => {
    const autoscaler = new SizeDecider();
    const s = spec({ scaleDownStabilizationSeconds: 30 });
    assert.equal(autoscaler.decide(s, { backlog: 0 }, 4, T).replicas, 4);
    assert.equal(autoscaler.decide(s, { backlog: 0 }, 4, T + 20_000).replicas, 4);
    assert.equal(autoscaler.decide(s, { backlog: 0 }, 4, T + 31_000).replicas, 0);
  });

  test("an outage in the middle of a drain holds the size", () => {
    const autoscaler = new SizeDecider();
    const s = spec({ scaleDownStabilizationSeconds: 0 });
    assert.equal(autoscaler.decide(s, { backlog: 300 }, 0, T).replicas, 3);
    assert.equal(autoscaler.decide(s, { backlog: undefined }, 3, T + 5000).replicas, 3);
    assert.equal(autoscaler.decide(s, { backlog: undefined }, 3, T + 600_000).replicas, 3);
    assert.equal(autoscaler.decide(s, { backlog: 0 }, 3, T + 605_000).replicas, 0);
  });
});

describe("throughput and deletion cost", () => {
  test("throughput from processed counters", () => {
    const rate = measureThroughputPerReplica([
      { time: T, backlog: 100, replicas: 2, processed: 0 },
      { time: T + 10_000, backlog: 120, replicas: 2, processed: 40 },
    ]);
    assert.equal(rate, 2);
  });

  test("throughput from a falling backlog is a lower bound; idle intervals say nothing", () => {
    assert.equal(measureThroughputPerReplica([{ time: T, backlog: 100, replicas: 2 }, { time: T + 10_000, backlog: 60, replicas: 2 }]), 2);
    assert.equal(measureThroughputPerReplica([{ time: T, backlog: 0, replicas: 2 }, { time: T + 10_000, backlog: 0, replicas: 2 }]), undefined);
    assert.equal(measureThroughputPerReplica([{ time: T, backlog: 50, replicas: 0 }, { time: T + 10_000, backlog: 10, replicas: 0 }]), undefined);
  });

  test("capacity only from intervals where messages waited for the pods at both ends", () => {
    // 2 pods: 20 s with work waiting (backlog above what they run), completing 8 msg/s; then 20 s keeping up with
    // 3 msg/s, everything they hold running.
    const samples: ThroughputSample[] = [
      { time: T, backlog: 200, replicas: 2, processed: 0, running: 16 },
      { time: T + 10_000, backlog: 150, replicas: 2, processed: 80, running: 16 },
      { time: T + 20_000, backlog: 100, replicas: 2, processed: 160, running: 16 },
      { time: T + 30_000, backlog: 6, replicas: 2, processed: 284, running: 6 },
      { time: T + 40_000, backlog: 6, replicas: 2, processed: 314, running: 6 },
    ];
    const rates = measureRates(intervals(samples));
    assert.equal(rates.capacityPerReplica, 4);
    assert.equal(rates.completedPerReplica, 314 / 80);
    // Arrivals: completed + the backlog's growth, (314 - 194) / 40 s.
    assert.equal(rates.arrivalRate, 3);
    assert.equal(measureRates(intervals(samples.slice(3))).capacityPerReplica, undefined, "keeping up says nothing about capacity");
    assert.equal(measureRates(intervals(samples.slice(3))).completedPerReplica, 1.5, "only a lower bound");
  });

  test("counters are compared only between polls read from as many pods", () => {
    const samples: ThroughputSample[] = [
      { time: T, backlog: 100, replicas: 3, processed: 900, running: 24 },
      // A pod's scrape timed out: its counter left the sum.
      { time: T + 10_000, backlog: 100, replicas: 2, processed: 700, running: 16 },
      // It answers again: its counter is back, which is no burst of work.
      { time: T + 20_000, backlog: 100, replicas: 3, processed: 1200, running: 24 },
      { time: T + 30_000, backlog: 100, replicas: 3, processed: 1320, running: 24 },
    ];
    const rates = measureRates(intervals(samples));
    assert.equal(rates.capacityPerReplica, 4);
    assert.equal(rates.arrivalRate, 12);
  });

  test("message duration by Little's law: running over time / completed", () => {
    const samples: ThroughputSample[] = [
      { time: T, backlog: 40, replicas: 5, processed: 0, running: 40 },
      { time: T + 10_000, backlog: 40, replicas: 5, processed: 200, running: 40 },
    ];
    assert.equal(measureRates(intervals(samples)).messageSeconds, 2);
    const long = samples.map((x) => ({ ...x, processed: 0 }));
    assert.equal(measureRates(intervals(long)).messageSeconds, undefined, "none completed: not measured");
  });

  test("the counters of the pods that answered, and how many they are", () => {
    const load = (inFlight: number, processed: number) => ({ inFlight, inFlightByQueue: { default: inFlight }, processed });
    assert.deepEqual(answeredCounters([load(3, 100), undefined, load(1, 50)]), { processed: 150, running: 4, reportingPods: 2 });
    assert.equal(answeredCounters([undefined]), undefined);
    assert.equal(answeredCounters([]), undefined);
  });

  test("a pool above its load keeps the capacity it measured while work waited, and comes down to what keeps up", () => {
    // 4 msg/s per pod at most, 2 s per message; 20 msg/s arrive. The pool first has a backlog, then 10 pods keep
    // up with everything busy: what they complete (2 per pod) is not what they can do.
    const decider = new SizeDecider();
    const s = spec({ maxReplicas: 20, targetDrainSeconds: 120, scaleDownStabilizationSeconds: 0 });
    let processed = 0;
    let last = decider.decide(s, { backlog: 3000, processed, running: 80, reportingPods: 10, busyPods: 10 }, 10, T);
    for (let i = 1; i <= 6; i++) {
      processed += 40 * 5;
      last = decider.decide(s, { backlog: 3000 - 100 * i, processed, running: 80, reportingPods: 10, busyPods: 10 }, 10, T + i * 5000);
    }
    assert.equal(last.throughputPerReplica, 4);
    for (let i = 7; i <= 30; i++) {
      processed += 20 * 5;
      last = decider.decide(s, { backlog: 40, processed, running: 40, reportingPods: 10, busyPods: 10 }, 10, T + i * 5000);
    }
    assert.equal(last.throughputPerReplica, 4, "the capacity, not the 2 msg/s each pod completes");
    // 20 msg/s throughout but for the poll where the backlog fell to 40, which the measure reads as no arrivals.
    assert.ok(Math.abs(last.arrivalRate! - 20) < 1, `${last.arrivalRate}`);
    // 20 msg/s at 4 per replica, every pod busy with 2 s messages: 5 replicas, or 6 for the backlog of 40.
    assert.ok(last.replicas >= 5 && last.replicas <= 6, last.message);
    assert.equal(last.reason, "DrainRate", last.message);
  });

  test("idle pods cost least; unknown load is not taken for idle", () => {
    const costs = deletionCosts([
      { name: "busy", inFlight: 7 },
      { name: "idle", inFlight: 0 },
      { name: "unknown", inFlight: undefined },
      { name: "some", inFlight: 2 },
    ]);
    assert.deepEqual(Object.fromEntries(costs), { busy: 7, idle: 0, unknown: 7, some: 2 });
  });

  test("property: the cheapest pod is never busier than any other known pod", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ name: fc.uuid(), inFlight: fc.option(fc.nat(100), { nil: undefined }) }), { minLength: 1, maxLength: 20 }), (pods) => {
        const costs = deletionCosts(pods);
        const cheapest = pods.reduce((a, b) => (costs.get(a.name)! <= costs.get(b.name)! ? a : b));
        if (cheapest.inFlight !== undefined) for (const p of pods) if (p.inFlight !== undefined) assert.ok(cheapest.inFlight <= p.inFlight);
      }),
    );
  });
});
