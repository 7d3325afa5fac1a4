import type { AutoscalingSpec } from "../api/types.js";
import { decideReplicas, type Recommendation, type ScaleDecision, type ScaleEvent, type ScaleSignals } from "./decide.js";
import { measureThroughputPerReplica, type ThroughputSample } from "./throughput.js";

/** What was read of one pool's work in one poll, before any throughput is derived from it. */
export interface BacklogReading extends Omit<ScaleSignals, "throughputPerReplica"> {
  /** Cumulative messages the pool has completed (its workers' counters summed), when every worker answered. */
  processed?: number;
}

/** A decision plus the throughput per replica it was computed with. */
export interface SizeDecision extends ScaleDecision {
  throughputPerReplica: number | undefined;
}

/**
 * Decides one pool's size, remembering what it needs between polls: recommendation history, scale events and throughput samples around the pure `decideReplicas`.
 * Shared by the Kubernetes controller and `troupe up`. A new instance (a new leader) starts with the current size
 * as its history, so a failover never shrinks a pool before a full scale-down window has passed.
 */
export class SizeDecider {
  private history: Recommendation[] | undefined;
  private events: ScaleEvent[] = [];
  private samples: ThroughputSample[] = [];

  constructor(private readonly sampleWindowMs = 60_000) {}

  decide(spec: AutoscalingSpec, reading: BacklogReading, currentReplicas: number, now: number = Date.now()): SizeDecision {
    this.history ??= [{ time: now, replicas: currentReplicas }];
    if (reading.backlog !== undefined) {
      this.samples.push({ time: now, backlog: reading.backlog, replicas: currentReplicas, processed: reading.processed });
      this.samples = this.samples.filter((s) => s.time > now - this.sampleWindowMs);
    }
    const throughputPerReplica = measureThroughputPerReplica(this.samples);
    const { processed: _processed, ...signals } = reading;
    const decision = decideReplicas({ spec, observation: { ...signals, throughputPerReplica }, currentReplicas, now, history: this.history, events: this.events });
    this.history = decision.history;
    this.events = decision.events;
    return { ...decision, throughputPerReplica };
  }
}
