import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "amqplib";
import { isRunning } from "./process.js";
import { freePort } from "./redis.js";
import { until } from "./wait.js";

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
