import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryBroker, Message, RabbitmqBroker, RedisBroker, Worker, setBroker, type Broker, type RabbitmqBrokerOptions, type RedisBrokerOptions } from "troupe";
import { childrenOf, CliProcess } from "./process.js";
import { fixture, uniqueName } from "./env.js";
import { RawAmqp } from "./rabbitmq.js";
import { deleteNamespace, redisClient } from "./redis.js";
import { readTally, type Tally } from "./tally.js";
import { until } from "./wait.js";

export const chaosActors = fixture("chaos-actors");

export interface ClusterOptions {
  broker: string;
  queue: string;
  processes?: number;
  threads?: number;
  prefetch?: number;
  /** Extra environment (TROUPE_REDIS_NAMESPACE, TROUPE_REDIS_HEARTBEAT_TIMEOUT, …). */
  env?: Record<string, string>;
  /** Tally into this file instead of a fresh one (a second cluster continuing the first one's count). */
  tallyFile?: string;
  /** Run as a process group of its own (see CliProcess.signalGroup). */
  processGroup?: boolean;
}

/**
 * `troupe worker` on the chaos actors, as a user runs it: one supervisor process forking worker processes.
 * Every run is tallied in a file of its own; stdout and stderr are captured for the password checks.
 */
export class WorkerCluster extends CliProcess {
  readonly dir: string;
  readonly tallyFile: string;

  constructor(readonly options: ClusterOptions) {
    const dir = mkdtempSync(join(tmpdir(), "troupe-chaos-"));
    const tallyFile = options.tallyFile ?? join(dir, "tally.txt");
    const args = ["worker", chaosActors, "--broker", options.broker, "-Q", options.queue];
    args.push("--processes", String(options.processes ?? 1), "--threads", String(options.threads ?? 2));
    if (options.prefetch !== undefined) args.push("--prefetch", String(options.prefetch));
    // No metrics endpoint: many workers run at once here and would contend for its port.
    super(args, { TROUPE_LOG_LEVEL: "warning", TROUPE_METRICS_PORT: "off", ...options.env, TROUPE_CHAOS_TALLY: tallyFile }, { processGroup: options.processGroup });
    this.dir = dir;
    this.tallyFile = tallyFile;
  }

  /** The worker processes the supervisor has forked and that are still running. */
  processes(): number[] {
    return childrenOf(this.pid);
  }

