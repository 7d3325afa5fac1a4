import { performance } from "node:perf_hooks";

/**
 * Wall-clock ms with sub-ms resolution. Latencies are differences taken in different processes and threads, so
 * they need a clock shared by all of them (Date.now() would round every sample to a whole ms).
 */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
