/**
 * Entry point of a worker thread: imports the user's actor modules, then runs the messages the main thread
 * sends it, several at once when the actors are async.
 */
import { parentPort, workerData } from "node:worker_threads";
import { TimeLimitExceeded, serializeError, type SerializedError } from "../errors.js";
import { ChurnMap } from "../churn.js";
import { Message } from "../message.js";
import { defaultRegistry } from "../registry.js";
import { actorContext, markShuttingDown, runWithSyncContext, setSoleContext, type ActorContext } from "./context.js";
import { RECALLED_ERROR, type FromThread, type ThreadData, type ToThread } from "./protocol.js";
import { ActorTimes } from "./actor-times.js";
import { markWorkerThread, settleRpc } from "./rpc.js";
import { ThreadBroker } from "./thread-broker.js";
import { importModules } from "./load-modules.js";
import { releaseMemory } from "./memory.js";
import { RunningSlots } from "./running-slots.js";
import type { ActorOptions } from "../options.js";
import { wireWorkerThread } from "../setup.js";

const port = parentPort!;
const data = workerData as ThreadData;
const slots = new RunningSlots(data.running);
const running = new ChurnMap<number, RunningMessage>();

/**
 * Results leave together at the end of the current macrotask (setImmediate), so a thread running a batch of
 * quick messages wakes the main thread once for all of them. They leave earlier when the next actor may block
 * this thread (see `pump`).
 */
let outbox: FromThread[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  if (outbox.length === 0) return;
  const items = outbox;
  outbox = [];
  try {
    port.postMessage(items.length === 1 ? items[0] : { t: "batch", items });
  } catch {
    // One result could not be cloned: post them one by one so only that message fails.
    for (const item of items) postAlone(item);
  }
}

function postAlone(item: FromThread): void {
  try {
    port.postMessage(item);
  } catch (err) {
    if (item.t !== "done") throw err;
    const error = new TypeError(`the actor's return value cannot be sent between threads: ${(err as Error).message}`);
    port.postMessage({ t: "done", id: item.id, ok: false, error: serializeError(error) });
  }
}

function post(message: FromThread): void {
  outbox.push(message);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

/** What `getCurrentMessage`/`getAbortSignal` see; the AbortController is made only if the actor asks for it. */
class RunningMessage implements ActorContext {
  private controller: AbortController | undefined;
  abortReason: Error | undefined;

  constructor(readonly message: Message) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.abortReason && !this.controller.signal.aborted) this.controller.abort(this.abortReason);
    return this.controller.signal;
  }

  abort(reason: Error): void {
    this.abortReason ??= reason;
    this.controller?.abort(reason);
  }
}

/**
 * How long each actor's synchronous part takes (ms, moving average): the thread cannot post while a sync actor
 * holds it, so results waiting to go out are posted before an actor that is not known to return at once.
 */
const syncTimes = new ActorTimes(4);
const QUICK_MS = 1;

function returnsQuickly(actorName: string): boolean {
  const time = syncTimes.get(actorName);
  return time !== undefined && time < QUICK_MS;
}

type RunTask = Extract<ToThread, { t: "run" }>;

/** Tasks the main thread sent ahead of time, started as running ones finish (at most `concurrency` at once). */
const queue: RunTask[] = [];
let active = 0;
let pumping = false;

function pump(): void {
  // A sync actor finishes inside `start`, which pumps again: the flag keeps that a loop instead of a recursion.
  if (pumping) return;
  pumping = true;
  try {
    while (active < data.concurrency && queue.length > 0) {
      const task = queue.shift()!;
      if (outbox.length > 0 && !returnsQuickly(task.actor)) flush();
      start(task);
    }
  } finally {
    pumping = false;
  }
}

function rebuildAbortReason(reason: SerializedError): Error {
  const err = reason.name === "TimeLimitExceeded" ? new TimeLimitExceeded(reason.message) : new Error(reason.message);
  err.name = reason.name;
  return err;
}

