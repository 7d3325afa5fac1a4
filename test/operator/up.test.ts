import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { createBroker, Message, RedisBroker, type Broker } from "troupe";
import { stringify } from "yaml";
import { AMQP_URL, cliPath, fixture, REDIS_URL, uniqueName } from "../support/env.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { deleteNamespace } from "../support/redis.js";
import { until } from "../support/wait.js";

/** SIGTERM to a `troupe up` still running, and its exit (its replicas drain and stop with it). */
async function stopUp(up: ChildProcess | undefined): Promise<void> {
  if (!up || up.exitCode !== null) return;
  const exited = new Promise((resolve) => up.once("exit", resolve));
  up.kill("SIGTERM");
  await exited;
}

/** Write `docs` as one manifest in a fresh directory and run `troupe up -f` on it, collecting its output lines. */
async function upOn(prefix: string, docs: object[], env: NodeJS.ProcessEnv): Promise<{ up: ChildProcess; lines: string[]; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, "manifest.yaml"), docs.map((d) => stringify(d)).join("---\n"));
  const up = spawn(process.execPath, [cliPath, "up", "-f", join(dir, "manifest.yaml"), "--quiet"], {
    env: { ...process.env, TROUPE_LOG_LEVEL: "error", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  up.stdout!.setEncoding("utf8").on("data", (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)));
  return { up, lines, dir };
}

/** A broker Secret for REDIS_URL and a WorkerPool of the operator-up fixture consuming `queue`. */
function redisPoolDocs(name: string, queue: string, spec: Record<string, unknown>): object[] {
  return [
    { apiVersion: "v1", kind: "Secret", metadata: { name: "broker" }, stringData: { url: REDIS_URL } },
    {
      apiVersion: "troupe.dev/v1alpha1",
      kind: "WorkerPool",
      metadata: { name },
      spec: { image: "unused", modules: [fixture("operator-up")], queues: [queue], broker: { secretRef: { name: "broker" } }, threads: 1, ...spec },
    },
  ];
}

for (const [label, brokerUrl] of [["Redis", REDIS_URL], ["RabbitMQ", AMQP_URL]] as const) {
  describe(`troupe up: a WorkerPool on local processes against real ${label}`, () => {
    const queue = uniqueName("up");
    let dir: string;
    let broker: Broker;
    let redis: Redis;
    let up: ChildProcess | undefined;
    const lines: string[] = [];

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "troupe-up-test-"));
      broker = createBroker(brokerUrl);
      await broker.connect();
      redis = new Redis(REDIS_URL);
    });
    after(async () => {
      up?.kill("SIGKILL");
      await broker.purge(queue);
      await redis.del(`${queue}:done`);
      await broker.close();
      if (label === "RabbitMQ") {
        const raw = await RawAmqp.open(brokerUrl);
        await raw.deleteQueues(queue);
        await raw.close();
      }
      redis.disconnect();
      await rm(dir, { recursive: true, force: true });
    });

    test("scales 0 → N under a backlog and back to 0 when drained, every message processed once", async () => {
      // The module's other actor stores results; on RabbitMQ they go to Redis, as the README's setup says.
      const manifest = [
        { apiVersion: "v1", kind: "Secret", metadata: { name: "broker" }, stringData: { url: brokerUrl } },
        { apiVersion: "v1", kind: "Secret", metadata: { name: "results" }, stringData: { url: REDIS_URL } },
        {
          apiVersion: "troupe.dev/v1alpha1",
          kind: "WorkerPool",
          metadata: { name: "local" },
          spec: {
            image: "unused-locally",
            modules: [fixture("operator-up")],
            queues: [queue],
            broker: { secretRef: { name: "broker" } },
            ...(label === "RabbitMQ" ? { results: { secretRef: { name: "results" } } } : {}),
            processes: 1,
            threads: 2,
            concurrency: 4,
            shutdownTimeoutSeconds: 5,
            autoscaling: { minReplicas: 0, maxReplicas: 3, targetBacklogPerReplica: 20, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 2 },
          },
        },
        { apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name: "record" }, spec: { actorName: "operator_up_record", queue, options: { maxRetries: 5 } } },
      ];
      const file = join(dir, "pool.yaml");
      await writeFile(file, manifest.map((d) => stringify(d)).join("---\n"));
      up = spawn(process.execPath, [cliPath, "up", "-f", file, "--quiet"], {
        env: { ...process.env, TROUPE_TEST_UP_QUEUE: queue, TROUPE_TEST_REDIS_URL: REDIS_URL, TROUPE_LOG_LEVEL: "error" },
        stdio: ["ignore", "pipe", "inherit"],
      });
      up.stdout!.setEncoding("utf8").on("data", (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)));
      const exited = new Promise<number | null>((resolve) => up!.once("exit", (code) => resolve(code)));
      await until(() => lines.some((l) => l.startsWith("troupe up: running")), "troupe up to start");
      assert.ok(!lines.some((l) => / → /.test(l)), "an idle pool starts no replicas");

      const total = 300;
      const messages = Array.from({ length: total }, (_, i) => new Message({ queueName: queue, actorName: "operator_up_record", args: [i, 20] }));
      await broker.enqueueMany(messages);
      const startedAt = Date.now();
      await until(() => lines.some((l) => l.startsWith("local: 0 → 3 replicas")), "scale-up to 3", { timeout: 10_000 });
      const reactionMs = Date.now() - startedAt;
      await until(async () => (await redis.llen(`${queue}:done`)) >= total, "every message processed", { timeout: 60_000 });
      const drainMs = Date.now() - startedAt;
      await until(() => lines.some((l) => / → 0 replicas/.test(l)), "scale-down to 0", { timeout: 20_000 });

      const done = (await redis.lrange(`${queue}:done`, 0, -1)).map(Number);
      const unique = new Set(done);
      console.log(`# troupe up e2e on ${label}: ${total} messages, reaction ${reactionMs} ms, drained in ${drainMs} ms, duplicates ${done.length - unique.size}, decisions: ${lines.filter((l) => l.includes("→")).join(" | ")}`);
      assert.equal(unique.size, total, "no message lost");
      assert.equal(done.length, total, "no message processed twice");
      const stats = await broker.queueStats(queue);
      assert.equal(stats.ready + stats.inFlight + stats.delayed + stats.dead, 0);

      up.kill("SIGTERM");
      assert.equal(await exited, 0);
      up = undefined;
    });
  });
}

