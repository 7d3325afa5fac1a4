import cluster, { type Worker as ClusterWorker } from "node:cluster";
import { ConnectionFailed } from "../errors.js";
import { getLogger } from "../logging.js";

/** Exit codes, as Dramatiq's CLI: a child exiting with one of these at boot stops the whole group. */
export const EXIT_OK = 0;
export const EXIT_KILLED = 1;
export const EXIT_BOOT_FAILURE = 2;
export const EXIT_BROKER_UNREACHABLE = 3;
/** The --pid-file names a running process, or cannot be written. */
export const EXIT_PIDFILE = 4;
/**
 * Between a worker process and its supervisor only (sysexits' EX_TEMPFAIL): the process could not reach its broker
 * or a backend at boot, a connection refused or timed out rather than credentials or a database refused. The
 * supervisor treats it as EXIT_BROKER_UNREACHABLE until a process of the group has booted, and as an outage after:
 * the process is restarted with backoff, as the booted ones ride the outage out by reconnecting.
 */
export const EXIT_UNREACHABLE_AT_BOOT = 75;

/** The code a worker process exits with when `err` kept it from connecting at boot; `otherwise` for an error that is not a ConnectionFailed. */
export function connectFailureExitCode(err: unknown, supervised: boolean, otherwise = EXIT_BOOT_FAILURE): number {
  if (!(err instanceof ConnectionFailed)) return otherwise;
  return supervised && err.unreachable ? EXIT_UNREACHABLE_AT_BOOT : EXIT_BROKER_UNREACHABLE;
}

export interface SupervisorOptions {
  processes: number;
  /** Grace for children to stop after SIGTERM before they are killed (ms). */
  shutdownTimeout: number;
  /** Called once in the primary before children start (e.g. to serve aggregated metrics). */
  onStart?: () => void | Promise<void>;
  onStop?: () => void | Promise<void>;
  /**
   * Subscribe the group to reloads (`troupe worker --watch`): `reload(reason)` boots a new process per slot and,
   * once every one has booted, stops the old ones gracefully; if one fails to boot, the old ones keep running.
   * Returns the unsubscribe, called when the group stops.
   */
  reloads?: (reload: (reason: string) => void) => () => void;
  /**
   * How long a reload's new process may take to boot (ms, default 60 s): one that has not booted by then (an import
   * that never settles, a hung connection) is killed and the reload abandoned, the previous processes keep running.
   */
  reloadBootTimeout?: number;
}

const log = getLogger("supervisor");

/** Resolves once `child` says it fetches no more, exits, or has not said so within FETCHING_STOP_WAIT_MS. */
function stoppedFetching(child: ClusterWorker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      child.off(FETCHING_STOPPED, done);
      child.off("exit", done);
      resolve();
    };
    const timer = setTimeout(() => {
      log.warn("a replaced worker process did not stop fetching in time; reloading anyway", { pid: child.process.pid, waitedMs: FETCHING_STOP_WAIT_MS });
      done();
    }, FETCHING_STOP_WAIT_MS);
    child.once(FETCHING_STOPPED, done);
    child.once("exit", done);
  });
}

/**
 * Worker processes `troupe worker` starts when `--processes` is not given: as few as give every core a thread.
 * Dramatiq's default is one process per core; here each process already spreads its actors over its threads, and
 * what a second process adds is a second main thread, another set of isolates and their garbage collection. On 2
 * cores, with 8 threads each, the second process is pure cost: the bench's alternating 1 ms I/O drains gave 2 × 8
 * at 0.83–0.90× of 1 × 8, and 5 ms CPU actors no faster (docs/performance.md). More processes pay off only
 * once the threads of one process cannot cover the cores.
 */
export function defaultProcesses(cores: number, threads: number): number {
  return Math.max(1, Math.ceil(cores / threads));
}

/** Message a child sends once its worker has booted. */
export const BOOTED = "troupe:booted";
/** Message a stopping child sends once it fetches no more messages (its running ones may still be finishing). */
export const FETCHING_STOPPED = "troupe:fetching-stopped";
/** How long a reload waits for a replaced process to say it stopped fetching (it may be hung). */
const FETCHING_STOP_WAIT_MS = 10_000;

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

const WORKER_SEMI_SPACE_MB = 4;

/**
 * V8 flags a worker process starts with, on top of the primary's. The main thread of a worker process allocates
 * fast and keeps little (each fetched message is decoded, handed to a thread and dropped once acked), and V8 lets
 * its young generation grow to 3 × 16 MB semi-spaces under that churn, which is most of what a busy worker adds
 * to its idle RSS. With 4 MB semi-spaces a scavenge runs more often but copies the same few live messages. The
 * bench's Redis 1 × 8 no-op drain, alternating runs: peak RSS 129–142 MB against 151–162 MB with V8's default,
 * throughput within the run-to-run noise; capping the worker threads' young generations instead changed nothing
 * (docs/performance.md). A `--max-semi-space-size` of the user's, in `execArgv` or NODE_OPTIONS, wins.
 */
export function workerProcessExecArgv(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = [...execArgv, env.NODE_OPTIONS ?? ""].some((arg) => arg.includes("--max-semi-space-size"));
  return given ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}