  async waitForProcesses(count = this.options.processes ?? 1, timeout = 30_000): Promise<number[]> {
    const what = `${count} worker processes under supervisor ${this.pid}`;
    return until(() => {
      if (!this.alive) throw new Error(`troupe worker exited (code ${this.child.exitCode}) before ${what} ran`);
      const pids = this.processes();
      return pids.length >= count ? pids : undefined;
    }, what, { timeout, interval: 20 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output.slice(-2000)}`);
    });
  }

  tally(): Tally {
    return readTally(this.tallyFile);
  }

  /** Wait until the tally holds `runs` runs; a timeout reports how far it got and what the workers printed. */
  async waitForRuns(runs: number, what: string, timeout = 60_000): Promise<void> {
    await until(() => this.tally().runs >= runs, what, { timeout, interval: 20 }).catch((err: Error) => {
      throw new Error(`${err.message} (${this.tally().runs} runs so far; supervisor ${this.alive ? "running" : `exited ${this.child.exitCode}`}, processes ${this.processes().join(", ") || "none"})\n${this.output.slice(-3000)}`);
    });
  }

  /** Another `troupe worker` with the same settings, adding to this one's tally (a restarted pod). */
  sibling(): WorkerCluster {
    return new WorkerCluster({ ...this.options, tallyFile: this.tallyFile });
  }

  /**
   * SIGTERM the supervisor and wait up to `timeout` ms for it to exit; returns its exit code, or undefined when
   * it was still running at the deadline.
   */
  async terminate(timeout: number): Promise<number | null | undefined> {
    if (this.alive) this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeout)));
    const result = await Promise.race([this.exited.then(() => this.child.exitCode), deadline]);
    clearTimeout(timer);
    return result;
  }

  /** Tear down at once (SIGKILL to every process) and remove the tally directory: cleanup, not a test step. */
  override async kill(): Promise<void> {
    await super.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `count` chaos_record messages for `queue`, ids `<prefix>0` … */
export function records(queue: string, prefix: string, count: number): Message[] {
  return Array.from({ length: count }, (_, i) => new Message({ queueName: queue, actorName: "chaos_record", args: [`${prefix}${i}`] }));
}

/** VmRSS of a process in KiB (Linux /proc). */
export function rssKib(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/**
 * SIGKILL a random worker process every `everyMs` (± half) while `busy()` holds, at most `maxKills` times. Only
 * processes that have run messages are candidates, and only once all `processes` are working: a kill then lands
 * on a process with deliveries in flight, and the supervisor's restart backoff paces the chaos as in production.
 */
export async function killWhileBusy(cluster: WorkerCluster, options: { processes: number; everyMs: number; maxKills: number; busy: () => boolean }): Promise<number> {
  let kills = 0;
  while (kills < options.maxKills && options.busy()) {
    await new Promise((resolve) => setTimeout(resolve, options.everyMs / 2 + Math.random() * options.everyMs));
    if (!options.busy()) break;
    const ran = cluster.tally().pids;
    // Kill only once every process is back (the supervisor's restart backoff grows with each crash), and only one
    // that has run something, so each kill lands on work in progress. Waiting for a restarted process to have run
    // something too would leave a loaded machine, where restarts are slow, with one kill a run.
    const alive = cluster.processes();
    const working = alive.filter((pid) => ran.has(pid));
    if (alive.length < options.processes || working.length === 0) continue;
    process.kill(working[Math.floor(Math.random() * working.length)]!, "SIGKILL");
    kills++;
  }
  return kills;
}

export interface BrokerRun {
  /** The producer's broker, on the same queue and (Redis) namespace as the workers. */
  broker: Broker;
  cluster: WorkerCluster;
  queue: string;
}

type ClusterSettings = Omit<ClusterOptions, "broker" | "queue">;

/** Run `body` against a worker cluster on a fresh Redis namespace and queue at `url`; clean up after. */
export async function onRedis(url: string, settings: ClusterSettings, body: (run: BrokerRun) => Promise<void>, options: RedisBrokerOptions = {}): Promise<void> {
  const namespace = uniqueName("chaos");
  const queue = uniqueName("q");
  const broker = new RedisBroker(url, { ...options, namespace });
  const cluster = new WorkerCluster({ ...settings, broker: url, queue, env: { ...settings.env, TROUPE_REDIS_NAMESPACE: namespace } });
  try {
    await body({ broker, cluster, queue });
  } finally {
    await cluster.kill();
    await broker.close();
    const client = redisClient(url);
    await deleteNamespace(client, namespace).catch(() => undefined);
    client.disconnect();
  }
}

/** Run `body` against a worker cluster on a fresh queue of the RabbitMQ at `url`; delete the queues after. */
export async function onRabbitmq(url: string, settings: ClusterSettings, body: (run: BrokerRun) => Promise<void>, options: RabbitmqBrokerOptions = {}): Promise<void> {
  const queue = uniqueName("q");
  const broker = new RabbitmqBroker(url, options);
  const cluster = new WorkerCluster({ ...settings, broker: url, queue });
  try {
    await body({ broker, cluster, queue });
  } finally {
    await cluster.kill();
    await broker.close();
    const raw = await RawAmqp.open(url);
    await raw.deleteQueues(queue);
    await raw.close();
  }
}

export interface MemoryRun {
  broker: MemoryBroker;
  worker: Worker;
  queue: string;
  tally(): Tally;
  /** Stop the worker and remove its tally. */
  stop(): Promise<void>;
}

/**
 * A worker in this process on a MemoryBroker made global, running the chaos actors from a fresh queue. Worker
 * threads copy the environment when they start, so the tally file is named there first.
 */
export async function startMemoryWorker(): Promise<MemoryRun> {
  const dir = mkdtempSync(join(tmpdir(), "troupe-chaos-"));
  const tallyFile = join(dir, "tally.txt");
  process.env.TROUPE_CHAOS_TALLY = tallyFile;
  await import(chaosActors);
  const broker = new MemoryBroker();
  setBroker(broker);
  const queue = uniqueName("memory");
  const worker = new Worker(broker, { modules: [chaosActors], queues: [queue], threads: 2 });
  await worker.start();
  return {
    broker,
    worker,
    queue,
    tally: () => readTally(tallyFile),
    async stop() {
      await worker.stop(5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
