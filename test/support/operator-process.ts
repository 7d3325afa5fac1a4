import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { cliPath } from "./env.js";

export interface OperatorProcessOptions {
  kubeconfig: string;
  namespace: string;
  leaseName: string;
  env?: Record<string, string>;
}

/** `troupe operator --leader-elect` as its own process, so that a test can SIGKILL it like a crashed pod. */
export class OperatorProcess {
  readonly child: ChildProcess;
  output = "";
  private readonly exited: Promise<unknown[]>;

  constructor(options: OperatorProcessOptions) {
    const args = [cliPath, "operator", "--kubeconfig", options.kubeconfig, "-n", options.namespace, "--metrics-port", "0"];
    args.push("--leader-elect", "--leader-election-namespace", "kube-system", "--leader-election-id", options.leaseName, "--lease-duration", "2");
    const env: NodeJS.ProcessEnv = { ...process.env, TROUPE_LOG_LEVEL: "info", ...options.env };
    delete env.POD_NAME;
    this.child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
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

  /** The identity the CLI uses in the Lease: `<hostname>-<pid>` when POD_NAME is unset. */
  holds(identity: string | undefined): boolean {
    return identity?.endsWith(`-${this.pid}`) ?? false;
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}
