import { EventEmitter } from "node:events";
import { Worker as NodeWorker } from "node:worker_threads";
import { RemoteError, TroupeError, WorkerThreadDied, serializeError, type SerializedError } from "../errors.js";
import { getLogger } from "../logging.js";
import type { MessageData } from "../message.js";
import { RECALLED, type FromThread, type ThreadData, type ToThread } from "./protocol.js";
import { handleRpc } from "./rpc.js";

export type RunOutcome = { ok: true; result: unknown } | { ok: false; error: Error };

interface Task {
  id: number;
  data: MessageData;
  /** Unset while the task waits for a thread with room (one is being replaced). */
  thread?: PoolThread;
  resolve: (outcome: RunOutcome) => void;
  /** Called once the actor begins (the worker arms the time limit then). */
  onStart?: () => void;
  /** Sent ahead to a thread that was busy: it has not begun until the thread reports `started`. */
  queued: boolean;
  started: boolean;
  /** Recalled from a busy thread to run on an idle one: a `Recalled` outcome means "dispatch again". */
  stealing?: boolean;
  /** Set when the task was aborted: the error it ends with if it does not finish cleanly. */
  abortedWith?: Error;
}

interface PoolThread {
  index: number;
  worker: NodeWorker;
  tasks: Set<Task>;
  ready: boolean;
  /** Messages for the thread, posted together at the end of the current tick. */
  outbox: ToThread[];
  /** Set when the pool decided to kill this thread, so its exit is not reported as a crash. */
  retiring?: Error;
}

export interface ThreadPoolOptions {
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
const log = getLogger("threads");

/**
 * A fixed number of worker threads running actors. A thread that crashes is replaced; a thread that has to be
 * stopped (time limit, shutdown) is terminated and replaced, and its unfinished tasks end with an error.
 * Emits `threadBoot(index)` and `threadExit(index)`.
 */
export class ThreadPool extends EventEmitter {
  private readonly threads: PoolThread[] = [];
  private readonly tasks = new Map<number, Task>();
  private readonly waiting: Task[] = [];
  private nextTaskId = 1;
  private stopping = false;

  constructor(private readonly options: ThreadPoolOptions) {
    super();
  }

  get capacity(): number {
    return this.options.size * this.slotsPerThread;
  }

  private get slotsPerThread(): number {
    return this.options.concurrency + (this.options.lookahead ?? DEFAULT_LOOKAHEAD);
  }

  /** Threads that have loaded the actor modules and take work (fewer while a thread is being replaced). */
  get readyThreads(): number {
    return this.threads.filter((t) => t?.ready).length;
  }

  /** Start every thread and wait until each has imported the actor modules. Rejects if an import fails. */
  async start(): Promise<void> {
    const booting = Array.from({ length: this.options.size }, (_, index) => this.spawn(index));
    try {
      await Promise.all(booting);
    } catch (err) {
      // One thread could not load the modules: stop the others too, or they keep the process alive.
      await Promise.allSettled(booting);
      await this.stop();
      throw err;
    }
  }

