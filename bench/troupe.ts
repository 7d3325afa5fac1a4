import { setTimeout as sleep } from "node:timers/promises";
import { Message, RabbitmqBroker, type Broker } from "troupe";
import { offer } from "./offer.js";
import type { RawLatency } from "./raw-latency.js";
import type { RawSender } from "./raw-redis.js";
import { progress } from "./progress.js";
import { messageCounts, type BenchSettings, type Workload } from "./settings.js";
import { interleavedRates, percentile, perSecond, timed, type RateMeter } from "./stats.js";
import type { LatencySample, ProcessSpan, Tally } from "./tally.js";
import { CpuWindow, RssSampler, WorkerProcess, type CpuReading, type RssReading } from "./worker-process.js";

const BOOT_TIMEOUT_MS = 120_000;

/** What one broker's Troupe measurements share. */
export interface TroupeTarget {
  settings: BenchSettings;
  /** A Troupe broker in the bench process: the producer side. */
  broker: Broker;
  brokerUrl: string;
  label: string;
  queue: string;
  tally: Tally;
  /** Environment for worker processes (tally location, Redis namespace). */
  env: Record<string, string>;
  /** Worker process trees that did not exit by themselves after a graceful stop (and were killed). */
  lingering: { count: number };
}

export interface Percentiles {
  p50: number;
  p99: number;
}

export interface LatencyResult {
  /** msg/s offered: a share of `capacity`. */
  offered: number;
  /**
   * The lesser of the processing rate measured just before and what the broker can take in and hand out at once
   * (`brokerCapacity`); offering a share of the drain rate alone can exceed the second, and then the figure
   * measures the broker falling behind.
   */
  capacity: number;
  samples: number;
  toStart: Percentiles;
  toFinish: Percentiles;
}

export interface WorkloadResult {
  workload: Workload["name"];
  processes: number;
  threads: number;
  requested: number;
  /** Messages the processing rate was measured over (fewer than `requested` when the time budget ran out). */
  messages: number;
  processing: number;
  /** Best possible msg/s for this workload and worker shape, when the raw loop is not the bound. */
  ideal?: number;
  /** The raw loop's processing rate measured just before this figure (no-op workload): the median of `ceilingRuns`. */
  ceiling?: number;
  ceilingRuns?: number[];
  latency: LatencyResult;
  /** A bare client's latency at the same offered rate (no-op workload): see raw-latency.ts. */
  latencyCeiling?: RawLatency;
  /** Peak RSS per worker process while draining the queue. */
  rssLoad: RssReading;
  /** CPU per worker process (main thread, other threads) from the end of the warm-up to the end of the drain. */
  cpu?: CpuReading;
  /** Each process's share of the measured messages, with its first and last ack: shows a process that started late. */
  spans?: { count: number; startMs: number; endMs: number }[];
  /** When the pools were still starting threads after the first measured ack: see `drain`. */
  growth?: Growth;
}

/**
 * A worker's pool starts with one thread and adds threads as load asks for them (100–250 ms a boot, in turn), so
 * the first part of a drain can run on a pool still growing, and pay for its boots. The rate is then taken from
 * the last thread boot of any process on (`messages` acks over that span), as a long-running worker has grown
 * long ago; when fewer than MIN_SETTLED_SHARE of the messages came after it, over the whole drain.
 */
export interface Growth {
  /** From the first measured ack to the last thread boot (ms). */
  settledMs: number;
  /** Threads each process had booted by the end of the drain. */
  threads: number[];
  /** Acks the rate was taken over (0: the whole drain). */
  messages: number;
}

const MIN_SETTLED_SHARE = 0.25;

/** Spans relative to the first ack of any process, largest share first. */
function relativeSpans(spans: ProcessSpan[]): WorkloadResult["spans"] {
  const origin = Math.min(...spans.map((s) => s.first));
  return spans.sort((a, b) => b.count - a.count).map((s) => ({ count: s.count, startMs: s.first - origin, endMs: s.last - origin }));
}

function benchMessage(target: TroupeTarget, workload: Workload, phase: string, sentAt?: number): Message {
  return new Message({ queueName: target.queue, actorName: workload.actor, args: sentAt === undefined ? [phase] : [phase, sentAt] });
}

