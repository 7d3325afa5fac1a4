import { isDeepStrictEqual } from "node:util";
import { setCondition } from "../api/conditions.js";
import type { ActorOverrideOptions, ActorResource, ActorStatus, WorkerPool } from "../api/types.js";
import { scrubCredentials } from "../api/validate.js";
import { ACTORS, CONFIGMAPS, errorCode, type KubeObject } from "../kube/api.js";
import { createOrUpdate } from "../kube/create-or-update.js";
import { actorOverrides } from "../resources/actor-overrides.js";
import { ACTORS_CONFIGMAP, ACTORS_FILE, MANAGED_BY } from "../resources/labels.js";
import { poolQueues } from "../resources/queues.js";
import { secretRefValue } from "../resources/secret-refs.js";
import { ownedUpdate } from "../resources/workerpool.js";
import type { ReconcileResult } from "../runtime/controller.js";
import type { OperatorContext } from "./context.js";

const DEPTH_REFRESH_MS = 30_000;

/**
 * Reconciles the Actors of one namespace (key `namespace/`): publishes their settings in the `troupe-actors`
 * ConfigMap that worker pods mount, and reports per Actor the pools that serve it and its queue depth.
 */
export class ActorReconciler {
  constructor(private readonly ctx: OperatorContext) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const namespace = key.slice(0, key.indexOf("/"));
    const { api } = this.ctx;
    const actors = (this.ctx.actors(namespace) as (ActorResource & KubeObject)[]).filter((a) => !a.metadata.deletionTimestamp);
    const { overrides, duplicates } = actorOverrides(actors);
    if (actors.length) await this.publish(namespace, actors, overrides);

    const pools = this.ctx.pools(namespace);
    const depthByQueue = await this.readDepths(namespace, actors, pools);
    const now = this.ctx.now();
    for (const actor of actors) {
      const queue = actor.spec.queue ?? "default";
      const serving = pools.filter((p) => poolQueues(p, actors).includes(queue)).map((p) => p.metadata.name).sort();
      const depth = depthByQueue.get(queue);
      const generation = actor.metadata.generation;
      let conditions = actor.status?.conditions;
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
        conditions,
      };
      if (isDeepStrictEqual(JSON.parse(JSON.stringify(status)), actor.status)) continue;
      try {
        await api.patchStatus(ACTORS, namespace, actor.metadata.name, status);
      } catch (err) {
        if (errorCode(err) !== 404) throw err;
      }
    }
    return actors.length ? { requeueAfterMs: DEPTH_REFRESH_MS } : undefined;
  };

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
