import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const cliMain = join(here, "..", "worker", "cli", "main.js");
export const benchActors = join(here, "actors.js");

export interface WorkerProcessOptions {
  brokerUrl: string;
  processes: number;
  threads: number;
  prefetch: number;
  queue: string;
  /** Extra environment (tally location, Redis namespace). */
  env: Record<string, string>;
}

/** RSS in bytes per worker process (the supervisor's children), from /proc/<pid>/status VmRSS. */
export type RssReading = number[];

/**
 * `troupe worker` run exactly as a user runs it, as a separate process tree: a supervisor and its worker
 * processes. The bench reads their memory from /proc and stops them with SIGTERM, like a deployment would.
 */
export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private stderrTail = "";

  constructor(options: WorkerProcessOptions) {
    const args = [cliMain, "worker", benchActors, "--broker", options.brokerUrl, "--processes", String(options.processes), "--threads", String(options.threads), "--prefetch", String(options.prefetch), "-Q", options.queue];
    this.child = spawn(process.execPath, args, {
      env: {
        ...process.env,
        TROUPE_LOG_LEVEL: process.env.TROUPE_LOG_LEVEL ?? "warning",
        // The exporter's fixed port would clash with any other worker on this machine (tests run beside the bench).
        TROUPE_METRICS_PORT: process.env.TROUPE_METRICS_PORT ?? "off",
        BENCH_QUEUE: options.queue,
        BENCH_WORKER_PROCESSES: String(options.processes),
        ...options.env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child.stderr!.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-4000);
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** What the worker printed last on stderr (for error messages). */
  get stderr(): string {
    return this.stderrTail;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Pids of the worker processes (children of the supervisor). */
  workerPids(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        // The command name in parentheses may hold spaces; fields after it are fixed: state, ppid, …
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === this.pid) pids.push(Number(entry));
      } catch {
        // The process went away between readdir and read.
      }
    }
    return pids;
  }

  rss(): RssReading {
    return this.workerPids().flatMap((pid) => {
      try {
        const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        return match ? [Number(match[1]) * 1024] : [];
      } catch {
        return [];
      }
    });
  }

  /** Fail fast when the worker dies while the bench waits on it. */
  async watch<T>(work: Promise<T>): Promise<T> {
    const died = this.exited.then((code) => {
      throw new Error(`the worker exited early (code ${code}):\n${this.stderrTail}`);
    });
    return Promise.race([work, died]);
  }

  /**
   * SIGTERM, then wait until every worker process reports its graceful stop done (`stopped`) and give the tree
   * a second to exit. A tree still there then is killed; returns false in that case (see docs/bench.md: worker
   * processes that outlive their stop are a bug to report, not something to wait out for every run).
   */
  async stop(stopped: Promise<void>, timeout = 20_000): Promise<boolean> {
    if (!this.running) return true;
    const tree = [...this.workerPids(), this.pid];
    this.child.kill("SIGTERM");
    const exitedSoon = () => Promise.race([this.exited, sleep(1000)]);
    await Promise.race([this.exited, stopped.then(exitedSoon, exitedSoon), sleep(timeout)]);
    const clean = !this.running;
    if (!clean) {
      for (const pid of tree) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    await this.exited;
    return clean;
  }
}

/** CPU seconds of one worker process over a window: its main thread, and all its other threads together. */
export interface ProcessCpu {
  main: number;
  others: number;
}

/** Where the CPU went while a worker drained its queue (see CpuWindow). */
export interface CpuReading {
  /** Wall seconds of the window. */
  seconds: number;
  perProcess: ProcessCpu[];
  /** The supervisor process (it forks the workers and relays their metrics). */
  supervisor: number;
  /** Share of the machine's CPU time (all cores) that was busy, whoever used it. */
  machineBusy: number;
}

const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** utime + stime of a task, in seconds (0 if it is gone). */
function taskCpu(path: string): number {
  try {
    const stat = readFileSync(`${path}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return 0;
  }
}

function processCpu(pid: number): ProcessCpu {
  let others = 0;
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    // The process exited.
  }
  for (const tid of tasks) if (Number(tid) !== pid) others += taskCpu(`/proc/${pid}/task/${tid}`);
  return { main: taskCpu(`/proc/${pid}/task/${pid}`), others };
}

function sum(cpu: ProcessCpu): number {
  return cpu.main + cpu.others;
}

/** Busy and total jiffies of the whole machine, from the first line of /proc/stat. */
function machineJiffies(): { busy: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait
  return { busy: total - fields[3]! - (fields[4] ?? 0), total };
}

/**
 * Per-thread CPU of the worker processes from /proc between `new CpuWindow(worker)` and `end()`: what
 * docs/performance.md reads to tell a saturated main thread from busy worker threads or a busy machine.
 */
export class CpuWindow {
  private readonly startedAt = Date.now();
  private readonly pids: number[];
  private readonly start: ProcessCpu[];
  private readonly supervisorStart: number;
  private readonly machineStart = machineJiffies();

  constructor(private readonly worker: WorkerProcess) {
    this.pids = worker.workerPids().sort((a, b) => a - b);
    this.start = this.pids.map(processCpu);
    this.supervisorStart = sum(processCpu(worker.pid));
  }

  end(): CpuReading {
    const machine = machineJiffies();
    const perProcess = this.pids.map((pid, i) => {
      const now = processCpu(pid);
      return { main: now.main - this.start[i]!.main, others: now.others - this.start[i]!.others };
    });
    const total = machine.total - this.machineStart.total;
    return {
      seconds: (Date.now() - this.startedAt) / 1000,
      perProcess,
      supervisor: sum(processCpu(this.worker.pid)) - this.supervisorStart,
      machineBusy: total > 0 ? (machine.busy - this.machineStart.busy) / total : 0,
    };
  }
}

/** Samples worker RSS every 100 ms and keeps, per process slot, the peak. */
export class RssSampler {
  private peak: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly worker: WorkerProcess) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 100);
  }

  private sample(): void {
    const reading = this.worker.rss().sort((a, b) => b - a);
    reading.forEach((rss, i) => (this.peak[i] = Math.max(this.peak[i] ?? 0, rss)));
  }

  stop(): RssReading {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}
