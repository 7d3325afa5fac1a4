import { isDeepStrictEqual } from "node:util";
import { setCondition } from "../api/conditions.js";
import type { ActorOverrideOptions, ActorResource, ActorStatus, Condition, WorkerPool } from "../api/types.js";
import { scrubCredentials } from "../api/validate.js";
import { ACTORS, CONFIGMAPS, errorCode, type KubeObject } from "../kube/api.js";
import { createOrUpdate } from "../kube/create-or-update.js";
import { actorOverrides } from "../resources/actor-overrides.js";
import { actorSchedules, scheduleTarget, schedulingPool } from "../resources/actor-schedules.js";
import { ACTORS_CONFIGMAP, ACTORS_FILE, MANAGED_BY } from "../resources/labels.js";
import { poolQueues } from "../resources/queues.js";
import { secretRefValue } from "../resources/secret-refs.js";
import { ownedUpdate } from "../resources/workerpool.js";
import type { ReconcileResult } from "../runtime/controller.js";
import type { OperatorContext } from "./context.js";

const DEPTH_REFRESH_MS = 30_000;
/** A schedule that cannot fire (its store unreachable) is tried again this soon. */
const SCHEDULE_RETRY_MS = 5_000;

type ScheduleFields = Pick<ActorStatus, "lastScheduleTime" | "nextScheduleTime" | "schedules">;

/**
 * Reconciles the Actors of one namespace (key `namespace/`): publishes their settings in the `troupe-actors`
 * ConfigMap that worker pods mount, fires their schedules (ctx.schedules, on the broker of a pool serving the
 * Actor's queue), and reports per Actor the pools that serve it, its queue depth and its schedules.
 */
export class ActorReconciler {
  constructor(private readonly ctx: OperatorContext) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const namespace = key.slice(0, key.indexOf("/"));
    const { api } = this.ctx;
    const actors = (this.ctx.actors(namespace) as (ActorResource & KubeObject)[]).filter((a) => !a.metadata.deletionTimestamp);
    const { overrides, duplicates } = actorOverrides(actors);
    if (actors.length) await this.publish(namespace, actors, overrides);
    const scheduled = new Set<string>();
    const scheduleNames = new Set<string>();
    let retrySchedulesSoon = false;

