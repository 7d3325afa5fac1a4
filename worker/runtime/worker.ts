import type { Broker, Consumer, UndecodableDelivery } from "../broker.js";
import { ActorNotFound, BrokerConnectionError, Shutdown, SkipMessage, TimeLimitExceeded, errorIsA } from "../errors.js";
import { ChurnMap, ChurnSet } from "../churn.js";
import { getLogger, messageFields } from "../logging.js";
import { workerMetrics } from "../metrics/metrics.js";
import type { WorkerInfo } from "../middleware/middleware.js";
import type { ActorOptions } from "../options.js";
import type { MessageProxy } from "../proxy.js";
import { dqName, qName } from "../queues.js";
import { Heap } from "./heap.js";
import { mainHandlers } from "./main-handlers.js";
import { setMainHandlers } from "./rpc.js";
import { DEFAULT_LOOKAHEAD, ThreadPool, type RunOutcome } from "./thread-pool.js";
import { RECALLED } from "./protocol.js";
import { MAX_PACKED } from "./dispatch-policy.js";

export interface WorkerOptions {
  /** Actor modules every thread imports (absolute paths). */
  modules: string[];
  /** Canonical queues to consume (default: every queue of the declared actors). */
  queues?: string[];
  threads?: number;
  /** Messages one thread runs at once (default 1). */
  concurrency?: number;
  /**
   * Messages sent to each thread ahead of those it runs (default 3), so a thread goes straight to its next message
   * (only for actors measured under 2 ms: slower ones wait in the main thread for a free slot, see dispatch-policy.ts);
   * a thread that runs out of work takes back those waiting behind a slow actor elsewhere. Messages of actors
   * measured to return within a millisecond are packed further ahead (up to 64, see dispatch-policy.ts). Actor
   * priority orders only what is not yet sent to a thread: 0 gives Dramatiq's strict ordering and packs nothing.
   */
  lookahead?: number;
  /** Per-queue prefetch (default threads × (2 × concurrency + lookahead) + 64 when lookahead > 0; Dramatiq's is 2 × threads). */
  prefetch?: number;
  /** Per-delay-queue prefetch (default 1000 × threads, at most 65 535). */
  delayPrefetch?: number;
  /** ms given to in-flight work on stop before it is requeued (default 600 000). */
  shutdownTimeout?: number;
  /** ms an aborted actor gets to finish before its thread is terminated (default 1 000). */
  abortGrace?: number;
}

interface WorkItem {
  proxy: MessageProxy;
  priority: number;
  seq: number;
}

interface DelayedItem {
  proxy: MessageProxy;
  eta: number;
}

const log = getLogger("worker");

/**
 * One worker process: the main thread fetches from the broker, runs middleware and acks; a pool of worker
 * threads runs the actors. A message is acked only after its outcome (result, retry, dead letter) is recorded.
 */
