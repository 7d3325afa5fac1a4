import { qName } from "../../worker/queues.js";
import type { AutoscalingSpec } from "../api/types.js";
import { BacklogReader, type BrokerBacklog, type QueueBacklog } from "../brokers/backlog.js";
import type { BrokerConnections } from "../brokers/connections.js";
import type { ManagementEndpoint } from "../brokers/management-url.js";
import { answeredCounters, type WorkerLoad } from "./pod-load.js";
import { SizeDecider, type BacklogReading, type SizeDecision } from "./size-decider.js";

/** Whether the whole backlog was read: the pool's `BacklogComplete` condition. */
export interface BacklogCompleteness {
  complete: boolean;
  reason: "AllRead" | "InFlightFromWorkers" | "ManagementApiFailed" | "InFlightUnknown";
  message: string;
}

export interface PoolEvaluation {
  decision: SizeDecision;
  /** Per-queue depth, when the broker answered (in-flight at least what the workers report running). */
  stats?: QueueBacklog[];
  /** Why the depth is missing (broker unreachable, no credentials). */
  error?: Error;
  /** Set when the broker answered. */
  completeness?: BacklogCompleteness;
  /**
   * When the earliest delayed message beyond the horizon enters it (ms since the epoch): the pool should be polled
   * again by then, so that a poll interval longer than the horizon's margin does not make that message's scale-up late.
   */
  delayedEntersHorizonAt?: number;
}

/**
 * Reads each pool's backlog from its broker and sizes the pool: the half of the WorkerPool reconciler that the Kubernetes controller
 * and `troupe up` share. Keeps one SizeDecider (history, throughput samples) per pool key.
 */
export class BacklogSizer {
  private readonly deciders = new Map<string, SizeDecider>();
  private readonly reader: BacklogReader;

  constructor(connections: BrokerConnections) {
    this.reader = new BacklogReader(connections);
  }

  async evaluate(args: {
    key: string;
    spec: AutoscalingSpec;
    /** `undefined` when the broker URL could not be resolved (missing Secret): the size is held. */
    brokerUrl: string | undefined;
    queues: readonly string[];
    currentReplicas: number;
    now?: number;
    /** RabbitMQ: the management API, when one is configured. */
    management?: ManagementEndpoint;
    /** What each of the pool's pods reports (undefined: unreachable); not given when the pods were not read. */
    pods?: readonly (WorkerLoad | undefined)[];
  }): Promise<PoolEvaluation> {
    const now = args.now ?? Date.now();
    const horizonMs = args.spec.delayedHorizonSeconds * 1000;
    let read: BrokerBacklog | undefined;
    let error: Error | undefined;
    if (args.brokerUrl === undefined) error = new Error("no broker URL");
    else {
      try {
        read = await this.reader.read(args.brokerUrl, args.queues, { dueBy: now + horizonMs, management: args.management });
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err));
      }
    }
    let decider = this.deciders.get(args.key);
    if (!decider) {
      decider = new SizeDecider();
      this.deciders.set(args.key, decider);
    }
    const counters = args.pods ? answeredCounters(args.pods) : undefined;
    const signals = read ? backlogSignals(read, args.pods) : undefined;
    const reading: BacklogReading = signals ? { ...signals.reading, ...counters } : { backlog: undefined };
    const decision = decider.decide(args.spec, reading, args.currentReplicas, now);
    const later = (read?.queues ?? []).map((q) => q.nextEtaAfterHorizon).filter((eta): eta is number => eta !== undefined);
    const delayedEntersHorizonAt = later.length ? Math.min(...later) - horizonMs : undefined;
    return { decision, stats: signals?.queues, error, completeness: signals?.completeness, delayedEntersHorizonAt };
  }

  forget(key: string): void {
    this.deciders.delete(key);
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}

/**
 * The decision's signals from what the broker and the pods said. In-flight per queue is the larger of the broker's
 * figure and the sum of the pods' `dramatiq_messages_inprogress`: the broker's may be stale (the management API) or
 * missing (RabbitMQ without it), and a message a pod is running is work whatever the broker shows. Where the broker
 * cannot see in-flight at all, the pods' figure is the whole of it, so the reading is complete only if every pod
 * answered. A configured management API that fails is a gap too, even when every pod answered: the user asked for
 * the broker's figure, and the gauges miss what other consumers of the queue hold.
 */
export function backlogSignals(read: BrokerBacklog, pods: readonly (WorkerLoad | undefined)[] | undefined): { reading: Omit<BacklogReading, "processed" | "running" | "reportingPods">; queues: QueueBacklog[]; completeness: BacklogCompleteness } {
  const known = (pods ?? []).filter((p): p is WorkerLoad => p !== undefined);
  const running = (queue: string) => known.reduce((n, p) => n + Object.entries(p.inFlightByQueue).reduce((m, [q, v]) => (qName(q) === queue ? m + v : m), 0), 0);
  const queues = read.queues.map((q) => ({ ...q, inFlight: Math.max(q.inFlight, running(q.queue)) }));
  const sum = (of: (q: QueueBacklog) => number) => queues.reduce((n, q) => n + of(q), 0);
  const unanswered = (pods?.length ?? 0) - known.length;
  let completeness: BacklogCompleteness;
  const unseen = read.inFlightUnseen;
  if (unseen === undefined) completeness = { complete: true, reason: "AllRead", message: `ready, in-flight and delayed messages of ${queues.length} queues read from the broker` };
  else if (pods === undefined) completeness = { complete: false, reason: "InFlightUnknown", message: `in-flight messages unknown: ${unseen.message}, and the workers' gauges were not read` };
  else if (unanswered > 0) completeness = { complete: false, reason: "InFlightUnknown", message: `in-flight messages partly unknown: ${unseen.message}, and ${unanswered} of ${pods.length} pods did not answer on their metrics port` };
  else if (unseen.cause === "ManagementFailed") completeness = { complete: false, reason: "ManagementApiFailed", message: `${unseen.message}; in-flight messages from the ${pods.length} pods' dramatiq_messages_inprogress instead` };
  else completeness = { complete: true, reason: "InFlightFromWorkers", message: `in-flight messages from the ${pods.length} pods' dramatiq_messages_inprogress: ${unseen.message}` };
  return {
    reading: {
      backlog: sum((q) => q.ready + q.inFlight),
      delayedDue: sum((q) => q.delayedDue),
      delayedUnknownEta: sum((q) => q.delayedUnknownEta),
      busyPods: pods === undefined ? undefined : known.filter((p) => p.inFlight > 0).length,
      complete: completeness.complete,
    },
    queues,
    completeness,
  };
}

/**
 * Milliseconds to a pool's next poll: its interval, or less when a delayed message enters the horizon before then.
 * The default horizon already holds one interval, so this matters when the user set a shorter one.
 */
export function nextPollInMs(spec: AutoscalingSpec, evaluation: Pick<PoolEvaluation, "delayedEntersHorizonAt">, now: number): number {
  const interval = spec.pollIntervalSeconds * 1000;
  const enters = evaluation.delayedEntersHorizonAt;
  return enters === undefined ? interval : Math.min(interval, Math.max(1, Math.ceil(enters - now)));
}
