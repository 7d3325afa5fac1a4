import type { AutoscalingSpec } from "../api/types.js";
import { decideReplicas, type Recommendation, type ScaleDecision } from "./decide.js";
import { measureThroughputPerReplica, type ThroughputSample } from "./throughput.js";

export interface PoolObservation {
  backlog: number | undefined;
  delayed?: number;
  processed?: number;
}

export interface AutoscalerDecision extends ScaleDecision {
  throughputPerReplica: number | undefined;
}

/**
 * The memory of one pool's scaling: recommendation history and throughput samples around the pure `decideReplicas`.
 * Shared by the Kubernetes controller and `troupe up`. A new instance (a new leader) starts with the current size
 * as its history, so a failover never shrinks a pool before a full scale-down window has passed.
 */
export class PoolAutoscaler {
  private history: Recommendation[] | undefined;
  private samples: ThroughputSample[] = [];

  constructor(private readonly sampleWindowMs = 60_000) {}

  decide(spec: AutoscalingSpec, observation: PoolObservation, currentReplicas: number, now: number = Date.now()): AutoscalerDecision {
    this.history ??= [{ time: now, replicas: currentReplicas }];
    if (observation.backlog !== undefined) {
      this.samples.push({ time: now, backlog: observation.backlog, replicas: currentReplicas, processed: observation.processed });
      this.samples = this.samples.filter((s) => s.time > now - this.sampleWindowMs);
    }
    const throughputPerReplica = measureThroughputPerReplica(this.samples);
    const decision = decideReplicas({
      spec,
      observation: { backlog: observation.backlog, delayed: observation.delayed, throughputPerReplica },
      currentReplicas,
      now,
      history: this.history,
    });
    this.history = decision.history;
    return { ...decision, throughputPerReplica };
  }
}
