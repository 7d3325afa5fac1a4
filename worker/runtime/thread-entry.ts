/**
 * Entry point of a worker thread: imports the user's actor modules, then runs the messages the main thread
 * sends it, several at once when the actors are async.
 */
import { parentPort, workerData } from "node:worker_threads";
import { TimeLimitExceeded, serializeError, type SerializedError } from "../errors.js";
import { lockBroker } from "../global.js";
import { Message, setResultLookup, type MessageData } from "../message.js";
import { defaultRegistry } from "../registry.js";
import { actorContext, markShuttingDown } from "./context.js";
import { RECALLED, type FromThread, type ThreadData, type ToThread } from "./protocol.js";
import { callMain, markWorkerThread, settleRpc } from "./rpc.js";
import { ThreadBroker } from "./thread-broker.js";
import { importModules } from "./load-modules.js";
import type { ActorOptions } from "../options.js";

const port = parentPort!;
const data = workerData as ThreadData;
const running = new Map<number, AbortController>();

/**
 * Results leave in batches: a `done` waits for the end of the current macrotask (setImmediate), or goes out with
 * the `started` of the queued task that follows it, so a thread running queued sync actors back to back wakes the
 * main thread once per pair instead of once per message.
 */
let outbox: FromThread[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  if (outbox.length === 0) return;
  const items = outbox;
  outbox = [];
  port.postMessage(items.length === 1 ? items[0] : { t: "batch", items });
}

function post(message: FromThread): void {
  outbox.push(message);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

interface Pending {
  id: number;
  data: MessageData;
  queued: boolean;
}

/** Tasks the main thread sent ahead of time, started as running ones finish (at most `concurrency` at once). */
const queue: Pending[] = [];
let active = 0;

function pump(): void {
  while (active < data.concurrency && queue.length > 0) {
    const task = queue.shift()!;
    active++;
    if (task.queued) {
      // The main thread arms the time limit when it hears this, so it must leave before a sync actor blocks us.
      post({ t: "started", id: task.id });
      flush();
    }
    void run(task.id, task.data).finally(() => {
      active--;
      pump();
    });
  }
}

function rebuildAbortReason(reason: SerializedError): Error {
  const err = reason.name === "TimeLimitExceeded" ? new TimeLimitExceeded(reason.message) : new Error(reason.message);
  err.name = reason.name;
  return err;
}

async function run(id: number, messageData: MessageData): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  try {
    const message = Message.fromData(messageData);
    const actor = defaultRegistry.require(message.actorName);
    const args: unknown[] = [...message.args];
    if (Object.keys(message.kwargs).length > 0) args.push(message.kwargs);
    const result = await actorContext.run({ message, signal: controller.signal }, () => (actor.fn as (...a: unknown[]) => unknown)(...args));
    try {
      post({ t: "done", id, ok: true, result });
    } catch (err) {
      post({ t: "done", id, ok: false, error: serializeError(new TypeError(`the actor's return value cannot be sent between threads: ${(err as Error).message}`)) });
    }
  } catch (err) {
    post({ t: "done", id, ok: false, error: serializeError(err) });
  } finally {
    running.delete(id);
  }
}

function handle(msg: ToThread): void {
  switch (msg.t) {
    case "batch":
      for (const item of msg.items) handle(item);
      break;
    case "run":
      queue.push({ id: msg.id, data: msg.data, queued: msg.queued });
      pump();
      break;
    case "recall": {
      const waiting = queue.findIndex((task) => task.id === msg.id);
      if (waiting >= 0) {
        queue.splice(waiting, 1);
        post({ t: "done", id: msg.id, ok: false, error: { name: RECALLED, message: "given back before it began", chain: [RECALLED] } });
      }
      break;
    }
    case "abort": {
      const waiting = queue.findIndex((task) => task.id === msg.id);
      if (waiting >= 0) {
        queue.splice(waiting, 1);
        post({ t: "done", id: msg.id, ok: false, error: msg.reason });
      } else running.get(msg.id)?.abort(rebuildAbortReason(msg.reason));
      break;
    }
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
  lockBroker(new ThreadBroker());
  setResultLookup((message, options) => callMain("getResult", message.toData(), options));
  try {
    await importModules(data.modules);
    post({ t: "ready" });
  } catch (err) {
    post({ t: "bootError", error: serializeError(err) });
  }
}

void boot();
