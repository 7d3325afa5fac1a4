import { isDeepStrictEqual } from "node:util";
import type { QueueStats } from "../../worker/broker.js";
import { getLogger } from "../../worker/logging.js";
import { autoscalingWithDefaults, type AutoscalingSpec, type WorkerPool } from "../api/types.js";
import { scrubCredentials, workerPoolProblems } from "../api/validate.js";
import { describeApiError, DEPLOYMENTS, errorCode, PODMONITORS, PODS, SERVICES, WORKERPOOLS, type KubeObject } from "../kube/api.js";
import { createOrUpdate } from "../kube/create-or-update.js";
import { POOL_LABEL } from "../resources/labels.js";
import { poolQueues } from "../resources/queues.js";
import { secretRefValue } from "../resources/secret-refs.js";
import { deploymentUpdate, ownedUpdate, poolDeployment, poolMetricsService, poolPodMonitor } from "../resources/workerpool.js";
import { poolStatus, type PoolOutcome } from "../resources/workerpool-status.js";
import type { ReconcileResult } from "../runtime/controller.js";
import { deletionCosts, POD_DELETION_COST } from "../scaling/deletion-cost.js";
import { managementUrlOf, type ManagementEndpoint } from "../brokers/management-url.js";
import { nextPollInMs, type BacklogCompleteness } from "../scaling/backlog-sizer.js";
import { scrapeLoad, type WorkerLoad } from "../scaling/pod-load.js";
import { splitKey, type OperatorContext } from "./context.js";

const log = getLogger("operator.workerpool");
const MANUAL_RESYNC_MS = 30_000;

interface Deployment extends KubeObject {
  spec?: { replicas?: number };
  status?: { replicas?: number; readyReplicas?: number };
}

interface Pod extends KubeObject {
  status?: { podIP?: string };
}

type Rejection = NonNullable<PoolOutcome["rejection"]>;

function nameTaken(kind: string, name: string): Rejection {
  return { reason: `${kind}NameTaken`, message: `a ${kind} named ${name} already exists and does not belong to this WorkerPool; rename or remove one of them` };
}

/**
 * Write one child object. A client error a retry cannot fix (an invalid object from pass-through pod fields the
 * schema does not check, RBAC, a quota) is the user's to fix: it comes back as a rejection to report, and the pool
 * is retried with backoff instead of in a hot loop. Not found, conflict and throttling are transient and thrown.
 */
async function rejected(kind: string, write: () => Promise<Rejection | void>): Promise<Rejection | undefined> {
  try {
    return (await write()) ?? undefined;
  } catch (err) {
    const code = errorCode(err);
    if (code === undefined || code < 400 || code >= 500 || code === 404 || code === 409 || code === 429) throw err;
    return { reason: code === 403 ? `${kind}Forbidden` : `${kind}Rejected`, message: `the API server rejected the ${kind}: ${scrubCredentials(describeApiError(err))}` };
  }
}

/**
 * Reconciles a WorkerPool: resolves its queues and broker, reads queue depth, decides the size, marks the least busy
 * pods for removal before a scale-down, applies the Deployment / Service / PodMonitor, and reports status.
 */
export class WorkerPoolReconciler {
  private podMonitorsKnown: { at: number; present: boolean } | undefined;
  private readonly podMonitorsChecked = new Map<string, number>();
  /** Per pool, the Deployment generation last found holding every field the operator sets (or written by it). */
  private readonly checkedGenerations = new Map<string, number>();

