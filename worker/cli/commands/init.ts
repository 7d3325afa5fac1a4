import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "../args.js";
import { UsageError, type Command } from "../command.js";
import { EXIT_BOOT_FAILURE as EXIT_USAGE, EXIT_OK } from "../../runtime/supervisor.js";

const help = `Usage: troupe init [DIR]

Write a first Troupe project into DIR (default: the current folder, created if missing):

  actors.ts               a typed actor, and a schedule that runs it every 5 seconds
  send.ts                 a producer: sends one message to that actor
  package.json            "type": "module", the troupe dependency, scripts (worker, dev, send, typecheck)
  tsconfig.json           strict TypeScript
  Dockerfile              a worker image FROM the Troupe image
  k8s/workerpool.yaml     a WorkerPool running the image and an Actor with the actor's options

Then, in DIR:

  npx troupe worker actors.ts                                  # on the in-memory broker: the schedule runs the actor
  npx troupe worker actors.ts -b redis://127.0.0.1:6379/0 --watch   # against Redis, reloading on every save
  TROUPE_BROKER_URL=redis://127.0.0.1:6379/0 npm run send      # once \`npm install\` has installed tsx

A file that exists already is never overwritten: init writes nothing and exits 2. When "troupe" does not resolve
from DIR, node_modules/troupe is linked to the troupe that runs this command, so the worker runs at once; \`npm
install\` replaces it with the version package.json names.`;

/** The installed troupe package this command belongs to (dist/worker/cli/commands → the package root). */
const packageRoot = fileURLToPath(new URL("../../../../", import.meta.url));

interface Manifest {
  version: string;
  dependencies: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const IMAGE = "ghcr.io/troupe-dev/troupe";

function actorsTs(): string {
  return `import { actor, getLogger, schedule } from "troupe";

const log = getLogger("actors");

/** An actor is a function the workers run for each message sent to it; its arguments must be JSON. */
export const greet = actor(
  "greet",
  (name: string): string => {
    const greeting = \`Hello, \${name}!\`;
    log.info("greeted", { name, greeting });
    return greeting;
  },
  { queue: "default", maxRetries: 3 },
);

/** Every 5 seconds, enqueued exactly once per tick however many workers load this module. */
schedule(greet, { every: "5s" }, { name: "greet-every-5s", args: ["schedule"] });
`;
}

function sendTs(): string {
  return `// A producer: any process that imports the actors can send to them. The broker is TROUPE_BROKER_URL's; a worker
// in another process only sees the message on a shared broker (Redis or RabbitMQ), not the in-memory one.
import { getBroker } from "troupe";
import { greet } from "./actors.js";

const message = await greet.send(process.argv[2] ?? "send.ts");
console.log(\`sent \${message.messageId} to queue \${message.queueName}\`);
await getBroker().close();
`;
}

function packageJson(name: string, troupe: Manifest): string {
  const dev = troupe.devDependencies ?? {};
  return `${JSON.stringify(
    {
      name,
      version: "0.1.0",
      private: true,
      type: "module",
      scripts: {
        worker: "troupe worker actors.ts",
        dev: "troupe worker actors.ts -b redis://127.0.0.1:6379/0 --watch",
        send: "node --import tsx send.ts",
        typecheck: "tsc --noEmit",
      },
      dependencies: { troupe: `^${troupe.version}` },
      devDependencies: {
        "@types/node": dev["@types/node"] ?? "^20.0.0",
        tsx: troupe.dependencies.tsx ?? "^4.0.0",
        typescript: dev.typescript ?? "^5.0.0",
      },
    },
    null,
    2,
  )}\n`;
}

function tsconfigJson(): string {
  const compilerOptions = { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] };
  return `${JSON.stringify({ compilerOptions, include: ["*.ts"] }, null, 2)}\n`;
}

function dockerfile(name: string, version: string): string {
  return `# A worker image: the Troupe image (Node, the troupe CLI on PATH, tsx for .ts modules) with this project's actors.
#   docker build -t registry.example.com/${name}:0.1.0 .
#   docker run --rm -e TROUPE_BROKER_URL=redis://redis:6379/0 registry.example.com/${name}:0.1.0
# Modules anywhere under /app import "troupe" from the image. With dependencies of your own, install them here
# (see docs/shipping.md, "Your worker image, FROM ours").
FROM ${IMAGE}:${version}
COPY package.json tsconfig.json actors.ts /app/${name}/
CMD ["worker", "/app/${name}/actors.ts"]
`;
}

