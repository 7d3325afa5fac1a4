import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "./machine.js";
import type { RawFigures } from "./raw-redis.js";
import { WORKLOADS, type BrokerKind } from "./settings.js";
import { percentile } from "./stats.js";
import { CONCURRENT_SENDERS, type ShapesResult, type WorkloadResult } from "./troupe.js";
import type { RssReading } from "./worker-process.js";

export interface BrokerResult {
  broker: BrokerKind;
  /**
   * The raw client loops on the same broker, with the prefetch the worker uses; `singleEnqueue`, `concurrentEnqueue`
   * and (RabbitMQ) `unconfirmedEnqueue` are the raw senders measured alternately with Troupe's.
   */
  raw: RawFigures & { singleEnqueue: number; concurrentEnqueue: number; unconfirmedEnqueue?: number; prefetch: number };
  /** `unconfirmed`: RabbitMQ with confirmDelivery false, one at a time. */
  enqueue: { single: number; concurrent: number; batched: number; unconfirmed?: number };
  idle: { processes: number; threads: number; rss: RssReading }[];
  workloads: WorkloadResult[];
  /** RabbitMQ: the no-op figure of the first worker shape again, on a quorum queue. */
  quorum?: WorkloadResult;
  /** The 1 ms I/O drains by each process count, alternating (absent with one worker shape). */
  shapes?: ShapesResult;
  /** Worker process trees that stayed up after their graceful stop and had to be killed. */
  lingeringWorkers: number;
}

export interface BenchResult {
  date: string;
  durationSeconds: number;
  machine: Machine;
  settings: { messages: number; noopMessages?: number; warmup?: number; latencySeconds: number; latencyLoad: number; threads: number; batchSize: number; cpuIterations: number; timerMs?: number; quick: boolean };
  brokers: BrokerResult[];
  bullmq: { concurrency: number; processing: number }[];
  rows: Row[];
}

/** One line of the table: a Troupe figure, what it is compared with, the ratio, and the target if any. */
export interface Row {
  broker: string;
  workers: string;
  figure: string;
  troupe: string;
  reference: string;
  ratio: string;
  target: string;
  /** Whether the target was met (absent: no target). */
  met?: boolean;
}

const rate = (n: number) => `${Math.round(n).toLocaleString("en-US")} msg/s`;
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
const percent = (r: number) => `${Math.round(r * 100)}%`;
const shape = (processes: number, threads: number) => `${processes}×${threads}`;

function rssCell(reading: RssReading): string {
  if (reading.length === 0) return "n/a";
  const peak = Math.max(...reading);
  return reading.length === 1 ? mb(peak) : `${mb(peak)} max of ${reading.length} (${mb(reading.reduce((a, b) => a + b, 0))} total)`;
}

/** Say so when a drain was cut short by the time budget, or measured after its pool stopped growing. */
function measuredOver(run: WorkloadResult): string {
  const count = (n: number) => n.toLocaleString("en-US");
  const budget = run.messages < run.requested ? `; Troupe measured over ${count(run.messages)} of ${count(run.requested)} messages (time budget)` : "";
  const growth = run.growth;
  if (!growth) return budget;
  const grew = `the pool${growth.threads.length > 1 ? "s" : ""} grew to ${growth.threads.join(" + ")} threads until ${Math.round(growth.settledMs)} ms into the drain`;
  return `${budget}; ${grew}, ${growth.messages ? `measured over the ${count(growth.messages)} messages after that` : "measured over the whole drain (too few messages after it)"}`;
}

/** The range of the raw runs a median ceiling was taken from. */
function spread(runs: number[] | undefined): string {
  if (!runs || runs.length < 2) return "";
  return `; median of ${runs.length} runs, ${rate(Math.min(...runs))} to ${rate(Math.max(...runs))}`;
}

function withTarget(text: string, met: boolean | undefined): string {
  return met === undefined ? text : `${text} ${met ? "✓" : "✗"}`;
}

function row(fields: Omit<Row, "target"> & { target?: string }): Row {
  return { ...fields, target: withTarget(fields.target ?? "", fields.met) };
}

const RAW = {
  redis: { enqueue: "raw RPUSH", batched: "raw RPUSH pipelined", process: "raw LMOVE+LREM", latency: "raw RPUSH → BLMOVE" },
  rabbitmq: { enqueue: "raw publish+confirm", batched: "raw publishes, confirms per batch", process: "raw consume+ack", latency: "raw publish → consume" },
} as const;

