import type { QueueStats } from "../../worker/broker.js";
import type { AutoscalingSpec } from "../api/types.js";
import type { BrokerConnections } from "../brokers/connections.js";
import { SizeDecider, type SizeDecision } from "./size-decider.js";

export interface PoolEvaluation {
  decision: SizeDecision;
  /** Per-queue depth, when the broker answered. */
  stats?: QueueStats[];
  /** Why the depth is missing (broker unreachable, no credentials). */
  error?: Error;
}

/**
 * Reads each pool's backlog from its broker and sizes the pool: the half of the WorkerPool reconciler that the Kubernetes controller
 * and `troupe up` share. Keeps one SizeDecider (history, throughput samples) per pool key.
 */
export class BacklogSizer {
  private readonly deciders = new Map<string, SizeDecider>();

  constructor(private readonly connections: BrokerConnections) {}

  async evaluate(args: {
    key: string;
    spec: AutoscalingSpec;
    /** `undefined` when the broker URL could not be resolved (missing Secret): the size is held. */
    brokerUrl: string | undefined;
    queues: readonly string[];
    currentReplicas: number;
    now?: number;
    processed?: number;
  }): Promise<PoolEvaluation> {
    let stats: QueueStats[] | undefined;
    let error: Error | undefined;
    if (args.brokerUrl === undefined) error = new Error("no broker URL");
    else {
      try {
        stats = await this.connections.queueStats(args.brokerUrl, args.queues);
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err));
      }
    }
    let decider = this.deciders.get(args.key);
    if (!decider) {
      decider = new SizeDecider();
      this.deciders.set(args.key, decider);
    }
    const reading = stats
      ? { backlog: sum(stats, (s) => s.ready + s.inFlight), delayedUnknownEta: sum(stats, (s) => s.delayed), processed: args.processed }
      : { backlog: undefined };
    const decision = decider.decide(args.spec, reading, args.currentReplicas, args.now ?? Date.now());
    return { decision, stats, error };
  }

  forget(key: string): void {
    this.deciders.delete(key);
  }
}

function sum(stats: readonly QueueStats[], of: (s: QueueStats) => number): number {
  return stats.reduce((total, s) => total + of(s), 0);
}
