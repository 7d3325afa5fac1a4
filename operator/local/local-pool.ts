import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { getLogger } from "../../worker/logging.js";
import { scrapeLoad, type WorkerLoad } from "../scaling/pod-load.js";

export interface LocalPoolOptions {
  name: string;
  /** `node` and arguments before the per-replica ones: e.g. [cli, "worker", ...modules, flags...]. */
  command: string[];
  env: NodeJS.ProcessEnv;
  /** SIGTERM grace before SIGKILL, ms (the pool's shutdown timeout plus a margin). */
  stopTimeoutMs: number;
  /** Where child output goes (default: inherited). */
  stdio?: "inherit" | "ignore";
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
 * on its own is replaced, as a ReplicaSet would. Scale-down stops the least busy replicas first (in-flight count from
 * each one's metrics port, the same signal as pod-deletion-cost) with SIGTERM, so they drain within the timeout.
 */
export class LocalPool {
  private readonly replicas = new Map<number, Replica>();
  private nextId = 1;
  private closed = false;
  /** Consecutive unexpected exits, for the restart backoff of a crash-looping worker. */
  private crashes = 0;

  constructor(private readonly options: LocalPoolOptions) {}

  get size(): number {
    return [...this.replicas.values()].filter((r) => !r.stopping).length;
  }

  async scaleTo(n: number): Promise<void> {
    while (this.size < n) await this.startReplica();
    const surplus = this.size - n;
    if (surplus <= 0) return;
    const loads = await this.replicaLoads();
    // Unknown load counts as busy; among equals the newest replica goes first.
    const busy = (load: WorkerLoad | undefined) => load?.inFlight ?? Number.MAX_SAFE_INTEGER;
    loads.sort((a, b) => busy(a.load) - busy(b.load) || b.replica.id - a.replica.id);
    await Promise.all(loads.slice(0, surplus).map(({ replica }) => this.stopReplica(replica)));
  }

  /** What each running replica reports on its metrics port. */
  replicaLoads(): Promise<{ replica: Replica; load: WorkerLoad | undefined }[]> {
    const live = [...this.replicas.values()].filter((r) => !r.stopping);
    return Promise.all(live.map(async (replica) => ({ replica, load: await scrapeLoad(`http://127.0.0.1:${replica.metricsPort}/metrics`) })));
  }

  private async startReplica(): Promise<void> {
    const id = this.nextId++;
    const metricsPort = await freePort();
    const [node, ...args] = this.options.command;
    const child = spawn(node!, args, {
      env: { ...this.options.env, TROUPE_METRICS_PORT: String(metricsPort) },
      stdio: ["ignore", this.options.stdio ?? "inherit", this.options.stdio ?? "inherit"],
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const replica: Replica = { id, child, metricsPort, stopping: false, exited };
    this.replicas.set(id, replica);
    log.info("replica started", { pool: this.options.name, replica: id, pid: child.pid });
    child.once("exit", (code, signal) => {
      this.replicas.delete(id);
      if (replica.stopping || this.closed) return;
      const delay = Math.min(500 * 2 ** this.crashes++, 30_000);
      log.warn("replica exited; starting a replacement", { pool: this.options.name, replica: id, code, signal, restartInMs: delay });
      setTimeout(() => {
        if (!this.closed) void this.startReplica();
      }, delay).unref();
    });
    // A replica that stays up for a while resets the crash backoff.
    setTimeout(() => {
      if (this.replicas.has(id)) this.crashes = 0;
    }, 10_000).unref();
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
    await Promise.all([...this.replicas.values()].map((r) => this.stopReplica(r)));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
