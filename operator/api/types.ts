/** TypeScript shapes of the troupe.dev/v1alpha1 custom resources (see crds/ for the schemas and defaults). */
import type { OverridableOptions } from "../../worker/options.js";

export const GROUP = "troupe.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

/** A metav1.Condition. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface SecretRef {
  name: string;
  key?: string;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

/** One HPA-style limit on how fast a pool may change: `value` pods, or `value` percent, per `periodSeconds`. */
export interface ScalingPolicy {
  type: "Pods" | "Percent";
  value: number;
  periodSeconds: number;
}

/** The HPA's HPAScalingRules: which policy wins (`Max`: the one allowing the biggest change), or `Disabled`. */
export interface ScalingRules {
  selectPolicy: "Max" | "Min" | "Disabled";
  policies: ScalingPolicy[];
}

export interface AutoscalingSpec {
  minReplicas: number;
  maxReplicas: number;
  targetBacklogPerReplica: number;
  targetDrainSeconds?: number;
  pollIntervalSeconds: number;
  scaleUpStabilizationSeconds: number;
  scaleDownStabilizationSeconds: number;
  /** A running pool is resized only when the needed size differs from the current one by more than this ratio. */
  tolerance: number;
  /** A pool at zero starts only when the backlog exceeds this many messages. */
  activationBacklog: number;
  /** Seconds from a scale-up to a pod consuming: part of the lead time delayed messages are sized ahead of. */
  podStartupSeconds: number;
  /** Delayed messages due within this many seconds count toward the backlog. */
  delayedHorizonSeconds: number;
  behavior: { scaleUp: ScalingRules; scaleDown: ScalingRules };
}

/** The HPA's default behaviour: up by 4 pods or 100 % per 15 s (whichever is more), down by up to 100 % per 15 s. */
export const DEFAULT_SCALE_UP: ScalingRules = {
  selectPolicy: "Max",
  policies: [
    { type: "Pods", value: 4, periodSeconds: 15 },
    { type: "Percent", value: 100, periodSeconds: 15 },
  ],
};
export const DEFAULT_SCALE_DOWN: ScalingRules = { selectPolicy: "Max", policies: [{ type: "Percent", value: 100, periodSeconds: 15 }] };

/** The autoscaling block as written in a WorkerPool: every field but maxReplicas may be left to its default. */
export type AutoscalingFields = Partial<Omit<AutoscalingSpec, "behavior">> & {
  maxReplicas: number;
  behavior?: { scaleUp?: Partial<ScalingRules>; scaleDown?: Partial<ScalingRules> };
};

export interface WorkerPoolSpec {
  image: string;
  imagePullPolicy?: string;
  imagePullSecrets?: { name: string }[];
  modules: string[];
  queues?: string[];
  actorSelector?: LabelSelector;
  broker: {
    secretRef: SecretRef;
    /**
     * RabbitMQ: the management API the autoscaler reads in-flight (unacked) counts from. `url` (http(s)://host:15672)
     * inline or under the Secret's `url` key; the Secret's `username` and `password` keys are its credentials.
     */
    management?: { url?: string; secretRef?: { name: string } };
  };
  /** RabbitMQ: the queue type the pool's workers declare (TROUPE_RABBITMQ_QUEUE_TYPE); default classic, as Dramatiq. */
  queueType?: "classic" | "quorum";
  results?: { secretRef: SecretRef };
  replicas?: number;
  processes?: number;
  threads?: number;
  concurrency?: number;
  prefetch?: number;
  shutdownTimeoutSeconds?: number;
  resources?: Record<string, unknown>;
  env?: ({ name: string } & Record<string, unknown>)[];
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  priorityClassName?: string;
  serviceAccountName?: string;
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  autoscaling?: AutoscalingFields;
}

export interface QueueDepthStatus {
  name: string;
  ready: number;
  delayed: number;
  inFlight: number;
  dead: number;
}

export interface WorkerPoolStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  desiredReplicas?: number;
  selector?: string;
  backlog?: number;
  drainRatePerReplica?: string;
  lastScaleTime?: string;
  lastScaleReason?: string;
  queues?: QueueDepthStatus[];
  conditions?: Condition[];
}

export interface WorkerPool {
  apiVersion: typeof API_VERSION;
  kind: "WorkerPool";
  metadata: ObjectMeta;
  spec: WorkerPoolSpec;
  status?: WorkerPoolStatus;
}

/** Actor options as the CRD spells them: ActorOptions names, durations in ms (declared in worker/options.ts). */
export type ActorOverrideOptions = OverridableOptions;

/** A periodic enqueue of the Actor, as `schedule(actor, cron | { every }, options)` declares one in code. */
export interface ActorScheduleSpec {
  /** Default `<actorName>@<cron>` or `<actorName>@every:<period>`, the code API's default. */
  name?: string;
  cron?: string;
  every?: string;
  tz?: string;
  args?: JsonArg[];
  kwargs?: Record<string, JsonArg>;
  suspend?: boolean;
  misfire?: "skip" | "late";
  /** With `misfire: late`: how late a missed tick may still fire once. */
  graceSeconds?: number;
}

