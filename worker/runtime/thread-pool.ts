import { EventEmitter } from "node:events";
import { Worker as NodeWorker } from "node:worker_threads";
import { RemoteError, TroupeError, WorkerThreadDied, serializeError, type SerializedError } from "../errors.js";
import { getLogger } from "../logging.js";
import { ChurnMap, ChurnSet } from "../churn.js";
import { RECALLED, RECALLED_ERROR, type FromThread, type ThreadData, type ToThread } from "./protocol.js";
import { ActorTimes } from "./actor-times.js";
import { handleRpc } from "./rpc.js";
import { RunningSlots, nextTaskId } from "./running-slots.js";
import { GROW_OCCUPANCY, capacityFor, expectedMs, pickThread, wantsAnotherThread, type DispatchSettings, type ThreadLoad } from "./dispatch-policy.js";

/** `ms`: how long the actor ran in its thread, from its start (absent when it never began). */
export type RunOutcome = ({ ok: true; result: unknown } | { ok: false; error: Error }) & { ms?: number };

interface Task {
  id: number;
  actorName: string;
  /** The message as JSON text. */
  body: string;
  /** Counted in its thread's backlog while it is there (see dispatch-policy.ts). */
  expectedMs: number;
  /** Unset while the task waits for a thread with room (one is being replaced). */
  thread?: PoolThread;
  resolve: (outcome: RunOutcome) => void;
  /** Recalled from a busy thread to run on an idle one: a `Recalled` outcome means "dispatch again". */
  stealing?: boolean;
  /** Set when the task was aborted: the error it ends with if it does not finish cleanly. */
  abortedWith?: Error;
}

interface PoolThread {
  index: number;
  worker: NodeWorker;
  tasks: ChurnSet<Task>;
  /** What the dispatch policy sees of the thread: its task count (from `tasks`) and their expected run time. */
  load: ThreadLoad;
  /** The occupancy window being measured (see noteBusy): its start (performance.now()) and the slot time taken in it. */
  window: { start: number; busyMs: number };
  /** What the thread is running now, written by the thread. */
  running: RunningSlots;
  ready: boolean;
  /** Messages for the thread, posted together at the end of the current tick. */
  outbox: ToThread[];
  /** Set while the thread, idle, waits to look for a message to take back (see stealFor). */
  stealTimer?: NodeJS.Timeout;
  /** Set when the pool decided to kill this thread, so its exit is not reported as a crash. */
  retiring?: Error;
}

export interface ThreadPoolOptions {
  /** Most threads. The pool starts with one and adds one at a time while messages find every thread busy. */
  size: number;
  /** Messages one thread may run at once (async actors overlap; a sync actor holds its thread). */
  concurrency: number;
  /**
   * Messages sent to a thread ahead of time, beyond those it runs, so that it goes from one message to the next
   * without waiting for the main thread (default 3). Their time limit starts when they do.
   */
  lookahead?: number;
  modules: string[];
  /** How long to wait for a thread to import the actor modules. */
  bootTimeout?: number;
  /** Extra `execArgv` for threads (e.g. a loader for TypeScript modules). */
  execArgv?: string[];
}

const ENTRY = new URL("./thread-entry.js", import.meta.url);
export const DEFAULT_LOOKAHEAD = 3;
/** How long an actor runs before messages waiting behind it may be taken back by an idle thread. */
const STEAL_AFTER_MS = 2;
/** How often the pool looks at work waiting behind running actors while it could grow: a boot takes 100 ms or more. */
const HELD_BACK_CHECK_MS = 10;
/** Window over which a thread's occupancy is measured: long enough to average a few hundred quick messages. */
const OCCUPANCY_WINDOW_MS = 100;
const log = getLogger("threads");

/**
 * Worker threads running actors, started as load asks for them: one at start, then another whenever a message
 * finds no thread free for it (see wantsAnotherThread), one boot at a time, up to `size`. Each resident thread
 * costs about 9 MB however little it runs (a V8 isolate, Node's environment for it, its event loop), and most
 * workers spend most of their life below their thread count: an idle 8-thread worker was 137 MB, 69 MB with one.
 * Threads once started stay. A thread that crashes is replaced; a thread that has to be stopped (time limit,
 * shutdown) is terminated and replaced, and its unfinished tasks end with an error.
 * Emits `threadBoot(index)` and `threadExit(index)`.
 */
