import { isDeepStrictEqual } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import type { QueueStats } from "../../worker/broker.js";
import { getLogger } from "../../worker/logging.js";
import { autoscalingWithDefaults, type ActorResource, type WorkerPool } from "../api/types.js";
import { scrubCredentials, workerPoolProblems } from "../api/validate.js";
import { describeApiError, DEPLOYMENTS, errorCode, MERGE_PATCH, PODMONITORS, WORKERPOOLS, type KubeObject } from "../kube/api.js";
import { matchesSelector, poolSelectorLabels, selectorString } from "../resources/labels.js";
import { poolDeployment, poolMetricsService, poolPodMonitor, TEMPLATE_HASH } from "../resources/workerpool.js";
import { poolStatus, type PoolOutcome } from "../resources/workerpool-status.js";
import type { ReconcileResult } from "../runtime/controller.js";
import { deletionCosts, POD_DELETION_COST } from "../scaling/deletion-cost.js";
import { managementUrlOf, type ManagementEndpoint } from "../brokers/management-url.js";
import type { BacklogCompleteness } from "../scaling/backlog-sizer.js";
import { scrapeLoad, type WorkerLoad } from "../scaling/pod-load.js";
import { splitKey, type OperatorContext } from "./context.js";

const log = getLogger("operator.workerpool");
const MANUAL_RESYNC_MS = 30_000;
const SERVICE_CHECK_MS = 300_000;

interface Deployment extends KubeObject {
  spec?: { replicas?: number };
  status?: { replicas?: number; readyReplicas?: number };
}

type Rejection = NonNullable<PoolOutcome["rejection"]>;

/** Is this child object controlled by this pool (and not a same-named object someone else made)? */
function ours(pool: WorkerPool, child: KubeObject | undefined): boolean {
  const refs = child?.metadata.ownerReferences as { uid?: string; controller?: boolean }[] | undefined;
  return Boolean(refs?.some((r) => r.controller && r.uid === pool.metadata.uid));
}

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

/** The queues a pool consumes: its own list plus the queues of the Actors its selector picks. */
export function poolQueues(pool: WorkerPool, actors: readonly ActorResource[]): string[] {
  const queues = new Set(pool.spec.queues ?? []);
  const selector = pool.spec.actorSelector;
  if (selector) for (const a of actors) if (matchesSelector(a.metadata.labels, selector)) queues.add(a.spec.queue ?? "default");
  return [...queues].sort();
}

/**
 * Reconciles a WorkerPool: resolves its queues and broker, reads queue depth, decides the size, marks the least busy
 * pods for removal before a scale-down, applies the Deployment / Service / PodMonitor, and reports status.
 */
export class WorkerPoolReconciler {
  private podMonitorsKnown: { at: number; present: boolean } | undefined;
  private readonly servicesChecked = new Map<string, number>();

  constructor(private readonly ctx: OperatorContext) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const [namespace, name] = splitKey(key);
    const pool = await this.ctx.api.get<WorkerPool & KubeObject>(WORKERPOOLS, namespace, name);
    if (!pool || pool.metadata.deletionTimestamp) {
      this.ctx.scaler.forget(key);
      this.servicesChecked.delete(key);
      this.ctx.metrics.forgetPool(namespace, name);
      return;
    }
    const now = this.ctx.now();
    const autoscaling = autoscalingWithDefaults(pool.spec.autoscaling);
    const queues = poolQueues(pool, this.ctx.actors(namespace));
    const problems = workerPoolProblems(pool, queues);
    const { brokerUrl, problem: secretProblem } = await this.brokerUrl(pool);
    // Read, not cached: a cache that has not yet seen our last scale would make the next poll decide from a stale size.
    const found = await this.ctx.api.get<Deployment>(DEPLOYMENTS, namespace, name);
    const deployment = ours(pool, found) ? found : undefined;
    const current = deployment?.spec?.replicas ?? (autoscaling ? autoscaling.minReplicas : (pool.spec.replicas ?? 1));
    // Pod loads (read once per poll) keep busy pods, stand in for in-flight counts a broker cannot give, measure
    // throughput and pick the pods to remove.
    let loads = autoscaling && deployment ? await this.podLoads(namespace, name) : undefined;
    const management = autoscaling ? await managementUrlOf(pool.spec, (secret, key) => this.ctx.api.secretValue(namespace, secret, key)) : {};
    const decision = await this.decide(pool, { key, brokerUrl, queues, current, invalid: problems.length > 0, loads, management });
    const brokerProblem = secretProblem ?? decision.brokerProblem;