  private spawn(index: number): Promise<void> {
    const data: ThreadData = { modules: this.options.modules, threadIndex: index, concurrency: this.options.concurrency };
    const worker = new NodeWorker(ENTRY, { workerData: data, execArgv: this.options.execArgv, stdout: false, stderr: false });
    const thread: PoolThread = { index, worker, tasks: new Set(), ready: false, outbox: [] };
    this.threads[index] = thread;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TroupeError(`worker thread ${index} did not load the actor modules within ${this.options.bootTimeout ?? 60_000} ms`));
        void worker.terminate();
      }, this.options.bootTimeout ?? 60_000);
      const handle = (msg: FromThread): void => {
        switch (msg.t) {
          case "batch":
            for (const item of msg.items) handle(item);
            break;
          case "started":
            this.markStarted(this.tasks.get(msg.id));
            break;
          case "ready":
            clearTimeout(timer);
            thread.ready = true;
            this.emit("threadBoot", index);
            this.dispatchWaiting();
            resolve();
            break;
          case "bootError":
            clearTimeout(timer);
            reject(new RemoteError(msg.error));
            void worker.terminate();
            break;
          case "done":
            this.finish(msg.id, msg.ok ? { ok: true, result: msg.result } : { ok: false, error: new RemoteError(msg.error) });
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
        this.onExit(thread, code);
      });
    });
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
    this.emit("threadExit", thread.index);
    const reason = thread.retiring ?? new WorkerThreadDied(`worker thread ${thread.index} exited with code ${code}`);
    for (const task of [...thread.tasks]) {
      if (task.started || task.abortedWith || this.stopping) this.finish(task.id, { ok: false, error: task.abortedWith ?? reason });
      else {
        // Sent ahead and never begun: another thread runs it.
        thread.tasks.delete(task);
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
    if (thread) thread.tasks.delete(task);
    else this.waiting.splice(this.waiting.indexOf(task), 1);
    if (task.stealing && !task.abortedWith && !outcome.ok && outcome.error.name === RECALLED) {
      // Given back unstarted by a busy thread: it runs next on whichever thread has room.
      task.stealing = false;
      task.thread = undefined;
      this.waiting.unshift(task);
    } else {
      this.tasks.delete(id);
      if (!outcome.ok && task.abortedWith) outcome = { ok: false, error: task.abortedWith };
      task.resolve(outcome);
    }
    this.dispatchWaiting();
    if (thread && thread.tasks.size === 0) setImmediate(() => this.stealFor(thread));
  }

  /**
   * A thread that ran out of work takes back a message sent ahead to a thread that is still busy, so a message
   * never waits behind a slow actor while a thread idles. Runs after the worker had its chance to send new work.
   */
  private stealFor(idle: PoolThread): void {
    if (!idle.ready || idle.tasks.size > 0 || this.waiting.length > 0) return;
    for (const thread of this.threads) {
      if (!thread?.ready || thread === idle) continue;
      const queued = [...thread.tasks].reverse().find((task) => task.queued && !task.started && !task.stealing && !task.abortedWith);
      if (!queued) continue;
      queued.stealing = true;
      this.flush(thread);
      this.send(thread, { t: "recall", id: queued.id });
      return;
    }
  }

  private dispatchWaiting(): void {
    while (this.waiting.length > 0) {
      const thread = this.pick();
      if (!thread) return;
      this.assign(this.waiting.shift()!, thread);
    }
  }

  private assign(task: Task, thread: PoolThread): void {
    task.thread = thread;
    // The thread has fewer unfinished tasks than main counts (results may be on their way), so a task sent while
    // main counts fewer than `concurrency` begins on arrival.
    task.queued = thread.tasks.size >= this.options.concurrency;
    thread.tasks.add(task);
    if (thread.outbox.length === 0) queueMicrotask(() => this.flush(thread));
    thread.outbox.push({ t: "run", id: task.id, data: task.data, queued: task.queued });
    if (!task.queued) this.markStarted(task);
  }

  private flush(thread: PoolThread): void {
    const items = thread.outbox;
    if (items.length === 0 || !thread.ready) return;
    thread.outbox = [];
    this.send(thread, items.length === 1 ? items[0]! : { t: "batch", items });
  }

  private markStarted(task: Task | undefined): void {
    if (!task || task.started) return;
    task.started = true;
    task.onStart?.();
  }

  private pick(): PoolThread | undefined {
    let best: PoolThread | undefined;
    for (const thread of this.threads) {
      if (!thread?.ready || thread.tasks.size >= this.slotsPerThread) continue;
      if (!best || thread.tasks.size < best.tasks.size) best = thread;
    }
    return best;
  }

  /**
   * Run a message on the least busy thread, or as soon as one has room (the caller bounds how many it submits by
   * `capacity`; room is short only while a thread is being replaced). `onStart` is called when the actor begins,
   * which for a message sent ahead is when the thread reports it. Returns the task id and its outcome.
   */
  run(data: MessageData, onStart?: () => void): { id: number; outcome: Promise<RunOutcome> } {
    const id = this.nextTaskId++;
    let resolve!: (outcome: RunOutcome) => void;
    const outcome = new Promise<RunOutcome>((r) => (resolve = r));
    const task: Task = { id, data, resolve, onStart, queued: false, started: false };
    this.tasks.set(id, task);
    const thread = this.pick();
    if (thread) this.assign(task, thread);
    else this.waiting.push(task);
    return { id, outcome };
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
   * Ask for a message sent ahead to come back unstarted; true when it may (its outcome is then an error named
   * `Recalled`, or its normal outcome if the thread began it meanwhile).
   */
  recall(id: number): boolean {
    const task = this.tasks.get(id);
    if (!task || task.started) return false;
    // The worker wants it back (it is stopping): a theft in progress must not keep it in the pool.
    task.stealing = false;
    if (!task.thread) {
      this.finish(id, { ok: false, error: new RemoteError({ name: RECALLED, message: "given back before it began", chain: [RECALLED] }) });
      return true;
    }
    this.flush(task.thread);
    this.send(task.thread, { t: "recall", id });
    return true;
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
