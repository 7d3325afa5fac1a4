import { isDeepStrictEqual } from "node:util";
import { getLogger } from "../../worker/logging.js";
import { setCondition } from "../api/conditions.js";
import type { PipelineResource, PipelineStatus, SecretRef } from "../api/types.js";
import { scrubCredentials } from "../api/validate.js";
import { errorCode, PIPELINES, type KubeObject } from "../kube/api.js";
import { secretRefValue } from "../resources/secret-refs.js";
import { isActive, pruneRuns } from "../pipeline/runs.js";
import { finishedRuns, PipelineFollower, startDueRun } from "../pipeline/engine.js";
import { scheduleProblem } from "../pipeline/schedule.js";
import type { ReconcileResult } from "../runtime/controller.js";
import { splitKey, type OperatorContext } from "./context.js";

const log = getLogger("operator.pipeline");
const IDLE_RESYNC_MS = 60_000;

type Pipeline = PipelineResource & KubeObject;

/**
 * Reconciles a Pipeline: starts runs (once, or on its cron schedule with its concurrency policy), enqueues each run
 * as real Dramatiq pipelines / groups, and follows the steps through the results backend. A new run is written to
 * status before anything is enqueued, and its name comes from its scheduled time, so a restarted or new leader
 * neither loses nor doubles a run.
 */
export class PipelineReconciler {
  private readonly follower: PipelineFollower;

  constructor(private readonly ctx: OperatorContext) {
    this.follower = new PipelineFollower(ctx.connections, ctx.resultBackend);
  }

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const [namespace, name] = splitKey(key);
    // Read live, not from the cache: runs are planned from this status and written back with its resourceVersion.
    const resource = await this.ctx.api.get<Pipeline>(PIPELINES, namespace, name);
    if (!resource || resource.metadata.deletionTimestamp) return;
    const now = this.ctx.now();
    const { spec } = resource;
    const generation = resource.metadata.generation;
    const previousRuns = resource.status?.runs ?? [];
    let status: PipelineStatus = { ...(resource.status ?? {}), observedGeneration: generation };

    const problem = spec.schedule ? scheduleProblem(spec.schedule, spec.timeZone) : undefined;
    if (problem) {
      status.conditions = setCondition(status.conditions, { type: "Ready", status: "False", reason: "InvalidSchedule", message: problem, observedGeneration: generation }, now);
      await this.writeStatus(resource, status);
      return;
    }

    // 1. Start a run when one is due; persist it before enqueueing anything.
    const started = startDueRun(resource, now);
    for (const note of started.notes) await this.ctx.events.record(resource, note.type, note.reason, "Schedule", note.message);
    let runs = started.runs;
    if (started.lastScheduleTime !== status.lastScheduleTime || runs.length !== previousRuns.length) {
      status = { ...status, runs, lastScheduleTime: started.lastScheduleTime };
      if (!(await this.writeStatus(resource, status))) return { requeueAfterMs: 0 };
    }
    let requeueAfterMs = started.next ? Math.max(100, Math.min(IDLE_RESYNC_MS, started.next.getTime() - now.getTime())) : IDLE_RESYNC_MS;

    // 2. Advance every active run.
    let brokerProblem: string | undefined;
    if (runs.some(isActive)) {
      requeueAfterMs = Math.min(requeueAfterMs, this.ctx.pipelineFollowMs);
      try {
        const broker = this.secret(namespace, spec.broker.secretRef);
        const results = spec.results ? this.secret(namespace, spec.results.secretRef) : broker;
        runs = await this.follower.advanceAll(spec, runs, { broker, results }, now);
      } catch (err) {
        brokerProblem = scrubCredentials((err as Error).message);
        log.warn("could not advance pipeline runs", { namespace, pipeline: name, error: brokerProblem });
      }
    }
    for (const { run, note } of finishedRuns(status.runs ?? [], runs)) {
      this.ctx.metrics.pipelineRuns.inc({ namespace, pipeline: name, state: run.state });
      await this.ctx.events.record(resource, note.type, note.reason, "Follow", note.message);
    }
    runs = pruneRuns(runs, spec.successfulRunsHistoryLimit ?? 3, spec.failedRunsHistoryLimit ?? 1);
    status = { ...status, runs, lastRunState: runs[runs.length - 1]?.state ?? status.lastRunState };
    status.conditions = setCondition(status.conditions, brokerProblem
      ? { type: "Ready", status: "False", reason: "BrokerUnreachable", message: brokerProblem, observedGeneration: generation }
      : { type: "Ready", status: "True", reason: spec.suspend ? "Suspended" : "Reconciled", message: spec.schedule ? `schedule ${spec.schedule}` : "runs once", observedGeneration: generation }, now);
    if (!isDeepStrictEqual(status, resource.status) && !(await this.writeStatus(resource, status))) return { requeueAfterMs: 0 };
    return { requeueAfterMs };
  };

  private secret(namespace: string, ref: SecretRef): string {
    const { value, problem } = secretRefValue(this.ctx.secrets(namespace), ref);
    if (value === undefined) throw new Error(problem);
    return value;
  }

  /** Compare-and-swap on resourceVersion; false when someone else wrote first (the key is reconciled again). */
  private async writeStatus(resource: Pipeline, status: PipelineStatus): Promise<boolean> {
    try {
      const written = await this.ctx.api.patchStatus<KubeObject>(PIPELINES, resource.metadata.namespace!, resource.metadata.name, status, resource.metadata.resourceVersion);
      resource.metadata.resourceVersion = written.metadata.resourceVersion;
      resource.status = status;
      return true;
    } catch (err) {
      if (errorCode(err) === 409) return false;
      throw err;
    }
  }
}