export class ThreadPool extends EventEmitter {
  private readonly threads: PoolThread[] = [];
  /** What the dispatch policy sees: each ready thread's load, undefined for a thread not taking work. */
  private readonly loads: (ThreadLoad | undefined)[] = [];
  private readonly tasks = new ChurnMap<number, Task>();
  private readonly waiting: Task[] = [];
  private lastTaskId = 0;
  private stopping = false;
  /** Threads spawned and not yet ready (or failed): while one boots, no other is added. */
  private booting = 0;
  /** Armed while work waits queued in a thread and the pool could still grow (see watchHeldBack). */
  private heldBackTimer: NodeJS.Timeout | undefined;
  private readonly settings: DispatchSettings;
  /** Each actor's average run time in a thread (ms), as the threads report it. */
  private readonly runTimes = new ActorTimes(8);

  constructor(private readonly options: ThreadPoolOptions) {
    super();
    this.settings = { concurrency: options.concurrency, lookahead: options.lookahead ?? DEFAULT_LOOKAHEAD };
  }

  /** Most messages of this actor the pool may hold at once (the worker submits no more than that). */
  capacityFor(actorName: string): number {
    return capacityFor(expectedMs(this.runTimes.get(actorName)), this.options.size, this.settings);
  }

  /** Threads that have loaded the actor modules and take work (fewer while a thread is being replaced). */
  get readyThreads(): number {
    return this.threads.filter((t) => t?.ready).length;
  }

  /**
   * Start the first thread and wait until it has imported the actor modules. Rejects if the import fails.
   *
   * Threads boot one after another, never several at once (see grow). Booting allocates far more native memory
   * (module sources, compiler zones) than a thread keeps, and threads share malloc arenas: booted together, their
   * short-lived allocations interleave with long-lived ones, and the arenas keep the freed gaps (about 2 MB per
   * thread that the process never gives back). Booted in turn, each thread reuses what the previous one freed once
   * it had collected its boot garbage (see releaseMemory). A boot takes 100–250 ms on 2 cores.
   */
  async start(): Promise<void> {
    try {
      await this.spawn(0);
    } catch (err) {
      // A thread could not load the modules: stop those already booted too, or they keep the process alive.
      await this.stop();
      throw err;
    }
  }

  /** Threads started so far (booting, ready, or being replaced). */
  get startedThreads(): number {
    return this.threads.length;
  }

  /**
   * Messages sent ahead to a thread before their actor was known to be slow wait behind it, and arrivals alone add
   * threads: a burst fetched at once would stay on the threads there are. While work waits queued in a thread and
   * the pool could grow, look every HELD_BACK_CHECK_MS: when it waits behind an actor running for STEAL_AFTER_MS
   * on a thread not measured as mostly idle (quick actors keep the occupancy rule of wantsAnotherThread), and no
   * thread is free to take it back, add one; once ready, that thread takes the work back (stealFor).
   */
  private watchHeldBack(): void {
    if (this.heldBackTimer || this.stopping || this.threads.length >= this.options.size) return;
    this.heldBackTimer = setTimeout(() => {
      this.heldBackTimer = undefined;
      this.growIfHeldBack();
    }, HELD_BACK_CHECK_MS);
  }

  private growIfHeldBack(): void {
    if (this.stopping || this.threads.length >= this.options.size) return;
    const held = this.threads.filter((t) => t?.ready && t.tasks.size > this.options.concurrency);
    if (held.length === 0 || this.threads.some((t) => t?.ready && t.tasks.size === 0)) return;
    const now = Date.now();
    const stuck = held.some((t) => {
      const busySince = t.running.earliestStart();
      return busySince !== undefined && now - busySince >= STEAL_AFTER_MS && (t.load.occupancy ?? 1) >= GROW_OCCUPANCY;
    });
    if (stuck) this.grow();
    else this.watchHeldBack();
  }

  /** Add a thread, unless one is booting or the pool is full. */
  private grow(): void {
    if (this.booting > 0 || this.stopping || this.threads.length >= this.options.size) return;
    const index = this.threads.length;
    this.spawn(index).catch((err) => {
      // A boot cut short by stop() is no failure.
      if (!this.stopping) log.error("could not start another worker thread", { thread: index, err });
    });
  }

