import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The operator's Prometheus metrics, on a registry of their own (names are documented in docs/operator.md). */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly reconcileDuration: Histogram<"controller">;
  readonly workQueueDepth: Gauge<"controller">;
  readonly isLeader: Gauge;
  readonly poolReplicas: Gauge<"namespace" | "workerpool">;
  readonly poolDesiredReplicas: Gauge<"namespace" | "workerpool">;
  readonly poolRecommendedReplicas: Gauge<"namespace" | "workerpool">;
  readonly poolMaxReplicas: Gauge<"namespace" | "workerpool">;
  readonly poolMinReplicas: Gauge<"namespace" | "workerpool">;
  readonly poolQueueDepth: Gauge<"namespace" | "workerpool" | "queue_name" | "state">;
  readonly poolThroughput: Gauge<"namespace" | "workerpool">;
  readonly poolBrokerUp: Gauge<"namespace" | "workerpool">;
  readonly scaleEvents: Counter<"namespace" | "workerpool" | "direction">;
  readonly pipelineRuns: Counter<"namespace" | "pipeline" | "state">;
  /** The workers' names and labels, so that fires are summed over workers and operator alike (docs/schedules.md). */
  readonly scheduleFires: Counter<"schedule" | "actor_name">;
  readonly scheduleMisfires: Counter<"schedule" | "actor_name">;

  constructor({ defaultMetrics = true }: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "troupe_operator_process_" });
    const pool = ["namespace", "workerpool"] as const;
    this.reconcileTotal = new Counter({ name: "troupe_operator_reconcile_total", help: "Reconciles by controller and result (success, requeue, rejected, error).", labelNames: ["controller", "result"], registers });
    this.reconcileErrors = new Counter({ name: "troupe_operator_reconcile_errors_total", help: "Reconciles that failed and were retried with backoff.", labelNames: ["controller"], registers });
    this.reconcileDuration = new Histogram({
      name: "troupe_operator_reconcile_duration_seconds",
      help: "Time one reconcile took.",
      labelNames: ["controller"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.workQueueDepth = new Gauge({ name: "troupe_operator_workqueue_depth", help: "Keys waiting in a controller's work queue.", labelNames: ["controller"], registers });
    this.isLeader = new Gauge({ name: "troupe_operator_leader", help: "1 while this instance holds the leader lease.", registers });
    this.poolReplicas = new Gauge({ name: "troupe_workerpool_replicas", help: "Pods of the pool's Deployment (its status.replicas).", labelNames: pool, registers });
    this.poolDesiredReplicas = new Gauge({ name: "troupe_workerpool_desired_replicas", help: "Replicas the operator decided and set on the Deployment.", labelNames: pool, registers });
    this.poolRecommendedReplicas = new Gauge({ name: "troupe_workerpool_recommended_replicas", help: "The unstabilised recommendation of the last poll.", labelNames: pool, registers });
    this.poolMaxReplicas = new Gauge({ name: "troupe_workerpool_max_replicas", help: "The pool's maxReplicas.", labelNames: pool, registers });
    this.poolMinReplicas = new Gauge({ name: "troupe_workerpool_min_replicas", help: "The pool's minReplicas.", labelNames: pool, registers });
    this.poolQueueDepth = new Gauge({ name: "troupe_workerpool_queue_depth", help: "Messages in a pool's queue by state (ready, delayed, in_flight, dead).", labelNames: [...pool, "queue_name", "state"], registers });
    this.poolThroughput = new Gauge({ name: "troupe_workerpool_throughput_per_replica", help: "Measured messages per second one replica completes.", labelNames: pool, registers });
    this.poolBrokerUp = new Gauge({ name: "troupe_workerpool_broker_up", help: "1 when the operator could read the pool's queue depth from the broker.", labelNames: pool, registers });
    this.scaleEvents = new Counter({ name: "troupe_workerpool_scale_events_total", help: "Scale-ups and scale-downs the operator applied.", labelNames: [...pool, "direction"], registers });
    this.pipelineRuns = new Counter({ name: "troupe_operator_pipeline_runs_total", help: "Pipeline runs by final state.", labelNames: ["namespace", "pipeline", "state"], registers });
    this.scheduleFires = new Counter({ name: "troupe_schedule_fires_total", help: "Ticks of Actor schedules this operator enqueued (it won their election).", labelNames: ["schedule", "actor_name"], registers });
    this.scheduleMisfires = new Counter({ name: "troupe_schedule_misfires_total", help: "Ticks of schedules that no one fired (no leader, or reached too late), counted by the next firer.", labelNames: ["schedule", "actor_name"], registers });
  }

  private readonly depthSeries = new Map<string, Set<string>>();

  setQueueDepth(namespace: string, workerpool: string, queue: string, state: "ready" | "delayed" | "in_flight" | "dead", value: number): void {
    this.poolQueueDepth.set({ namespace, workerpool, queue_name: queue, state }, value);
    const key = `${namespace}/${workerpool}`;
    if (!this.depthSeries.has(key)) this.depthSeries.set(key, new Set());
    this.depthSeries.get(key)!.add(`${queue}\n${state}`);
  }

  /** Drop a deleted pool's series so dashboards do not show ghosts. */
  forgetPool(namespace: string, workerpool: string): void {
    for (const gauge of [this.poolReplicas, this.poolDesiredReplicas, this.poolRecommendedReplicas, this.poolMaxReplicas, this.poolMinReplicas, this.poolThroughput, this.poolBrokerUp]) gauge.remove({ namespace, workerpool });
    const key = `${namespace}/${workerpool}`;
    for (const series of this.depthSeries.get(key) ?? []) {
      const [queue_name, state] = series.split("\n") as [string, string];
      this.poolQueueDepth.remove({ namespace, workerpool, queue_name, state });
    }
    this.depthSeries.delete(key);
  }
}