/** Targets (issues 3/4/7, then 20): reported, never enforced. */
const PROCESSING_TARGET = { redis: 0.85, rabbitmq: 0.67 } as const;
const BULLMQ_TARGET = 3;
/** p99 send → start at half load (ms): quick actors, and the 5 ms CPU actor. */
const LATENCY_TARGET_MS = { quick: 10, cpu: 25 } as const;
const IDLE_RSS_TARGET = 100 * 2 ** 20;
const NOOP_LOAD_RSS_TARGET = 150 * 2 ** 20;

/** Issue 20: with more processes, 1 ms I/O reaches this share of the ideal, and never less than one process does. */
const MULTI_PROCESS_IO_TARGET = 0.7;

function shapesRow(broker: BrokerKind, shapes: ShapesResult): Row {
  const [one, ...more] = shapes.rates;
  const last = more[more.length - 1]!;
  const median = (runs: number[]) => percentile(runs, 50);
  const runs = (entry: ShapesResult["rates"][number]) => `${shape(entry.processes, shapes.threads)} ${rate(median(entry.runs))} (${entry.runs.map((r) => Math.round(r).toLocaleString("en-US")).join(", ")})`;
  const factor = median(last.runs) / median(one!.runs);
  return row({
    broker, workers: shapes.rates.map((r) => shape(r.processes, shapes.threads)).join(" vs "),
    figure: `processing, ${WORKLOADS[shapes.workload].label}, --processes ${shapes.rates.map((r) => r.processes).join(" vs ")}, alternating drains (median of ${one!.runs.length})`,
    troupe: runs(last), reference: [one!, ...more.slice(0, -1)].map(runs).join("; "), ratio: `${factor.toFixed(2)}×`,
    target: "≥ 1.00× (more processes never less)", met: factor >= 1,
  });
}

