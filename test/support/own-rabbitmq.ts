import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect } from "amqplib";
import { repoRoot } from "./env.js";
import { isRunning } from "./process.js";
import { freePort } from "./redis.js";
import { until } from "./wait.js";

const execFileAsync = promisify(execFile);

const SERVER_SCRIPT = ["/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/sbin/rabbitmq-server"].find((p) => existsSync(p)) ?? "rabbitmq-server";

export interface Credentials {
  user: string;
  password: string;
}

/**
 * A private RabbitMQ node (own name, AMQP and distribution ports, data directory; no plugins) that a test may
 * SIGKILL and start again on the same port and data, as a broker crash and restart, without touching the shared
 * server other tests use. Boots in about 4 s and uses about 130 MB.
 */
export class OwnRabbitServer {
  readonly dir = mkdtempSync(join(tmpdir(), "troupe-rabbitmq-"));
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly distPort: number,
    private readonly credentials: Credentials,
  ) {
    const conf = [`listeners.tcp.local = 127.0.0.1:${port}`, `default_user = ${credentials.user}`, `default_pass = ${credentials.password}`];
    writeFileSync(join(this.dir, "rabbitmq.conf"), conf.join("\n") + "\n");
    writeFileSync(join(this.dir, "enabled_plugins"), "[].\n");
  }

  /** `credentials` become the node's only user, created when its database is first initialised. */
  static async create(credentials: Credentials = { user: "guest", password: "guest" }): Promise<OwnRabbitServer> {
    return new OwnRabbitServer(await freePort(), await freePort(), credentials);
  }

  get url(): string {
    return `amqp://${this.credentials.user}:${this.credentials.password}@127.0.0.1:${this.port}/`;
  }

  async start(): Promise<void> {
    const env = {
      ...process.env,
      RABBITMQ_NODENAME: `troupe-chaos-${this.port}@localhost`,
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_CONFIG_FILE: join(this.dir, "rabbitmq.conf"),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, "enabled_plugins"),
      RABBITMQ_MNESIA_BASE: join(this.dir, "mnesia"),
      RABBITMQ_LOG_BASE: join(this.dir, "log"),
      RABBITMQ_PID_FILE: join(this.dir, "pid"),
    };
    this.child = spawn(SERVER_SCRIPT, [], { env, stdio: "ignore" });
    // A node that never answered must not outlive the test: its process would keep the test file running.
    await this.untilAnswering().catch(async (err) => {
      await this.kill();
      throw err;
    });
  }

  private async untilAnswering(): Promise<void> {
    await until(
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`rabbitmq-server on port ${this.port} exited with code ${this.child?.exitCode}; see ${join(this.dir, "log")}`);
        const connection = await connect(this.url).catch(() => undefined);
        await connection?.close();
        return connection !== undefined;
      },
      `RabbitMQ on port ${this.port}`,
      { timeout: 60_000, interval: 100 },
    );
  }

  /** SIGKILL the Erlang VM: confirmed persistent messages must survive, everything else is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const pidFile = join(this.dir, "pid");
    // The start script may run the VM as a child of its own; the pid file names the VM itself.
    const vm = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : undefined;
    if (vm && vm !== child.pid) process.kill(vm, "SIGKILL");
    child.kill("SIGKILL");
    await exited;
    await until(() => !vm || !isRunning(vm), `the RabbitMQ VM ${vm} to exit`, { timeout: 10_000 });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const CLUSTER_SCRIPT = join(repoRoot, "scripts", "rabbitmq-cluster.sh");

/** Whether nothing listens on `port` of loopback. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A three-node RabbitMQ cluster of its own (scripts/rabbitmq-cluster.sh): nodes a, b and c on three consecutive
 * loopback ports, in a folder of its own, which a test may kill -9 and restart one node at a time.
 */
export class RabbitCluster {
  /** How long `start` took: three nodes booted and joined. */
  startMs = 0;

  private constructor(
    private readonly env: NodeJS.ProcessEnv,
    readonly port: number,
  ) {}

