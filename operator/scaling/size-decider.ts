import type { AutoscalingSpec } from "../api/types.js";
import { decideReplicas, type Recommendation, type ScaleDecision, type ScaleEvent, type ScaleSignals } from "./decide.js";
import { interval, measureRates, type Interval, type ThroughputSample } from "./throughput.js";

/** What was read of one pool's work in one poll, before any rate is derived from it. */
export interface BacklogReading extends Omit<ScaleSignals, "throughputPerReplica" | "arrivalRate" | "messageSeconds"> {
  /** Cumulative messages completed by the pods that answered (their counters summed). */
  processed?: number;
  /** Messages the pods that answered are running (their in-progress gauges summed). */
  running?: number;
  /** How many pods answered on their metrics port; `processed` and `running` are theirs. */
  reportingPods?: number;
}

/** A decision plus the rates it was computed with. */
export interface SizeDecision extends ScaleDecision {
  throughputPerReplica: number | undefined;
  arrivalRate: number | undefined;
}

/** How long each measure looks back, in ms. */
export interface SampleWindows {
  /** Throughput, message duration, and the span of waiting intervals the capacity is measured over. */
  rates: number;
  /** Arrivals, sustained: a rise counts as it lasts, so a one-minute spike is met by the backlog term. */
  arrivals: number;
  /** Arrivals, now: a fall counts at once. The arrival rate sized on is the lower of the two. */
  recentArrivals: number;
}

export const SAMPLE_WINDOWS: SampleWindows = { rates: 60_000, arrivals: 300_000, recentArrivals: 30_000 };

/**
 * Decides one pool's size, remembering what it needs between polls: recommendation history, scale events, the
 * intervals between polls and the last measured capacity, around the pure `decideReplicas`. Shared by the
 * Kubernetes controller and `troupe up`. A new instance (a new leader) starts with the current size as its
 * history, so a failover never shrinks a pool before a full scale-down window has passed.
 */
export class SizeDecider {
  private history: Recommendation[] | undefined;
  private events: ScaleEvent[] = [];
  private last: ThroughputSample | undefined;
  /** The intervals between polls within the longest window. */
  private intervals: Interval[] = [];
  /**
   * The latest intervals in which messages waited for the pods, a rates window's worth of seconds however old: the
   * capacity outlives the window, since a pool that keeps up with its load has no waiting work to measure it on.
   */
  private saturated: Interval[] = [];
  private readonly windows: SampleWindows;

  constructor(windows: Partial<SampleWindows> = {}) {
    this.windows = { ...SAMPLE_WINDOWS, ...windows };
  }

  decide(spec: AutoscalingSpec, reading: BacklogReading, currentReplicas: number, now: number = Date.now()): SizeDecision {
    this.history ??= [{ time: now, replicas: currentReplicas }];
    if (reading.backlog !== undefined) {
      const counted = reading.processed !== undefined;
      const sample = { time: now, backlog: reading.backlog, replicas: counted ? (reading.reportingPods ?? currentReplicas) : currentReplicas, processed: reading.processed, running: counted ? reading.running : undefined };
      const latest = this.last && interval(this.last, sample);
      this.last = sample;
      if (latest) this.intervals.push(latest);
      if (latest?.saturated) this.saturated.push(latest);
    }
    const within = (ms: number) => this.intervals.filter((iv) => iv.time - iv.seconds * 1000 >= now - ms);
    this.intervals = within(Math.max(this.windows.rates, this.windows.arrivals, this.windows.recentArrivals));
    this.saturated = newestSpanning(this.saturated, this.windows.rates / 1000);
    const rates = measureRates(within(this.windows.rates));
    const capacity = measureRates(this.saturated).capacityPerReplica;
    // What the pods completed is a lower bound of what they can do, as is a capacity measured a while ago: the higher wins.
    const throughputPerReplica = max(capacity, rates.completedPerReplica);
    // Arrivals are sized on only with a measured capacity: divided by a rate that is only what the pods happened
    // to complete, they would ask for the current size whatever it is.
    const arrivals = min(measureRates(within(this.windows.arrivals)).arrivalRate, measureRates(within(this.windows.recentArrivals)).arrivalRate);
    const arrivalRate = capacity !== undefined ? arrivals : undefined;
    const { processed: _processed, running: _running, reportingPods: _reporting, ...signals } = reading;
    const observation: ScaleSignals = { ...signals, throughputPerReplica, arrivalRate, messageSeconds: rates.messageSeconds };
    const decision = decideReplicas({ spec, observation, currentReplicas, now, history: this.history, events: this.events });
    this.history = decision.history;
    this.events = decision.events;
    return { ...decision, throughputPerReplica, arrivalRate };
  }
}

function min(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function max(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** The newest intervals that together span at most `seconds` (at least the newest one). */
function newestSpanning(intervals: readonly Interval[], seconds: number): Interval[] {
  let span = 0;
  let from = intervals.length;
  while (from > 0 && (from === intervals.length || span + intervals[from - 1]!.seconds <= seconds)) span += intervals[--from]!.seconds;
  return intervals.slice(from);
}