describe("troupe up runs Pipelines with the operator's engine", () => {
  test("a two-step pipeline runs on a scaled-from-zero pool and is reported as succeeded", async () => {
    const queue = uniqueName("up_pipe");
    const redis = new Redis(REDIS_URL);
    let running: Awaited<ReturnType<typeof upOn>> | undefined;
    try {
      const docs = [
        ...redisPoolDocs("piped", queue, { autoscaling: { maxReplicas: 1, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 1 } }),
        {
          apiVersion: "troupe.dev/v1alpha1",
          kind: "Pipeline",
          metadata: { name: "doubler" },
          spec: { broker: { secretRef: { name: "broker" } }, steps: [{ name: "first", actor: "operator_up_double", queue, args: [3] }, { name: "second", actor: "operator_up_double", queue }] },
        },
      ];
      running = await upOn("troupe-up-pipe-", docs, { TROUPE_TEST_UP_QUEUE: queue });
      const { lines } = running;
      await until(() => lines.some((l) => /^pipeline doubler: run doubler-\d+ succeeded$/.test(l)), "the run to succeed", { timeout: 30_000 });
      assert.ok(lines.some((l) => l.startsWith("pipeline doubler: created run")));
      assert.ok(lines.some((l) => l.startsWith("piped: 0 → 1 replicas")), lines.join("\n"));
    } finally {
      await stopUp(running?.up);
      await redis.del(queue, `${queue}.DQ`, `${queue}.XQ`);
      redis.disconnect();
      if (running) await rm(running.dir, { recursive: true, force: true });
    }
  });
});

