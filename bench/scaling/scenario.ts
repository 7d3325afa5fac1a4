import type { PoolModel } from "./pool.js";
import { hpaScaler, kedaScaler, troupeScaler, type Scaler, type ScalingTarget } from "./scalers.js";
import { simulate, type Run } from "./simulate.js";
import { traces, type Trace } from "./traces.js";

/** The pool every scaler sizes: 30 s to start, 8 messages at once of 2 s each (4 msg/s per pod), at most 40 pods. */
export const POOL: PoolModel = { startupSeconds: 30, concurrency: 8, serviceSeconds: 2, maxReplicas: 40 };
/** 480 messages per replica: 120 s of one pod's drain, the docs' example targetDrainSeconds. */
export const TARGET: ScalingTarget = { backlogPerReplica: 480 };

export interface TraceResult {
  trace: Trace;
  runs: Run[];
}

/** Every trace through the three scalers, each with a scaler of its own. */
export function runScenario(seed = 1, model: PoolModel = POOL, target: ScalingTarget = TARGET): TraceResult[] {
  const scalers: (() => Scaler)[] = [() => troupeScaler(model, target), () => hpaScaler(model, target), () => kedaScaler(model, target)];
  return traces(seed).map((trace) => ({ trace, runs: scalers.map((make) => simulate(trace, model, make())) }));
}
