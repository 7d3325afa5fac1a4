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
import type { FromThread, ThreadData, ToThread } from "./protocol.js";
import { callMain, markWorkerThread, settleRpc } from "./rpc.js";
import { ThreadBroker } from "./thread-broker.js";
import { importModules } from "./load-modules.js";
import type { ActorOptions } from "../options.js";

const port = parentPort!;
const data = workerData as ThreadData;
const running = new Map<number, AbortController>();

function post(message: FromThread): void {
  port.postMessage(message);
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

port.on("message", (msg: ToThread) => {
  switch (msg.t) {
    case "run":
      void run(msg.id, msg.data);
      break;
    case "abort":
      running.get(msg.id)?.abort(rebuildAbortReason(msg.reason));
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
});

async function boot(): Promise<void> {
  markWorkerThread();
  lockBroker(new ThreadBroker());
  setResultLookup((message, options) => callMain("getResult", message.toData(), options));
  try {
    await importModules(data.modules);
    post({ t: "ready", actors: defaultRegistry.names() });
  } catch (err) {
    post({ t: "bootError", error: serializeError(err) });
  }
}

void boot();