/** Run one message. A sync actor's outcome is posted before this returns; an async one's when it settles. */
function start({ id, body }: RunTask): void {
  active++;
  const slot = slots.claim(id);
  let context: RunningMessage | undefined;
  let begun = performance.now();
  let returned: unknown;
  try {
    const message = Message.decode(body);
    const actor = defaultRegistry.require(message.actorName);
    const given = actor.declaredOptions.bigints ? message.withBigints() : message;
    const args: unknown[] = [...given.args];
    if (Object.keys(given.kwargs).length > 0) args.push(given.kwargs);
    context = new RunningMessage(message);
    running.set(id, context);
    begun = performance.now();
    returned = callActor(message.actorName, actor.fn as (...a: unknown[]) => unknown, args, context);
    syncTimes.note(message.actorName, performance.now() - begun);
  } catch (err) {
    return end(id, slot, context, begun, false, err);
  }
  if (isThenable(returned)) {
    returned.then(
      (result) => end(id, slot, context, begun, true, result),
      (err) => end(id, slot, context, begun, false, err),
    );
  } else end(id, slot, context, begun, true, returned);
}

function end(id: number, slot: number, context: RunningMessage | undefined, begun: number, ok: boolean, value: unknown): void {
  const ms = performance.now() - begun;
  running.delete(id);
  slots.release(slot);
  active--;
  if (soleMessage) setSoleContext(undefined);
  // An aborted actor fails with the reason it was aborted for, whatever it threw on the way out.
  if (ok) post({ t: "done", id, ok: true, result: value, ms });
  else post({ t: "done", id, ok: false, error: serializeError(context?.abortReason ?? value), ms });
  pump();
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

/**
 * Node 20's AsyncLocalStorage makes every promise of the thread pay a hook once it is used: about 30 µs of CPU
 * per message of an actor awaiting a 1 ms timer, a fifth of the thread's cost of it (docs/performance.md). So
 * the storage is used only where a variable cannot do. A thread that runs one message at a time (concurrency 1,
 * the default) keeps that message's context in a variable from its start to its end, async or not — as
 * Dramatiq's CurrentMessage is thread-local; a continuation the actor leaves behind after it has returned sees
 * no context, or the next message's. With more at once, actors seen to return plain values run with their
 * context in a variable, which their synchronous body reads; others (and every actor the first time) run inside
 * the storage, which follows their awaits. An actor that returned a plain value and later returns a promise runs
 * in the storage from its next message on; the continuations of that one message do not see its context.
 */
const soleMessage = data.concurrency === 1;
const syncActors = new Set<string>();

function callActor(actorName: string, fn: (...a: unknown[]) => unknown, args: unknown[], context: RunningMessage): unknown {
  if (soleMessage) {
    setSoleContext(context);
    return fn(...args);
  }
  if (!syncActors.has(actorName)) {
    const returned = actorContext.run(context, () => fn(...args));
    if (!isThenable(returned)) syncActors.add(actorName);
    return returned;
  }
  const returned = runWithSyncContext(context, () => fn(...args));
  if (isThenable(returned)) syncActors.delete(actorName);
  return returned;
}

function giveBack(id: number, error: SerializedError): boolean {
  const waiting = queue.findIndex((task) => task.id === id);
  if (waiting < 0) return false;
  queue.splice(waiting, 1);
  post({ t: "done", id, ok: false, error });
  return true;
}

function handle(msg: ToThread): void {
  switch (msg.t) {
    case "batch":
      for (const item of msg.items) handle(item);
      break;
    case "run":
      queue.push(msg);
      pump();
      break;
    case "recall":
      if (!giveBack(msg.id, RECALLED_ERROR) && msg.abort) {
        running.get(msg.id)?.abort(rebuildAbortReason(msg.abort));
      }
      break;
    case "abort":
      if (!giveBack(msg.id, msg.reason)) running.get(msg.id)?.abort(rebuildAbortReason(msg.reason));
      break;
    case "shutdown":
      markShuttingDown();
      break;
    case "overrides":
      defaultRegistry.setOverrides(msg.overrides as Record<string, ActorOptions>);
      break;
    case "rpcResult":
      if (msg.ok) settleRpc(msg.callId, true, msg.value);
      else settleRpc(msg.callId, false, undefined, msg.error);
      break;
  }
}

port.on("message", handle);

async function boot(): Promise<void> {
  markWorkerThread();
  wireWorkerThread(new ThreadBroker());
  try {
    await importModules(data.modules);
    releaseMemory();
    post({ t: "ready" });
  } catch (err) {
    post({ t: "bootError", error: serializeError(err) });
  }
}

void boot();
