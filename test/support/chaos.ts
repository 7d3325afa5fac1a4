import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Message } from "troupe";
import { cliPath, fixture } from "./env.js";
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
}

/**
 * `troupe worker` on the chaos actors, as a user runs it: one supervisor process forking worker processes.
 * Every run is tallied in a file of its own; stdout and stderr are captured for the password checks.
 */
export class WorkerCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "troupe-chaos-"));
  readonly tallyFile = join(this.dir, "tally.txt");
  output = "";
  readonly child: ChildProcess;
  private readonly exited: Promise<unknown[]>;

  constructor(readonly options: ClusterOptions) {
    const args = [cliPath, "worker", chaosActors, "--broker", options.broker, "-Q", options.queue];
    args.push("--processes", String(options.processes ?? 1), "--threads", String(options.threads ?? 2));
    if (options.prefetch !== undefined) args.push("--prefetch", String(options.prefetch));
    this.child = spawn(process.execPath, args, {
      env: { ...process.env, TROUPE_LOG_LEVEL: "warning", ...options.env, TROUPE_CHAOS_TALLY: this.tallyFile },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exited = once(this.child, "exit");
    this.child.stdout!.on("data", (chunk) => (this.output += chunk));
    this.child.stderr!.on("data", (chunk) => (this.output += chunk));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The worker processes the supervisor has forked and that are still running. */
  processes(): number[] {
    return childrenOf(this.pid);
  }

  waitForProcesses(count = this.options.processes ?? 1, timeout = 30_000): Promise<number[]> {
    return until(() => {
      const pids = this.processes();
      return pids.length >= count ? pids : undefined;
    }, `${count} worker processes under supervisor ${this.pid}`, { timeout, interval: 20 });
  }

  tally(): Tally {
    return readTally(this.tallyFile);
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
  async kill(): Promise<void> {
    if (this.alive) {
      for (const pid of this.processes()) process.kill(pid, "SIGKILL");
      this.child.kill("SIGKILL");
      await this.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Direct children of a process (Linux /proc); empty once it has exited. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export interface CliRun {
  /** Exit code; undefined when the command was still running at the deadline (it is then killed). */
  code: number | null | undefined;
  /** stdout and stderr together. */
  output: string;
}

/** Run `troupe ARGS...` to completion (or the deadline) and capture everything it prints. */
export async function runCli(args: string[], { env = {}, timeout = 20_000 }: { env?: Record<string, string>; timeout?: number } = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = once(child, "exit");
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    for (const pid of childrenOf(child.pid!)) process.kill(pid, "SIGKILL");
    child.kill("SIGKILL");
  }, timeout);
  await exited;
  clearTimeout(timer);
  return { code: timedOut ? undefined : child.exitCode, output };
}

export interface Tally {
  /** Runs per id. */
  counts: Map<string, number>;
  /** Worker processes that ran something. */
  pids: Set<number>;
  runs: number;
}

export function readTally(file: string): Tally {
  const counts = new Map<string, number>();
  const pids = new Set<number>();
  let runs = 0;
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  for (const line of text.split("\n")) {
    const [id, pid] = line.split(" ");
    if (!id || !pid) continue;
    counts.set(id, (counts.get(id) ?? 0) + 1);
    pids.add(Number(pid));
    runs++;
  }
  return { counts, pids, runs };
}

export interface Accounting {
  /** Ids that should have run and never did. */
  lost: string[];
  /** Extra runs of ids that ran more than once (at-least-once redeliveries). */
  duplicates: number;
  /** Ids that ran but were never sent (must be empty). */
  unexpected: string[];
}

export function account(expected: Iterable<string>, tally: Tally): Accounting {
  const wanted = new Set(expected);
  const lost = [...wanted].filter((id) => !tally.counts.has(id));
  const unexpected = [...tally.counts.keys()].filter((id) => !wanted.has(id));
  let duplicates = 0;
  for (const count of tally.counts.values()) duplicates += count - 1;
  return { lost, duplicates, unexpected };
}

/** Wait until every expected id has run at least once (or the deadline passes), then account. */
export async function awaitAll(cluster: WorkerCluster, expected: string[], timeout: number): Promise<Accounting> {
  await until(() => account(expected, cluster.tally()).lost.length === 0, `all ${expected.length} ids to run`, { timeout, interval: 100 }).catch(() => undefined);
  return account(expected, cluster.tally());
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
    const working = cluster.processes().filter((pid) => ran.has(pid));
    if (working.length < options.processes) continue;
    process.kill(working[Math.floor(Math.random() * working.length)]!, "SIGKILL");
    kills++;
  }
  return kills;
}
