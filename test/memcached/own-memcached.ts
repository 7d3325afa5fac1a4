import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

export interface SaslUser {
  username: string;
  password: string;
}

/** A private memcached on a free loopback port, for tests that kill it, need several servers or SASL. */
export class OwnMemcached {
  private child: ChildProcess | undefined;
  /** With SASL: Cyrus SASL's configuration directory for memcached, holding its own user database. */
  private saslDir: string | undefined;

  private constructor(readonly port: number) {}

  /** `sasl`: require SASL PLAIN (`memcached -S`) with this one user, kept in a sasldb of the server's own. */
  static async start(port?: number, sasl?: SaslUser): Promise<OwnMemcached> {
    const server = new OwnMemcached(port ?? (await freePort()));
    if (sasl) {
      const dir = (server.saslDir = mkdtempSync(join(tmpdir(), "troupe-memcached-sasl-")));
      const db = join(dir, "sasldb2");
      execFileSync("saslpasswd2", ["-p", "-a", "memcached", "-c", "-f", db, sasl.username], { input: sasl.password });
      writeFileSync(join(dir, "memcached.conf"), `mech_list: plain\nsasldb_path: ${db}\n`);
    }
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
    const sasl = this.saslDir ? ["-S"] : [];
    const env = this.saslDir ? { ...process.env, SASL_CONF_PATH: this.saslDir } : process.env;
    this.child = spawn("memcached", ["-l", "127.0.0.1", "-p", String(this.port), "-U", "0", "-m", "16", ...sasl, ...user], { stdio: "ignore", env });
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

  async stop(): Promise<void> {
    await this.kill();
    if (this.saslDir) rmSync(this.saslDir, { recursive: true, force: true });
  }
}
