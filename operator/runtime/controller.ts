import { getLogger } from "../../worker/logging.js";
import { scrubCredentials } from "../api/validate.js";
import { describeApiError } from "../kube/api.js";
import type { OperatorMetrics } from "./metrics.js";
import { WorkQueue } from "./work-queue.js";

export interface ReconcileResult {
  /** Reconcile this key again after this many ms even if nothing changes (polling, schedules). */
  requeueAfterMs?: number;
  /**
   * The API server refused a write that only the user can fix: reconcile again after this key's exponential backoff
   * (from `rejectionBackoffMs`, doubling up to the queue's cap) rather than at the usual interval.
   */
  backoff?: boolean;
}

export type Reconciler = (key: string) => Promise<ReconcileResult | void>;

/**
 * A level-triggered controller loop: keys (namespace/name) go into a rate-limited work queue from informer events
 * and resyncs; workers reconcile each key to its desired state. An error re-queues the key with exponential backoff
 * and never stops the loop.
 */
export class Controller {
  readonly queue: WorkQueue;
  private running: Promise<void>[] = [];
  private readonly log;
  private readonly workers: number;
  private readonly rejectionBackoffMs: number;

  constructor(
    readonly name: string,
    private readonly reconcile: Reconciler,
    private readonly metrics: OperatorMetrics,
    { workers = 2, rejectionBackoffMs = 1000, now = Date.now }: { workers?: number; rejectionBackoffMs?: number; now?: () => number } = {},
  ) {
    this.workers = workers;
    this.rejectionBackoffMs = rejectionBackoffMs;
    this.queue = new WorkQueue(undefined, undefined, undefined, now);
    this.log = getLogger(`operator.${name}`);
    // Series exist from the start, so rate() and dashboards see zeros rather than nothing.
    metrics.reconcileErrors.inc({ controller: name }, 0);
    for (const result of ["success", "requeue", "rejected", "error"]) metrics.reconcileTotal.inc({ controller: name, result }, 0);
  }

  enqueue(key: string): void {
    this.queue.add(key);
    this.metrics.workQueueDepth.set({ controller: this.name }, this.queue.length);
  }

  start(): void {
    for (let i = 0; i < this.workers; i++) this.running.push(this.loop());
  }

  /** Stop taking keys and wait for reconciles in progress to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.running);
    this.running = [];
  }

  private async loop(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.workQueueDepth.set({ controller: this.name }, this.queue.length);
      const end = this.metrics.reconcileDuration.startTimer({ controller: this.name });
      try {
        const result = await this.reconcile(key);
        if (result?.backoff) {
          const delay = this.queue.addRateLimited(key, this.rejectionBackoffMs);
          this.metrics.reconcileTotal.inc({ controller: this.name, result: "rejected" });
          this.log.warn("a write was rejected; retrying with backoff", { key, retryInMs: delay });
          continue;
        }
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.metrics.reconcileTotal.inc({ controller: this.name, result: result?.requeueAfterMs !== undefined ? "requeue" : "success" });
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.reconcileTotal.inc({ controller: this.name, result: "error" });
        this.metrics.reconcileErrors.inc({ controller: this.name });
        this.log.error("reconcile failed; retrying with backoff", { key, retryInMs: delay, failures: this.queue.failureCount(key), error: scrubCredentials(describeApiError(err)) });
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }
}