/**
 * The primary process of `troupe worker --processes N`: forks N worker processes (node cluster, so prom-client can
 * aggregate their metrics), restarts a crashed one with backoff, forwards SIGTERM/SIGINT as SIGTERM and waits for
 * children to drain. A child that fails to boot (bad module, unreachable broker) stops the group with its code.
 */
export async function supervise(options: SupervisorOptions): Promise<number> {
  await options.onStart?.();
  cluster.setupPrimary({ execArgv: workerProcessExecArgv() });
  let stopping = false;
  let exitCode = EXIT_OK;
  const booted = new WeakSet<ClusterWorker>();
  /** Whether any process of the group has booted: from then on, a broker that cannot be reached is an outage. */
  let groupBooted = false;
  const crashes: number[] = [];
  const slots = new Map<number, ClusterWorker>();
  /** Processes of a reload that have not replaced their slot's yet: told whether they booted. */
  const candidates = new Map<ClusterWorker, (booted: boolean) => void>();
  /** Processes a reload replaced, draining their messages: their exit is expected. */
  const retired = new Set<ClusterWorker>();

  const fork = (slot: number, candidate?: (booted: boolean) => void) => {
    const child = cluster.fork(workerProcessEnv(slot));
    if (candidate) candidates.set(child, candidate);
    else slots.set(slot, child);
    child.on("message", (msg: unknown) => {
      if (msg === FETCHING_STOPPED) return void child.emit(FETCHING_STOPPED);
      if (msg !== BOOTED) return;
      booted.add(child);
      groupBooted = true;
      candidates.get(child)?.(true);
    });
    child.on("exit", (code, signal) => {
      if (retired.delete(child)) return;
      const candidacy = candidates.get(child);
      if (candidacy) {
        candidates.delete(child);
        return candidacy(false);
      }
      if (slots.get(slot) === child) slots.delete(slot);
      if (stopping) return;
      const bootFailure = !booted.has(child) && (code === EXIT_BOOT_FAILURE || code === EXIT_BROKER_UNREACHABLE || (code === EXIT_UNREACHABLE_AT_BOOT && !groupBooted));
      if (bootFailure) {
        log.critical("worker process failed to boot; stopping", { slot, code });
        exitCode = code === EXIT_UNREACHABLE_AT_BOOT ? EXIT_BROKER_UNREACHABLE : code;
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
    return child;
  };

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  /** One process per slot, booted on the current code: all of them, or none (those that booted are stopped). */
  const bootGeneration = async (): Promise<Map<number, ClusterWorker> | undefined> => {
    const started = new Map<number, ClusterWorker>();
    const timeout = options.reloadBootTimeout ?? 60_000;
    const boot = (slot: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          log.error("a reloaded worker process did not boot in time; abandoning the reload", { slot, timeoutMs: timeout });
          resolve(false);
        }, timeout);
        started.set(slot, fork(slot, (ok) => (clearTimeout(timer), resolve(ok))));
      });
    const results = await Promise.all([...slots.keys()].map(boot));
    // A process that booted and then died before the rest of its generation did would leave its slot empty.
    if (!stopping && results.every(Boolean) && [...started.values()].every((child) => !child.isDead())) return started;
    for (const child of started.values()) {
      if (!candidates.delete(child)) continue;
      retired.add(child);
      child.process.kill("SIGTERM");
      // One stuck in its imports has fetched nothing, and may never get to handle the signal.
      if (!booted.has(child)) setTimeout(() => child.isDead() || child.process.kill("SIGKILL"), 5_000).unref();
    }
    return undefined;
  };

  let reloading = false;
  let reloadAgain: string | undefined;
  const reload = async (reason: string) => {
    if (stopping) return;
    // Changes during a reload are picked up by one more reload once it is done, on the newest code.
    if (reloading) return void (reloadAgain = reason);
    reloading = true;
    for (let next: string | undefined = reason; next !== undefined && !stopping; next = reloadAgain) {
      reloadAgain = undefined;
      log.info("reloading worker processes", { reason: next, processes: slots.size });
      const fresh = await bootGeneration();
      if (!fresh) {
        if (!stopping) log.error("reload failed: a new worker process did not boot (its error is above); the previous code keeps running until the next change", { reason: next });
        continue;
      }
      const replaced: Promise<void>[] = [];
      for (const [slot, child] of fresh) {
        candidates.delete(child);
        const old = slots.get(slot);
        slots.set(slot, child);
        if (old && !old.isDead()) {
          retired.add(old);
          replaced.push(stoppedFetching(old));
          // The usual graceful stop: no new fetches, prefetched messages given back, running ones finish.
          old.process.kill("SIGTERM");
        }
      }
      // Until the old processes stop fetching, a message sent now could still start on the old code.
      await Promise.all(replaced);
      log.info("reloaded: new worker processes run the changed code; the previous ones drain and exit", { processes: fresh.size });
    }
    reloading = false;
  };
  const unsubscribe = options.reloads?.((reason) => void reload(reason));

  const stop = async () => {
    stopping = true;
    unsubscribe?.();
    const children = [...slots.values(), ...candidates.keys(), ...retired];
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
