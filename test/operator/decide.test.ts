import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { AutoscalingSpec } from "../../operator/api/types.js";
import { SizeDecider } from "../../operator/scaling/size-decider.js";
import { decideReplicas, type ScaleSignals, type Recommendation } from "../../operator/scaling/decide.js";
import { deletionCosts } from "../../operator/scaling/deletion-cost.js";
import { measureThroughputPerReplica } from "../../operator/scaling/throughput.js";

const spec = (over: Partial<AutoscalingSpec> = {}): AutoscalingSpec => ({
  minReplicas: 0,
  maxReplicas: 10,
  targetBacklogPerReplica: 100,
  pollIntervalSeconds: 5,
  scaleUpStabilizationSeconds: 0,
  scaleDownStabilizationSeconds: 60,
  ...over,
});
const T = 1_700_000_000_000;

describe("decideReplicas: table", () => {
  const cases: { name: string; spec?: Partial<AutoscalingSpec>; obs: ScaleSignals; current: number; history?: Recommendation[]; want: number; reason: string }[] = [
    { name: "idle pool stays at zero", obs: { backlog: 0 }, current: 0, want: 0, reason: "Steady" },
    { name: "backlog on an idle pool scales up at once", obs: { backlog: 1 }, current: 0, want: 1, reason: "Backlog" },
    { name: "backlog per replica", obs: { backlog: 450 }, current: 1, want: 5, reason: "Backlog" },
    { name: "capped at maxReplicas", obs: { backlog: 100_000 }, current: 2, want: 10, reason: "Backlog" },
    { name: "floor at minReplicas", spec: { minReplicas: 2 }, obs: { backlog: 0 }, current: 2, want: 2, reason: "Steady" },
    { name: "broker unreachable holds a running pool", obs: { backlog: undefined }, current: 4, want: 4, reason: "MetricsUnavailable" },
    { name: "broker unreachable never scales to zero", spec: { scaleDownStabilizationSeconds: 0 }, obs: { backlog: undefined }, current: 3, want: 3, reason: "MetricsUnavailable" },
    { name: "NaN depth counts as missing", obs: { backlog: Number.NaN }, current: 2, want: 2, reason: "MetricsUnavailable" },
    { name: "delayed messages keep one worker", obs: { backlog: 0, delayed: 3 }, current: 0, want: 1, reason: "DelayedMessages" },
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
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideReplicas({ spec: spec(c.spec), observation: c.obs, currentReplicas: c.current, now: T, history: c.history ?? [] });
      assert.equal(d.replicas, c.want, d.message);
      assert.equal(d.reason, c.reason, d.message);
    });
  }
});

const arbSpec = fc
  .record({
    minReplicas: fc.integer({ min: 0, max: 5 }),
    extra: fc.integer({ min: 0, max: 20 }),
    targetBacklogPerReplica: fc.integer({ min: 1, max: 500 }),
    targetDrainSeconds: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    up: fc.integer({ min: 0, max: 120 }),
    down: fc.integer({ min: 0, max: 600 }),
  })
  .map((r) => spec({ minReplicas: r.minReplicas, maxReplicas: Math.max(1, r.minReplicas + r.extra), targetBacklogPerReplica: r.targetBacklogPerReplica, targetDrainSeconds: r.targetDrainSeconds, scaleUpStabilizationSeconds: r.up, scaleDownStabilizationSeconds: r.down }));
const arbObservation = fc.record({
  backlog: fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined }),
  delayed: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
  throughputPerReplica: fc.option(fc.double({ min: 0.001, max: 10_000, noNaN: true }), { nil: undefined }),
});
const arbHistory = fc.array(fc.record({ time: fc.integer({ min: T - 700_000, max: T }), replicas: fc.integer({ min: 0, max: 30 }) }), { maxLength: 20 });

describe("decideReplicas: properties", () => {
  test("stays within [min, max] whenever the depth is known", () => {
    fc.assert(
      fc.property(arbSpec, arbObservation, fc.integer({ min: 0, max: 30 }), arbHistory, (s, obs, current, history) => {
        fc.pre(obs.backlog !== undefined);
        const d = decideReplicas({ spec: s, observation: obs, currentReplicas: current, now: T, history });
        assert.ok(d.replicas >= s.minReplicas && d.replicas <= s.maxReplicas, `${d.replicas} not in [${s.minReplicas}, ${s.maxReplicas}]`);
      }),
    );
  });

  test("missing depth never changes the size", () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 0, max: 30 }), arbHistory, (s, current, history) => {
        const d = decideReplicas({ spec: s, observation: { backlog: undefined }, currentReplicas: current, now: T, history });
        assert.equal(d.replicas, current);
      }),
    );
  });

  test("a backlog always has at least one replica without an up window", () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: 30 }), arbHistory, (s, backlog, current, history) => {
        const d = decideReplicas({ spec: { ...s, scaleUpStabilizationSeconds: 0 }, observation: { backlog }, currentReplicas: current, now: T, history });
        assert.ok(d.replicas >= 1);
      }),
    );
  });

  test("more backlog never means fewer replicas", () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 30 }), arbHistory, (s, a, b, current, history) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const dLo = decideReplicas({ spec: s, observation: { backlog: lo }, currentReplicas: current, now: T, history });
        const dHi = decideReplicas({ spec: s, observation: { backlog: hi }, currentReplicas: current, now: T, history });
        assert.ok(dHi.replicas >= dLo.replicas);
      }),
    );
  });

  test("deterministic: the same inputs give the same decision", () => {
    fc.assert(
      fc.property(arbSpec, arbObservation, fc.integer({ min: 0, max: 30 }), arbHistory, (s, obs, current, history) => {
        const input = { spec: s, observation: obs, currentReplicas: current, now: T, history };
        assert.deepEqual(decideReplicas(input), decideReplicas(input));
      }),
    );
  });

  test("with a measured rate, the pool drains within the target time and one replica fewer would not", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0.01, max: 1000, noNaN: true }), fc.integer({ min: 1, max: 600 }), (backlog, rate, drain) => {
        const s = spec({ maxReplicas: 1e12, targetDrainSeconds: drain, scaleDownStabilizationSeconds: 0 });
        const d = decideReplicas({ spec: s, observation: { backlog, throughputPerReplica: rate }, currentReplicas: 0, now: T, history: [] });
        assert.ok(d.replicas * rate * drain >= backlog - 1e-6, "drains in time");
        if (d.replicas > 1) assert.ok((d.replicas - 1) * rate * drain < backlog + 1e-6, "no overshoot");
      }),
    );
  });

  test("flapping depth inside the down window does not shrink the pool", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 2, maxLength: 40 }), (depths) => {
        const s = spec({ scaleDownStabilizationSeconds: 600, maxReplicas: 10 });
        let current = 0;
        let history: Recommendation[] = [];
        let peak = 0;
        depths.forEach((backlog, i) => {
          const d = decideReplicas({ spec: s, observation: { backlog }, currentReplicas: current, now: T + i * 5000, history });
          assert.ok(d.replicas >= Math.min(peak, current), "no shrink below the window's peak");
          peak = Math.max(peak, d.recommended);
          current = d.replicas;
          history = d.history;
        });
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
