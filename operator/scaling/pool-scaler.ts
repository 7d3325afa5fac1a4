import type { QueueStats } from "../../worker/broker.js";
import type { AutoscalingSpec } from "../api/types.js";
import type { BrokerConnections } from "../brokers/connections.js";
import { PoolAutoscaler, type AutoscalerDecision } from "./autoscaler.js";

export interface PoolEvaluation {
  decision: AutoscalerDecision;
  /** Per-queue depth, when the broker answered. */
  stats?: QueueStats[];
  /** Why the depth is missing (broker unreachable, no credentials). */
  error?: Error;
}

/**
 * Observe a pool's queues and decide its size: the half of the WorkerPool reconciler that the Kubernetes controller
 * and `troupe up` share. Keeps one autoscaler (history, throughput samples) per pool key.
 */
export class PoolScaler {
  private readonly autoscalers = new Map<string, PoolAutoscaler>();

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
    let autoscaler = this.autoscalers.get(args.key);
    if (!autoscaler) {
      autoscaler = new PoolAutoscaler();
      this.autoscalers.set(args.key, autoscaler);
    }
    const observation = stats
      ? { backlog: sum(stats, (s) => s.ready + s.inFlight), delayed: sum(stats, (s) => s.delayed), processed: args.processed }
      : { backlog: undefined };
    const decision = autoscaler.decide(args.spec, observation, args.currentReplicas, args.now ?? Date.now());
    return { decision, stats, error };
  }

  forget(key: string): void {
    this.autoscalers.delete(key);
  }
}

function sum(stats: readonly QueueStats[], of: (s: QueueStats) => number): number {
  return stats.reduce((total, s) => total + of(s), 0);
}