function brokerRows(result: BrokerResult, bullmq: BenchResult["bullmq"], timer: number | undefined): Row[] {
  const { broker, raw } = result;
  const rows: Row[] = [];
  const singleTarget = broker === "redis" ? 14_000 : undefined;
  const batchedTarget = broker === "redis" ? 60_000 : undefined;
  rows.push(
    row({
      broker, workers: "producer", figure: "enqueue, one awaited send at a time",
      troupe: rate(result.enqueue.single), reference: `${RAW[broker].enqueue} ${rate(raw.singleEnqueue)}`, ratio: percent(result.enqueue.single / raw.singleEnqueue),
      target: singleTarget ? `≥ ${rate(singleTarget)}` : "", met: singleTarget ? result.enqueue.single >= singleTarget : undefined,
    }),
    row({
      broker, workers: "producer", figure: `enqueue, ${CONCURRENT_SENDERS} concurrent senders, each awaiting its send`,
      troupe: rate(result.enqueue.concurrent), reference: `${RAW[broker].enqueue}, ${CONCURRENT_SENDERS} concurrent ${rate(raw.concurrentEnqueue)}; Troupe one at a time ${rate(result.enqueue.single)}`,
      ratio: percent(result.enqueue.concurrent / raw.concurrentEnqueue),
    }),
  );
  if (result.enqueue.unconfirmed !== undefined && raw.unconfirmedEnqueue !== undefined) {
    rows.push(row({
      broker, workers: "producer", figure: "enqueue, confirmDelivery false, one awaited send at a time",
      troupe: rate(result.enqueue.unconfirmed), reference: `raw publish without confirm ${rate(raw.unconfirmedEnqueue)}; Troupe confirmed ${rate(result.enqueue.single)}`,
      ratio: percent(result.enqueue.unconfirmed / raw.unconfirmedEnqueue),
    }));
  }
  rows.push(
    row({
      broker, workers: "producer", figure: "enqueue, enqueueMany batches",
      troupe: rate(result.enqueue.batched), reference: `${RAW[broker].batched} ${rate(raw.batchedEnqueue)}`, ratio: percent(result.enqueue.batched / raw.batchedEnqueue),
      target: batchedTarget ? `≥ ${rate(batchedTarget)}` : "", met: batchedTarget ? result.enqueue.batched >= batchedTarget : undefined,
    }),
  );
  const best = bullmq.length ? bullmq.reduce((a, b) => (b.processing > a.processing ? b : a)) : undefined;
  for (const run of result.workloads) {
    const workers = shape(run.processes, run.threads);
    const label = WORKLOADS[run.workload].label;
    if (run.ideal === undefined) {
      const ceiling = run.ceiling ?? raw.processing;
      const share = run.processing / ceiling;
      const target = run.processes === 1 ? PROCESSING_TARGET[broker] : undefined;
      rows.push(row({
        broker, workers, figure: `processing, ${label}`, troupe: rate(run.processing),
        reference: `${RAW[broker].process} ${rate(ceiling)} (prefetch ${raw.prefetch}${spread(run.ceilingRuns)})${measuredOver(run)}`, ratio: percent(share),
        target: target ? `≥ ${percent(target)} of raw` : "", met: target ? share >= target : undefined,
      }));
      if (broker === "redis" && best && run.processes === 1) {
        const factor = run.processing / best.processing;
        rows.push(row({
          broker, workers, figure: `processing, ${label}, vs BullMQ`, troupe: rate(run.processing),
          reference: `BullMQ best of ${bullmq.map((b) => `c=${b.concurrency} ${rate(b.processing)}`).join(", ")}`, ratio: `${factor.toFixed(2)}×`,
          target: `≥ ${BULLMQ_TARGET.toFixed(2)}×`, met: factor >= BULLMQ_TARGET,
        }));
      }
    } else {
      const io = run.workload === "io";
      // What threads running one 1 ms wait at a time could do with this machine's timer (see clock.ts timerMs).
      const timerBound = io && timer ? `; ${rate(run.ideal / timer)} with this machine's 1 ms timer (${timer.toFixed(2)} ms)` : "";
      const target = io && run.processes > 1 ? MULTI_PROCESS_IO_TARGET : undefined;
      rows.push(row({
        broker, workers, figure: `processing, ${label}`, troupe: rate(run.processing),
        reference: `ideal ${rate(run.ideal)} (${run.workload === "cpu" ? "cores / 5 ms" : "threads / 1 ms"})${timerBound}${measuredOver(run)}`,
        ratio: `${percent(run.processing / run.ideal)}${io && timer ? ` (${percent((run.processing * timer) / run.ideal)} of timer-bound)` : ""}`,
        target: target ? `≥ ${percent(target)} of ideal` : "", met: target ? run.processing / run.ideal >= target : undefined,
      }));
    }
    const { latency, latencyCeiling: bare } = run;
    const limit = run.workload === "cpu" ? LATENCY_TARGET_MS.cpu : LATENCY_TARGET_MS.quick;
    rows.push(row({
      broker, workers, figure: `latency, ${label}, at ${percent(latency.offered / latency.capacity)} load: p50 / p99`,
      troupe: `to start ${ms(latency.toStart.p50)} / ${ms(latency.toStart.p99)} ms; to finish ${ms(latency.toFinish.p50)} / ${ms(latency.toFinish.p99)} ms`,
      reference: `${rate(latency.offered)} offered${latency.capacity < run.processing ? ` (capacity: the broker's combined raw enqueue + processing rate, ${rate(latency.capacity)})` : ""}, ${latency.samples} samples${bare ? `; ${RAW[broker].latency} at that rate: ${ms(bare.toStart.p50)} / ${ms(bare.toStart.p99)} ms` : ""}`,
      ratio: bare ? `p99 ${(latency.toStart.p99 / bare.toStart.p99).toFixed(1)}× raw` : "",
      // Quick actors: also no worse than the bare client at the same rate, when one was measured.
      target: `p99 to start < ${limit} ms${bare ? " and ≤ raw" : ""}`, met: latency.toStart.p99 < limit && (!bare || latency.toStart.p99 <= bare.toStart.p99),
    }));
  }
  const { quorum } = result;
  const classic = quorum && result.workloads.find((w) => w.workload === quorum.workload && w.processes === quorum.processes);
  if (quorum && classic) {
    rows.push(row({
      broker, workers: shape(quorum.processes, quorum.threads), figure: `processing, ${WORKLOADS[quorum.workload].label}, quorum queue`, troupe: rate(quorum.processing),
      reference: `classic queue, same shape, measured just before: ${rate(classic.processing)}${measuredOver(quorum)}`, ratio: percent(quorum.processing / classic.processing),
    }));
  }
  if (result.shapes) rows.push(shapesRow(broker, result.shapes));
  for (const idle of result.idle) {
    const peak = Math.max(0, ...idle.rss);
    rows.push(row({ broker, workers: shape(idle.processes, idle.threads), figure: "worker RSS, idle", troupe: rssCell(idle.rss), reference: "", ratio: "", target: `≤ ${mb(IDLE_RSS_TARGET)} per process`, met: idle.rss.length > 0 && peak <= IDLE_RSS_TARGET }));
    const loaded = result.workloads.filter((w) => w.processes === idle.processes);
    const peaks = loaded.reduce<RssReading>((acc, w) => w.rssLoad.map((v, i) => Math.max(v, acc[i] ?? 0)), []);
    if (loaded.length) rows.push(row({ broker, workers: shape(idle.processes, idle.threads), figure: "worker RSS, under load (peak)", troupe: rssCell(peaks), reference: "", ratio: "" }));
    const noop = loaded.find((w) => w.workload === "noop");
    if (noop) {
      const noopPeak = Math.max(0, ...noop.rssLoad);
      rows.push(row({ broker, workers: shape(idle.processes, idle.threads), figure: "worker RSS, under no-op load (peak)", troupe: rssCell(noop.rssLoad), reference: "", ratio: "", target: `≤ ${mb(NOOP_LOAD_RSS_TARGET)} per process`, met: noopPeak <= NOOP_LOAD_RSS_TARGET }));
    }
  }
  return rows;
}

export function buildRows(brokers: BrokerResult[], bullmq: BenchResult["bullmq"], timer?: number): Row[] {
  return brokers.flatMap((b) => brokerRows(b, bullmq, timer));
}

/** One line per workload on where the CPU went while it drained, and when each process did its share. */
function diagnostics(result: BenchResult): string[] {
  const lines: string[] = [];
  for (const b of result.brokers) {
    for (const w of b.workloads) {
      if (!w.cpu) continue;
      const { cpu } = w;
      const perSecond = (s: number) => `${Math.round((s / cpu.seconds) * 100)}%`;
      const processes = cpu.perProcess.map((p) => `main ${perSecond(p.main)} + other threads ${perSecond(p.others)}`).join("; ");
      const spans = (w.spans ?? []).map((s) => `${s.count.toLocaleString("en-US")} msgs ${Math.round(s.startMs)}–${Math.round(s.endMs)} ms`).join(", ");
      lines.push(`- ${b.broker} ${shape(w.processes, w.threads)} ${WORKLOADS[w.workload].label}: over ${cpu.seconds.toFixed(1)} s, CPU of one core per process: ${processes}; supervisor ${perSecond(cpu.supervisor)}; machine ${percent(cpu.machineBusy)} busy. Per process: ${spans}.`);
    }
  }
  return lines.length ? ["", "Where the CPU went while draining (from /proc; 100% = one core):", "", ...lines] : [];
}

export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const s = result.settings;
  const header = ["Broker", "Workers", "Figure", "Troupe", "Reference (same run)", "Ratio", "Target"];
  const lines = [
    `Troupe benchmark, ${result.date} (${Math.round(result.durationSeconds)} s)`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM; Node ${m.node}; Redis ${m.redis}; RabbitMQ ${m.rabbitmq}${m.load ? `; load average ${m.load.start.toFixed(1)} at the start, ${m.load.end?.toFixed(1) ?? "?"} at the end` : ""}.`,
    `Settings: ${s.messages.toLocaleString("en-US")} messages per throughput figure${s.noopMessages && s.noopMessages !== s.messages ? ` (${s.noopMessages.toLocaleString("en-US")} for the no-op figures, enqueue included, their raw ceilings and BullMQ)` : ""}${s.warmup ? `, each after ${s.warmup.toLocaleString("en-US")} uncounted warm-up messages (the no-op figures after the same share of theirs; batched sends have no warm-up)` : ""}, latency over ${s.latencySeconds} s at ${percent(s.latencyLoad)} of capacity (the measured rate, or the broker's combined raw rate when lower), ${s.threads} threads per worker process, batches of ${s.batchSize}${s.quick ? " (quick mode: not a real measurement)" : ""}.`,
    "",
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...result.rows.map((r) => `| ${[r.broker, r.workers, r.figure, r.troupe, r.reference, r.ratio, r.target].join(" | ")} |`),
    "",
    ...diagnostics(result),
    "",
    ...result.brokers
      .filter((b) => b.lingeringWorkers > 0)
      .map((b) => `Note: on ${b.broker}, ${b.lingeringWorkers} worker process trees did not exit after their graceful stop and were killed.\n`),
  ];
  return lines.join("\n");
}

/** Write `<date>.json`, `latest.json` and `latest.md` into `dir`. */
export function writeResults(dir: string, result: BenchResult): string[] {
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const files = [join(dir, `${result.date.slice(0, 10)}.json`), join(dir, "latest.json"), join(dir, "latest.md")];
  writeFileSync(files[0]!, json);
  writeFileSync(files[1]!, json);
  writeFileSync(files[2]!, renderMarkdown(result));
  return files;
}