function workerPoolYaml(name: string): string {
  return `# kubectl apply -f k8s/ once the Troupe operator runs in the cluster (helm install troupe …, see docs/shipping.md)
# and a Secret holds the broker URL:
#   kubectl create secret generic troupe-broker --from-literal=url=redis://redis:6379/0
apiVersion: troupe.dev/v1alpha1
kind: WorkerPool
metadata:
  name: ${name}
spec:
  image: registry.example.com/${name}:0.1.0
  modules: [/app/${name}/actors.ts]
  queues: [default]
  actorSelector:
    matchLabels:
      troupe.dev/pool: ${name}
  broker:
    secretRef: { name: troupe-broker, key: url }
  processes: 1
  threads: 4
  autoscaling:
    minReplicas: 1
    maxReplicas: 5
    targetBacklogPerReplica: 100
---
# The actor's options, changed without a new image: the operator publishes them to the pool's workers.
apiVersion: troupe.dev/v1alpha1
kind: Actor
metadata:
  name: greet
  labels:
    troupe.dev/pool: ${name}
spec:
  actorName: greet
  queue: default
  options:
    maxRetries: 3
    timeLimit: 60000
`;
}

/** An npm package name from a folder name: lower case, the characters npm allows. */
function packageName(dir: string): string {
  return basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+/, "") || "troupe-app";
}

/** Whether `import "troupe"` from a module in `dir` finds a package. */
function troupeResolves(dir: string): boolean {
  try {
    createRequire(join(dir, "noop.js")).resolve("troupe/package.json");
    return true;
  } catch {
    return false;
  }
}

const command: Command = {
  summary: "write a first project: typed actors, a producer, a Dockerfile and Kubernetes manifests",
  help,
  async run(argv) {
    const { positionals } = parse(argv, {});
    if (positionals.length > 1) throw new UsageError("give at most one folder");
    const dir = resolve(positionals[0] ?? ".");
    const troupe = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as Manifest;
    const name = packageName(dir);
    const files: Record<string, string> = {
      "actors.ts": actorsTs(),
      "send.ts": sendTs(),
      "package.json": packageJson(name, troupe),
      "tsconfig.json": tsconfigJson(),
      Dockerfile: dockerfile(name, troupe.version),
      "k8s/workerpool.yaml": workerPoolYaml(name),
    };
    const present = Object.keys(files).filter((file) => existsSync(join(dir, file)));
    if (present.length) {
      console.error(`troupe init: ${present.join(", ")} already exist${present.length === 1 ? "s" : ""} in ${dir}; nothing was written (init never overwrites a file)`);
      return EXIT_USAGE;
    }
    mkdirSync(join(dir, "k8s"), { recursive: true });
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text, { flag: "wx" });
    const shown = relative(process.cwd(), dir) || ".";
    console.log(`wrote ${Object.keys(files).join(", ")} in ${shown}`);
    if (!troupeResolves(dir)) {
      mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
      symlinkSync(packageRoot, join(dir, "node_modules", "troupe"), "dir");
      symlinkSync(join("..", "troupe", "dist", "worker", "cli", "main.js"), join(dir, "node_modules", ".bin", "troupe"));
      console.log(`linked node_modules/troupe to ${packageRoot} (this troupe); npm install replaces it with troupe@^${troupe.version}`);
    }
    console.log(`
next:
  cd ${shown}
  npx troupe worker actors.ts                                       # the schedule runs greet every 5 s, in memory
  npx troupe worker actors.ts -b redis://127.0.0.1:6379/0 --watch   # on Redis, reloaded on every save
  npx troupe enqueue greet -m actors.ts --args '["you"]' -b redis://127.0.0.1:6379/0
  npm install && TROUPE_BROKER_URL=redis://127.0.0.1:6379/0 npm run send`);
    return EXIT_OK;
  },
};
export default command;
