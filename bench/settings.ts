import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultPrefetch } from "troupe";

export type BrokerKind = "redis" | "rabbitmq";
export type WorkloadName = "noop" | "io" | "cpu";

export interface Workload {
  name: WorkloadName;
  /** The actor in bench/actors.ts that runs it. */
  actor: string;
  label: string;
  /** Best possible msg/s for this many processes and threads on this machine (undefined: the raw loop is the bound). */
  ideal: (processes: number, threads: number) => number | undefined;
}

export const WORKLOADS: Record<WorkloadName, Workload> = {
  noop: { name: "noop", actor: "bench_noop", label: "no-op", ideal: () => undefined },
  io: { name: "io", actor: "bench_io", label: "1 ms async I/O", ideal: (processes, threads) => processes * threads * 1000 },
  cpu: { name: "cpu", actor: "bench_cpu", label: "5 ms CPU", ideal: (processes, threads) => (Math.min(availableParallelism(), processes * threads) * 1000) / 5 },
};

export interface BenchSettings {
  quick: boolean;
  /** Messages per throughput measurement (BENCH_MESSAGES). */
  messages: number;
  /**
   * Messages for the no-op figures, their raw ceilings and BullMQ (BENCH_NOOP_MESSAGES, default 5 × messages): a
   * no-op drain of 20,000 lasts under half a second, too short for V8 to settle (its young generation still
   * growing, hot paths compiling), and understated steady-state throughput by a fifth to a quarter here.
   */
  noopMessages: number;
  /** Messages each worker (and BullMQ) processes before a throughput measurement, not counted (BENCH_WARMUP, default 10% of `messages`; the no-op figures get 10% of theirs). */
  warmup: number;
  /** Seconds of offered load for each latency measurement (BENCH_LATENCY_SECONDS). */
  latencySeconds: number;
  /** Share of the measured capacity offered during latency measurements (BENCH_LATENCY_LOAD, default 0.5). */
  latencyLoad: number;
  redisUrl: string;
  amqpUrl: string;
  brokers: BrokerKind[];
  /** Worker process counts to measure, each with `threads` threads (BENCH_PROCESSES, default "1,<CPU count>"). */
  processes: number[];
  threads: number;
  /** Per-queue prefetch of each worker process and of the raw consume loops (BENCH_PREFETCH, default the worker's own). */
  prefetch: number;
  workloads: Workload[];
  bullmqConcurrency: number[];
  /** Messages per enqueueMany call. */
  batchSize: number;
  /** Where results are written (--out; default bench/results, or a temporary directory with --quick). */
  outDir: string;
  /** Fail a phase that makes no progress for this long (ms). */
  stallTimeout: number;
  /** Longest a one-at-a-time send loop may take (ms): a quarter of the phase budget. */
  sendBudget: number;
  /** Longest a throughput measurement may take (ms, BENCH_PHASE_SECONDS): a slow workload is measured over what it did by then. */
  phaseBudget: number;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function list<T extends string>(raw: string | undefined, allowed: readonly T[], fallback: T[], name: string): T[] {
  if (!raw) return fallback;
  const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${name}: unknown value "${item}" (use ${allowed.join(", ")})`);
  return items as T[];
}

function positive(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** Settings from the command line (`--quick`, `--out DIR`) and BENCH_* environment variables. */
/** How many messages a workload's throughput figure is measured over, and its uncounted warm-up. */
export function messageCounts(settings: BenchSettings, workload: WorkloadName): { messages: number; warmup: number } {
  if (workload !== "noop" || settings.noopMessages === settings.messages) return { messages: settings.messages, warmup: settings.warmup };
  return { messages: settings.noopMessages, warmup: Math.round((settings.warmup * settings.noopMessages) / settings.messages) };
}

export function loadSettings(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const { values } = parseArgs({ args: argv, options: { quick: { type: "boolean" }, out: { type: "string" } }, strict: true });
  const quick = values.quick ?? false;
  const messages = Math.round(positive(env.BENCH_MESSAGES, quick ? 300 : 20_000, "BENCH_MESSAGES"));
  const cores = availableParallelism();
  const processes = (env.BENCH_PROCESSES ?? (quick ? "1" : `1,${cores}`)).split(",").map((p) => Math.round(positive(p, 1, "BENCH_PROCESSES")));
  const threads = Math.round(positive(env.BENCH_THREADS, 8, "BENCH_THREADS"));
  const phaseBudget = positive(env.BENCH_PHASE_SECONDS, quick ? 20 : 60, "BENCH_PHASE_SECONDS") * 1000;
  const latencyLoad = positive(env.BENCH_LATENCY_LOAD, 0.5, "BENCH_LATENCY_LOAD");
  if (latencyLoad >= 1) throw new Error("BENCH_LATENCY_LOAD must be below 1 (a share of the measured capacity)");
  return {
    quick,
    messages,
    noopMessages: Math.round(positive(env.BENCH_NOOP_MESSAGES, quick ? messages : 5 * messages, "BENCH_NOOP_MESSAGES")),
    warmup: env.BENCH_WARMUP === "0" ? 0 : Math.round(positive(env.BENCH_WARMUP, Math.ceil(messages / 10), "BENCH_WARMUP")),
    latencySeconds: positive(env.BENCH_LATENCY_SECONDS, quick ? 0.3 : 3, "BENCH_LATENCY_SECONDS"),
    latencyLoad,
    redisUrl: env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
    amqpUrl: env.BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
    brokers: list(env.BENCH_BROKERS, ["redis", "rabbitmq"] as const, ["redis", "rabbitmq"], "BENCH_BROKERS"),
    processes: [...new Set(processes)],
    threads,
    prefetch: Math.round(positive(env.BENCH_PREFETCH, defaultPrefetch(threads), "BENCH_PREFETCH")),
    workloads: list(env.BENCH_WORKLOADS, ["noop", "io", "cpu"] as const, ["noop", "io", "cpu"], "BENCH_WORKLOADS").map((w) => WORKLOADS[w]),
    bullmqConcurrency: [8, 50],
    batchSize: 1000,
    // A quick run is no measurement: by default it must not replace the committed results.
    outDir: values.out ? resolve(values.out) : quick ? join(tmpdir(), "troupe-bench-quick") : join(repoRoot, "bench", "results"),
    stallTimeout: positive(env.BENCH_STALL_TIMEOUT, 30, "BENCH_STALL_TIMEOUT") * 1000,
    phaseBudget,
    sendBudget: phaseBudget / 4,
  };
}
