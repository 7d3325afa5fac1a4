import { performance } from "node:perf_hooks";

/** Arithmetic the JIT cannot skip: the CPU-bound workload's body. */
export function spin(iterations: number): number {
  let x = 0;
  for (let i = 0; i < iterations; i++) x = (x + Math.sqrt(i)) % 1e9;
  return x;
}

/**
 * Iterations of `spin` that take `ms` of CPU on one idle core. Measured once by the bench before any worker runs
 * and handed to the workers, so the CPU workload is a fixed amount of work (a wall-clock busy loop would finish
 * early whenever its thread is descheduled, and overstate what 2 cores can do).
 */
export function calibrate(ms: number): number {
  const time = (iterations: number) => {
    const start = performance.now();
    spin(iterations);
    return performance.now() - start;
  };
  let iterations = 100_000;
  while (time(iterations) < 20) iterations *= 2;
  // The fastest of several runs is the one least slowed by whatever else the machine was doing.
  let best = Infinity;
  for (let i = 0; i < 9; i++) best = Math.min(best, time(iterations));
  return Math.max(1, Math.round((iterations * ms) / best));
}
