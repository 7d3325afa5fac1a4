import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SimulatedPool } from "../../bench/scaling/pool.js";
import { POOL, runScenario } from "../../bench/scaling/scenario.js";
import { hpaScaler, troupeScaler } from "../../bench/scaling/scalers.js";
import { scalingTable } from "../../bench/scaling/report.js";
import { simulate } from "../../bench/scaling/simulate.js";
import { traces, type Trace } from "../../bench/scaling/traces.js";

describe("scaling simulation", () => {
  test("every message sent is completed or still in the pool, each second", () => {
    const pool = new SimulatedPool(POOL, "newest");
    const trace = traces(3).find((t) => t.name === "delayed")!;
    pool.resize(0, 2);
    for (let t = 0; t < 3000; t++) {
      pool.step(t, trace.arrivals[t] ?? 0, trace.delayed.filter((d) => d.at === t));
      if (t % 97 === 0) pool.resize(t, (t / 97) % 7);
      assert.equal(pool.sent, pool.completed + pool.unfinished, `second ${t}`);
    }
    assert.ok(pool.sent > 36_000);
  });

  test("a pool that drains faster than messages arrive ends empty", () => {
    const trace: Trace = { name: "flat", title: "flat", seconds: 600, arrivals: Array.from({ length: 600 }, () => 10), delayed: [{ at: 0, eta: 100, count: 500 }] };
    const fixed = { name: "fixed", removal: "newest" as const, initialReplicas: 4, tick: () => undefined };
    const run = simulate(trace, POOL, fixed);
    assert.equal(run.sent, 6500);
    assert.equal(run.completed, 6500);
    assert.equal(run.unfinished, 0);
    assert.equal(run.backlog.at(-1), 0);
    assert.equal(run.maxReplicas, 4);
  });

  test("a seed gives the same traces and figures, another seed other arrivals", () => {
    const figures = (seed: number) => runScenario(seed).map(({ trace, runs }) => [trace.name, ...runs.map((r) => [r.scaler, r.replicaSeconds, r.backlogSeconds, r.maxReplicas])]);
    assert.deepEqual(figures(7), figures(7));
    assert.notDeepEqual(traces(7)[0]!.arrivals, traces(8)[0]!.arrivals);
  });

  test("every scaler completes every message of every trace", () => {
    for (const { trace, runs } of runScenario(1)) {
      for (const run of runs) assert.deepEqual([run.scaler, run.unfinished, run.completed], [run.scaler, 0, run.sent], trace.name);
    }
  });

  test("Troupe and the HPA start a pool under load and give it back when the load is gone", () => {
    const trace = traces(1)[0]!;
    for (const scaler of [troupeScaler(POOL, { backlogPerReplica: 480 }), hpaScaler(POOL, { backlogPerReplica: 480 })]) {
      const run = simulate(trace, POOL, scaler);
      assert.ok(run.maxReplicas >= 5, `${scaler.name} reached ${run.maxReplicas}`);
      assert.ok(run.replicas.at(-1)! <= 1, `${scaler.name} ended at ${run.replicas.at(-1)}`);
    }
  });

  test("under a steady stream of short messages Troupe comes down from its start-up peak to what keeps up, every pod busy", () => {
    // 20 msg/s at 4 msg/s per pod: 5 pods keep up. Every pod runs messages all along; with the busy-pod floor for
    // all work, the pool stayed at its peak.
    const run = simulate(traces(1)[0]!, POOL, troupeScaler(POOL, { backlogPerReplica: 480 }));
    const settled = run.replicas.slice(600, 3600);
    assert.ok(run.maxReplicas > 6, `peak ${run.maxReplicas}`);
    assert.deepEqual([Math.min(...settled) >= 5, Math.max(...settled) <= 6], [true, true], `${Math.min(...settled)} to ${Math.max(...settled)} pods`);
  });

  test("the table has one row per trace and scaler, judged against the HPA row of its trace", () => {
    const results = runScenario();
    const rows = scalingTable(results).split("\n").slice(2).map((row) => row.split("|").map((cell) => cell.trim()));
    assert.equal(rows.length, results.length * 3);
    for (const row of rows) {
      const [, trace, scaler, replicaSeconds, backlogSeconds, , , met] = row;
      const runs = results.find((r) => r.trace.name === trace)!.runs;
      const run = runs.find((r) => r.scaler === scaler)!;
      const hpa = runs.find((r) => r.scaler.startsWith("HPA"))!;
      assert.equal(replicaSeconds, run.replicaSeconds.toLocaleString("en"));
      assert.equal(backlogSeconds, run.backlogSeconds.toLocaleString("en"));
      if (run === hpa) assert.equal(met, "");
      else assert.equal(met, run.replicaSeconds < hpa.replicaSeconds && run.backlogSeconds <= hpa.backlogSeconds ? "✓" : "✗");
    }
  });
});
