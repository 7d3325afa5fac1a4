import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import type { Broker } from "../../broker.js";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { getLogger, redactUrl, setLogLevel } from "../../logging.js";
import { DEFAULT_WATCH_EXCLUDE, DEFAULT_WATCH_INCLUDE, watchTree, type WatchOptions } from "../watch.js";
import { BOOTED, FETCHING_STOPPED, connectFailureExitCode, defaultProcesses, EXIT_BOOT_FAILURE, EXIT_BROKER_UNREACHABLE, EXIT_KILLED, EXIT_OK, EXIT_PIDFILE, supervise } from "../../runtime/supervisor.js";
import { Worker } from "../../runtime/worker.js";
import { DEFAULT_LOOKAHEAD } from "../../runtime/thread-pool.js";
import { importModules } from "../../runtime/load-modules.js";
import { releaseMemory } from "../../runtime/memory.js";
import { watchActorOverrides } from "../../runtime/overrides.js";
import { closeBackends, connectBackends, createBroker, isMemoryBrokerUrl, setBroker } from "../../setup.js";
import { startWorkerMetrics } from "../../metrics/server.js";
import { brokerUrlOption, intOption, listOption, modulePaths, numberOption, parse } from "../args.js";
import { defaultRegistry } from "../../registry.js";
import { qName } from "../../queues.js";
import { UsageError, type Command } from "../command.js";
import { startScheduler, type Scheduler } from "../../schedules/scheduler.js";

const help = `Usage: troupe worker MODULE... [options]

Run worker processes that execute the actors declared in MODULE (.js/.mjs files, or .ts files compiled on the fly, that import "troupe").

Options:
  -p, --processes N         worker processes (default: CPU count / threads, rounded up; 1 with the memory broker)
  -t, --threads N           worker threads per process (default 8)
  -c, --concurrency N       messages one thread runs at once, for async actors (default 1)
  -Q, --queues Q[,Q...]     queues to consume (repeatable; default: every queue of the declared actors)
  -b, --broker URL          broker URL (default: $TROUPE_BROKER_URL, else memory://)
      --lookahead N         messages sent to each thread ahead of those it runs, for actors measured under 2 ms
                            (default ${DEFAULT_LOOKAHEAD}; 0 = strict actor-priority ordering, as Dramatiq)
      --prefetch N          messages fetched ahead per queue (default threads x (2 x concurrency + lookahead), + 64
                            when lookahead > 0: a packed batch of quick messages)
      --shutdown-timeout S  seconds running messages get to finish on SIGTERM before they are requeued (default 600)
      --path DIR            also look for MODULE in DIR (repeatable), as Dramatiq's --path
      --watch               reload the worker processes when a file under the current folder changes (development):
                            new processes boot on the new code, then the old ones drain; a module that fails to
                            import leaves the previous code running
      --watch-include GLOB  files that trigger a reload (repeatable; default **/*.{ts,mts,cts,js,mjs,cjs,json})
      --watch-exclude GLOB  files that do not (repeatable), besides **/node_modules/** and **/.git/**
      --watch-poll          scan for changes every 0.5 s instead of inotify (network or container file systems)
      --watch-boot-timeout S
                            seconds a reload's new processes get to boot before the reload is abandoned and the
                            previous processes keep running (default 60)
      --pid-file FILE       write the supervisor's pid to FILE (exit 4 if it names a running process)
      --log-file FILE       append the log lines to FILE instead of stderr
  -v, --verbose             log at debug level
      --version             print the version and exit

Environment: TROUPE_BROKER_URL, TROUPE_RESULTS_URL, TROUPE_RATE_LIMITER_URL, TROUPE_METRICS_PORT (9191; 0 = off),
TROUPE_ACTOR_OVERRIDES (a JSON/YAML file of actor option overrides, reloaded when it changes), TROUPE_LOG_LEVEL.

Exit codes: 0 stopped cleanly, 1 killed, 2 bad arguments or a module failed to import, 3 broker or a results/rate-limiter backend unreachable.`;

const log = getLogger("cli.worker");

/**
 * Upper bounds that catch a typo before it boots: each thread is a V8 isolate of about 10 MB that boots in turn
 * (-t 100000 once took minutes to reach 488 MB), each process a Node runtime of its own.
 */
const MAX_THREADS = 256;
const MAX_PROCESSES = 256;
const MAX_CONCURRENCY = 10_000;

interface WorkerSettings {
  modules: string[];
  brokerUrl: string;
  processes: number;
  threads: number;
  concurrency: number;
  queues: string[];
  prefetch?: number;
  lookahead?: number;
  shutdownTimeout: number;
  watch?: WatchOptions;
  reloadBootTimeout?: number;
  pidFile?: string;
}