  constructor(private readonly ctx: OperatorContext) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const [namespace, name] = splitKey(key);
    const { cache } = this.ctx;
    const pool = cache.get<WorkerPool & KubeObject>(WORKERPOOLS, namespace, name);
    if (!pool || pool.metadata.deletionTimestamp) {
      this.ctx.scaler.forget(key);
      this.checkedGenerations.delete(key);
      this.podMonitorsChecked.delete(key);
      this.ctx.metrics.forgetPool(namespace, name);
      return;
    }
    const now = this.ctx.now();
    const autoscaling = autoscalingWithDefaults(pool.spec.autoscaling);
    const queues = poolQueues(pool, this.ctx.actors(namespace));
    const problems = workerPoolProblems(pool, queues);
    const broker = secretRefValue(this.ctx.secrets(namespace), pool.spec.broker.secretRef);
    const brokerUrl = broker.value;
    const secretProblem = broker.problem === undefined ? undefined : { reason: "SecretMissing", message: broker.problem };
    // From the cache, which returns the operator's own last write until its watch has caught up with it.
    const deployment = cache.get<Deployment>(DEPLOYMENTS, namespace, name);
    const current = deployment?.spec?.replicas ?? (autoscaling ? autoscaling.minReplicas : (pool.spec.replicas ?? 1));
    // Pod loads (read once per poll) keep busy pods, stand in for in-flight counts a broker cannot give, measure
    // throughput and pick the pods to remove.
    let loads = autoscaling && deployment ? await this.podLoads(namespace, name) : undefined;
    const management = autoscaling ? await managementUrlOf(pool.spec, this.ctx.secrets(namespace)) : {};
    const decision = await this.decide(pool, autoscaling, { key, brokerUrl, queues, current, invalid: problems.length > 0, loads, management });
    const brokerProblem = secretProblem ?? decision.brokerProblem;

