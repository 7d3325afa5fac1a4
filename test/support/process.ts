import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { cliPath } from "./env.js";

export interface LogLine {
  msg: string;
  pid: number;
  [key: string]: unknown;
}

/**
 * A `troupe` CLI process whose JSON log lines (stderr) are parsed and can be awaited. Non-JSON lines are kept
 * verbatim for failure messages.
 */
export class CliProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  readonly text: string[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, TROUPE_LOG_LEVEL: "info", TROUPE_METRICS_PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => this.onLine(line));
    }
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  private onLine(line: string): void {
    this.text.push(line);
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    if (typeof parsed !== "object" || parsed === null || typeof parsed.msg !== "string") return;
    this.logs.push(parsed);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(parsed)) return true;
      w.resolve(parsed);
      return false;
    });
  }

  /** The first log line (already seen or to come) matching `match`. */
  waitForLog(match: (l: LogLine) => boolean, what: string, timeout = 30_000, skip = 0): Promise<LogLine> {
    const seen = this.logs.filter(match);
    if (seen.length > skip) return Promise.resolve(seen[skip]!);
    let remaining = skip - seen.length;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; last output:\n${this.text.slice(-15).join("\n")}`)), timeout);
      this.waiters.push({
        match: (l) => match(l) && remaining-- <= 0,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** SIGTERM, then wait for the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }
}
