import { randomUUID } from "node:crypto";
import type { JsonValue } from "../../worker/encoder.js";
import { Message } from "../../worker/message.js";
import type { PipelineRun, PipelineSpec, PipelineStep, RunState, StepStatus } from "../api/types.js";

/**
 * Pipeline runs as the operator keeps them in status. Consecutive actor steps form one segment, enqueued as one
 * real Dramatiq pipeline (`pipe_target` chain, each result passed on); a group step is a segment of its own,
 * enqueued as a Dramatiq group. Segments run one after the other: the operator enqueues the next when the results
 * backend shows the previous one succeeded. Message ids are fixed when the run is planned and kept in status, so a
 * new leader follows the same messages.
 */
export function segmentsOf(steps: readonly PipelineStep[]): number[][] {
  const segments: number[][] = [];
  steps.forEach((step, i) => {
    const last = segments[segments.length - 1];
    if (step.group || !last || steps[last[0]!]!.group) segments.push([i]);
    else last.push(i);
  });
  return segments;
}

export function planRun(spec: PipelineSpec, name: string, scheduledTime: Date, newId: () => string = randomUUID): PipelineRun {
  return {
    name,
    state: "Pending",
    scheduledTime: scheduledTime.toISOString(),
    steps: spec.steps.map((step) => ({
      name: step.name,
      state: "Pending",
      enqueued: false,
      messages: (step.group ?? [step as Required<Pick<PipelineStep, "actor">> & PipelineStep]).map((call) => ({ messageId: newId(), actor: call.actor!, queue: call.queue ?? "default" })),
    })),
  };
}

/** The Dramatiq messages of one step of a run, with the ids recorded in the run. */
export function stepMessages(step: PipelineStep, status: StepStatus): Message[] {
  const calls = step.group ?? [step];
  return calls.map((call, i) => {
    const ref = status.messages?.[i];
    return new Message({
      queueName: call.queue ?? "default",
      actorName: call.actor!,
      args: (call.args ?? []) as JsonValue[],
      kwargs: (call.kwargs ?? {}) as { [key: string]: JsonValue },
      // Results are how the operator follows the run; pipe_ignore keeps a step's own arguments as written.
      options: { store_results: true, ...(step.pipeIgnore ? { pipe_ignore: true } : {}) },
      messageId: ref?.messageId,
    });
  });
}

/** The step layout of a run must still match the spec to enqueue more of it (a changed spec fails the run). */
export function runMatchesSpec(run: PipelineRun, spec: PipelineSpec): boolean {
  return run.steps.length === spec.steps.length && run.steps.every((s, i) => {
    const step = spec.steps[i]!;
    const calls = step.group ?? [step];
    return s.name === step.name && s.messages?.length === calls.length && calls.every((c, j) => s.messages![j]!.actor === c.actor && s.messages![j]!.queue === (c.queue ?? "default"));
  });
}

export type StepOutcome = { state: "Succeeded" } | { state: "Failed"; error: string } | { state: "Missing" };

/**
 * Fold step outcomes into a run: a step succeeds when all its messages have results, fails when one failed; the
 * run fails at its first failed step and succeeds when every step did. Pure: `outcomes` holds what was read.
 */
export function applyOutcomes(run: PipelineRun, outcomes: ReadonlyMap<string, StepOutcome[]>, now: Date): PipelineRun {
  const at = now.toISOString();
  const steps = run.steps.map((step): StepStatus => {
    if (step.state === "Succeeded" || step.state === "Failed") return step;
    const results = outcomes.get(step.name);
    if (!results) return step;
    const failed = results.find((r): r is { state: "Failed"; error: string } => r.state === "Failed");
    if (failed) return { ...step, state: "Failed", error: failed.error, completionTime: at };
    if (results.length && results.every((r) => r.state === "Succeeded")) return { ...step, state: "Succeeded", completionTime: at, startTime: step.startTime ?? at };
    return step;
  });
  const failedStep = steps.find((s) => s.state === "Failed");
  let state: RunState = run.state;
  if (failedStep) state = "Failed";
  else if (steps.every((s) => s.state === "Succeeded")) state = "Succeeded";
  const finished = (state === "Failed" || state === "Succeeded") && run.state !== state;
  return { ...run, steps, state, ...(finished ? { completionTime: at } : {}) };
}

/** Mark a segment's steps enqueued; the first step of a pipeline segment (or every group member) is now running. */
export function markEnqueued(run: PipelineRun, segment: readonly number[], now: Date): PipelineRun {
  const at = now.toISOString();
  const steps = run.steps.map((s, i) => (segment.includes(i) ? { ...s, enqueued: true, ...(i === segment[0] ? { state: "Running" as const, startTime: at } : {}) } : s));
  return { ...run, steps, state: "Running", startTime: run.startTime ?? at };
}

/** Within a running pipeline segment, the step after a succeeded one is running (a worker enqueued it). */
export function promoteRunning(run: PipelineRun, now: Date): PipelineRun {
  const at = now.toISOString();
  const steps = run.steps.map((s, i) => {
    const previous = run.steps[i - 1];
    if (s.state === "Pending" && s.enqueued && previous?.state === "Succeeded") return { ...s, state: "Running" as const, startTime: at };
    return s;
  });
  return { ...run, steps };
}

/** The first segment not yet enqueued, if the segments before it all succeeded. */
export function nextSegment(run: PipelineRun, segments: readonly number[][]): number[] | undefined {
  for (const segment of segments) {
    const steps = segment.map((i) => run.steps[i]!);
    if (!steps[0]!.enqueued) return segment;
    if (!steps.every((s) => s.state === "Succeeded")) return undefined;
  }
  return undefined;
}

export function isActive(run: PipelineRun): boolean {
  return run.state === "Pending" || run.state === "Running";
}

/** Keep every active run and the newest finished runs within the history limits. */
export function pruneRuns(runs: readonly PipelineRun[], successfulLimit: number, failedLimit: number): PipelineRun[] {
  const keep = new Set<PipelineRun>(runs.filter(isActive));
  const newestFirst = [...runs].reverse();
  for (const r of newestFirst.filter((r) => r.state === "Succeeded").slice(0, successfulLimit)) keep.add(r);
  for (const r of newestFirst.filter((r) => r.state === "Failed" || r.state === "Replaced").slice(0, failedLimit)) keep.add(r);
  return runs.filter((r) => keep.has(r));
}