  private spawn(index: number): Promise<void> {
    this.booting++;
    const running = RunningSlots.create(this.options.concurrency);
    const data: ThreadData = { modules: this.options.modules, threadIndex: index, concurrency: this.options.concurrency, running: running.buffer };
    const worker = new NodeWorker(ENTRY, { workerData: data, execArgv: this.options.execArgv, stdout: false, stderr: false });
    const tasks = new ChurnSet<Task>();
    const load: ThreadLoad = {
      get tasks() {
        return tasks.size;
      },
      backlogMs: 0,
    };
    const thread: PoolThread = { index, worker, tasks, load, window: { start: performance.now(), busyMs: 0 }, running, ready: false, outbox: [] };
    this.threads[index] = thread;
    const boot = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TroupeError(`worker thread ${index} did not load the actor modules within ${this.options.bootTimeout ?? 60_000} ms`));
        void worker.terminate();
      }, this.options.bootTimeout ?? 60_000);
      const handle = (msg: FromThread): void => {
        switch (msg.t) {
          case "batch":
            for (const item of msg.items) handle(item);
            break;
          case "ready":
            clearTimeout(timer);
            thread.ready = true;
            this.loads[index] = thread.load;
            this.emit("threadBoot", index);
            this.dispatchWaiting();
            // A thread added under load may find nothing waiting: the work is sent ahead to the busy ones.
            if (thread.tasks.size === 0) setImmediate(() => this.stealFor(thread));
            resolve();
            break;
          case "bootError":
            clearTimeout(timer);
            reject(new RemoteError(msg.error));
            void worker.terminate();
            break;
          case "done":
            this.noteRunTime(msg.id, msg.ms);
            this.noteBusy(thread, msg.ms);
            this.finish(msg.id, msg.ok ? { ok: true, result: msg.result, ms: msg.ms } : { ok: false, error: new RemoteError(msg.error), ms: msg.ms });
            break;
          case "rpc":
            this.answerRpc(thread, msg.callId, msg.method, msg.args);
            break;
        }
      };
      worker.on("message", handle);
      worker.on("error", (err) => {
        clearTimeout(timer);
        log.error("worker thread crashed", { thread: index, err });
        if (!thread.ready) reject(err);
      });
      worker.on("exit", (code) => {
        clearTimeout(timer);
        if (!thread.ready) reject(new WorkerThreadDied(`worker thread ${index} exited with code ${code} while loading the actor modules`));
        this.onExit(thread, code);
      });
    });
    const booted = (): void => {
      this.booting--;
      // What waited for this boot may need the next one.
      if (this.waiting.length > 0) this.grow();
      else this.watchHeldBack();
    };
    boot.then(booted, booted);
    return boot;
  }

  private answerRpc(thread: PoolThread, callId: number, method: string, args: unknown[]): void {
    handleRpc(method, args).then(
      (value) => this.send(thread, { t: "rpcResult", callId, ok: true, value }),
      (err) => this.send(thread, { t: "rpcResult", callId, ok: false, error: serializeError(err) }),
    );
  }

  private send(thread: PoolThread, msg: ToThread): void {
    try {
      thread.worker.postMessage(msg);
    } catch (err) {
      log.warn("could not post to worker thread", { thread: thread.index, err });
    }
  }

  private onExit(thread: PoolThread, code: number): void {
    if (this.threads[thread.index] !== thread) return;
    const wasReady = thread.ready;
    thread.ready = false;
    this.loads[thread.index] = undefined;
    this.emit("threadExit", thread.index);
    const reason = thread.retiring ?? new WorkerThreadDied(`worker thread ${thread.index} exited with code ${code}`);
    for (const task of [...thread.tasks]) {
      // A task the thread finished but whose result died with it runs again: delivery is at least once.
      if (this.isRunning(task) || task.abortedWith || this.stopping) this.finish(task.id, { ok: false, error: task.abortedWith ?? reason });
      else {
        // Sent ahead and never begun: another thread runs it.
        this.detach(task, thread);
        task.thread = undefined;
        task.stealing = false;
        this.waiting.unshift(task);
      }
    }
    thread.outbox = [];
    this.dispatchWaiting();
    if (this.stopping || !wasReady) return;
    if (!thread.retiring) log.warn("replacing worker thread", { thread: thread.index, code });
    this.spawn(thread.index).catch((err) => log.critical("could not replace worker thread", { thread: thread.index, err }));
  }

  private finish(id: number, outcome: RunOutcome): void {
    const task = this.tasks.get(id);
    if (!task) return;
    const thread = task.thread;
    if (thread) this.detach(task, thread);
    else this.waiting.splice(this.waiting.indexOf(task), 1);
    if (task.stealing && !task.abortedWith && !outcome.ok && outcome.error.name === RECALLED) {
      // Given back unstarted by a busy thread: it runs next on whichever thread has room.
      task.stealing = false;
      task.thread = undefined;
      this.waiting.unshift(task);
    } else {
      this.tasks.delete(id);
      if (!outcome.ok && task.abortedWith) outcome = { ok: false, error: task.abortedWith, ms: outcome.ms };
      task.resolve(outcome);
    }
    this.dispatchWaiting();
    if (thread && thread.tasks.size === 0 && !thread.stealTimer) setImmediate(() => this.stealFor(thread));
  }

  /**
   * A thread that ran out of work takes back a message sent ahead to a thread whose actor has been running for
   * STEAL_AFTER_MS, so a message never waits long behind a slow actor while a thread idles. Messages behind quick
   * actors are left where they are (taking one back costs two posts); when the busy thread's actor is young, the
   * idle thread looks again once it is not. Runs after the worker had its chance to send new work.
   */
  private stealFor(idle: PoolThread): void {
    idle.stealTimer = undefined;
    if (!idle.ready || idle.tasks.size > 0 || this.waiting.length > 0 || this.stopping) return;
    const now = Date.now();
    let lookAgainAt = Infinity;
    for (const thread of this.threads) {
      if (!thread?.ready || thread === idle || thread.tasks.size <= this.options.concurrency) continue;
      const busySince = thread.running.earliestStart();
      if (busySince === undefined) continue;
      if (now - busySince < STEAL_AFTER_MS) {
        lookAgainAt = Math.min(lookAgainAt, busySince + STEAL_AFTER_MS);
        continue;
      }
      const queued = [...thread.tasks].reverse().find((task) => !task.stealing && !task.abortedWith && !this.isRunning(task));
      if (!queued) continue;
      queued.stealing = true;
      this.flush(thread);
      this.send(thread, { t: "recall", id: queued.id });
      return;
    }
    if (lookAgainAt < Infinity) idle.stealTimer = setTimeout(() => this.stealFor(idle), lookAgainAt - now);
  }

  private dispatchWaiting(): void {
    while (this.waiting.length > 0) {
      const thread = this.pick(this.waiting[0]!);
      if (!thread) return;
      this.assign(this.waiting.shift()!, thread);
    }
  }

  private noteRunTime(id: number, ms: number | undefined): void {
    const actorName = this.tasks.get(id)?.actorName;
    if (actorName !== undefined && ms !== undefined) this.runTimes.note(actorName, ms);
  }

  /** Count a finished message's slot time into its thread's occupancy, measured over windows of OCCUPANCY_WINDOW_MS. */
  private noteBusy(thread: PoolThread, ms: number | undefined): void {
    const { window } = thread;
    if (ms !== undefined) window.busyMs += expectedMs(ms);
    const now = performance.now();
    const elapsed = now - window.start;
    if (elapsed < OCCUPANCY_WINDOW_MS) return;
    thread.load.occupancy = window.busyMs / (elapsed * this.options.concurrency);
    thread.window = { start: now, busyMs: 0 };
  }

  private assign(task: Task, thread: PoolThread): void {
    task.thread = thread;
    thread.tasks.add(task);
    thread.load.backlogMs += task.expectedMs;
    if (thread.outbox.length === 0) queueMicrotask(() => this.flush(thread));
    thread.outbox.push({ t: "run", id: task.id, actor: task.actorName, body: task.body });
    if (thread.tasks.size > this.options.concurrency) this.watchHeldBack();
  }

  private detach(task: Task, thread: PoolThread): void {
    if (!thread.tasks.delete(task)) return;
    // Back to exactly 0 when empty, so rounding never leaves a phantom backlog.
    thread.load.backlogMs = thread.tasks.size === 0 ? 0 : thread.load.backlogMs - task.expectedMs;
  }

  private flush(thread: PoolThread): void {
    const items = thread.outbox;
    if (items.length === 0 || !thread.ready) return;
    thread.outbox = [];
    this.send(thread, items.length === 1 ? items[0]! : { t: "batch", items });
  }

  private isRunning(task: Task): boolean {
    return task.thread?.running.startTimeOf(task.id) !== undefined;
  }

  /** When the actor of task `id` began (Date.now() ms), or undefined while it waits in its thread's queue. */
  startTimeOf(id: number): number | undefined {
    return this.tasks.get(id)?.thread?.running.startTimeOf(id);
  }

  private pick(task: Task): PoolThread | undefined {
    const index = pickThread(this.loads, task.expectedMs, this.settings);
    return index < 0 ? undefined : this.threads[index];
  }

  /**
   * Run a message on the thread the dispatch policy picks, or as soon as one has room (the caller bounds how many
   * it submits by `capacityFor`). Returns the task id and its outcome.
   */
  run(actorName: string, body: string): { id: number; outcome: Promise<RunOutcome> } {
    const id = (this.lastTaskId = nextTaskId(this.lastTaskId));
    let resolve!: (outcome: RunOutcome) => void;
    const outcome = new Promise<RunOutcome>((r) => (resolve = r));
    const task: Task = { id, actorName, body, expectedMs: expectedMs(this.runTimes.get(actorName)), resolve };
    this.tasks.set(id, task);
    if (this.threads.length < this.options.size && wantsAnotherThread(this.loads, task.expectedMs, this.settings)) this.grow();
    const thread = this.pick(task);
    if (thread) this.assign(task, thread);
    else this.waiting.push(task);
    return { id, outcome };
  }

  /** Whether task `id` was aborted (and has not ended yet). */
  isAborted(id: number): boolean {
    return this.tasks.get(id)?.abortedWith !== undefined;
  }

  /** Ask the actor to stop (its abort signal fires); if it fails now, it fails with `reason`. */
  abort(id: number, reason: Error): void {
    const task = this.tasks.get(id);
    if (!task) return;
    task.abortedWith = reason;
    if (task.thread) {
      this.flush(task.thread);
      this.send(task.thread, { t: "abort", id, reason: serializeError(reason) as SerializedError });
    } else this.finish(id, { ok: false, error: reason });
  }

  /**
   * Ask for a message to come back unstarted (its outcome is then an error named `Recalled`); one its thread has
   * begun runs on, aborted with `abortIfRunning` when given.
   */
  recall(id: number, abortIfRunning?: Error): void {
    const task = this.tasks.get(id);
    if (!task) return;
    // The worker wants it back (it is stopping): a theft in progress must not keep it in the pool.
    task.stealing = false;
    if (!task.thread) {
      this.finish(id, { ok: false, error: new RemoteError(RECALLED_ERROR) });
      return;
    }
    this.flush(task.thread);
    this.send(task.thread, { t: "recall", id, abort: abortIfRunning && serializeError(abortIfRunning) });
  }

  /** Stop the thread running this task at once (it is replaced); its tasks end with their abort reason or `reason`. */
  async kill(id: number, reason: Error): Promise<void> {
    const task = this.tasks.get(id);
    if (!task) return;
    task.abortedWith ??= reason;
    if (!task.thread) return this.finish(id, { ok: false, error: reason });
    task.thread.retiring = reason;
    await task.thread.worker.terminate();
  }

  broadcast(msg: ToThread): void {
    for (const thread of this.threads) if (thread?.ready) this.send(thread, msg);
  }

  /** Terminate every thread; unfinished tasks end with `reason`. */
  async stop(reason: Error = new WorkerThreadDied("worker stopped")): Promise<void> {
    this.stopping = true;
    clearTimeout(this.heldBackTimer);
    for (const thread of this.threads) clearTimeout(thread?.stealTimer);
    for (const task of [...this.waiting]) this.finish(task.id, { ok: false, error: reason });
    await Promise.all(
      this.threads.map(async (thread) => {
        if (!thread) return;
        thread.retiring = reason;
        await thread.worker.terminate();
      }),
    );
  }
}