export class Worker implements WorkerInfo {
  readonly threads: number;
  readonly concurrency: number;
  readonly lookahead: number;
  queues: string[] = [];
  private readonly pool: ThreadPool;
  private readonly consumers = new Map<string, Consumer>();
  private readonly work = new Heap<WorkItem>((a, b) => a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq));
  private readonly delayed = new Heap<DelayedItem>((a, b) => a.eta < b.eta);
  private delayTimer: NodeJS.Timeout | undefined;
  private limitCheck: NodeJS.Timeout | undefined;
  private limitCheckEvery = Infinity;
  private delayTimerAt = Infinity;
  private readonly inFlight = new ChurnMap<MessageProxy, number>();
  /**
   * Messages holding a thread slot: from leaving the local queue until their actor returns. A message keeps
   * being processed after that (after-hooks, ack) without its slot, so a thread never idles while the main
   * thread waits for the broker to confirm an ack.
   */
  private slotsInUse = 0;
  private readonly settling = new ChurnSet<Promise<void>>();
  private seq = 0;
  private stopping = false;
  /** Set once shutdown gave up waiting: unfinished messages are requeued instead of processed further. */
  private abandoning = false;
  private idleWaiters: (() => void)[] = [];
  readonly stats = { processed: 0, failed: 0, skipped: 0, deadLettered: 0, undecodable: 0 };

  constructor(
    readonly broker: Broker,
    private readonly options: WorkerOptions,
  ) {
    this.threads = options.threads ?? 8;
    this.concurrency = options.concurrency ?? 1;
    this.lookahead = options.lookahead ?? DEFAULT_LOOKAHEAD;
    this.pool = new ThreadPool({ size: this.threads, concurrency: this.concurrency, lookahead: this.lookahead, modules: options.modules });
    this.pool.on("threadBoot", (index: number) => void broker.emitAfter("afterWorkerThreadBoot", index));
    this.pool.on("threadExit", (index: number) => void ignoreSkips(() => broker.emitBefore("beforeWorkerThreadShutdown", index)));
  }

  /** Worker threads able to take work now (a crashed or time-limited thread is being replaced otherwise). */
  get readyThreads(): number {
    return this.pool.readyThreads;
  }

  async start(): Promise<void> {
    setMainHandlers(mainHandlers(this.broker));
    await this.broker.connect();
    // The first thread boots in 100–250 ms on 2 cores (others as load asks for them): say where start-up is.
    log.info("connected to the broker; starting worker threads", { broker: this.broker.displayUrl, threads: this.threads });
    await this.pool.start();
    const declared = this.broker.registry.queues();
    this.queues = (this.options.queues?.length ? this.options.queues : declared).map(qName);
    await this.broker.emitBefore("beforeWorkerBoot", this);
    const prefetch = this.options.prefetch ?? defaultPrefetch(this.threads, this.concurrency, this.lookahead);
    const delayPrefetch = this.options.delayPrefetch ?? Math.min(1000 * this.threads, 65_535);
    for (const queue of this.queues) {
      await this.broker.declareQueue(queue);
      for (const [name, count] of [[queue, prefetch], [dqName(queue), delayPrefetch]] as const) {
        const consumer = this.broker.consume(name, {
          prefetch: count,
          onMessage: (proxy) => this.onMessage(proxy),
          onUndecodable: (delivery) => this.onUndecodable(delivery),
          onConnectionLost: (err) => this.onConnectionLost(name, err),
        });
        this.consumers.set(name, consumer);
        await consumer.start();
      }
    }
    await this.broker.emitAfter("afterWorkerBoot", this);
    log.info("worker started", { queues: this.queues, threads: this.threads, concurrency: this.concurrency, broker: this.broker.displayUrl });
  }

  private onUndecodable(delivery: UndecodableDelivery): void {
    this.stats.undecodable++;
    // Dead-lettered like any rejected message, so it counts there too; no actor is known, hence an empty label.
    workerMetrics().messageRejects.inc({ queue_name: delivery.queue, actor_name: "" });
    log.error("undecodable message dead-lettered", { queue: delivery.queue, reason: delivery.reason });
  }

  private onConnectionLost(queue: string, err: unknown): void {
    // Deliveries not yet acked come back from the broker; drop local copies of the ones not started yet.
    this.work.retain((item) => item.proxy.queue !== queue);
    this.delayed.retain((item) => item.proxy.queue !== queue);
    log.warn("consumer lost its connection; unacked messages will be redelivered", { queue, err });
  }

  private consumerFor(proxy: MessageProxy): Consumer {
    const consumer = this.consumers.get(proxy.queue);
    if (!consumer) throw new Error(`no consumer for queue ${proxy.queue}`);
    return consumer;
  }

  private onMessage(proxy: MessageProxy): void {
    if (this.stopping) {
      void this.consumerFor(proxy).requeue([proxy]);
      return;
    }
    const options = proxy.message.options;
    if ("eta" in options) {
      const eta = options.eta;
      if (eta === null || eta === undefined) {
        proxy.message = proxy.message.copy({ options: { eta: undefined } });
      } else {
        const due = typeof eta === "number" && Number.isFinite(eta) ? eta : Date.now();
        if (typeof eta !== "number") log.warn("non-numeric eta treated as now", { ...messageFields(proxy.message), eta });
        this.track(this.holdDelayed(proxy, due));
        return;
      }
    }
    const actor = this.broker.registry.get(proxy.actorName);
    if (!actor) {
      const err = new ActorNotFound(`no actor named "${proxy.actorName}" is declared in this worker`);
      proxy.stuffException(err);
      proxy.fail(err.message);
      log.error("unknown actor; message dead-lettered", messageFields(proxy.message));
      this.track(this.settle(proxy));
      return;
    }
    this.work.push({ proxy, priority: this.broker.registry.optionsOf(actor.actorName)?.priority ?? 0, seq: this.seq++ });
    this.pump();
  }

  private async holdDelayed(proxy: MessageProxy, eta: number): Promise<void> {
    await ignoreSkips(() => this.broker.emitBefore("beforeDelayMessage", proxy));
    this.delayed.push({ proxy, eta });
    this.armDelayTimer();
  }

  private armDelayTimer(): void {
    const next = this.delayed.peek();
    if (!next || this.stopping) return;
    if (this.delayTimer && this.delayTimerAt <= next.eta) return;
    clearTimeout(this.delayTimer);
    this.delayTimerAt = next.eta;
    this.delayTimer = setTimeout(() => this.promoteDue(), Math.max(0, next.eta - Date.now()));
  }

  private promoteDue(): void {
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    const now = Date.now();
    while (this.delayed.size > 0 && this.delayed.peek()!.eta <= now && !this.stopping) {
      const { proxy } = this.delayed.pop()!;
      this.track(
        this.broker.promote(proxy, this.consumerFor(proxy)).catch((err) => {
          log.error("could not promote a delayed message; retrying in 1 s", { ...messageFields(proxy.message), err });
          this.delayed.push({ proxy, eta: Date.now() + 1000 });
          this.armDelayTimer();
        }),
      );
    }
    this.armDelayTimer();
  }

  private pump(): void {
    while (this.work.size > 0 && !this.stopping && this.slotsInUse < this.pool.capacityFor(this.work.peek()!.proxy.actorName)) {
      const { proxy } = this.work.pop()!;
      this.inFlight.set(proxy, 0);
      this.slotsInUse++;
      void this.process(proxy);
    }
  }

  private releaseSlot(): void {
    this.slotsInUse--;
    this.pump();
  }

  private track(promise: Promise<void>): void {
    this.settling.add(promise);
    void promise.finally(() => this.settling.delete(promise));
  }

  /**
   * One message from its before-hooks to its ack. Never rejects. Hooks that return nothing cost no promise, so
   * the usual message awaits twice: its outcome from the thread and its ack.
   */
  private async process(proxy: MessageProxy): Promise<void> {
    let holdsSlot = true;
    try {
      let skipped = false;
      let result: unknown;
      let exception: unknown;
      let durationMs: number | undefined;
      try {
        const before = this.broker.emitBefore("beforeProcessMessage", proxy);
        if (before) await before;
      } catch (err) {
        // As in Dramatiq: a SkipMessage skips the actor; any other error a before-hook raises fails the message
        // as if the actor had raised it, so Retries decides what happens next.
        if (err instanceof SkipMessage) {
          skipped = true;
          log.warn("message skipped", { ...messageFields(proxy.message), reason: err.message });
          if (proxy.failed) proxy.stuffException(err);
        } else exception = err;
      }
      if (!skipped && !proxy.failed && exception === undefined) {
        const outcome = await this.runInThread(proxy);
        holdsSlot = false;
        this.releaseSlot();
        if (this.abandoning || (!outcome.ok && outcome.error.name === RECALLED)) return await this.requeueUnfinished(proxy);
        durationMs = outcome.ms;
        if (outcome.ok) result = outcome.result;
        else exception = outcome.error;
      }
      if (exception !== undefined) {
        proxy.stuffException(exception);
        logActorError(proxy, exception);
      }
      const after = skipped ? this.broker.emitAfter("afterSkipMessage", proxy) : this.broker.emitAfter("afterProcessMessage", proxy, { result, exception, durationMs });
      if (after) await after;
      if (exception === undefined && !proxy.failed) this.stats.processed++;
      else if (exception !== undefined) this.stats.failed++;
      if (skipped) this.stats.skipped++;
      await this.settle(proxy);
    } catch (err) {
      log.critical("processing a message failed; it goes back to its queue", { ...messageFields(proxy.message), err });
      await this.requeueUnfinished(proxy);
    } finally {
      this.inFlight.delete(proxy);
      if (holdsSlot) this.releaseSlot();
      if (this.inFlight.size === 0 && this.idleWaiters.length) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private runInThread(proxy: MessageProxy): Promise<RunOutcome> {
    const { id, outcome } = this.pool.run(proxy.actorName, proxy.message.wire());
    this.inFlight.set(proxy, id);
    if (this.stopping && proxy.notifyShutdown) this.pool.abort(id, new Shutdown("worker is shutting down"));
    if (hasTimeLimit(proxy.timeLimit)) this.watchTimeLimits(proxy.timeLimit);
    return outcome;
  }

  /**
   * Time limits are checked on one interval timer over the messages in flight, as Dramatiq's TimeLimit checks
   * every second, instead of a timer per message: every quarter of the shortest limit seen, and at least once a second.
   * The clock starts when the actor does (the thread records it in shared memory), so a message sent ahead to a
   * busy thread is not charged for its wait.
   */
  private watchTimeLimits(limit: number): void {
    const every = Math.max(5, Math.min(1000, Math.floor(limit / 4)));
    if (every >= this.limitCheckEvery) return;
    clearInterval(this.limitCheck);
    this.limitCheckEvery = every;
    this.limitCheck = setInterval(() => this.enforceTimeLimits(), every);
  }

  private enforceTimeLimits(): void {
    const now = Date.now();
    let watching = false;
    for (const [proxy, id] of this.inFlight) {
      const limit = proxy.timeLimit;
      if (!id || !hasTimeLimit(limit) || this.pool.isAborted(id)) continue;
      watching = true;
      const startedAt = this.pool.startTimeOf(id);
      if (startedAt === undefined || now - startedAt < limit) continue;
      const reason = new TimeLimitExceeded(`actor ${proxy.actorName} ran past its time limit of ${limit} ms`);
      this.pool.abort(id, reason);
      setTimeout(() => void this.pool.kill(id, reason), this.options.abortGrace ?? 1000);
    }
    if (!watching) {
      clearInterval(this.limitCheck);
      this.limitCheck = undefined;
      this.limitCheckEvery = Infinity;
    }
  }

  private async requeueUnfinished(proxy: MessageProxy): Promise<void> {
    await this.consumerFor(proxy).requeue([proxy]).catch((err) => log.warn("requeue failed; the broker will redeliver", { ...messageFields(proxy.message), err }));
  }

  /**
   * Ack or nack with the hooks around it; a connection error is retried until the worker stops. Written with
   * `then` rather than as an async function: this runs for every message, and a suspended async frame is the
   * larger allocation.
   */
  private settle(proxy: MessageProxy): Promise<void> {
    const failed = proxy.failed;
    let before: void | Promise<void> = undefined;
    try {
      before = this.broker.emitBefore(failed ? "beforeNack" : "beforeAck", proxy);
    } catch {
      // A SkipMessage means nothing once the outcome is decided: the message is settled all the same.
    }
    if (before) return before.then(noop, noop).then(() => this.sendSettlement(proxy, failed, 0));
    return this.sendSettlement(proxy, failed, 0);
  }

  private sendSettlement(proxy: MessageProxy, failed: boolean, attempt: number): Promise<void> {
    const consumer = this.consumerFor(proxy);
    return (failed ? consumer.nack(proxy) : consumer.ack(proxy)).then(
      () => this.settled(proxy, failed),
      (err: unknown) => this.sendFailed(proxy, failed, attempt, err),
    );
  }

  private async sendFailed(proxy: MessageProxy, failed: boolean, attempt: number, err: unknown): Promise<void> {
    if (!(err instanceof BrokerConnectionError) || this.abandoning) {
      log.error(`${failed ? "nack" : "ack"} failed; the broker will redeliver the message`, { ...messageFields(proxy.message), err });
      return;
    }
    const wait = Math.min(5000, 100 * 2 ** attempt);
    log.warn(`${failed ? "nack" : "ack"} failed on a lost connection; retrying`, { ...messageFields(proxy.message), err, retryInMs: wait });
    await new Promise((resolve) => setTimeout(resolve, wait));
    return this.sendSettlement(proxy, failed, attempt + 1);
  }

  private settled(proxy: MessageProxy, failed: boolean): void | Promise<void> {
    if (failed) {
      this.stats.deadLettered++;
      log.warn("message dead-lettered", { ...messageFields(proxy.message), reason: proxy.deadLetterReason });
    }
    return this.broker.emitAfter(failed ? "afterNack" : "afterAck", proxy);
  }

  /**
   * Graceful stop: fetch nothing more, give back what has not started, let running messages finish within
   * the shutdown timeout, then requeue what is still running. Nothing unfinished is acked. `onFetchingStopped`
   * runs once no consumer fetches any more and what had not started is given back (a reload waits for it).
   */
  async stop(timeout = this.options.shutdownTimeout ?? 600_000, onFetchingStopped?: () => void): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    log.info("worker stopping", { running: this.inFlight.size, queued: this.work.size, delayed: this.delayed.size, timeoutMs: timeout });
    await ignoreSkips(() => this.broker.emitBefore("beforeWorkerShutdown", this));
    this.pool.broadcast({ t: "shutdown" });
    for (const [proxy, id] of this.inFlight) {
      if (!id) continue;
      // Messages sent ahead to a thread and not begun go back to the broker with the rest of the unstarted ones.
      this.pool.recall(id, proxy.notifyShutdown ? new Shutdown("worker is shutting down") : undefined);
    }
    await Promise.all([...this.consumers.values()].map((c) => c.stop()));
    clearTimeout(this.delayTimer);
    const unstarted = [...this.work.drain(), ...this.delayed.drain()].map((item) => item.proxy);
    await this.requeueByConsumer(unstarted);
    onFetchingStopped?.();
    const finished = await waitUntil(() => this.inFlight.size === 0, (wake) => this.idleWaiters.push(wake), timeout);
    if (!finished) {
      log.warn("shutdown timeout reached; requeueing unfinished messages", { running: this.inFlight.size });
      this.abandoning = true;
    }
    await this.pool.stop();
    clearInterval(this.limitCheck);
    // Messages the stop cut short are being requeued.
    await waitUntil(() => this.inFlight.size === 0, (wake) => this.idleWaiters.push(wake));
    await Promise.allSettled([...this.settling]);
    await Promise.all([...this.consumers.values()].map((c) => c.close().catch((err) => log.warn("consumer close failed", { queue: c.queue, err }))));
    await this.broker.emitAfter("afterWorkerShutdown", this);
    log.info("worker stopped", this.stats);
  }

  private async requeueByConsumer(proxies: MessageProxy[]): Promise<void> {
    const byQueue = new Map<string, MessageProxy[]>();
    for (const proxy of proxies) {
      const list = byQueue.get(proxy.queue);
      if (list) list.push(proxy);
      else byQueue.set(proxy.queue, [proxy]);
    }
    for (const [queue, list] of byQueue) {
      await this.consumers.get(queue)?.requeue(list).catch((err) => log.warn("requeue failed; the broker will redeliver", { queue, err }));
    }
  }

  /** Push option overrides (operator Actor resources) to this process and its threads. */
  setOverrides(overrides: Record<string, ActorOptions>): void {
    this.broker.registry.setOverrides(overrides);
    this.pool.broadcast({ t: "overrides", overrides: overrides as Record<string, Record<string, unknown>> });
  }
}

