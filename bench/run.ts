/**
 * `npm run bench`: Troupe on Redis and RabbitMQ against raw client loops and BullMQ, measured in one run on one
 * machine, printed as one table of figures with their ratios. See docs/bench.md.
 */
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { connect } from "amqplib";
import { Redis } from "ioredis";
import { createBroker, dqName, Message, xqName } from "troupe";
import { bullmqNoop } from "./bullmq.js";
import { calibrate } from "./cpu-work.js";
import { describeMachine } from "./machine.js";
import { progress } from "./progress.js";
import { deleteKeys } from "./redis-keys.js";
import { rawAmqp, rawAmqpSender, rawAmqpUnconfirmedSender } from "./raw-amqp.js";
import { rawRedis, rawRedisSender } from "./raw-redis.js";
import { buildRows, renderMarkdown, writeResults, type BenchResult, type BrokerResult } from "./report.js";
import { loadSettings, messageCounts, type BenchSettings, type BrokerKind } from "./settings.js";
import { percentile } from "./stats.js";
import { Tally } from "./tally.js";
import { rawLatency, type RawLatency } from "./raw-latency.js";
import { measureEnqueue, measureIdle, measureQuorumWorkload, measureShapes, measureUnconfirmedEnqueue, measureWorkload, quorumQueue, type TroupeTarget, type WorkloadResult } from "./troupe.js";
import { timerMs } from "./clock.js";

/**
 * Raw loops measured before each no-op figure. One raw run varies a lot on this kind of machine (RabbitMQ's from
 * 27k to 44k msg/s in four runs in a row), more than the figure it divides, so the ceiling is the median of three.
 */
const CEILING_RUNS = 3;
/** Rounds of the alternating 1 ms I/O drains by each process count (the `--processes` comparison). */
const SHAPE_ROUNDS = 3;

async function deleteRabbitQueues(url: string, queue: string): Promise<void> {
  const connection = await connect(url);
  try {
    const channel = await connection.createChannel();
    for (const name of [queue, dqName(queue), xqName(queue)]) await channel.deleteQueue(name);
  } finally {
    await connection.close();
  }
}

/** BullMQ's figures at concurrency 8 and 50, on the same Redis. */
async function measureBullmq(settings: BenchSettings, prefix: string): Promise<BenchResult["bullmq"]> {
  const out: BenchResult["bullmq"] = [];
  for (const concurrency of settings.bullmqConcurrency) {
    progress(`BullMQ no-op, concurrency ${concurrency}`);
    const { messages, warmup } = messageCounts(settings, "noop");
    out.push({ concurrency, processing: await bullmqNoop(settings.redisUrl, prefix, messages, warmup, settings.batchSize, concurrency) });
  }
  return out;
}

interface BrokerRun {
  result: BrokerResult;
  bullmq: BenchResult["bullmq"];
}

/**
 * What a broker sustains taking messages in and handing them out at once, from the raw loops' separate rates:
 * each message costs it 1/enqueue + 1/processing seconds of the time those loops kept it busy.
 */
function combinedRate(enqueue: number, processing: number): number {
  return 1 / (1 / enqueue + 1 / processing);
}

