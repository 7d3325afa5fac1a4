import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { cliPath } from "./env.js";

/** Direct children of a process (Linux /proc); empty once it has exited. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Whether a process exists (signal 0 probes without signalling). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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

  /**
   * `env` is laid over this process's environment; a key set to undefined is left out. `processGroup` starts it
   * as the leader of a process group of its own, to be signalled as a whole with `signalGroup`; `cwd` is where it runs.
   */
  constructor(args: string[], env: Record<string, string | undefined> = {}, { processGroup = false, cwd }: { processGroup?: boolean; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [cliPath, ...args], {
      cwd,
      env: { ...process.env, TROUPE_LOG_LEVEL: "info", TROUPE_METRICS_PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: processGroup,
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

  get pid(): number {
    return this.child.pid!;
  }

  /** Everything printed so far, stdout and stderr together, a line at a time. */
  get output(): string {
    return this.text.join("\n");
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Signal every process of its group, as `kill -SIG -- -PGID`, `timeout` or a terminal's Ctrl-C do. */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.pid, signal);
  }

  /** SIGTERM, then wait for the exit code. */
  async stop(): Promise<number | null> {
    if (this.alive) this.child.kill("SIGTERM");
    return this.exited;
  }

  /** SIGKILL the process and the processes it forked, and wait for it to exit. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    for (const pid of childrenOf(this.pid)) process.kill(pid, "SIGKILL");
    this.child.kill("SIGKILL");
    await this.exited;
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
  const run = new CliProcess(args, { TROUPE_METRICS_PORT: "off", ...env });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void run.kill();
  }, timeout);
  // "close", not "exit": the output is complete only once both pipes have ended.
  await once(run.child, "close").catch(() => undefined);
  clearTimeout(timer);
  return { code: timedOut ? undefined : run.child.exitCode, output: run.output };
}
