import { group, pipeline } from "../../worker/composition.js";
import { ResultFailure, ResultMissing } from "../../worker/errors.js";
import { Message } from "../../worker/message.js";
import type { ResultBackend } from "../../worker/results/backend.js";
import type { PipelineRun, PipelineSpec, PipelineStatus } from "../api/types.js";
import type { BrokerConnections } from "../brokers/connections.js";
import { applyOutcomes, isActive, markEnqueued, nextSegment, planRun, promoteRunning, runMatchesSpec, segmentsOf, stepMessages, type StepOutcome } from "./runs.js";
import { checkSchedule } from "./schedule.js";

/** Something worth an Event (Kubernetes) or a line (troupe up). */
export interface PipelineNote {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface PipelineLike {
  metadata: { name: string; creationTimestamp?: string };
  spec: PipelineSpec;
  status?: PipelineStatus;
}

/**
 * Start the run that is due now, if any (pure). Without a schedule, the one run starts once; with one, the most
 * recent missed slot starts, subject to the concurrency policy. Run names come from the slot time, so planning the
 * same slot twice (a retry, a new leader) finds the run already there.
 */
export function startDueRun(p: PipelineLike, now: Date): { runs: PipelineRun[]; lastScheduleTime?: string; next?: Date; notes: PipelineNote[] } {
  const { spec, status } = p;
  const runs = [...(status?.runs ?? [])];
  if (spec.suspend) return { runs, lastScheduleTime: status?.lastScheduleTime, notes: [] };
  let due: Date | undefined;
  let next: Date | undefined;
  if (!spec.schedule) {
    if (!status?.lastScheduleTime) due = new Date(p.metadata.creationTimestamp ?? now);
  } else {
    const last = status?.lastScheduleTime ?? p.metadata.creationTimestamp;
    ({ due, next } = checkSchedule(spec.schedule, { now, last: last ? new Date(last) : undefined, timeZone: spec.timeZone, startingDeadlineSeconds: spec.startingDeadlineSeconds }));
  }
  if (!due) return { runs, lastScheduleTime: status?.lastScheduleTime, next, notes: [] };
  const name = `${p.metadata.name}-${Math.floor(due.getTime() / 1000)}`;
  const notes: PipelineNote[] = [];
  const active = runs.filter(isActive);
  const policy = spec.concurrencyPolicy ?? "Allow";
  if (runs.some((r) => r.name === name)) {
    // Planned by an earlier attempt.
  } else if (policy === "Forbid" && active.length) {
    notes.push({ type: "Normal", reason: "RunSkipped", message: `run at ${due.toISOString()} skipped: ${active[0]!.name} is still active (concurrencyPolicy Forbid)` });
  } else {
    const kept = policy === "Replace" ? runs.map((r) => (isActive(r) ? { ...r, state: "Replaced" as const, completionTime: now.toISOString() } : r)) : runs;
    runs.splice(0, runs.length, ...kept, planRun(spec, name, due));
    notes.push({ type: "Normal", reason: "RunCreated", message: `created run ${name}` });
  }
  return { runs, lastScheduleTime: due.toISOString(), next, notes };
}

/** Runs that finished between two versions of the run list, as notes. */
export function finishedRuns(before: readonly PipelineRun[], after: readonly PipelineRun[]): { run: PipelineRun; note: PipelineNote }[] {
  return after
    .filter((run) => {
      const previous = before.find((r) => r.name === run.name);
      return previous !== undefined && isActive(previous) && !isActive(run);
    })
    .map((run) => ({ run, note: { type: run.state === "Succeeded" ? "Normal" : "Warning", reason: `Run${run.state}`, message: `run ${run.name} ${run.state.toLowerCase()}` } }));
}

/**
 * Moves runs forward: reads the results of enqueued steps, then enqueues the next segment (a Dramatiq pipeline of
 * consecutive steps, or a group) once the previous one succeeded.
 */
export class PipelineFollower {
  constructor(
    private readonly connections: BrokerConnections,
    private readonly resultBackend: (url: string) => ResultBackend,
  ) {}

  async advance(spec: PipelineSpec, run: PipelineRun, urls: { broker: string; results: string }, now: Date): Promise<PipelineRun> {
    const backend = this.resultBackend(urls.results);
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
    const next = promoteRunning(applyOutcomes(run, outcomes, now), now);
    if (!isActive(next)) return next;
    const segment = nextSegment(next, segmentsOf(spec.steps));
    if (!segment) return next;
    if (!runMatchesSpec(next, spec)) {
      return { ...next, state: "Failed", completionTime: now.toISOString(), steps: next.steps.map((s) => (s.state === "Pending" ? { ...s, state: "Failed", error: "the Pipeline's steps changed during the run" } : s)) };
    }
    const messages = segment.flatMap((i) => stepMessages(spec.steps[i]!, next.steps[i]!));
    await this.connections.use(urls.broker, "enqueueing a pipeline run", async (broker) => {
      if (spec.steps[segment[0]!]!.group) await group(messages, { broker }).run();
      else await pipeline(messages, { broker }).run();
    });
    return markEnqueued(next, segment, now);
  }

  /** Advance every active run of a list. */
  async advanceAll(spec: PipelineSpec, runs: readonly PipelineRun[], urls: { broker: string; results: string }, now: Date): Promise<PipelineRun[]> {
    const out: PipelineRun[] = [];
    for (const run of runs) out.push(isActive(run) ? await this.advance(spec, run, urls, now) : run);
    return out;
  }
}
