import { ResultFailure, ResultMissing } from "../../worker/errors.js";
import { group, pipeline } from "../../worker/composition.js";
import { Message } from "../../worker/message.js";
import { getLogger } from "../../worker/logging.js";
import { setCondition } from "../api/conditions.js";
import type { PipelineResource, PipelineRun, PipelineStatus, SecretRef } from "../api/types.js";
import { scrubCredentials } from "../api/validate.js";
import { errorCode, MERGE_PATCH, PIPELINES, type KubeObject } from "../kube/api.js";
import { applyOutcomes, isActive, markEnqueued, nextSegment, planRun, promoteRunning, pruneRuns, runMatchesSpec, segmentsOf, stepMessages, type StepOutcome } from "../pipeline/runs.js";
import { checkSchedule, scheduleProblem } from "../pipeline/schedule.js";
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
  constructor(private readonly ctx: OperatorContext) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const [namespace, name] = splitKey(key);
    const { api } = this.ctx;
    const resource = await api.get<Pipeline>(PIPELINES, namespace, name);
    if (!resource || resource.metadata.deletionTimestamp) return;
    const now = this.ctx.now();
    const spec = resource.spec;
    const generation = resource.metadata.generation;
    let status: PipelineStatus = { ...(resource.status ?? {}), observedGeneration: generation };
    let runs = [...(status.runs ?? [])];
    let requeueAfterMs = IDLE_RESYNC_MS;

    const problem = spec.schedule ? scheduleProblem(spec.schedule, spec.timeZone) : undefined;
    if (problem) {
      status.conditions = setCondition(status.conditions, { type: "Ready", status: "False", reason: "InvalidSchedule", message: problem, observedGeneration: generation }, now);
      await this.writeStatus(resource, status);
      return;
    }

    // 1. Start a run when one is due; persist it before enqueueing anything.
    const due = this.dueRun(resource, now);
    if (due.next) requeueAfterMs = Math.max(100, Math.min(requeueAfterMs, due.next.getTime() - now.getTime()));
    if (due.time) {
      const runName = `${name}-${Math.floor(due.time.getTime() / 1000)}`;
      const active = runs.filter(isActive);
      const policy = spec.concurrencyPolicy ?? "Allow";
      status.lastScheduleTime = due.time.toISOString();
      if (runs.some((r) => r.name === runName)) {
        // Already planned by an earlier attempt.
      } else if (policy === "Forbid" && active.length) {
        await this.ctx.events.record(resource, "Normal", "RunSkipped", "Schedule", `run at ${due.time.toISOString()} skipped: ${active[0]!.name} is still active (concurrencyPolicy Forbid)`);
      } else {
        if (policy === "Replace") runs = runs.map((r) => (isActive(r) ? { ...r, state: "Replaced" as const, completionTime: now.toISOString() } : r));
        runs.push(planRun(spec, runName, due.time));
        await this.ctx.events.record(resource, "Normal", "RunCreated", "Schedule", `created run ${runName}`);
      }
      status.runs = runs;
      if (!(await this.writeStatus(resource, status))) return { requeueAfterMs: 0 };
    }

    // 2. Advance every active run.
    let brokerProblem: string | undefined;
    if (runs.some(isActive)) {
      requeueAfterMs = Math.min(requeueAfterMs, this.ctx.pipelineFollowMs);
      try {
        const brokerUrl = await this.secret(namespace, spec.broker.secretRef);
        const resultsUrl = spec.results ? await this.secret(namespace, spec.results.secretRef) : brokerUrl;
        const advanced: PipelineRun[] = [];
        for (const run of runs) advanced.push(isActive(run) ? await this.advance(resource, run, brokerUrl, resultsUrl, now) : run);
        runs = advanced;
      } catch (err) {
        brokerProblem = scrubCredentials((err as Error).message);
        log.warn("could not advance pipeline runs", { namespace, pipeline: name, error: brokerProblem });
      }
    }
    for (const run of runs) {
      const before = status.runs?.find((r) => r.name === run.name);
      if (before && isActive(before) && !isActive(run)) {
        this.ctx.metrics.pipelineRuns.inc({ namespace, pipeline: name, state: run.state });
        await this.ctx.events.record(resource, run.state === "Succeeded" ? "Normal" : "Warning", `Run${run.state}`, "Follow", `run ${run.name} ${run.state.toLowerCase()}`);
      }
    }
    runs = pruneRuns(runs, spec.successfulRunsHistoryLimit ?? 3, spec.failedRunsHistoryLimit ?? 1);
    status = { ...status, runs, lastRunState: runs[runs.length - 1]?.state ?? status.lastRunState };
    status.conditions = setCondition(status.conditions, brokerProblem
      ? { type: "Ready", status: "False", reason: "BrokerUnreachable", message: brokerProblem, observedGeneration: generation }
      : { type: "Ready", status: "True", reason: spec.suspend ? "Suspended" : "Reconciled", message: spec.schedule ? `schedule ${spec.schedule}` : "runs once", observedGeneration: generation }, now);
    if (!(await this.writeStatus(resource, status))) return { requeueAfterMs: 0 };
    return { requeueAfterMs };
  };

  private dueRun(resource: Pipeline, now: Date): { time?: Date; next?: Date } {
    const { spec, status } = resource;
    if (spec.suspend) return {};
    if (!spec.schedule) return status?.lastScheduleTime ? {} : { time: new Date(resource.metadata.creationTimestamp ?? now) };
    const last = status?.lastScheduleTime ?? resource.metadata.creationTimestamp;
    const check = checkSchedule(spec.schedule, { now, last: last ? new Date(last) : undefined, timeZone: spec.timeZone, startingDeadlineSeconds: spec.startingDeadlineSeconds });
    return { time: check.due, next: check.next };
  }

  private async advance(resource: Pipeline, run: PipelineRun, brokerUrl: string, resultsUrl: string, now: Date): Promise<PipelineRun> {
    const { spec } = resource;
    const backend = this.ctx.resultBackend(resultsUrl);
    const outcomes = new Map<string, StepOutcome[]>();
    for (const step of run.steps) {
      if (!step.enqueued || step.state === "Succeeded" || step.state === "Failed") continue;
      const results: StepOutcome[] = [];
      for (const ref of step.messages ?? []) {
        try {
          await backend.getResult(new Message({ queueName: ref.queue, actorName: ref.actor, messageId: ref.messageId }));
          results.push({ state: "Succeeded" });
        } catch (err) {
          if (err instanceof ResultFailure) results.push({ state: "Failed", error: err.message });
          else if (err instanceof ResultMissing) results.push({ state: "Missing" });
          else throw err;
        }
      }
      outcomes.set(step.name, results);
    }
    let next = promoteRunning(applyOutcomes(run, outcomes, now), now);
    if (!isActive(next)) return next;
    const segment = nextSegment(next, segmentsOf(spec.steps));
    if (!segment) return next;
    if (!runMatchesSpec(next, spec)) {
      return { ...next, state: "Failed", completionTime: now.toISOString(), steps: next.steps.map((s) => (s.state === "Pending" ? { ...s, state: "Failed", error: "the Pipeline's steps changed during the run" } : s)) };
    }
    const messages = segment.flatMap((i) => stepMessages(spec.steps[i]!, next.steps[i]!));
    await this.ctx.connections.use(brokerUrl, "enqueueing a pipeline run", async (broker) => {
      if (spec.steps[segment[0]!]!.group) await group(messages, { broker }).run();
      else await pipeline(messages, { broker }).run();
    });
    next = markEnqueued(next, segment, now);
    return next;
  }

  private async secret(namespace: string, ref: SecretRef): Promise<string> {
    const value = await this.ctx.api.secretValue(namespace, ref.name, ref.key ?? "url");
    if (value === undefined) throw new Error(`Secret ${ref.name} with key ${ref.key ?? "url"} not found`);
    return value;
  }

  /** Compare-and-swap on resourceVersion; false when someone else wrote first (the key is reconciled again). */
  private async writeStatus(resource: Pipeline, status: PipelineStatus): Promise<boolean> {
    try {
      const written = await this.ctx.api.custom.patchNamespacedCustomObjectStatus(
        { ...PIPELINES, namespace: resource.metadata.namespace!, name: resource.metadata.name, body: { metadata: { resourceVersion: resource.metadata.resourceVersion }, status } },
        MERGE_PATCH,
      );
      resource.metadata.resourceVersion = (written as KubeObject).metadata.resourceVersion;
      resource.status = status;
      return true;
    } catch (err) {
      if (errorCode(err) === 409) return false;
      throw err;
    }
  }
}