async function fill(target: TroupeTarget, workload: Workload, phase: string, count: number): Promise<void> {
  const { batchSize } = target.settings;
  for (let sent = 0; sent < count; sent += batchSize) {
    const batch = Array.from({ length: Math.min(batchSize, count - sent) }, () => benchMessage(target, workload, phase));
    await target.broker.enqueueMany(batch);
  }
}

/** How many callers each await their own `enqueue` at once in the concurrent send figure (a busy web server). */
export const CONCURRENT_SENDERS = 100;

export interface EnqueueRates {
  /** Troupe: one awaited `enqueue` at a time. */
  single: number;
  /** The raw sender, measured in rounds alternating with `single`. */
  rawSingle: number;
  /** Troupe: CONCURRENT_SENDERS loops of one awaited `enqueue` at a time, on one broker. */
  concurrent: number;
  /** The raw sender the same way, alternating with `concurrent`. */
  rawConcurrent: number;
  /** Troupe: `enqueueMany` batches. */
  batched: number;
}

/** Enqueue msg/s through Troupe's public API: one awaited `enqueue` at a time (alternating with `raw`), then `enqueueMany` batches. */
export async function measureEnqueue(target: TroupeTarget, raw: RawSender): Promise<EnqueueRates> {
  const { messages, warmup } = messageCounts(target.settings, "noop");
  const noop = { name: "noop", actor: "bench_noop" } as Workload;
  await target.broker.purge(target.queue);
  const troupeSend = () => target.broker.enqueue(benchMessage(target, noop, "enqueue"));
  const [single, rawSingle] = await interleavedRates([troupeSend, raw.send], messages, target.settings.sendBudget, warmup);
  await target.broker.purge(target.queue);
  const [concurrent, rawConcurrent] = await interleavedRates([troupeSend, raw.send], messages, target.settings.sendBudget, warmup, CONCURRENT_SENDERS);
  await target.broker.purge(target.queue);
  const batchedMs = await timed(() => fill(target, noop, "enqueue", messages));
  await target.broker.purge(target.queue);
  return { single: single!, rawSingle: rawSingle!, concurrent: concurrent!, rawConcurrent: rawConcurrent!, batched: perSecond(messages, batchedMs) };
}

/** RabbitMQ with `confirmDelivery: false`: one awaited `enqueue` at a time, alternating with a raw unconfirmed publish. */
export async function measureUnconfirmedEnqueue(target: TroupeTarget, raw: RawSender): Promise<{ unconfirmed: number; rawUnconfirmed: number }> {
  const { messages, warmup } = messageCounts(target.settings, "noop");
  const noop = { name: "noop", actor: "bench_noop" } as Workload;
  const broker = new RabbitmqBroker(target.brokerUrl, { confirmDelivery: false });
  try {
    const send = () => broker.enqueue(benchMessage(target, noop, "enqueue"));
    const [unconfirmed, rawUnconfirmed] = await interleavedRates([send, raw.send], messages, target.settings.sendBudget, warmup);
    return { unconfirmed: unconfirmed!, rawUnconfirmed: rawUnconfirmed! };
  } finally {
    // Closing the connection lets RabbitMQ take in what was written before the purge.
    await broker.close();
    await target.broker.purge(target.queue);
  }
}

/** The same workload and worker shape on a quorum queue of its own (`?queue_type=quorum`), on the same node. */
export async function measureQuorumWorkload(target: TroupeTarget, workload: Workload, processes: number, brokerCapacity: number): Promise<WorkloadResult> {
  const brokerUrl = `${target.brokerUrl}${target.brokerUrl.includes("?") ? "&" : "?"}queue_type=quorum`;
  const broker = new RabbitmqBroker(brokerUrl);
  const quorum: TroupeTarget = { ...target, broker, brokerUrl, label: `${target.label}-quorum`, queue: quorumQueue(target.queue) };
  try {
    return await measureWorkload(quorum, workload, processes, brokerCapacity);
  } finally {
    await broker.purge(quorum.queue).catch(() => undefined);
    await broker.close();
  }
}

export function quorumQueue(queue: string): string {
  return `${queue}_quorum`;
}

