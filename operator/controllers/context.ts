import type { ResultBackend } from "../../worker/results/backend.js";
import type { ActorResource, PipelineResource, WorkerPool } from "../api/types.js";
import type { BrokerConnections } from "../brokers/connections.js";
import type { KubeApi } from "../kube/api.js";
import type { ObjectCaches } from "../kube/cache.js";
import type { SecretLookup } from "../resources/secret-refs.js";
import type { EventRecorder } from "../runtime/events.js";
import type { OperatorMetrics } from "../runtime/metrics.js";
import type { BacklogSizer } from "../scaling/backlog-sizer.js";
import type { ActorScheduleRunner } from "./actor-schedules.js";

/** What the controllers share: API access, broker connections, the informer caches, observability. */
export interface OperatorContext {
  /** The API; with leader election, its requests stop the moment the lease is lost. */
  api: KubeApi;
  /** The informers' objects (WorkerPools, Actors, Pipelines, the operator's Deployments and Services, Secrets). */
  cache: ObjectCaches;
  events: EventRecorder;
  metrics: OperatorMetrics;
  connections: BrokerConnections;
  scaler: BacklogSizer;
  /** Fires the Actors' schedules (started with the controllers: on the leader only). */
  schedules: ActorScheduleRunner;
  /** Cached WorkerPools / Actors / Pipelines of a namespace (from the informers). */
  pools(namespace: string): WorkerPool[];
  actors(namespace: string): ActorResource[];
  pipelines(namespace: string): PipelineResource[];
  /** The Secrets of a namespace, from the cache. */
  secrets(namespace: string): SecretLookup;
  /** Where a worker pod serves its metrics; undefined when it has no address yet. */
  podMetricsUrl(pod: { metadata?: { name?: string }; status?: { podIP?: string } }): string | undefined;
  resultBackend(url: string): ResultBackend;
  /** Tell another controller a key needs a reconcile (e.g. an Actor changed the queues of a pool). */
  enqueue(controller: "workerpool" | "actor" | "pipeline", key: string): void;
  /** The only clock the controllers read. */
  now(): Date;
  /** How long "is the PodMonitor CRD installed?" is remembered, and how often each PodMonitor is checked. */
  discoveryRefreshMs: number;
  /** How often active Pipeline runs are checked against the results backend. */
  pipelineFollowMs: number;
}

export function splitKey(key: string): [namespace: string, name: string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}
