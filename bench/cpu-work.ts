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
  spin(100_000);
  let iterations = 100_000;
  for (;;) {
    const start = performance.now();
    spin(iterations);
    const elapsed = performance.now() - start;
    if (elapsed >= 100) return Math.max(1, Math.round((iterations * ms) / elapsed));
    iterations *= 2;
  }
}
