/** A real Prometheus server (Debian's `prometheus` package) on loopback, scraping the given targets every second. */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";
import { ensureCommand } from "./tools.js";

export class PrometheusServer {
  private readonly dir = mkdtempSync(join(tmpdir(), "troupe-prometheus-"));
  private child: ChildProcess | undefined;
  private output = "";
  private url = "";

  /** Starts scraping `targets` (host:port, job name = key); resolves once Prometheus answers /-/ready. */
  async start(targets: Record<string, string>): Promise<void> {
    ensureCommand("prometheus", "prometheus");
    const config = {
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      scrape_configs: Object.entries(targets).map(([job, target]) => ({ job_name: job, static_configs: [{ targets: [target] }] })),
    };
    writeFileSync(join(this.dir, "prometheus.yml"), JSON.stringify(config));
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(
      "prometheus",
      [`--config.file=${join(this.dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(this.dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child.stdout!.on("data", (d: Buffer) => (this.output += d));
    this.child.stderr!.on("data", (d: Buffer) => (this.output += d));
    await until(async () => this.child?.exitCode === null && (await fetch(`${this.url}/-/ready`).then((r) => r.ok, () => false)), "Prometheus ready", {
      timeout: 20_000,
      interval: 50,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output}`);
    });
  }

  /** The instant-query result vector of `expr` (throws on a PromQL error). */
  async query(expr: string): Promise<unknown[]> {
    const body = (await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`).then((r) => r.json())) as {
      status: string;
      error?: string;
      data?: { result: unknown[] };
    };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
    return body.data!.result;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = once(this.child, "exit");
      this.child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
