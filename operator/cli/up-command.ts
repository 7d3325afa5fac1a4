import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "../../worker/cli/args.js";
import { UsageError, type Command } from "../../worker/cli/command.js";
import { getLogger } from "../../worker/logging.js";
import { LocalRunner } from "../local/runner.js";
import { loadManifests } from "../local/manifests.js";

const help = `Usage: troupe up -f FILE [-f FILE ...] [options]

Run WorkerPool manifests on this machine, without Kubernetes: the operator's scaling decision drives local
worker processes (one per replica) instead of a Deployment. Actor manifests in the files become run-time
overrides for those workers; Pipelines run (once, or on their schedule) through the operator's pipeline engine.
Module paths in a WorkerPool are relative to its manifest's directory.

The broker URL comes from --broker, else from a Secret manifest in the files (the pool's broker.secretRef),
else from $TROUPE_BROKER_URL.

Options:
  -f, --file FILE      a YAML file of WorkerPool / Actor / Pipeline / Secret documents (repeatable)
  -b, --broker URL     broker URL for every pool
      --quiet          do not pass worker output through

Stops on SIGINT/SIGTERM: every replica gets SIGTERM and drains within the pool's shutdownTimeoutSeconds.`;

const log = getLogger("cli.up");

const command: Command = {
  summary: "run WorkerPool manifests on this machine, without Kubernetes",
  help,
  async run(argv) {
    const { values } = parse(argv, { file: { type: "string", short: "f", multiple: true }, broker: { type: "string", short: "b" }, quiet: { type: "boolean" } }, false);
    const files = values.file ?? [];
    if (files.length === 0) throw new UsageError("name at least one manifest with -f");
    for (const f of files) if (!existsSync(f)) throw new UsageError(`manifest not found: ${f}`);
    let manifests;
    try {
      manifests = await loadManifests(files);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const runner = new LocalRunner(manifests, {
      cliPath: fileURLToPath(new URL("../../worker/cli/main.js", import.meta.url)),
      brokerUrl: values.broker,
      report: (line) => console.log(line),
      stdio: values.quiet ? "ignore" : "inherit",
    });
    try {
      await runner.start();
    } catch (err) {
      await runner.stop();
      throw new UsageError((err as Error).message);
    }
    console.log(`troupe up: running ${manifests.pools.map((p) => p.metadata.name).join(", ")}; Ctrl-C to stop`);
    return new Promise<number>((resolve) => {
      const stop = (signal: string) => {
        log.info("stopping", { signal });
        void runner.stop().then(() => resolve(0));
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
  },
};

export default command;