export interface ActorSpec {
  actorName: string;
  queue?: string;
  options?: ActorOverrideOptions;
  schedules?: ActorScheduleSpec[];
}

export interface ActorScheduleStatus {
  name: string;
  /** `cron 0 8 * * MON-FRI (Europe/Paris)`, `every 30s`. */
  when?: string;
  /** The last tick fired, by the operator or by a worker declaring the same schedule in code. */
  lastScheduleTime?: string;
  nextScheduleTime?: string;
  /** The suspend the operator last applied to the store (a change of spec.suspend pauses or resumes it there). */
  suspended?: boolean;
  /** Where the ticks are elected (credentials redacted). */
  store?: string;
}

export interface ActorStatus {
  observedGeneration?: number;
  pools?: string[];
  lastScheduleTime?: string;
  nextScheduleTime?: string;
  schedules?: ActorScheduleStatus[];
  queueDepth?: { ready: number; delayed: number; inFlight: number; dead: number };
  conditions?: Condition[];
}

export interface ActorResource {
  apiVersion: typeof API_VERSION;
  kind: "Actor";
  metadata: ObjectMeta;
  spec: ActorSpec;
  status?: ActorStatus;
}

export type JsonArg = unknown;

export interface PipelineCall {
  actor: string;
  queue?: string;
  args?: JsonArg[];
  kwargs?: Record<string, JsonArg>;
}

export interface PipelineStep extends Partial<PipelineCall> {
  name: string;
  pipeIgnore?: boolean;
  group?: PipelineCall[];
}

export type RunState = "Pending" | "Running" | "Succeeded" | "Failed" | "Replaced";

export interface StepMessageRef {
  messageId: string;
  actor: string;
  queue: string;
}

export interface StepStatus {
  name: string;
  state: RunState;
  enqueued?: boolean;
  messages?: StepMessageRef[];
  startTime?: string;
  completionTime?: string;
  error?: string;
}

export interface PipelineRun {
  name: string;
  state: RunState;
  scheduledTime?: string;
  startTime?: string;
  completionTime?: string;
  steps: StepStatus[];
}

export interface PipelineSpec {
  broker: { secretRef: SecretRef };
  results?: { secretRef: SecretRef };
  steps: PipelineStep[];
  schedule?: string;
  timeZone?: string;
  concurrencyPolicy?: "Allow" | "Forbid" | "Replace";
  suspend?: boolean;
  startingDeadlineSeconds?: number;
  successfulRunsHistoryLimit?: number;
  failedRunsHistoryLimit?: number;
}

export interface PipelineStatus {
  observedGeneration?: number;
  lastScheduleTime?: string;
  lastRunState?: RunState;
  runs?: PipelineRun[];
  conditions?: Condition[];
}

export interface PipelineResource {
  apiVersion: typeof API_VERSION;
  kind: "Pipeline";
  metadata: ObjectMeta;
  spec: PipelineSpec;
  status?: PipelineStatus;
}

/** Defaults of the autoscaling block, the same as the CRD's (the local runner has no API server to apply them). */
export function autoscalingWithDefaults(spec: WorkerPoolSpec["autoscaling"]): AutoscalingSpec | undefined {
  if (!spec) return undefined;
  const pollIntervalSeconds = spec.pollIntervalSeconds ?? 5;
  const scaleUpStabilizationSeconds = spec.scaleUpStabilizationSeconds ?? 0;
  const podStartupSeconds = spec.podStartupSeconds ?? 30;
  return {
    minReplicas: spec.minReplicas ?? 0,
    maxReplicas: spec.maxReplicas,
    targetBacklogPerReplica: spec.targetBacklogPerReplica ?? 100,
    targetDrainSeconds: spec.targetDrainSeconds,
    pollIntervalSeconds,
    scaleUpStabilizationSeconds,
    scaleDownStabilizationSeconds: spec.scaleDownStabilizationSeconds ?? 60,
    tolerance: spec.tolerance ?? 0.1,
    activationBacklog: spec.activationBacklog ?? 0,
    podStartupSeconds,
    // The scale-up lead time: a message due this far ahead is seen (one poll), decided on (the up window) and has a
    // pod consuming (start-up) by the time it comes due.
    delayedHorizonSeconds: spec.delayedHorizonSeconds ?? pollIntervalSeconds + scaleUpStabilizationSeconds + podStartupSeconds,
    behavior: {
      scaleUp: { ...DEFAULT_SCALE_UP, ...spec.behavior?.scaleUp },
      scaleDown: { ...DEFAULT_SCALE_DOWN, ...spec.behavior?.scaleDown },
    },
  };
}
