import { autoscalingWithDefaults, DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, type AutoscalingSpec, type ScalingRules } from "../../operator/api/types.js";
import { SizeDecider } from "../../operator/scaling/size-decider.js";
import type { PoolModel, PoolView, Removal } from "./pool.js";

/** Sizes a simulated pool: called every second with what can be read of it, answers a new size or nothing. */
export interface Scaler {
  readonly name: string;
  readonly removal: Removal;
  readonly initialReplicas: number;
  tick(t: number, view: PoolView): number | undefined;
}

/** What the three scalers are asked for, in the same terms: messages per replica, and that in drain time. */
export interface ScalingTarget {
  /** The HPA's and KEDA's AverageValue target on ready messages; Troupe's `targetBacklogPerReplica`. */
  backlogPerReplica: number;
}

/**
 * Troupe: the operator's own SizeDecider (history, scale events, throughput samples around `decideReplicas`), fed
 * what the operator reads each poll on Redis: ready + in-flight, delayed messages due within the horizon, busy pods
 * and the processed counters and in-progress gauges of the pods that answer. `targetDrainSeconds` is the backlog target in drain time at the pool's rate.
 */
export function troupeScaler(model: PoolModel, target: ScalingTarget): Scaler & { spec: AutoscalingSpec } {
  const rate = model.concurrency / model.serviceSeconds;
  const spec = autoscalingWithDefaults({
    maxReplicas: model.maxReplicas,
    targetBacklogPerReplica: target.backlogPerReplica,
    targetDrainSeconds: Math.round(target.backlogPerReplica / rate),
    podStartupSeconds: model.startupSeconds,
  })!;
  const decider = new SizeDecider();
  return {
    name: "Troupe",
    removal: "least-busy",
    initialReplicas: 0,
    spec,
    tick(t, view) {
      if (t % spec.pollIntervalSeconds !== 0) return undefined;
      const reading = {
        backlog: view.ready + view.inFlight,
        delayedDue: view.delayedDueBy(t + spec.delayedHorizonSeconds),
        delayedUnknownEta: 0,
        busyPods: view.busyPods,
        complete: true,
        processed: view.readyPods > 0 ? view.processed : undefined,
        running: view.running,
        reportingPods: view.readyPods,
      };
      return decider.decide(spec, reading, view.pods, t * 1000).replicas;
    },
  };
}

interface HpaEvent {
  t: number;
  change: number;
}

/**
 * The HPA's algorithm (k8s.io/kubernetes pkg/controller/podautoscaler) on an external AverageValue metric, written
 * from its source rather than from decide.ts so the baseline does not share Troupe's mistakes: every sync,
 * desired = ceil(metric / target) unless metric / (target × current) is within the tolerance of 1; the highest
 * recommendation of the scale-down window; the default policies; [minReplicas, maxReplicas]. It does not act on a
 * pool at zero.
 */
export class Hpa {
  private recommendations: { t: number; replicas: number }[] = [];
  private ups: HpaEvent[] = [];
  private downs: HpaEvent[] = [];

  constructor(
    private readonly target: number,
    private readonly minReplicas: number,
    private readonly maxReplicas: number,
    private readonly syncSeconds = 15,
    private readonly tolerance = 0.1,
    private readonly downWindowSeconds = 300,
    private readonly up: ScalingRules = DEFAULT_SCALE_UP,
    private readonly down: ScalingRules = DEFAULT_SCALE_DOWN,
  ) {}

  sync(t: number, metric: number, current: number): number | undefined {
    if (t % this.syncSeconds !== 0 || current === 0) return undefined;
    const ratio = metric / (this.target * current);
    const raw = Math.abs(ratio - 1) <= this.tolerance ? current : Math.ceil(metric / this.target);
    this.recommendations = this.recommendations.filter((r) => r.t > t - this.downWindowSeconds);
    const down = Math.max(raw, ...this.recommendations.map((r) => r.replicas));
    this.recommendations.push({ t, replicas: raw });
    const stabilised = Math.min(Math.max(current, raw), down);
    let desired = stabilised;
    if (stabilised > current) desired = Math.min(stabilised, Math.max(current, this.limit(this.up, t, current, 1)), this.maxReplicas);
    else if (stabilised < current) desired = Math.max(stabilised, Math.min(current, this.limit(this.down, t, current, -1)), this.minReplicas);
    desired = Math.min(Math.max(desired, this.minReplicas), this.maxReplicas);
    if (desired > current) this.ups.push({ t, change: desired - current });
    if (desired < current) this.downs.push({ t, change: current - desired });
    return desired;
  }

  /** calculateScaleUpLimitWithScalingRules (direction 1) and calculateScaleDownLimitWithBehaviors (-1). */
  private limit(rules: ScalingRules, t: number, current: number, direction: 1 | -1): number {
    if (rules.selectPolicy === "Disabled") return current;
    const within = (events: HpaEvent[], period: number) => events.filter((e) => e.t > t - period).reduce((n, e) => n + e.change, 0);
    const proposals = rules.policies.map((p) => {
      const start = current - within(this.ups, p.periodSeconds) + within(this.downs, p.periodSeconds);
      if (direction === 1) return p.type === "Pods" ? start + p.value : Math.ceil(start * (1 + p.value / 100));
      return p.type === "Pods" ? start - p.value : Math.trunc(start * (1 - p.value / 100));
    });
    const biggestChange = (rules.selectPolicy === "Max") === (direction === 1);
    return biggestChange ? Math.max(...proposals) : Math.min(...proposals);
  }
}

/** A plain HPA on the queue's ready messages (what a list-length metric shows), minReplicas 1. */
export function hpaScaler(model: PoolModel, target: ScalingTarget): Scaler {
  const hpa = new Hpa(target.backlogPerReplica, 1, model.maxReplicas);
  return { name: "HPA", removal: "newest", initialReplicas: 1, tick: (t, view) => hpa.sync(t, view.ready, view.pods) };
}

/**
 * KEDA's defaults over a Redis list or RabbitMQ queue length: every 30 s the scaler is active while ready
 * messages exceed the activation value (0); an active pool at zero goes to one, a pool inactive for the 300 s
 * cooldown goes to zero; between one and max, the HPA it creates (minReplicas 1, default behaviour) on the same metric.
 */
export function kedaScaler(model: PoolModel, target: ScalingTarget, pollingSeconds = 30, cooldownSeconds = 300, activation = 0): Scaler {
  const hpa = new Hpa(target.backlogPerReplica, 1, model.maxReplicas);
  let lastActive = 0;
  return {
    name: "KEDA",
    removal: "newest",
    initialReplicas: 0,
    tick(t, view) {
      if (t % pollingSeconds === 0) {
        const active = view.ready > activation;
        if (active) lastActive = t;
        if (active && view.pods === 0) return 1;
        if (!active && view.pods > 0 && t - lastActive >= cooldownSeconds) return 0;
      }
      return hpa.sync(t, view.ready, view.pods);
    },
  };
}
