import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Wall-clock ms with sub-ms resolution. Latencies are differences taken in different processes and threads, so
 * they need a clock shared by all of them (Date.now() would round every sample to a whole ms).
 */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * What `await setTimeout(1)` really takes here, in ms: the best of three means over 200 sequential waits. libuv
 * rounds timers to whole ms of a loop time read before the callbacks run, so a "1 ms" wait takes 1–2 ms, and a
 * thread running the 1 ms I/O actor one message at a time can never reach 1,000 msg/s: the bench shows the
 * ideal for this timer beside the nominal one.
 */
export async function timerMs(): Promise<number> {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    for (let i = 0; i < 200; i++) await sleep(1);
    best = Math.min(best, (performance.now() - start) / 200);
  }
  return best;
}
