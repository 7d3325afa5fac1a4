/** One poll of a pool: when, how much work was waiting, how many replicas ran, and (when known) messages completed so far. */
export interface ThroughputSample {
  /** ms since the epoch. */
  time: number;
  /** Ready + in-flight messages (delayed ones not yet due are not work yet). */
  backlog: number;
  /** Replicas the counters below come from: the pods that answered on their metrics port, else the pool's size. */
  replicas: number;
  /** Cumulative messages completed by those replicas (sum of their `dramatiq_messages_total`), when scraped. */
  processed?: number;
  /** Messages those replicas were running (their `dramatiq_messages_inprogress` summed), when scraped. */
  running?: number;
}

/** What one interval between two polls says about the pool. */
export interface Interval {
  /** ms since the epoch, at the interval's end. */
  time: number;
  seconds: number;
  /** Messages completed, from the counters or (a lower bound) the backlog's fall; 0 when unknown. */
  done: number;
  /** Replicas × seconds the work was done in, when `done` says something about throughput; else 0. */
  replicaSeconds: number;
  /** Messages waited for a slot at both ends and the counters were read: `done` is what the replicas can do. */
  saturated: boolean;
  /** Messages the counters say were completed, when they were read. */
  completed?: number;
  /** Messages that arrived, when the counters were read: completed + the backlog's growth. */
  arrived?: number;
  /** Messages running × seconds, when the counters and gauges were read. */
  runningSeconds?: number;
}

/** What a window of intervals says about a pool. Every field is `undefined` when nothing was measured. */
export interface PoolRates {
  /**
   * Messages per second one replica completes while it has more work than it runs: its capacity. Only intervals
   * where messages waited at both ends (backlog above what the pods run) count, so a pool sized above its load,
   * whose pods complete only what arrives, does not read its own over-provisioning as a low capacity.
   */
  capacityPerReplica?: number;
  /**
   * Messages per second one replica completed over every interval, saturated or not: a lower bound of its
   * capacity (arrivals may have been all there was to do).
   */
  completedPerReplica?: number;
  /** Messages per second arriving (promoted delayed ones included): completed + the backlog's growth. */
  arrivalRate?: number;
  /**
   * Mean seconds one message runs, by Little's law: messages running over time / messages completed. `undefined`
   * when none completed, which is also what messages running longer than the window look like.
   */
  messageSeconds?: number;
}

/**
 * One interval between polls. Processed counters are compared only between polls read from the same number of
 * replicas: a pod that stopped answering (removed, or a scrape that timed out) takes its counter out of the sum,
 * and one that answers again would read as a burst of completions. Without counters the fall of the backlog is a
 * lower bound of the work done (arrivals hide part of it), which errs towards more replicas. An interval where no
 * replica ran, or that started with an empty backlog, says nothing about throughput.
 */
export function interval(a: ThroughputSample, b: ThroughputSample): Interval | undefined {
  const seconds = (b.time - a.time) / 1000;
  if (seconds <= 0) return undefined;
  const counted = a.processed !== undefined && b.processed !== undefined && a.replicas === b.replicas && b.processed >= a.processed;
  const done = counted ? b.processed! - a.processed! : Math.max(0, a.backlog - b.backlog);
  const replicas = Math.min(a.replicas, b.replicas);
  const says = replicas > 0 && a.backlog > 0 && done > 0;
  return {
    time: b.time,
    seconds,
    done: says ? done : 0,
    replicaSeconds: says ? replicas * seconds : 0,
    saturated: says && counted && waiting(a) && waiting(b),
    completed: counted ? done : undefined,
    arrived: counted ? Math.max(0, done + b.backlog - a.backlog) : undefined,
    runningSeconds: counted && a.running !== undefined && b.running !== undefined ? ((a.running + b.running) / 2) * seconds : undefined,
  };
}

/** Whether messages waited for a slot at this poll: more work than the replicas were running. */
function waiting(s: ThroughputSample): boolean {
  return s.running !== undefined && s.backlog > s.running;
}

/** The intervals between consecutive samples (oldest first). */
export function intervals(samples: readonly ThroughputSample[]): Interval[] {
  const out: Interval[] = [];
  for (let i = 1; i < samples.length; i++) {
    const iv = interval(samples[i - 1]!, samples[i]!);
    if (iv) out.push(iv);
  }
  return out;
}

/** The pool's rates over the intervals. */
export function measureRates(within: readonly Interval[]): PoolRates {
  const sum = (list: readonly Interval[], of: (iv: Interval) => number) => list.reduce((n, iv) => n + of(iv), 0);
  const saturated = within.filter((iv) => iv.saturated);
  const counted = within.filter((iv) => iv.arrived !== undefined);
  const timed = within.filter((iv) => iv.runningSeconds !== undefined);
  const ratio = (a: number, b: number) => (b > 0 && a > 0 ? a / b : undefined);
  return {
    capacityPerReplica: ratio(sum(saturated, (iv) => iv.done), sum(saturated, (iv) => iv.replicaSeconds)),
    completedPerReplica: ratio(sum(within, (iv) => iv.done), sum(within, (iv) => iv.replicaSeconds)),
    arrivalRate: counted.length ? sum(counted, (iv) => iv.arrived!) / sum(counted, (iv) => iv.seconds) : undefined,
    messageSeconds: ratio(sum(timed, (iv) => iv.runningSeconds!), sum(timed, (iv) => iv.completed!)),
  };
}

/** Messages per second one replica completes over the samples: its measured capacity, else the lower bound. */
export function measureThroughputPerReplica(samples: readonly ThroughputSample[]): number | undefined {
  const rates = measureRates(intervals(samples));
  return rates.capacityPerReplica ?? rates.completedPerReplica;
}
