#!/usr/bin/env node
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import type { Command } from "./command.js";
import { UsageError } from "./command.js";
import { getLogger, routeConsoleWarnings } from "../logging.js";
import { ConnectionFailed } from "../errors.js";
import { setUnusableDatabaseHandler } from "../redis/connection.js";
import { EXIT_BROKER_UNREACHABLE } from "../runtime/supervisor.js";

/** The operator lives in its own folder; resolving it at run time keeps the worker build independent of it. */
function importCommand(relative: string): Promise<{ default: Command }> {
  return import(new URL(relative, import.meta.url).href) as Promise<{ default: Command }>;
}

/** Subcommands load lazily so that `troupe enqueue` does not pay for the operator's Kubernetes client. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ default: Command }> }> = {
  worker: { summary: "run worker processes for actor modules", load: () => import("./commands/worker.js") },
  enqueue: { summary: "send one message without writing code", load: () => import("./commands/enqueue.js") },
  queues: { summary: "show ready / delayed / in-flight / dead-lettered counts per queue", load: () => import("./commands/queues.js") },
  "dead-letters": { summary: "list, show, requeue or purge dead-lettered messages", load: () => import("./commands/dead-letters.js") },
  dashboard: { summary: "serve the web console (queues, charts, dead letters, requeue)", load: () => import("./commands/dashboard.js") },
  schedules: { summary: "list, pause, resume or trigger periodic schedules", load: () => import("./commands/schedules.js") },
  demo: { summary: "run a local demo on the in-memory broker", load: () => import("./commands/demo.js") },
  init: { summary: "write a first project: typed actors, a producer, a Dockerfile and Kubernetes manifests", load: () => import("./commands/init.js") },
  operator: { summary: "run the Kubernetes operator", load: () => importCommand("../../operator/cli/operator-command.js") },
  up: { summary: "run WorkerPool manifests on this machine, without Kubernetes", load: () => importCommand("../../operator/cli/up-command.js") },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: troupe <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun 'troupe <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  if (name === "--version") {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`troupe: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  routeConsoleWarnings();
  // A Redis db the server refuses is a broker the command cannot use: at boot or on a later reconnect, every
  // command stops with the broker-unreachable code rather than carrying on in db 0.
  setUnusableDatabaseHandler((err) => {
    console.error(`troupe ${name}: ${err.message}`);
    process.exit(EXIT_BROKER_UNREACHABLE);
  });
  const command = (await entry.load()).default;
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.helpFor?.(rest) ?? command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`troupe ${name}: ${err.message}\n\n${command.help}`);
      return 2;
    }
    getLogger("cli").critical(`troupe ${name} failed`, { err });
    console.error(`troupe ${name}: ${(err as Error).message ?? err}`);
    return err instanceof ConnectionFailed ? EXIT_BROKER_UNREACHABLE : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A supervised worker process stays connected to its primary over IPC; it is done, so it leaves now (pipes to
    // the primary are written synchronously on Linux, so no log line is lost).
    if (cluster.isWorker) process.exit(code);
    // Everything was closed; a library handle that still holds the loop open must not keep the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