async function measureBroker(kind: BrokerKind, settings: BenchSettings, runId: string, tally: Tally, workerEnv: Record<string, string>): Promise<BrokerRun> {
  const url = kind === "redis" ? settings.redisUrl : settings.amqpUrl;
  const { prefetch } = settings;
  const body = new Message({ queueName: "bench", actorName: "bench_noop", args: ["raw"] }).encode();
  // Sends and drains of no-op messages are no-op figures: they get the no-op message count and warm-up.
  const counts = messageCounts(settings, "noop");
  const rawKey = kind === "redis" ? `troupe-bench:${runId}:raw` : `troupe-bench-${runId}-raw`;
  const rawLoop = () => {
    const loop = { messages: counts.messages, batchSize: settings.batchSize, prefetch };
    return kind === "redis" ? rawRedis(url, rawKey, body, loop) : rawAmqp(url, rawKey, Buffer.from(body), loop);
  };
  progress(`${kind}: raw client loop (${counts.messages} messages sent in batches, then consumed with prefetch ${prefetch})`);
  const raw = await rawLoop();
  progress(`${kind}: raw processing ${Math.round(raw.processing)} msg/s`);

  const queue = `bench_${runId}_${kind}`;
  const broker = createBroker(url);
  const target: TroupeTarget = { settings, broker, brokerUrl: url, label: kind, queue, tally, env: workerEnv, lingering: { count: 0 } };
  let bullmq: BenchResult["bullmq"] = [];
  try {
    progress(`${kind}: Troupe and raw sends one at a time, alternating (${counts.messages} each after ${counts.warmup} uncounted), then Troupe batches`);
    const rawSender = kind === "redis" ? rawRedisSender(url, `${rawKey}-single`, body) : await rawAmqpSender(url, `${rawKey}-single`, Buffer.from(body));
    const { rawSingle, rawConcurrent, ...sends } = await measureEnqueue(target, rawSender).finally(() => rawSender.close());
    const enqueue: BrokerResult["enqueue"] = sends;
    let rawUnconfirmed: number | undefined;
    if (kind === "rabbitmq") {
      progress(`${kind}: Troupe with confirmDelivery false and raw publishes without confirms, one at a time, alternating`);
      const unconfirmedSender = await rawAmqpUnconfirmedSender(url, `${rawKey}-unconfirmed`, Buffer.from(body));
      const unconfirmed = await measureUnconfirmedEnqueue(target, unconfirmedSender).finally(() => unconfirmedSender.close());
      enqueue.unconfirmed = unconfirmed.unconfirmed;
      rawUnconfirmed = unconfirmed.rawUnconfirmed;
    }
    let quorum: WorkloadResult | undefined;
    const idle: BrokerResult["idle"] = [];
    const workloads: BrokerResult["workloads"] = [];
    for (const processes of settings.processes) {
      progress(`${kind} ${processes}×${settings.threads}: idle worker memory`);
      idle.push({ processes, threads: settings.threads, rss: await measureIdle(target, processes) });
      for (const workload of settings.workloads) {
        // The machine's load drifts during a run: references for the no-op figure are taken just before it.
        let ceilingRuns: number[] | undefined;
        if (workload.name === "noop") {
          if (kind === "redis" && processes === settings.processes[0]) bullmq = await measureBullmq(settings, `troupe-bench-${runId}-bull`);
          progress(`${kind}: raw processing loop ${CEILING_RUNS} times again; the median is the ceiling for the next figure`);
          ceilingRuns = [];
          for (let i = 0; i < CEILING_RUNS; i++) ceilingRuns.push((await rawLoop()).processing);
        }
        const ceiling = ceilingRuns && percentile(ceilingRuns, 50);
        const measured = await measureWorkload(target, workload, processes, combinedRate(raw.batchedEnqueue, ceiling ?? raw.processing));
        let latencyCeiling: RawLatency | undefined;
        if (workload.name === "noop") {
          progress(`${kind}: raw client latency at the same ${Math.round(measured.latency.offered)} msg/s`);
          const key = kind === "redis" ? `troupe-bench:${runId}:raw-latency` : `troupe-bench-${runId}-raw-latency`;
          latencyCeiling = await rawLatency(kind, url, key, measured.latency.offered, settings.latencySeconds, prefetch);
        }
        workloads.push({ ...measured, ceiling, ceilingRuns, latencyCeiling });
        if (kind === "rabbitmq" && workload.name === "noop" && processes === settings.processes[0]) {
          progress(`${kind}: the same no-op figure on a quorum queue`);
          quorum = await measureQuorumWorkload(target, workload, processes, combinedRate(raw.batchedEnqueue, ceiling ?? raw.processing));
        }
      }
    }
    const io = settings.workloads.find((w) => w.name === "io");
    const shapes = io && settings.processes.length > 1 ? await measureShapes(target, io, settings.processes, SHAPE_ROUNDS) : undefined;
    if (target.lingering.count) progress(`${kind}: ${target.lingering.count} worker process trees stayed up after their graceful stop and were killed`);
    return { result: { broker: kind, raw: { ...raw, singleEnqueue: rawSingle, concurrentEnqueue: rawConcurrent, unconfirmedEnqueue: rawUnconfirmed, prefetch }, enqueue, idle, workloads, quorum, shapes, lingeringWorkers: target.lingering.count }, bullmq };
  } finally {
    await broker.purge(queue).catch(() => undefined);
    await broker.close();
    if (kind === "rabbitmq") for (const name of [queue, quorumQueue(queue)]) await deleteRabbitQueues(url, name).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const settings = loadSettings();
  const started = Date.now();
  const runId = randomBytes(4).toString("hex");
  const namespace = `troupe-bench-${runId}`;
  // The producer broker in this process and the workers share a namespace of their own, deleted at the end.
  process.env.TROUPE_REDIS_NAMESPACE = namespace;
  process.env.TROUPE_LOG_LEVEL ??= "warning";
  const redis = new Redis(settings.redisUrl);
  const tally = new Tally(redis, `troupe-bench:${runId}`);
  const bullPrefix = `troupe-bench-${runId}-bull`;
  try {
    const machine = await describeMachine(settings.redisUrl, settings.brokers.includes("rabbitmq") ? settings.amqpUrl : undefined);
    progress(`${machine.cpu}, ${machine.cores} cores; Node ${machine.node}; Redis ${machine.redis}; RabbitMQ ${machine.rabbitmq}`);
    const cpuIterations = calibrate(5);
    const timer = await timerMs();
    const workerEnv = { BENCH_TALLY_URL: settings.redisUrl, BENCH_TALLY_KEY: tally.key, TROUPE_REDIS_NAMESPACE: namespace, BENCH_CPU_ITERATIONS: String(cpuIterations) };
    const brokers: BrokerResult[] = [];
    let bullmq: BenchResult["bullmq"] = [];
    for (const kind of settings.brokers) {
      const run = await measureBroker(kind, settings, runId, tally, workerEnv);
      brokers.push(run.result);
      if (run.bullmq.length) bullmq = run.bullmq;
    }

    machine.load!.end = loadavg()[0]!;
    const result: BenchResult = {
      date: new Date(started).toISOString(),
      durationSeconds: (Date.now() - started) / 1000,
      machine,
      settings: {
        messages: settings.messages, noopMessages: settings.noopMessages, warmup: settings.warmup, latencySeconds: settings.latencySeconds, latencyLoad: settings.latencyLoad,
        threads: settings.threads, batchSize: settings.batchSize, cpuIterations, timerMs: timer, quick: settings.quick,
      },
      brokers,
      bullmq,
      rows: buildRows(brokers, bullmq, timer),
    };
    const files = writeResults(settings.outDir, result);
    process.stdout.write(renderMarkdown(result));
    progress(`wrote ${files.join(", ")}`);
  } finally {
    await tally.clear().catch(() => undefined);
    await deleteKeys(redis, `${namespace}:*`).catch(() => undefined);
    await deleteKeys(redis, `${bullPrefix}:*`).catch(() => undefined);
    redis.disconnect();
  }
}

// `npm run bench -- console [redis|rabbitmq]`: the console's dead-letter figures only; `-- scaling`: the autoscaler simulation.
const [scenario, ...scenarioArgs] = process.argv.slice(2);
const scenarios: Record<string, () => Promise<void>> = {
  console: () => import("./console-dead-letters.js").then((m) => m.benchConsole(scenarioArgs)),
  scaling: () => import("./scaling/report.js").then((m) => m.benchScaling(scenarioArgs)),
};
const run = (scenario && scenarios[scenario]) || main;
run().then(
  () => process.exit(0),
  (err) => {
    console.error(`npm run bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
