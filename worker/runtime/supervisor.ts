import cluster, { type Worker as ClusterWorker } from "node:cluster";
import { getLogger } from "../logging.js";

/** Exit codes, as Dramatiq's CLI: a child exiting with one of these at boot stops the whole group. */
export const EXIT_OK = 0;
export const EXIT_KILLED = 1;
export const EXIT_BOOT_FAILURE = 2;
export const EXIT_BROKER_UNREACHABLE = 3;

export interface SupervisorOptions {
  processes: number;
  /** Grace for children to stop after SIGTERM before they are killed (ms). */
  shutdownTimeout: number;
  /** Called once in the primary before children start (e.g. to serve aggregated metrics). */
  onStart?: () => void | Promise<void>;
  onStop?: () => void | Promise<void>;
}

const log = getLogger("supervisor");

/** Message a child sends once its worker has booted. */
export const BOOTED = "troupe:booted";

/**
 * The environment a worker process starts with, on top of the primary's. glibc gives threads that allocate at the
 * same time arenas of their own, up to 8 per core, and an arena keeps what its threads freed for itself: a worker
 * process has a dozen threads or more (main, worker threads, V8's and libuv's helpers), all of which allocate
 * while booting, so each arena ends up holding its own share of boot-time garbage. With a single arena what one
 * thread frees, the next one to boot reuses (an idle 8-thread worker: about 143 MB RSS with glibc's default, 118
 * with 2 arenas, 114 with 1). Throughput does not suffer: worker threads run JavaScript, whose objects V8 allocates
 * outside malloc, and the small buffers a message needs come from glibc's per-thread cache, which takes no lock.
 * Actors that malloc heavily in parallel (native image or compression libraries) may want more: a value already
 * in the environment wins. It has to be set before the process starts (glibc reads it at the first malloc), hence
 * here for the children the supervisor forks; the Docker image sets it for every process.
 */
export function workerProcessEnv(slot: number, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? "1", TROUPE_PROCESS_INDEX: String(slot) };
}

/**
 * The primary process of `troupe worker --processes N`: forks N worker processes (node cluster, so prom-client can
 * aggregate their metrics), restarts a crashed one with backoff, forwards SIGTERM/SIGINT as SIGTERM and waits for
 * children to drain. A child that fails to boot (bad module, unreachable broker) stops the group with its code.
 */
export async function supervise(options: SupervisorOptions): Promise<number> {
  await options.onStart?.();
  let stopping = false;
  let exitCode = EXIT_OK;
  const booted = new WeakSet<ClusterWorker>();
  const crashes: number[] = [];
  const slots = new Map<number, ClusterWorker>();

  const fork = (slot: number) => {
    const child = cluster.fork(workerProcessEnv(slot));
    slots.set(slot, child);
    child.on("message", (msg: unknown) => {
      if (msg === BOOTED) booted.add(child);
    });
    child.on("exit", (code, signal) => {
      if (slots.get(slot) === child) slots.delete(slot);
      if (stopping) return;
      if (!booted.has(child) && (code === EXIT_BOOT_FAILURE || code === EXIT_BROKER_UNREACHABLE)) {
        log.critical("worker process failed to boot; stopping", { slot, code });
        exitCode = code;
        void stop();
        return;
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes.length && crashes[0]! < now - 60_000) crashes.shift();
      const delay = Math.min(30_000, 250 * 2 ** Math.min(crashes.length - 1, 7));
      log.error("worker process exited; restarting", { slot, code, signal, restartInMs: delay });
      // Not unref'd: with every child dead this timer is all that keeps the primary alive until the restart.
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, delay);
    });
  };

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const stop = async () => {
    stopping = true;
    const children = [...slots.values()];
    const killTimer = setTimeout(() => {
      log.warn("worker processes did not stop in time; killing them", { count: slots.size });
      for (const child of slots.values()) child.process.kill("SIGKILL");
    }, options.shutdownTimeout + 5_000);
    killTimer.unref();
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.isDead()) return resolve();
            child.once("exit", (code) => {
              if (code && exitCode === EXIT_OK) exitCode = code;
              resolve();
            });
            child.process.kill("SIGTERM");
          }),
      ),
    );
    clearTimeout(killTimer);
    await options.onStop?.();
    resolveDone(exitCode);
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn("second signal; killing worker processes", { signal });
      for (const child of slots.values()) child.process.kill("SIGKILL");
      process.exit(EXIT_KILLED);
    }
    log.info("stopping worker processes", { signal });
    void stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  for (let slot = 0; slot < options.processes; slot++) fork(slot);
  const code = await done;
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  return code;
}