async function startWorker(target: TroupeTarget, processes: number): Promise<WorkerProcess> {
  await target.tally.forgetWorkers();
  return new WorkerProcess({ brokerUrl: target.brokerUrl, processes, threads: target.settings.threads, prefetch: target.settings.prefetch, queue: target.queue, env: target.env });
}

/** Stop the worker gracefully; note a process tree that had to be killed after its graceful stop. */
async function stopWorker(target: TroupeTarget, worker: WorkerProcess, processes: number): Promise<void> {
  const exited = await worker.stop(target.tally.waitForStop(processes, target.settings.stallTimeout));
  if (!exited) target.lingering.count++;
}

/** RSS of freshly booted worker processes with nothing to do. */
export async function measureIdle(target: TroupeTarget, processes: number): Promise<RssReading> {
  const worker = await startWorker(target, processes);
  try {
    // Boot is not progress the stall timeout can see; on a loaded machine 2 × 8 threads took over 30 s to boot.
    await worker.watch(target.tally.waitForBoot(processes, Math.max(target.settings.stallTimeout, BOOT_TIMEOUT_MS)));
    // Let boot-time garbage be collected and threads settle before reading memory.
    await sleep(target.settings.quick ? 200 : 1000);
    return worker.rss().sort((a, b) => b - a);
  } finally {
    await stopWorker(target, worker, processes);
  }
}

/** A drain of one workload's queue by a freshly started worker, which is left running for the caller to use and stop. */
interface Drain {
  worker: WorkerProcess;
  /** Messages the rate was measured over (fewer than requested when the time budget ran out). */
  count: number;
  processing: number;
  rssLoad: RssReading;
  cpu: CpuReading;
  spans: WorkloadResult["spans"];
  growth?: Growth;
}

/** The drain's rate from the pools' last thread boot on, when that came after its first ack (see Growth). */
async function settledRate(tally: Tally, phase: string, drained: RateMeter): Promise<{ processing: number; growth?: Growth }> {
  const boots = await tally.threadBoots();
  const settledAt = Math.max(...boots.map((b) => b.lastBootAt));
  if (!(settledAt > drained.first)) return { processing: drained.rate };
  const after = await tally.acksSince(phase, settledAt);
  const growth = { settledMs: settledAt - drained.first, threads: boots.map((b) => b.boots), messages: 0 };
  if (after.count < drained.count * MIN_SETTLED_SHARE || drained.last <= after.start) return { processing: drained.rate, growth };
  return { processing: (after.count * 1000) / (drained.last - after.start), growth: { ...growth, messages: after.count } };
}

/**
 * Fill the queue (warm-up messages first), start the workers, and time the drain of the measured messages from
 * the first ack to the last (so start-up and warm-up are not counted). Every process starts consuming at once
 * (the probe's start barrier), so a multi-process figure is not diluted by one process booting later.
 */
async function drain(target: TroupeTarget, workload: Workload, processes: number, phase: string, name: string): Promise<Drain> {
  const { settings, tally } = target;
  const { messages, warmup } = messageCounts(settings, workload.name);
  await target.broker.purge(target.queue);
  // Served first and not counted: a long-running worker has its hot paths compiled, a fresh one has not.
  await fill(target, workload, `${phase}-warmup`, warmup);
  await fill(target, workload, phase, messages);
  progress(`${name}: queue filled with ${warmup} warm-up + ${messages}; starting workers`);
  const worker = await startWorker(target, processes);
  try {
    const sampler = new RssSampler(worker);
    await worker.watch(tally.waitForBoot(processes, Math.max(settings.stallTimeout, BOOT_TIMEOUT_MS)));
    // Waited for on its own, so that a slow warm-up (2,000 CPU messages on a busy machine) is progress, not a stall.
    if (warmup > 0) await worker.watch(tally.waitFor(`${phase}-warmup`, warmup, settings.stallTimeout, `${name} warm-up`));
    const cpuWindow = new CpuWindow(worker);
    const drained = await worker.watch(tally.waitFor(phase, messages, settings.stallTimeout, `${name} processing`, settings.phaseBudget));
    const cpu = cpuWindow.end();
    const spans = relativeSpans(await tally.perProcess(phase));
    const rssLoad = sampler.stop();
    const { processing, growth } = await settledRate(tally, phase, drained);
    if (drained.count < messages) {
      // The time budget cut the measurement short. What is left is finished, uncounted, before the latency phase:
      // purging the queue would leave the worker its prefetched messages (up to the prefetch per process), and
      // the first latency messages would wait behind them — that was the 204–445 ms "p99 to start" of the 5 ms
      // CPU rows in the runs of 2026-12-06, where p50 was 1.5 ms.
      progress(`${name}: finishing the ${messages - drained.count} messages left, uncounted, before the latency phase`);
      await worker.watch(tally.waitFor(phase, messages, settings.stallTimeout, `${name} rest`));
    }
    return { worker, count: drained.count, processing, rssLoad, cpu, spans, growth };
  } catch (err) {
    await stopWorker(target, worker, processes);
    throw err;
  }
}

