import { SimulatedPool, type PoolModel } from "./pool.js";
import type { Scaler } from "./scalers.js";
import type { DelayedSend, Trace } from "./traces.js";

/** Seconds of silence after every trace, so each scaler drains what is left and pays for its scale-down. */
export const TAIL_SECONDS = 900;

export interface Run {
  scaler: string;
  /** Pods that existed (starting, consuming, terminating), summed over the seconds. */
  replicaSeconds: number;
  /** Messages waiting for a pod (ready, and delayed past their eta), summed over the seconds. */
  backlogSeconds: number;
  maxReplicas: number;
  sent: number;
  completed: number;
  /** Messages not completed when the run ended. */
  unfinished: number;
  /** Per second: pods that existed, and messages waiting. */
  replicas: number[];
  backlog: number[];
}

/** One trace through one scaler and a pool of the given model. */
export function simulate(trace: Trace, model: PoolModel, scaler: Scaler): Run {
  const pool = new SimulatedPool(model, scaler.removal);
  pool.resize(-model.startupSeconds, scaler.initialReplicas);
  const delayedAt = new Map<number, DelayedSend[]>();
  for (const d of trace.delayed) delayedAt.set(d.at, [...(delayedAt.get(d.at) ?? []), d]);
  const replicas: number[] = [];
  const backlog: number[] = [];
  const seconds = trace.seconds + TAIL_SECONDS;
  for (let t = 0; t < seconds; t++) {
    pool.step(t, trace.arrivals[t] ?? 0, delayedAt.get(t) ?? []);
    const size = scaler.tick(t, pool.view(t));
    if (size !== undefined) pool.resize(t, size);
    replicas.push(pool.replicas);
    backlog.push(pool.waitingAt(t));
  }
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return {
    scaler: scaler.name,
    replicaSeconds: sum(replicas),
    backlogSeconds: sum(backlog),
    maxReplicas: Math.max(...replicas),
    sent: pool.sent,
    completed: pool.completed,
    unfinished: pool.unfinished,
    replicas,
    backlog,
  };
}
