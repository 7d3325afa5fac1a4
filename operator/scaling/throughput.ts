/** One poll of a pool: when, how much work was waiting, how many replicas ran, and (when known) messages completed so far. */
export interface ThroughputSample {
  /** ms since the epoch. */
  time: number;
  backlog: number;
  replicas: number;
  /** Cumulative messages completed by the pool (sum of the workers' `dramatiq_messages_total`), when scraped. */
  processed?: number;
}

/**
 * Messages per second one replica completes, measured over the samples (oldest first). With processed counters the
 * measure is exact; without them, the fall of the backlog between polls is a lower bound (arrivals hide part of the
 * work done), which errs towards more replicas. Intervals where no replica ran, or the backlog was empty, say
 * nothing about throughput and are skipped. `undefined` when nothing was measured.
 */
export function measureThroughputPerReplica(samples: readonly ThroughputSample[]): number | undefined {
  let work = 0;
  let replicaSeconds = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const seconds = (b.time - a.time) / 1000;
    const replicas = Math.min(a.replicas, b.replicas);
    if (seconds <= 0 || replicas <= 0 || a.backlog === 0) continue;
    const done = a.processed !== undefined && b.processed !== undefined ? b.processed - a.processed : a.backlog - b.backlog;
    if (done <= 0) continue;
    work += done;
    replicaSeconds += replicas * seconds;
  }
  return replicaSeconds > 0 && work > 0 ? work / replicaSeconds : undefined;
}