/**
 * The worker's per-queue prefetch unless given: each thread's running and look-ahead messages twice over, plus
 * (with lookahead) room for a full packed batch of quick messages in flight while the next one is fetched.
 */
export function defaultPrefetch(threads: number, concurrency = 1, lookahead = DEFAULT_LOOKAHEAD): number {
  const packedBatch = lookahead > 0 ? MAX_PACKED : 0;
  return Math.min(threads * (2 * concurrency + lookahead) + packedBatch, 65_535);
}

/** Run before-hooks where a SkipMessage means nothing (the hooks' other errors are logged by the broker). */
async function ignoreSkips(emit: () => void | Promise<void>): Promise<void> {
  try {
    await emit();
  } catch {
    // nothing to skip here
  }
}

/** Resolves true once `done()` holds, or with `done()` after `timeout` ms when one is given. */
function waitUntil(done: () => boolean, subscribe: (wake: () => void) => void, timeout?: number): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = timeout === undefined ? undefined : setTimeout(() => resolve(done()), timeout);
    const check = () => {
      if (done()) {
        clearTimeout(timer);
        resolve(true);
      } else subscribe(check);
    };
    subscribe(check);
  });
}

function noop(): void {}

function hasTimeLimit(limit: number | undefined): limit is number {
  return limit !== undefined && Number.isFinite(limit) && limit > 0;
}

function logActorError(proxy: MessageProxy, err: unknown): void {
  const fields = { ...messageFields(proxy.message), err };
  if (errorIsA(err, "Retry")) return;
  if (errorIsA(err, "RateLimitExceeded")) log.debug("rate limit exceeded", fields);
  else log.error("actor failed", fields);
}
