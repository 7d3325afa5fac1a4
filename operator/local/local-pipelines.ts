import { getLogger } from "../../worker/logging.js";
import type { ResultBackend } from "../../worker/results/backend.js";
import { createResultBackend } from "../../worker/setup.js";
import type { PipelineResource, PipelineStatus } from "../api/types.js";
import { scrubCredentials } from "../api/validate.js";
import type { BrokerConnections } from "../brokers/connections.js";
import { finishedRuns, PipelineFollower, startDueRun, type PipelineNote } from "../pipeline/engine.js";
import { isActive, pruneRuns } from "../pipeline/runs.js";
import { scheduleProblem } from "../pipeline/schedule.js";

interface Tracked {
  pipeline: PipelineResource;
  urls: { broker: string; results: string };
  status: PipelineStatus;
  timer?: NodeJS.Timeout;
}

const log = getLogger("up");

/**
 * Pipelines for `troupe up`: the operator's pipeline engine (same schedule rules, same segments, same results
 * following) with the status kept in memory and reported as lines.
 */
export class LocalPipelines {
  private readonly tracked: Tracked[] = [];
  private readonly backends = new Map<string, ResultBackend>();
  private readonly follower: PipelineFollower;
  private stopped = false;

  constructor(
    connections: BrokerConnections,
    private readonly report: (line: string) => void,
    private readonly followMs = 1000,
  ) {
    this.follower = new PipelineFollower(connections, (url) => {
      let backend = this.backends.get(url);
      if (!backend) this.backends.set(url, (backend = createResultBackend(url)));
      return backend;
    });
  }

  /** Check every schedule first (a bad one stops `troupe up` before anything runs), then start following. */
  start(pipelines: readonly { pipeline: PipelineResource; urls: { broker: string; results: string } }[]): void {
    for (const { pipeline } of pipelines) {
      const problem = pipeline.spec.schedule ? scheduleProblem(pipeline.spec.schedule, pipeline.spec.timeZone) : undefined;
      if (problem) throw new Error(`Pipeline ${pipeline.metadata.name}: ${problem}`);
    }
    const now = new Date().toISOString();
    for (const { pipeline, urls } of pipelines) {
      const entry: Tracked = { pipeline: { ...pipeline, metadata: { ...pipeline.metadata, creationTimestamp: now } }, urls, status: {} };
      this.tracked.push(entry);
      void this.tick(entry);
    }
  }

  private async tick(entry: Tracked): Promise<void> {
    if (this.stopped) return;
    const { pipeline } = entry;
    const name = pipeline.metadata.name;
    const now = new Date();
    const say = (note: PipelineNote) => this.report(`pipeline ${name}: ${note.message}`);
    const started = startDueRun({ ...pipeline, status: entry.status }, now);
    started.notes.forEach(say);
    let runs = started.runs;
    try {
      runs = await this.follower.advanceAll(pipeline.spec, runs, entry.urls, now);
    } catch (err) {
      log.warn("could not advance pipeline runs", { pipeline: name, error: scrubCredentials((err as Error).message) });
    }
    for (const { run, note } of finishedRuns(started.runs, runs)) {
      say(note);
      for (const step of run.steps.filter((s) => s.error)) this.report(`pipeline ${name}: step ${step.name} failed: ${step.error}`);
    }
    runs = pruneRuns(runs, pipeline.spec.successfulRunsHistoryLimit ?? 3, pipeline.spec.failedRunsHistoryLimit ?? 1);
    entry.status = { runs, lastScheduleTime: started.lastScheduleTime, lastRunState: runs[runs.length - 1]?.state };
    if (this.stopped) return;
    const untilNext = started.next ? Math.max(100, started.next.getTime() - Date.now()) : undefined;
    const delay = runs.some(isActive) ? this.followMs : untilNext;
    if (delay !== undefined) entry.timer = setTimeout(() => void this.tick(entry), Math.min(delay, untilNext ?? delay));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.tracked) clearTimeout(entry.timer);
    await Promise.allSettled([...this.backends.values()].map((b) => b.close()));
  }
}
