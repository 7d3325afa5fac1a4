/**
 * The actors `npm run bench` runs in real worker processes. Each returns the time it started, which the probe
 * (installed here in the worker's main thread) pairs with the send time and the ack time.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isMainThread } from "node:worker_threads";
import { actor, getBroker, onShutdown } from "troupe";
import { wallNow } from "./clock.js";
import { calibrate, spin } from "./cpu-work.js";
import { CpuProfile } from "./profiler.js";

const queue = process.env.BENCH_QUEUE ?? "bench";
const options = { queue, maxRetries: 0 };
const cpuIterations = Number(process.env.BENCH_CPU_ITERATIONS) || calibrate(5);

/** Pure overhead: nothing to do. */
export const noop = actor("bench_noop", () => wallNow(), options);

/** Waits 1 ms on a timer, as an actor waiting on I/O would. */
export const io = actor(
  "bench_io",
  async () => {
    const startedAt = wallNow();
    await sleep(1);
    return startedAt;
  },
  options,
);

/** 5 ms of CPU work on an idle core (calibrated by the bench, passed as BENCH_CPU_ITERATIONS). */
export const cpu = actor(
  "bench_cpu",
  () => {
    const startedAt = wallNow();
    spin(cpuIterations);
    return startedAt;
  },
  options,
);

// The probe holds a Redis client: loaded only in the main thread, so worker threads' memory is what a user's would be.
if (isMainThread) (await import("./probe.js")).installProbe(getBroker());
else if (process.env.BENCH_CPU_PROF) {
  const profile = new CpuProfile();
  onShutdown(() => profile.save(process.env.BENCH_CPU_PROF!));
}