  static async start(): Promise<RabbitCluster> {
    // Three AMQP ports and the three distribution ports 20000 above them, all free.
    let base = 0;
    for (let attempt = 0; attempt < 50 && base === 0; attempt++) {
      const candidate = 10_000 + Math.floor(Math.random() * 20_000);
      const ports = [0, 1, 2].flatMap((i) => [candidate + i, candidate + i + 20_000]);
      if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) base = candidate;
    }
    if (base === 0) throw new Error("no free ports for a RabbitMQ cluster");
    const env = { ...process.env, TROUPE_CLUSTER_DIR: mkdtempSync(join(tmpdir(), "troupe-cluster-")) + "/nodes", TROUPE_CLUSTER_PORT: String(base) };
    const started = Date.now();
    const cluster = new RabbitCluster(env, base);
    try {
      await cluster.script("start");
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    cluster.startMs = Date.now() - started;
    return cluster;
  }

  static readonly NODES = ["a", "b", "c"] as const;

  /** The AMQP port of node `a`, `b` or `c`. */
  portOf(node: ClusterNode): number {
    return this.port + RabbitCluster.NODES.indexOf(node);
  }

  /** The URL naming every node, as a user would give it. */
  get url(): string {
    return `amqp://guest:guest@${RabbitCluster.NODES.map((n) => `127.0.0.1:${this.portOf(n)}`).join(",")}/`;
  }

  /** The Erlang node name of `a`, `b` or `c`. */
  static nodeName(node: ClusterNode): string {
    return `troupe-${node}@localhost`;
  }

  /** SIGKILL a node's VM: a node crash. */
  async kill(node: ClusterNode): Promise<void> {
    await this.script("kill", node);
  }

  /** Start a killed node again on its data; resolves once it runs (it rejoins the cluster). */
  async restart(node: ClusterNode): Promise<void> {
    await this.script("restart", node);
  }

  /** `rabbitmqctl ARGS...` against a node, its stdout. */
  ctl(node: ClusterNode, ...args: string[]): Promise<string> {
    return this.script("ctl", node, ...args);
  }

  /** The node leading each quorum queue of the default vhost whose name starts with `prefix`. */
  async leaders(via: ClusterNode, prefix: string): Promise<Map<string, ClusterNode>> {
    const rows = (await this.ctl(via, "list_queues", "--no-table-headers", "name", "leader")).trim().split("\n");
    const leaders = new Map<string, ClusterNode>();
    for (const [name, leader] of rows.map((row) => row.split("\t"))) {
      const node = RabbitCluster.NODES.find((n) => RabbitCluster.nodeName(n) === leader);
      if (name?.startsWith(prefix) && node) leaders.set(name, node);
    }
    return leaders;
  }

  /** Make `node` the leader of quorum queues of the default vhost (what maintenance mode does before a node stops). */
  async moveLeaders(queues: string[], node: ClusterNode): Promise<void> {
    const moves = queues.map((q) => `{ok, Q${queues.indexOf(q)}} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"${q}">>)), rabbit_quorum_queue:transfer_leadership(Q${queues.indexOf(q)}, '${RabbitCluster.nodeName(node)}')`);
    await this.ctl(node, "eval", `${moves.join(", ")}.`);
  }

  /** The node each client connection is on, by the connection_name client property (Troupe: "troupe ROLE pid N"). */
  async connectionNodes(via: ClusterNode): Promise<{ name: string; node: ClusterNode }[]> {
    const rows = (await this.ctl(via, "list_connections", "--no-table-headers", "port", "client_properties")).trim().split("\n");
    const connections: { name: string; node: ClusterNode }[] = [];
    for (const row of rows) {
      const match = /^(\d+)\t.*\{"connection_name","([^"]*)"\}/.exec(row);
      const node = match && RabbitCluster.NODES.find((n) => this.portOf(n) === Number(match[1]));
      if (match && node) connections.push({ name: match[2]!, node });
    }
    return connections;
  }

  async stop(): Promise<void> {
    await this.script("stop");
    rmSync(join(this.env.TROUPE_CLUSTER_DIR!, ".."), { recursive: true, force: true });
  }

  private async script(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(CLUSTER_SCRIPT, args, { env: this.env, timeout: 120_000 });
    return stdout;
  }
}

export type ClusterNode = (typeof RabbitCluster.NODES)[number];
