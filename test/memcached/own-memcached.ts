import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A private memcached on a free loopback port, for tests that kill it or need several servers. */
export class OwnMemcached {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(port?: number): Promise<OwnMemcached> {
    const server = new OwnMemcached(port ?? (await freePort()));
    await server.restart();
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Start (again) on the same port: memcached keeps nothing across a restart, as in production. */
  async restart(): Promise<void> {
    // memcached refuses to run as root unless told which user to become.
    const user = process.getuid?.() === 0 ? ["-u", "root"] : [];
    this.child = spawn("memcached", ["-l", "127.0.0.1", "-p", String(this.port), "-U", "0", "-m", "16", ...user], { stdio: "ignore" });
    await until(() => accepts(this.port), `memcached listening on ${this.address}`, { timeout: 10_000 });
  }

  /** SIGKILL, as a crash: no goodbye to clients. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  }

  stop(): Promise<void> {
    return this.kill();
  }
}