    // An invalid spec holds what exists: never start workers on a guess (an empty queue list means every queue).
    let applied: Deployment | undefined = deployment;
    let rejection: Rejection | undefined;
    if (problems.length === 0) {
      if (deployment && decision.desired < current) await this.markLeastBusyPods(namespace, (loads ??= await this.podLoads(namespace, name)));
      rejection =
        (await rejected("Deployment", async () => {
          const result = await this.applyDeployment(pool, queues, decision.desired, deployment);
          if (result.operation === "taken") return nameTaken("Deployment", name);
          applied = result.object;
        })) ??
        (await rejected("Service", () => this.applyService(pool))) ??
        (await rejected("PodMonitor", () => this.applyPodMonitor(pool)));
    }
    const desired = applied?.spec?.replicas ?? current;
    await this.report(pool, autoscaling, { current, desired, reason: decision.reason, message: decision.message, problems, rejection, brokerProblem, stats: decision.stats, throughput: decision.throughput, completeness: decision.completeness, deploymentStatus: applied?.status }, { existed: Boolean(deployment), recommended: decision.recommended }, now);
    if (rejection) return { backoff: true };
    return { requeueAfterMs: autoscaling ? nextPollInMs(autoscaling, decision, this.ctx.now().getTime()) : MANUAL_RESYNC_MS };
  };

  /** Read the queues and decide the size (autoscaled), or take spec.replicas (manual); an invalid spec holds. */
  private async decide(
    pool: WorkerPool,
    autoscaling: AutoscalingSpec | undefined,
    { key, brokerUrl, queues, current, invalid, loads, management }: { key: string; brokerUrl?: string; queues: string[]; current: number; invalid: boolean; loads?: { load: WorkerLoad | undefined }[]; management?: ManagementEndpoint },
  ): Promise<{ desired: number; recommended: number; reason: string; message: string; stats?: QueueStats[]; throughput?: number; brokerProblem?: { reason: string; message: string }; completeness?: BacklogCompleteness; delayedEntersHorizonAt?: number }> {
    if (autoscaling && !invalid) {
      const pods = loads?.map((l) => l.load);
      const { decision, stats, error, completeness, delayedEntersHorizonAt } = await this.ctx.scaler.evaluate({ key, spec: autoscaling, brokerUrl, queues, currentReplicas: current, now: this.ctx.now().getTime(), management, pods });
      return {
        completeness,
        delayedEntersHorizonAt,
        desired: decision.replicas,
        recommended: decision.recommended,
        reason: decision.reason,
        message: decision.message,
        stats,
        throughput: decision.throughputPerReplica,
        brokerProblem: error && brokerUrl !== undefined ? { reason: "BrokerUnreachable", message: scrubCredentials(error.message) } : undefined,
      };
    }
    const desired = invalid ? current : (pool.spec.replicas ?? 1);
    const base = { desired, recommended: desired, reason: invalid ? "InvalidSpec" : "Manual", message: invalid ? "holding the current size" : `spec.replicas ${desired}` };
    if (brokerUrl === undefined || queues.length === 0) return base;
    try {
      return { ...base, stats: await this.ctx.connections.queueStats(brokerUrl, queues) };
    } catch (err) {
      return { ...base, brokerProblem: { reason: "BrokerUnreachable", message: scrubCredentials((err as Error).message) } };
    }
  }

  /** Events, metrics and status for one reconcile. */
  private async report(pool: WorkerPool & KubeObject, autoscaling: AutoscalingSpec | undefined, outcome: PoolOutcome, { existed, recommended }: { existed: boolean; recommended: number }, now: Date): Promise<void> {
    const { namespace, name } = pool.metadata as { namespace: string; name: string };
    const { current, desired, message, problems, brokerProblem } = outcome;
    if (desired !== current && existed) {
      const direction = desired > current ? "up" : "down";
      this.ctx.metrics.scaleEvents.inc({ namespace, workerpool: name, direction });
      log.info("scaled pool", { namespace, workerpool: name, from: current, to: desired, reason: outcome.reason, detail: message });
      await this.ctx.events.record(pool, "Normal", direction === "up" ? "ScaledUp" : "ScaledDown", "Scale", `${current} → ${desired}: ${message}`);
    }
    if (brokerProblem) await this.ctx.events.record(pool, "Warning", brokerProblem.reason, "ReadQueueDepth", brokerProblem.message);
    if (problems.length) await this.ctx.events.record(pool, "Warning", "InvalidSpec", "Validate", problems.join("; "));
    if (outcome.rejection) await this.ctx.events.record(pool, "Warning", outcome.rejection.reason, "Apply", outcome.rejection.message);
    this.exportMetrics(namespace, name, { pool, autoscaling, running: outcome.deploymentStatus?.replicas ?? 0, desired, recommended, stats: outcome.stats, throughput: outcome.throughput, brokerUp: brokerProblem === undefined });
    const status = poolStatus(pool, outcome, now);
    if (!isDeepStrictEqual(status, pool.status)) await this.ctx.api.patchStatus(WORKERPOOLS, namespace, name, status);
  }

  private exportMetrics(
    namespace: string,
    name: string,
    { pool, autoscaling, running, desired, recommended, stats, throughput, brokerUp }: { pool: WorkerPool; autoscaling: AutoscalingSpec | undefined; running: number; desired: number; recommended: number; stats?: QueueStats[]; throughput?: number; brokerUp: boolean },
  ): void {
    const m = this.ctx.metrics;
    const labels = { namespace, workerpool: name };
    m.poolReplicas.set(labels, running);
    m.poolDesiredReplicas.set(labels, desired);
    m.poolRecommendedReplicas.set(labels, recommended);
    m.poolMaxReplicas.set(labels, autoscaling?.maxReplicas ?? pool.spec.replicas ?? 1);
    m.poolMinReplicas.set(labels, autoscaling?.minReplicas ?? pool.spec.replicas ?? 1);
    m.poolBrokerUp.set(labels, brokerUp ? 1 : 0);
    if (throughput !== undefined) m.poolThroughput.set(labels, throughput);
    for (const s of stats ?? []) {
      for (const [state, value] of [["ready", s.ready], ["delayed", s.delayed], ["in_flight", s.inFlight], ["dead", s.dead]] as const) {
        m.setQueueDepth(namespace, name, s.queue, state, value);
      }
    }
  }

  /**
   * Create the Deployment, or bring it to what the pool wants: replicas, template and every field the operator owns,
   * reverting hand edits of those fields (checked whenever the Deployment's generation moved since the last check).
   */
  private async applyDeployment(pool: WorkerPool & KubeObject, queues: readonly string[], replicas: number, current: Deployment | undefined) {
    const key = `${pool.metadata.namespace}/${pool.metadata.name}`;
    const desired = poolDeployment(pool, queues, replicas);
    const result = await createOrUpdate<Deployment>(this.ctx.api, DEPLOYMENTS, desired, {
      current,
      owner: pool,
      mutate: (live) => deploymentUpdate(live, desired, { checkFields: live.metadata.generation !== this.checkedGenerations.get(key) }),
    });
    if (result.operation !== "taken" && result.object.metadata.generation !== undefined) this.checkedGenerations.set(key, result.object.metadata.generation);
    return result;
  }

  /** The metrics Service, created or brought back to what the operator sets; read from the cache every poll. */
  private async applyService(pool: WorkerPool & KubeObject): Promise<Rejection | undefined> {
    const desired = poolMetricsService(pool);
    const current = this.ctx.cache.get<KubeObject>(SERVICES, pool.metadata.namespace!, desired.metadata.name);
    const result = await createOrUpdate(this.ctx.api, SERVICES, desired, { current, owner: pool, mutate: (live) => ownedUpdate(live, desired) });
    return result.operation === "taken" ? nameTaken("Service", desired.metadata.name) : undefined;
  }

  /**
   * A PodMonitor only where the Prometheus Operator's CRD is installed (looked up at most once per discovery
   * refresh); each pool's is read and brought back to what the operator sets as often.
   */
  private async applyPodMonitor(pool: WorkerPool & KubeObject): Promise<Rejection | undefined> {
    const namespace = pool.metadata.namespace!;
    const key = `${namespace}/${pool.metadata.name}`;
    const now = this.ctx.now().getTime();
    if ((this.podMonitorsChecked.get(key) ?? -Infinity) > now - this.ctx.discoveryRefreshMs) return undefined;
    if (!this.podMonitorsKnown || this.podMonitorsKnown.at < now - this.ctx.discoveryRefreshMs) {
      try {
        await this.ctx.api.list(PODMONITORS, namespace, "troupe.dev/none=probe");
        this.podMonitorsKnown = { at: now, present: true };
      } catch (err) {
        if (errorCode(err) !== 404) throw err;
        this.podMonitorsKnown = { at: now, present: false };
      }
    }
    if (this.podMonitorsKnown.present) {
      const desired = poolPodMonitor(pool);
      const result = await createOrUpdate(this.ctx.api, PODMONITORS, desired, { current: await this.ctx.api.get(PODMONITORS, namespace, desired.metadata.name), owner: pool, mutate: (live) => ownedUpdate(live, desired) });
      if (result.operation === "taken") return nameTaken("PodMonitor", desired.metadata.name);
    }
    this.podMonitorsChecked.set(key, now);
    return undefined;
  }

  /** The pool's pods with what each reports on its metrics port (undefined: not reachable). */
  private async podLoads(namespace: string, pool: string): Promise<{ pod: Pod; load: WorkerLoad | undefined }[]> {
    const pods = this.ctx.cache.list<Pod>(PODS, namespace).filter((p) => p.metadata.labels?.[POOL_LABEL] === pool && !p.metadata.deletionTimestamp);
    return Promise.all(
      pods.map(async (pod) => {
        const url = this.ctx.podMetricsUrl(pod);
        return { pod, load: url ? await scrapeLoad(url) : undefined };
      }),
    );
  }

  /** Before a scale-down: pod-deletion-cost = in-flight messages, so the ReplicaSet removes idle pods first. */
  private async markLeastBusyPods(namespace: string, loads: readonly { pod: Pod; load: WorkerLoad | undefined }[]): Promise<void> {
    const costs = deletionCosts(loads.map(({ pod, load }) => ({ name: pod.metadata.name, inFlight: load?.inFlight })));
    await Promise.all(
      loads.map(async ({ pod }) => {
        const cost = String(costs.get(pod.metadata.name) ?? 0);
        if (pod.metadata.annotations?.[POD_DELETION_COST] === cost) return;
        try {
          await this.ctx.api.patch(PODS, namespace, pod.metadata.name, { metadata: { annotations: { [POD_DELETION_COST]: cost } } });
        } catch (err) {
          if (errorCode(err) !== 404) throw err;
        }
      }),
    );
  }
}