    // An invalid spec holds what exists: never start workers on a guess (an empty queue list means every queue).
    let applied = deployment;
    let rejection = found && !deployment ? nameTaken("Deployment", name) : undefined;
    if (problems.length === 0 && !rejection) {
      if (deployment && decision.desired < current) await this.markLeastBusyPods(namespace, (loads ??= await this.podLoads(namespace, name)));
      rejection =
        (await rejected("Deployment", async () => void (applied = await this.applyDeployment(pool, queues, decision.desired, deployment)))) ??
        (await rejected("Service", () => this.ensureService(pool, !deployment))) ??
        (await rejected("PodMonitor", () => this.ensurePodMonitor(pool)));
    }
    const desired = applied?.spec?.replicas ?? current;
    await this.report(pool, { current, desired, reason: decision.reason, message: decision.message, problems, rejection, brokerProblem, stats: decision.stats, throughput: decision.throughput, completeness: decision.completeness, deploymentStatus: applied?.status }, { existed: Boolean(applied), recommended: decision.recommended }, now);
    if (rejection) return { backoff: true };
    return { requeueAfterMs: autoscaling ? autoscaling.pollIntervalSeconds * 1000 : MANUAL_RESYNC_MS };
  };

  private async brokerUrl(pool: WorkerPool): Promise<{ brokerUrl?: string; problem?: { reason: string; message: string } }> {
    const ref = pool.spec.broker.secretRef;
    try {
      const brokerUrl = await this.ctx.api.secretValue(pool.metadata.namespace!, ref.name, ref.key ?? "url");
      if (brokerUrl === undefined) return { problem: { reason: "SecretMissing", message: `Secret ${ref.name} with key ${ref.key ?? "url"} not found` } };
      return { brokerUrl };
    } catch (err) {
      return { problem: { reason: "SecretUnreadable", message: scrubCredentials(describeApiError(err)) } };
    }
  }

  /** Read the queues and decide the size (autoscaled), or take spec.replicas (manual); an invalid spec holds. */
  private async decide(
    pool: WorkerPool,
    { key, brokerUrl, queues, current, invalid, loads, management }: { key: string; brokerUrl?: string; queues: string[]; current: number; invalid: boolean; loads?: { load: WorkerLoad | undefined }[]; management?: ManagementEndpoint },
  ): Promise<{ desired: number; recommended: number; reason: string; message: string; stats?: QueueStats[]; throughput?: number; brokerProblem?: { reason: string; message: string }; completeness?: BacklogCompleteness }> {
    const autoscaling = autoscalingWithDefaults(pool.spec.autoscaling);
    if (autoscaling && !invalid) {
      const pods = loads?.map((l) => l.load);
      const { decision, stats, error, completeness } = await this.ctx.scaler.evaluate({ key, spec: autoscaling, brokerUrl, queues, currentReplicas: current, now: this.ctx.now().getTime(), management, pods });
      return {
        completeness,
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
  private async report(pool: WorkerPool & KubeObject, outcome: PoolOutcome, { existed, recommended }: { existed: boolean; recommended: number }, now: Date): Promise<void> {
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
    this.exportMetrics(namespace, name, { pool, running: outcome.deploymentStatus?.replicas ?? 0, desired, recommended, stats: outcome.stats, throughput: outcome.throughput, brokerUp: brokerProblem === undefined });
    const status = poolStatus(pool, outcome, now);
    if (!isDeepStrictEqual(status, pool.status)) await this.ctx.api.patchStatus(WORKERPOOLS, namespace, name, status);
  }

  private exportMetrics(
    namespace: string,
    name: string,
    { pool, running, desired, recommended, stats, throughput, brokerUp }: { pool: WorkerPool; running: number; desired: number; recommended: number; stats?: QueueStats[]; throughput?: number; brokerUp: boolean },
  ): void {
    const m = this.ctx.metrics;
    const labels = { namespace, workerpool: name };
    m.poolReplicas.set(labels, running);
    m.poolDesiredReplicas.set(labels, desired);
    m.poolRecommendedReplicas.set(labels, recommended);
    const autoscaling = autoscalingWithDefaults(pool.spec.autoscaling);
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

  /** Create the Deployment, or bring its replicas and template to what they should be; idempotent. */
  private async applyDeployment(pool: WorkerPool, queues: readonly string[], replicas: number, existing: Deployment | undefined): Promise<Deployment> {
    const { api } = this.ctx;
    const namespace = pool.metadata.namespace!;
    const desired = poolDeployment(pool, queues, replicas);
    let current = existing;
    if (!current) {
      try {
        return await api.create<Deployment>(DEPLOYMENTS, namespace, desired);
      } catch (err) {
        // Another leader (or our own earlier attempt) created it: fall through to update it.
        if (errorCode(err) !== 409) throw err;
        current = await api.get<Deployment>(DEPLOYMENTS, namespace, pool.metadata.name);
        if (!current) throw err;
      }
    }
    const sameTemplate = current.metadata.annotations?.[TEMPLATE_HASH] === desired.metadata.annotations?.[TEMPLATE_HASH];
    if (sameTemplate && current.spec?.replicas === replicas) return current;
    // A size change touches only replicas, so what others added to the template (restartedAt, …) stays.
    if (sameTemplate) return api.patch<Deployment>(DEPLOYMENTS, namespace, pool.metadata.name, { spec: { replicas } });
    return api.patch<Deployment>(DEPLOYMENTS, namespace, pool.metadata.name, {
      metadata: { labels: desired.metadata.labels, annotations: desired.metadata.annotations, ownerReferences: desired.metadata.ownerReferences },
      spec: desired.spec as object,
    });
  }

  /** The metrics Service exists: checked when the Deployment is new and then every few minutes, not every poll. */
  private async ensureService(pool: WorkerPool, force: boolean): Promise<Rejection | undefined> {
    const key = `${pool.metadata.namespace}/${pool.metadata.name}`;
    if (!force && (this.servicesChecked.get(key) ?? 0) > Date.now() - SERVICE_CHECK_MS) return undefined;
    const service = poolMetricsService(pool);
    try {
      const existing = await this.ctx.api.core.readNamespacedService({ namespace: pool.metadata.namespace!, name: service.metadata.name });
      if (!ours(pool, existing as unknown as KubeObject)) return nameTaken("Service", service.metadata.name);
    } catch (err) {
      if (errorCode(err) !== 404) throw err;
      try {
        await this.ctx.api.core.createNamespacedService({ namespace: pool.metadata.namespace!, body: service });
      } catch (createErr) {
        if (errorCode(createErr) !== 409) throw createErr;
      }
    }
    this.servicesChecked.set(key, Date.now());
    return undefined;
  }

  /** A PodMonitor only where the Prometheus Operator's CRD is installed (looked up at most once a minute). */
  private async ensurePodMonitor(pool: WorkerPool): Promise<Rejection | undefined> {
    const { api } = this.ctx;
    const namespace = pool.metadata.namespace!;
    const now = Date.now();
    if (!this.podMonitorsKnown || this.podMonitorsKnown.at < now - this.ctx.discoveryRefreshMs) {
      try {
        await api.list(PODMONITORS, namespace, "troupe.dev/none=probe");
        this.podMonitorsKnown = { at: now, present: true };
      } catch (err) {
        if (errorCode(err) !== 404) throw err;
        this.podMonitorsKnown = { at: now, present: false };
      }
    }
    if (!this.podMonitorsKnown.present) return undefined;
    const existing = await api.get(PODMONITORS, namespace, pool.metadata.name);
    if (existing) return ours(pool, existing) ? undefined : nameTaken("PodMonitor", pool.metadata.name);
    try {
      await api.create(PODMONITORS, namespace, poolPodMonitor(pool));
    } catch (err) {
      if (errorCode(err) !== 409) throw err;
    }
    return undefined;
  }

  /** The pool's pods with what each reports on its metrics port (undefined: not reachable). */
  private async podLoads(namespace: string, pool: string): Promise<{ pod: k8s.V1Pod; load: WorkerLoad | undefined }[]> {
    const pods = (await this.ctx.api.core.listNamespacedPod({ namespace, labelSelector: selectorString(poolSelectorLabels(pool)) })).items.filter((p) => !p.metadata?.deletionTimestamp);
    return Promise.all(
      pods.map(async (pod) => {
        const url = this.ctx.podMetricsUrl(pod);
        return { pod, load: url ? await scrapeLoad(url) : undefined };
      }),
    );
  }

  /** Before a scale-down: pod-deletion-cost = in-flight messages, so the ReplicaSet removes idle pods first. */
  private async markLeastBusyPods(namespace: string, loads: readonly { pod: k8s.V1Pod; load: WorkerLoad | undefined }[]): Promise<void> {
    const costs = deletionCosts(loads.map(({ pod, load }) => ({ name: pod.metadata!.name!, inFlight: load?.inFlight })));
    await Promise.all(
      loads.map(async ({ pod }) => {
        const cost = String(costs.get(pod.metadata!.name!) ?? 0);
        if (pod.metadata?.annotations?.[POD_DELETION_COST] === cost) return;
        try {
          await this.ctx.api.core.patchNamespacedPod({ namespace, name: pod.metadata!.name!, body: { metadata: { annotations: { [POD_DELETION_COST]: cost } } } }, MERGE_PATCH);
        } catch (err) {
          if (errorCode(err) !== 404) throw err;
        }
      }),
    );
  }
}