function settingsFrom(argv: string[]): WorkerSettings {
  const { values, positionals } = parse(argv, {
    processes: { type: "string", short: "p" },
    threads: { type: "string", short: "t" },
    concurrency: { type: "string", short: "c" },
    queues: { type: "string", short: "Q", multiple: true },
    broker: { type: "string", short: "b" },
    prefetch: { type: "string" },
    lookahead: { type: "string" },
    "shutdown-timeout": { type: "string" },
    path: { type: "string", multiple: true },
    watch: { type: "boolean" },
    "watch-include": { type: "string", multiple: true },
    "watch-exclude": { type: "string", multiple: true },
    "watch-poll": { type: "boolean" },
    "watch-boot-timeout": { type: "string" },
    "pid-file": { type: "string" },
    "log-file": { type: "string" },
    verbose: { type: "boolean", short: "v", multiple: true },
    version: { type: "boolean" },
  });
  // Environment, so that the worker processes and their threads log the same way.
  if (values["log-file"]) process.env.TROUPE_LOG_FILE = resolve(values["log-file"]);
  if (values.verbose?.length) {
    process.env.TROUPE_LOG_LEVEL = "debug";
    setLogLevel("debug");
  }
  if (positionals.length === 0) throw new UsageError("name at least one actor module");
  const brokerUrl = brokerUrlOption(values.broker);
  const inMemory = isMemoryBrokerUrl(brokerUrl);
  const threads = intOption(values.threads, "threads", 8, 1, MAX_THREADS);
  const processes = intOption(values.processes, "processes", inMemory ? 1 : defaultProcesses(availableParallelism(), threads), 1, MAX_PROCESSES);
  if (inMemory && processes > 1) throw new UsageError("the memory broker lives in one process: use --processes 1 or a redis:// / amqp:// broker");
  return {
    modules: modulePaths(positionals, values.path ?? []),
    brokerUrl,
    processes,
    threads,
    concurrency: intOption(values.concurrency, "concurrency", 1, 1, MAX_CONCURRENCY),
    queues: listOption(values.queues),
    prefetch: values.prefetch === undefined ? undefined : intOption(values.prefetch, "prefetch", 1),
    lookahead: values.lookahead === undefined ? undefined : intOption(values.lookahead, "lookahead", 0, 0),
    shutdownTimeout: numberOption(values["shutdown-timeout"], "shutdown-timeout", 600) * 1000,
    pidFile: values["pid-file"] ? resolve(values["pid-file"]) : undefined,
    watch: watchSettings(values, inMemory),
    reloadBootTimeout: values["watch-boot-timeout"] === undefined ? undefined : numberOption(values["watch-boot-timeout"], "watch-boot-timeout", 60, 1) * 1000,
  };
}

function watchSettings(
  values: { watch?: boolean; "watch-include"?: string[]; "watch-exclude"?: string[]; "watch-poll"?: boolean; "watch-boot-timeout"?: string },
  inMemory: boolean,
): WatchOptions | undefined {
  if (!values.watch) {
    if (values["watch-include"] || values["watch-exclude"] || values["watch-poll"] || values["watch-boot-timeout"]) {
      throw new UsageError("--watch-include, --watch-exclude, --watch-poll and --watch-boot-timeout go with --watch");
    }
    return undefined;
  }
  if (inMemory) throw new UsageError("--watch replaces worker processes, and the memory broker's messages live in one: use a redis:// or amqp:// broker");
  return {
    root: process.cwd(),
    include: values["watch-include"] ?? DEFAULT_WATCH_INCLUDE,
    // Added to the defaults: excluding a build folder should not start watching node_modules.
    exclude: [...DEFAULT_WATCH_EXCLUDE, ...(values["watch-exclude"] ?? [])],
    poll: values["watch-poll"] === true,
  };
}

/** Write this process's pid to `path`; false when the file names another running process. */
function claimPidFile(path: string): boolean {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        // Stale: that process is gone.
      }
    }
  } catch {
    // No pid file yet.
  }
  writeFileSync(path, `${process.pid}\n`);
  process.once("exit", () => {
    if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
  });
  return true;
}

/** Why the -Q queues cannot all be served (no declared actor consumes one of them), or undefined. */
function unservedQueues(queues: string[]): string | undefined {
  if (queues.length === 0) return undefined;
  const declared = new Set(defaultRegistry.queues().map(qName));
  const missing = queues.filter((q) => !declared.has(qName(q)));
  if (missing.length === 0) return undefined;
  const served = [...declared].join(", ") || "none";
  return `no declared actor consumes queue(s) ${missing.join(", ")} given with -Q (the modules' actors consume: ${served})`;
}

