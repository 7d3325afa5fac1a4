import { spawn, type ChildProcess } from "node:child_process";
import { getLogger } from "../../worker/logging.js";
import { EXIT_BOOT_FAILURE, EXIT_BROKER_UNREACHABLE } from "../../worker/runtime/supervisor.js";
import { scrapeLoad, type WorkerLoad } from "../scaling/pod-load.js";
import { freePort } from "../../worker/free-port.js";

export interface LocalPoolOptions {
  name: string;
  /** `node` and arguments before the per-replica ones: e.g. [cli, "worker", ...modules, flags...]. */
  command: string[];
  env: NodeJS.ProcessEnv;
  /** SIGTERM grace before SIGKILL, ms (the pool's shutdown timeout plus a margin). */
  stopTimeoutMs: number;
  /** Where child output goes (default: inherited). */
  stdio?: "inherit" | "ignore";
  /** Called with one human-readable line when a replica exits on its own. */
  onCrash?: (line: string) => void;
}

export interface Replica {
  id: number;
  child: ChildProcess;
  metricsPort: number;
  stopping: boolean;
  exited: Promise<void>;
}

const log = getLogger("up");

/**
 * Worker processes standing in for a Deployment's pods: `scaleTo(n)` starts or stops replicas. A replica that exits
 * on its own is replaced, as a ReplicaSet would, after a backoff that doubles per consecutive crash (a worker that
 * cannot boot does not restart in a hot loop). Scale-down stops the least busy replicas first (in-flight count from
 * each one's metrics port, the same signal as pod-deletion-cost) with SIGTERM, so they drain within the timeout.
 */
export class LocalPool {
  private readonly replicas = new Map<number, Replica>();
  private nextId = 1;
  private closed = false;
  /** Consecutive unexpected exits, for the restart backoff of a crash-looping worker. */
  private crashes = 0;
  private desired = 0;
  private backoffUntil = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LocalPoolOptions) {}

  /** The replica count asked for, as a Deployment's `spec.replicas` (replicas waiting out a crash backoff count). */
  get size(): number {
    return this.desired;
  }

  async scaleTo(n: number): Promise<void> {
    this.desired = n;
    if (Date.now() >= this.backoffUntil) {
      while (this.live().length < n && !this.closed) await this.startReplica();
    } else this.restartAfterBackoff();
    const surplus = this.live().length - n;
    if (surplus <= 0) return;
    const loads = await this.replicaLoads();
    // Unknown load counts as busy; among equals the newest replica goes first.
    const busy = (load: WorkerLoad | undefined) => load?.inFlight ?? Number.MAX_SAFE_INTEGER;
    loads.sort((a, b) => busy(a.load) - busy(b.load) || b.replica.id - a.replica.id);
    await Promise.all(loads.slice(0, surplus).map(({ replica }) => this.stopReplica(replica)));
  }

  private live(): Replica[] {
    return [...this.replicas.values()].filter((r) => !r.stopping);
  }

  /** One timer for every missing replica: the scaler's own calls in the meantime start nothing. */
  private restartAfterBackoff(): void {
    if (this.restartTimer || this.closed) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed) void this.scaleTo(this.desired);
    }, this.backoffUntil - Date.now());
    this.restartTimer.unref();
  }

  /** What each running replica reports on its metrics port. */
  replicaLoads(): Promise<{ replica: Replica; load: WorkerLoad | undefined }[]> {
    return Promise.all(this.live().map(async (replica) => ({ replica, load: await scrapeLoad(`http://127.0.0.1:${replica.metricsPort}/metrics`) })));
  }

  private async startReplica(): Promise<void> {
    const id = this.nextId++;
    const startedAt = Date.now();
    const metricsPort = await freePort();
    const [node, ...args] = this.options.command;
    const child = spawn(node!, args, {
      env: { ...this.options.env, TROUPE_METRICS_PORT: String(metricsPort) },
      stdio: ["ignore", this.options.stdio ?? "inherit", "pipe"],
    });
    // stderr is read even when quiet, so that a replica that dies says why in the crash line.
    let stderrTail = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      if (this.options.stdio !== "ignore") process.stderr.write(chunk);
      stderrTail = (stderrTail + chunk).slice(-4096);
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const replica: Replica = { id, child, metricsPort, stopping: false, exited };
    this.replicas.set(id, replica);
    log.info("replica started", { pool: this.options.name, replica: id, pid: child.pid });
    child.once("exit", (code, signal) => {
      this.replicas.delete(id);
      if (replica.stopping || this.closed) return;
      // A replica that ran for a while resets the backoff; one that failed to boot never does, however slowly it failed.
      const booted = code !== EXIT_BOOT_FAILURE && code !== EXIT_BROKER_UNREACHABLE;
      if (booted && Date.now() - startedAt >= 10_000) this.crashes = 0;
      const delay = Math.min(500 * 2 ** this.crashes++, 30_000);
      this.backoffUntil = Date.now() + delay;
      log.warn("replica exited; starting a replacement", { pool: this.options.name, replica: id, code, signal, restartInMs: delay });
      const why = lastWords(stderrTail);
      this.options.onCrash?.(`${this.options.name}: replica ${id} exited (${signal ?? `code ${code}`})${why ? `: ${why}` : ""}; starting a replacement in ${delay / 1000} s`);
      this.restartAfterBackoff();
    });
  }

  private async stopReplica(replica: Replica): Promise<void> {
    replica.stopping = true;
    replica.child.kill("SIGTERM");
    const timer = setTimeout(() => replica.child.kill("SIGKILL"), this.options.stopTimeoutMs);
    await replica.exited;
    clearTimeout(timer);
    log.info("replica stopped", { pool: this.options.name, replica: replica.id });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    await Promise.all([...this.replicas.values()].map((r) => this.stopReplica(r)));
  }
}

/** The worker's one-line reason (`troupe worker: ...`) when it printed one, else its last line of output. */
function lastWords(stderr: string): string | undefined {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  return (lines.filter((l) => !l.startsWith("{")).pop() ?? lines.pop())?.slice(0, 500);
}