/**
 * One workload on one worker shape: a drain (see `drain`), then, on the same worker, a share (half, by default)
 * of the capacity offered at a fixed rate (see LatencyResult) to record latencies.
 */
export async function measureWorkload(target: TroupeTarget, workload: Workload, processes: number, brokerCapacity: number): Promise<WorkloadResult> {
  const { settings } = target;
  const name = `${target.label} ${processes}×${settings.threads} ${workload.name}`;
  const phase = `${target.label}-${workload.name}-${processes}`;
  const { messages } = messageCounts(settings, workload.name);
  const { worker, count, processing, rssLoad, cpu, spans, growth } = await drain(target, workload, processes, phase, name);
  try {
    progress(`${name}: ${Math.round(processing)} msg/s; measuring latency`);
    const capacity = Math.min(processing, brokerCapacity);
    const latency = await worker.watch(measureLatency(target, workload, `${phase}-latency`, capacity, name));
    return { workload: workload.name, processes, threads: settings.threads, requested: messages, messages: count, processing, ideal: workload.ideal(processes, settings.threads), latency, rssLoad, cpu, spans, growth };
  } finally {
    await stopWorker(target, worker, processes);
  }
}

/** Drains of one workload by each worker shape in turn, `rounds` times over (see measureShapes). */
export interface ShapesResult {
  workload: Workload["name"];
  threads: number;
  /** Per process count, its rate in each round (msg/s). */
  rates: { processes: number; runs: number[] }[];
}

/**
 * The same workload drained by each process count in turn, round after round, on the same queue contents: the
 * side-by-side comparison behind the default `--processes`. Figures of different shapes measured minutes apart
 * differ by the machine's drift as much as by the shape; alternating makes the drift hit every shape alike.
 */
export async function measureShapes(target: TroupeTarget, workload: Workload, shapes: number[], rounds: number): Promise<ShapesResult> {
  const rates = shapes.map((processes) => ({ processes, runs: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const entry of rates) {
      const name = `${target.label} ${entry.processes}×${target.settings.threads} ${workload.name}, round ${round + 1}/${rounds}`;
      const { worker, processing } = await drain(target, workload, entry.processes, `${target.label}-${workload.name}-shapes-${entry.processes}-${round}`, name);
      await stopWorker(target, worker, entry.processes);
      entry.runs.push(processing);
    }
  }
  return { workload: workload.name, threads: target.settings.threads, rates };
}

async function measureLatency(target: TroupeTarget, workload: Workload, phase: string, capacity: number, name: string): Promise<LatencyResult> {
  const rate = capacity * target.settings.latencyLoad;
  const total = Math.max(10, Math.round(rate * target.settings.latencySeconds));
  await offer(rate, total, (count, sentAt) => target.broker.enqueueMany(Array.from({ length: count }, () => benchMessage(target, workload, phase, sentAt))));
  await target.tally.waitFor(phase, total, target.settings.stallTimeout, `${name} latency`);
  const samples = await target.tally.samples(phase);
  return { offered: rate, capacity, samples: samples.length, toStart: percentiles(samples, "toStart"), toFinish: percentiles(samples, "toFinish") };
}

function percentiles(samples: LatencySample[], field: keyof LatencySample): Percentiles {
  const values = samples.map((s) => s[field]);
  return { p50: percentile(values, 50), p99: percentile(values, 99) };
}