/** Run one worker process here until SIGTERM/SIGINT; returns the exit code. */
export async function runWorkerProcess(settings: WorkerSettings): Promise<number> {
  // First, so that a cluster child answers the primary's metric requests while it boots.
  const stopMetrics = await startWorkerMetrics();
  let broker: Broker;
  try {
    broker = setBroker(createBroker(settings.brokerUrl));
  } catch (err) {
    log.critical("invalid broker URL", { broker: redactUrl(settings.brokerUrl), err });
    console.error(`troupe worker: invalid broker URL ${redactUrl(settings.brokerUrl)}: ${(err as Error).message}`);
    return EXIT_BOOT_FAILURE;
  }
  try {
    await broker.connect();
  } catch (err) {
    log.critical("cannot connect to the broker", { broker: redactUrl(settings.brokerUrl), err });
    console.error(`troupe worker: ${(err as Error).message}`);
    return connectFailureExitCode(err, cluster.isWorker, EXIT_BROKER_UNREACHABLE);
  }
  try {
    await importModules(settings.modules);
  } catch (err) {
    log.critical("an actor module failed to import", { err });
    console.error(`troupe worker: an actor module failed to import: ${(err as Error).stack ?? err}`);
    await broker.close();
    return EXIT_BOOT_FAILURE;
  }
  try {
    await connectBackends();
  } catch (err) {
    log.critical("cannot connect to a results or rate-limiter backend", { err });
    console.error(`troupe worker: ${(err as Error).message}`);
    await Promise.all([broker.close(), closeBackends()]).catch(() => undefined);
    return connectFailureExitCode(err, cluster.isWorker);
  }
  // A warning, not an error: a queue consumed only to dead-letter what lands there (unknown actors) is legitimate.
  const unserved = unservedQueues(settings.queues);
  if (unserved) {
    log.warn(unserved);
    console.error(`troupe worker: warning: ${unserved}; its messages will be dead-lettered as unknown actors`);
  }
  if (defaultRegistry.queues().length === 0) {
    log.warn("the actor modules declare no actors: this worker consumes no queue", { modules: settings.modules });
  }
  if (isMemoryBrokerUrl(settings.brokerUrl)) {
    log.warn("running on the in-memory broker: no other process (troupe enqueue, a web server, another worker) can reach it; pass -b redis://… or amqp://… or set TROUPE_BROKER_URL", { broker: "memory://" });
  }
  const worker = new Worker(broker, {
    modules: settings.modules,
    queues: settings.queues,
    threads: settings.threads,
    concurrency: settings.concurrency,
    prefetch: settings.prefetch,
    lookahead: settings.lookahead,
    shutdownTimeout: settings.shutdownTimeout,
  });
  // Middleware reads actor options in this thread, so overrides loaded before start apply to the first message.
  const overrides = await watchActorOverrides((next) => worker.setOverrides(next));
  // Loading the modules and connecting left garbage behind; collected now, what it held is reused by the threads
  // that boot next instead of growing the process (see ThreadPool.start).
  releaseMemory();
  let scheduler: Scheduler | undefined;
  try {
    await worker.start();
    // After the worker: a tick fired before this process consumes is still served by the others (or by it, next).
    scheduler = await startScheduler(broker);
  } catch (err) {
    overrides?.close();
    log.critical("worker failed to start", { err });
    console.error(`troupe worker: ${(err as Error).message}`);
    await worker.stop(0).catch(() => undefined);
    await broker.close().catch(() => undefined);
    return connectFailureExitCode(err, cluster.isWorker);
  }
  process.send?.(BOOTED);

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      // A supervised process gets a stop signal twice when its whole process group is signalled (GNU timeout,
      // systemd's KillMode=control-group, Ctrl-C in a terminal): once from the kernel and once forwarded by the
      // supervisor. Only the supervisor counts the operator's signals; it SIGKILLs its children on a second one.
      if (cluster.isWorker && signals++ > 0) return;
      if (!cluster.isWorker && ++signals > 1) {
        log.warn("second signal: exiting without waiting for running messages", { signal });
        process.exit(EXIT_KILLED);
      }
      overrides?.close();
      void Promise.resolve(scheduler?.stop())
        .then(() => worker.stop(undefined, () => process.send?.(FETCHING_STOPPED)))
        .then(() => Promise.all([broker.close(), closeBackends(), stopMetrics()]))
        .then(
          () => resolve(EXIT_OK),
          (err) => {
            log.error("error while stopping", { err });
            resolve(EXIT_KILLED);
          },
        );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

const command: Command = {
  summary: "run worker processes for actor modules",
  help,
  async run(argv) {
    if (argv.includes("--version")) {
      console.log((JSON.parse(readFileSync(new URL("../../../../package.json", import.meta.url), "utf8")) as { version: string }).version);
      return EXIT_OK;
    }
    const settings = settingsFrom(argv);
    if (!cluster.isWorker && settings.pidFile) {
      try {
        if (!claimPidFile(settings.pidFile)) {
          console.error(`troupe worker: the pid file ${settings.pidFile} names a running process`);
          return EXIT_PIDFILE;
        }
      } catch (err) {
        console.error(`troupe worker: cannot write the pid file: ${(err as Error).message}`);
        return EXIT_PIDFILE;
      }
    }
    if (cluster.isWorker || isMemoryBrokerUrl(settings.brokerUrl)) return runWorkerProcess(settings);
    const watching = settings.watch;
    let stopMetrics: () => Promise<void> = async () => undefined;
    return supervise({
      processes: settings.processes,
      shutdownTimeout: settings.shutdownTimeout,
      onStart: async () => void (stopMetrics = await startWorkerMetrics({ aggregate: true })),
      onStop: () => stopMetrics(),
      reloadBootTimeout: settings.reloadBootTimeout,
      reloads: watching && ((reload) => watchTree(watching, (files) => reload(`changed: ${files.slice(0, 5).join(", ")}${files.length > 5 ? ", …" : ""}`))),
    });
  },
};
export default command;
