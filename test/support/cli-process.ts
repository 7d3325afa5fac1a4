import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
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

/** `node <troupe cli> ARGS...` as a child process with its stdout and stderr captured together. */
export class CliProcess {
  readonly child: ChildProcess;
  output = "";
  protected readonly exited: Promise<unknown[]>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    this.exited = once(this.child, "exit");
    this.child.stdout!.on("data", (chunk) => (this.output += chunk));
    this.child.stderr!.on("data", (chunk) => (this.output += chunk));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
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
  const run = new CliProcess(args, { ...process.env, TROUPE_METRICS_PORT: "off", ...env });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void run.kill();
  }, timeout);
  await once(run.child, "exit").catch(() => undefined);
  clearTimeout(timer);
  return { code: timedOut ? undefined : run.child.exitCode, output: run.output };
}