    const pools = this.ctx.pools(namespace);
    const depthByQueue = await this.readDepths(namespace, actors, pools);
    const now = this.ctx.now();
    for (const actor of actors) {
      const queue = actor.spec.queue ?? "default";
      const serving = pools.filter((p) => poolQueues(p, actors).includes(queue)).map((p) => p.metadata.name).sort();
      const depth = depthByQueue.get(queue);
      const generation = actor.metadata.generation;
      const scheduling = await this.schedule(namespace, actor, schedulingPool(actor, pools, actors), scheduleNames);
      if (scheduling.firing) scheduled.add(`${namespace}/${actor.metadata.name}`);
      retrySchedulesSoon ||= scheduling.retry;
      let conditions = actor.status?.conditions?.filter((c) => c.type !== "Scheduled" || scheduling.condition);
      if (scheduling.condition) conditions = setCondition(conditions, { ...scheduling.condition, observedGeneration: generation }, now);
      conditions = setCondition(conditions, duplicates.has(actor.metadata.name)
        ? { type: "Ready", status: "False", reason: "DuplicateActorName", message: `another Actor in ${namespace} already declares ${actor.spec.actorName}; this one is not published`, observedGeneration: generation }
        : { type: "Ready", status: "True", reason: "Published", message: `published in ConfigMap ${ACTORS_CONFIGMAP}`, observedGeneration: generation }, now);
      conditions = setCondition(conditions, serving.length
        ? { type: "Served", status: "True", reason: "WorkerPoolFound", message: `served by ${serving.join(", ")}`, observedGeneration: generation }
        : { type: "Served", status: "False", reason: "NoWorkerPool", message: `no WorkerPool in ${namespace} consumes queue ${queue}`, observedGeneration: generation }, now);
      if (depth instanceof Error) conditions = setCondition(conditions, { type: "BrokerReachable", status: "False", reason: "BrokerUnreachable", message: scrubCredentials(depth.message), observedGeneration: generation }, now);
      else if (depth) conditions = setCondition(conditions, { type: "BrokerReachable", status: "True", reason: "QueueDepthRead", message: `read queue ${queue}`, observedGeneration: generation }, now);
      const status: ActorStatus = {
        observedGeneration: generation,
        pools: serving,
        ...(depth && !(depth instanceof Error) ? { queueDepth: depth } : actor.status?.queueDepth ? { queueDepth: actor.status.queueDepth } : {}),
        ...scheduling.fields,
        conditions,
      };
      // A merge patch keeps what it does not name: schedule fields no longer reported are cleared explicitly.
      for (const field of ["lastScheduleTime", "nextScheduleTime", "schedules"] as const) {
        if (status[field] === undefined && actor.status?.[field] !== undefined) (status as Record<string, unknown>)[field] = null;
      }
      if (isDeepStrictEqual(JSON.parse(JSON.stringify(status)), actor.status)) continue;
      try {
        await api.patchStatus(ACTORS, namespace, actor.metadata.name, status);
      } catch (err) {
        if (errorCode(err) !== 404) throw err;
      }
    }
    await this.ctx.schedules.retain(namespace, scheduled);
    return actors.length ? { requeueAfterMs: retrySchedulesSoon ? SCHEDULE_RETRY_MS : DEPTH_REFRESH_MS } : undefined;
  };

  /**
   * Fire the Actor's schedules on the broker of its scheduling pool, and read back what the
   * store recorded of them. `spec.suspend` is applied to the store's pause when it differs from the one last applied
   * (kept in status), so a `troupe schedules pause` of an unsuspended schedule holds until the Actor changes it.
   */
  private async schedule(namespace: string, actor: ActorResource, pool: WorkerPool | undefined, taken: Set<string>): Promise<{ firing: boolean; retry: boolean; condition?: Omit<Condition, "lastTransitionTime">; fields: ScheduleFields }> {
    if (!actor.spec.schedules?.length) return { firing: false, retry: false, fields: {} };
    const owner = `${namespace}/${actor.metadata.name}`;
    const { schedules, problems } = actorSchedules(actor, taken);
    const invalid = problems.length ? { type: "Scheduled", status: "False" as const, reason: "InvalidSchedule", message: problems.join("; ") } : undefined;
    const target = pool
      ? scheduleTarget(pool, this.ctx.secrets(namespace))
      : { problem: `no WorkerPool in ${namespace} consumes queue ${actor.spec.queue ?? "default"}: there is no broker to fire the schedules on` };
    if ("problem" in target) return { firing: false, retry: false, condition: invalid ?? { type: "Scheduled", status: "False", reason: "NoBroker", message: target.problem }, fields: notFiring(actor.status) };
    const applied = new Map((actor.status?.schedules ?? []).map((s) => [s.name, s.suspended ?? false]));
    let records;
    try {
      await this.ctx.schedules.sync(owner, target, schedules.map((s) => ({ ...s, ...(s.suspend !== (applied.get(s.schedule.name) ?? false) ? { pause: s.suspend } : {}) })));
      records = await this.ctx.schedules.records(owner);
    } catch (err) {
      return { firing: false, retry: true, condition: { type: "Scheduled", status: "False", reason: "ScheduleStoreUnavailable", message: scrubCredentials((err as Error).message) }, fields: notFiring(actor.status) };
    }
    const now = this.ctx.now().getTime();
    const statuses = schedules.map(({ schedule, suspend }) => {
      const record = records?.records.get(schedule.name);
      const next = records?.paused.has(schedule.name) ? undefined : schedule.timetable.next(now);
      return {
        name: schedule.name,
        when: schedule.timetable.description,
        ...(record ? { lastScheduleTime: new Date(record.tick).toISOString() } : {}),
        ...(next !== undefined ? { nextScheduleTime: new Date(next).toISOString() } : {}),
        suspended: suspend,
        store: records?.store,
      };
    });
    const last = statuses.map((s) => s.lastScheduleTime).filter((t) => t !== undefined).sort().at(-1);
    const next = statuses.map((s) => s.nextScheduleTime).filter((t) => t !== undefined).sort()[0];
    const paused = statuses.filter((s) => records?.paused.has(s.name)).map((s) => s.name);
    return {
      firing: true,
      retry: false,
      condition: invalid ?? {
        type: "Scheduled",
        status: "True",
        reason: "Firing",
        message: `${statuses.length} schedule${statuses.length === 1 ? "" : "s"} on ${records?.store}${paused.length ? `; paused: ${paused.join(", ")}` : ""}`,
      },
      fields: { ...(last ? { lastScheduleTime: last } : {}), ...(next ? { nextScheduleTime: next } : {}), schedules: statuses },
    };
  }

  private async publish(namespace: string, actors: readonly (ActorResource & KubeObject)[], overrides: Record<string, ActorOverrideOptions>): Promise<void> {
    const desired: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: ACTORS_CONFIGMAP,
        namespace,
        labels: { ...MANAGED_BY, "app.kubernetes.io/part-of": "troupe" },
        // Owned by every Actor: the garbage collector removes the ConfigMap with the last of them.
        ownerReferences: [...actors].sort((a, b) => a.metadata.uid!.localeCompare(b.metadata.uid!)).map((a) => ({ apiVersion: a.apiVersion, kind: "Actor", name: a.metadata.name, uid: a.metadata.uid! })),
      },
      data: { [ACTORS_FILE]: JSON.stringify(overrides, null, 2) + "\n" },
    };
    const current = await this.ctx.api.get(CONFIGMAPS, namespace, ACTORS_CONFIGMAP);
    await createOrUpdate(this.ctx.api, CONFIGMAPS, desired, { current, mutate: (live) => ownedUpdate(live, desired) });
  }

  /** Depth of each Actor queue, read through the broker of a pool that serves it. */
  private async readDepths(namespace: string, actors: readonly ActorResource[], pools: readonly WorkerPool[]): Promise<Map<string, ActorStatus["queueDepth"] | Error>> {
    const result = new Map<string, ActorStatus["queueDepth"] | Error>();
    const queues = [...new Set(actors.map((a) => a.spec.queue ?? "default"))];
    for (const queue of queues) {
      const pool = pools.find((p) => poolQueues(p, actors).includes(queue));
      if (!pool) continue;
      const url = secretRefValue(this.ctx.secrets(namespace), pool.spec.broker.secretRef).value;
      if (url === undefined) continue;
      try {
        const [stats] = await this.ctx.connections.queueStats(url, [queue]);
        result.set(queue, { ready: stats!.ready, delayed: stats!.delayed, inFlight: stats!.inFlight, dead: stats!.dead });
      } catch (err) {
        result.set(queue, err instanceof Error ? err : new Error(String(err)));
      }
    }
    return result;
  }
}

/** The schedule status of an Actor whose schedules fire nowhere now: the last fires stand, no next one is known. */
function notFiring(status: ActorStatus | undefined): ScheduleFields {
  return {
    ...(status?.lastScheduleTime ? { lastScheduleTime: status.lastScheduleTime } : {}),
    ...(status?.schedules ? { schedules: status.schedules.map(({ nextScheduleTime: _next, ...rest }) => rest) } : {}),
  };
}