describe("troupe up with workers that cannot boot", () => {
  test("restarts them with a doubling backoff and never starts more replicas than it decided", async () => {
    const queue = uniqueName("up_noboot");
    const dir = await mkdtemp(join(tmpdir(), "troupe-up-noboot-"));
    const lines: string[] = [];
    let up: ChildProcess | undefined;
    const broker = createBroker(AMQP_URL);
    try {
      // RabbitMQ and no results Secret: the module's result-storing actor makes every worker exit 2 at boot.
      const docs = [
        { apiVersion: "v1", kind: "Secret", metadata: { name: "broker" }, stringData: { url: AMQP_URL } },
        {
          apiVersion: "troupe.dev/v1alpha1",
          kind: "WorkerPool",
          metadata: { name: "noboot" },
          spec: { image: "unused", modules: [fixture("operator-up")], queues: [queue], broker: { secretRef: { name: "broker" } }, threads: 1, autoscaling: { maxReplicas: 1, pollIntervalSeconds: 1 } },
        },
      ];
      await writeFile(join(dir, "pool.yaml"), docs.map((d) => stringify(d)).join("---\n"));
      await broker.connect();
      await broker.enqueue(new Message({ queueName: queue, actorName: "operator_up_record", args: [1, 1] }));
      up = spawn(process.execPath, [cliPath, "up", "-f", join(dir, "pool.yaml"), "--quiet"], {
        env: { ...process.env, TROUPE_TEST_UP_QUEUE: queue, TROUPE_LOG_LEVEL: "error" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      up.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      up.stdout!.setEncoding("utf8").on("data", (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)));
      await until(() => lines.filter((l) => l.includes("exited (code 2)")).length >= 2, "two boot failures", { timeout: 120_000 }).catch((err: Error) => {
        throw new Error(`${err.message}; troupe up printed:\n${lines.join("\n")}\n${stderr}`);
      });
      const crashes = lines.filter((l) => l.includes("exited (code 2)"));
      assert.deepEqual(crashes.slice(0, 2).map((l) => Number(/in ([\d.]+) s$/.exec(l)?.[1])), [0.5, 1], lines.join("\n"));
      // --quiet keeps the workers' output off the terminal, yet each crash line says why.
      for (const line of crashes) assert.match(line, /: troupe worker: "operator_up_double" stores results \(storeResults\).*TROUPE_RESULTS_URL/);
      assert.equal(stderr, "");
      const decisions = lines.filter((l) => l.includes(" replicas ("));
      assert.deepEqual(decisions, [decisions[0]], `one scale decision, no replacement counted twice:\n${lines.join("\n")}`);
      assert.match(decisions[0]!, /^noboot: 0 → 1 replicas/);
    } finally {
      await stopUp(up);
      await broker.purge(queue);
      await broker.close();
      const raw = await RawAmqp.open(AMQP_URL);
      await raw.deleteQueues(queue);
      await raw.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("troupe up refuses unusable manifests before starting anything", () => {
  const cases: [string, string, RegExp][] = [
    ["a YAML syntax error", "kind: WorkerPool\n  bad: [", /pool\.yaml/],
    ["a kind it does not run", "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec: {}\n", /not Deployment/],
    [
      "a pool without queues",
      "apiVersion: troupe.dev/v1alpha1\nkind: WorkerPool\nmetadata: { name: p }\nspec: { image: x, modules: [a.js], broker: { secretRef: { name: b } } }\n",
      /WorkerPool p is invalid: spec: set queues, actorSelector or both/,
    ],
    [
      "a pool whose broker Secret is missing",
      "apiVersion: troupe.dev/v1alpha1\nkind: WorkerPool\nmetadata: { name: p }\nspec: { image: x, modules: [a.js], queues: [q], broker: { secretRef: { name: absent } } }\n",
      /Secret absent key url is not in the manifests/,
    ],
    [
      "a misspelt field, rejected as kubectl's strict field validation does",
      "apiVersion: troupe.dev/v1alpha1\nkind: WorkerPool\nmetadata: { name: p }\nspec: { image: x, modules: [a.js], queues: [q], replicaz: 3, broker: { secretRef: { name: b } } }\n",
      /WorkerPool p is invalid: unknown field "spec\.replicaz"/,
    ],
    [
      "a field of the wrong type, by the CRD's schema",
      "apiVersion: troupe.dev/v1alpha1\nkind: WorkerPool\nmetadata: { name: p }\nspec: { image: x, modules: [a.js], queues: [q], threads: '8', broker: { secretRef: { name: b } } }\n",
      /WorkerPool p is invalid: spec\.threads: must be integer/,
    ],
    [
      "a module that does not exist",
      "apiVersion: troupe.dev/v1alpha1\nkind: WorkerPool\nmetadata: { name: p }\nspec: { image: x, modules: [a.js, missing/actors.js], queues: [q], broker: { secretRef: { name: b } } }\n",
      /WorkerPool p: module \S*missing\/actors\.js does not exist \(module paths are relative to the manifest's directory\)/,
    ],
    [
      "a Pipeline with an invalid schedule",
      "apiVersion: v1\nkind: Secret\nmetadata: { name: b }\nstringData: { url: 'redis://127.0.0.1:6379/0' }\n---\napiVersion: troupe.dev/v1alpha1\nkind: WorkerPool\nmetadata: { name: p }\nspec: { image: x, modules: [a.js], queues: [q], broker: { secretRef: { name: b } } }\n---\napiVersion: troupe.dev/v1alpha1\nkind: Pipeline\nmetadata: { name: c }\nspec: { broker: { secretRef: { name: b } }, schedule: 'every day', steps: [{ name: s, actor: a }] }\n",
      /Pipeline c: invalid schedule "every day"/,
    ],
  ];
  for (const [what, text, message] of cases) {
    test(what, async () => {
      const dir = await mkdtemp(join(tmpdir(), "troupe-up-bad-"));
      try {
        await writeFile(join(dir, "pool.yaml"), text);
        await writeFile(join(dir, "a.js"), "");
        const env = { ...process.env };
        delete env.TROUPE_BROKER_URL;
        const result = spawnSync(process.execPath, [cliPath, "up", "-f", join(dir, "pool.yaml")], { env, encoding: "utf8", timeout: 20_000 });
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, message);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

interface LogLine {
  time: string;
  msg: string;
  logger?: string;
  pid?: number;
}

describe("troupe up on real Redis: delayed messages are sized before they come due", () => {
  const queue = uniqueName("up_delayed");
  const total = 10_000;
  /** Where troupe up and its replicas append their JSON log lines (TROUPE_LOG_FILE). */
  let logDir: string;
  let running: Awaited<ReturnType<typeof upOn>> | undefined;
  const redis = new Redis(REDIS_URL);
  const producer = new RedisBroker(REDIS_URL);

  before(async () => {
    logDir = await mkdtemp(join(tmpdir(), "troupe-up-delayed-log-"));
    await producer.connect();
  });
  after(async () => {
    await stopUp(running?.up);
    await producer.purge(queue);
    await producer.close();
    await redis.del(`${queue}:done`);
    redis.disconnect();
    for (const dir of [logDir, running?.dir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** troupe up's and its replicas' log lines (they all append to TROUPE_LOG_FILE), in the order written. */
  const logLines = async (): Promise<LogLine[]> =>
    (await readFile(join(logDir, "log.jsonl"), "utf8").catch(() => ""))
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as LogLine);

  test("10,000 messages due in 2 s on an idle pool with minReplicas 0: a replica starts before they come due", async () => {
    // The default horizon (poll + up window + 30 s of pod start-up) holds a 2 s eta from the first poll.
    const autoscaling = { minReplicas: 0, maxReplicas: 2, targetBacklogPerReplica: 5000, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 2 };
    running = await upOn("troupe-up-delayed-", redisPoolDocs("later", queue, { threads: 4, concurrency: 8, autoscaling }), {
      TROUPE_TEST_UP_QUEUE: queue,
      TROUPE_TEST_REDIS_URL: REDIS_URL,
      TROUPE_LOG_LEVEL: "info",
      TROUPE_LOG_FILE: join(logDir, "log.jsonl"),
    });
    const { lines } = running;
    // Printed once the first poll has decided: the pool is idle at 0.
    await until(() => lines.some((l) => l.startsWith("troupe up: running")), "troupe up to start", { timeout: 30_000 });
    assert.ok(!lines.some((l) => l.includes("→")), "an idle pool starts no replicas");

    // Every message's eta is at least 2 s after this instant (each is stamped as it is enqueued). Batches of 500,
    // each visible as it is sent, as a producer's stream of sends would be: one call of 10,000 is a single
    // pipeline, invisible until its end, which on a loaded machine took 1.3 s of the 2.
    const dueFrom = Date.now() + 2000;
    const messages = Array.from({ length: total }, (_, i) => new Message({ queueName: queue, actorName: "operator_up_record", args: [i, 0] }));
    for (let i = 0; i < total; i += 500) await producer.enqueueMany(messages.slice(i, i + 500), { delay: 2000 });
    const enqueuedAt = Date.now();
    await until(async () => (await redis.llen(`${queue}:done`)) >= total, "every delayed message processed", { timeout: 120_000 });

    const log = await logLines();
    const decision = lines.find((l) => l.startsWith("later: 0 → "));
    assert.match(decision ?? "", /^later: 0 → [12] replicas \(backlog (\d+) \(\1 delayed, due within 31s\)/, lines.join("\n"));
    const replicaStarted = log.find((l) => l.logger === "troupe.up" && l.msg === "replica started");
    const consuming = log.find((l) => l.msg === "worker started");
    assert.ok(replicaStarted && consuming, `the log has a replica start and a worker start:\n${log.map((l) => JSON.stringify(l)).join("\n")}`);
    const startedMs = Date.parse(replicaStarted.time);
    // The replica's own boot (tsx for this .ts module, worker threads) is the pool's podStartupSeconds, part of the
    // horizon; on a loaded machine it takes seconds and is only reported.
    console.log(
      `# 10,000 delayed messages due from +2000 ms: enqueued in ${enqueuedAt - (dueFrom - 2000)} ms; replica started ${dueFrom - startedMs} ms before the first eta, consuming ${Date.parse(consuming.time) - startedMs} ms after its start`,
    );
    assert.ok(startedMs < dueFrom, `the replica starts before the messages come due: started at ${replicaStarted.time}, first eta ${new Date(dueFrom).toISOString()}`);
    assert.equal(new Set(await redis.lrange(`${queue}:done`, 0, -1)).size, total, "each message processed");
  });
});

describe("troupe up fires the Actors' schedules", () => {
  test("an every-second schedule fires each tick once and its messages are processed; a suspended one fires nothing", async () => {
    const queue = uniqueName("up_sched");
    const namespace = uniqueName("up-sched");
    const ticking = uniqueName("up-ticking");
    const held = uniqueName("up-held");
    const redis = new Redis(REDIS_URL);
    let running: Awaited<ReturnType<typeof upOn>> | undefined;
    try {
      const docs = [
        ...redisPoolDocs("ticks", queue, { replicas: 1 }),
        {
          apiVersion: "troupe.dev/v1alpha1",
          kind: "Actor",
          metadata: { name: "record" },
          spec: { actorName: "operator_up_record", queue, schedules: [{ name: ticking, every: "1s", args: [7, 0] }, { name: held, every: "1s", args: [8, 0], suspend: true }] },
        },
      ];
      running = await upOn("troupe-up-sched-", docs, { TROUPE_TEST_UP_QUEUE: queue, TROUPE_TEST_REDIS_URL: REDIS_URL, TROUPE_REDIS_NAMESPACE: namespace });
      const { lines } = running;
      const fired = () => lines.filter((l) => l.startsWith(`schedule ${ticking}: fired tick `)).map((l) => Date.parse(l.slice(l.lastIndexOf(" ") + 1)));
      await until(async () => (await redis.llen(`${queue}:done`)) >= 3 && fired().length >= 3, "three ticks fired and processed", { timeout: 30_000 });
      const ticks = fired();
      assert.ok(ticks.every((t, i) => i === 0 || t - ticks[i - 1]! === 1000), `consecutive ticks, none doubled: ${ticks.join(", ")}`);
      assert.ok(lines.includes(`schedule ${held}: every 1s on redis://127.0.0.1:6379/0 (namespace ${namespace}) (suspended)`), lines.join("\n"));
      // The suspended schedule's ticks are elected and kept as skipped in the store, so none fires late either.
      await until(() => redis.hget(`${namespace}:schedules.skipped`, held), "a suspended tick skipped");
      assert.ok(!lines.some((l) => l.startsWith(`schedule ${held}: fired`)));
      const done = await redis.lrange(`${queue}:done`, 0, -1);
      assert.ok(done.every((id) => id === "7"), "only the active schedule's messages");
      const record = JSON.parse((await redis.hget(`${namespace}:schedules`, ticking))!) as { tick: number };
      assert.ok(record.tick >= ticks.at(-1)!, "the store's record is the last fired tick");
    } finally {
      await stopUp(running?.up);
      await deleteNamespace(redis, namespace);
      await redis.del(`${queue}:done`);
      redis.disconnect();
      if (running) await rm(running.dir, { recursive: true, force: true });
    }
  });
});
