import { isMainThread, parentPort } from "node:worker_threads";
import { RemoteError, serializeError, type SerializedError } from "../errors.js";
import type { MainHandlers, MainMethod, MainRpc } from "./main-rpc.js";
import type { FromThread } from "./protocol.js";

/**
 * Calls from actor code in a worker thread to services that live in the main thread (the broker, the results
 * and rate-limiter backends), so that a process holds one connection per service whatever its thread count.
 * The calls are those of the MainRpc table (main-rpc.ts), checked by the compiler at both ends.
 */
let handlers: MainHandlers | undefined;

export function setMainHandlers(next: MainHandlers): void {
  handlers = next;
}

/** Answer a call that arrived from a thread: its method name and arguments are whatever the thread posted. */
export async function handleRpc(method: string, args: unknown[]): Promise<unknown> {
  const handler = handlers && Object.hasOwn(handlers, method) ? handlers[method as MainMethod] : undefined;
  if (!handler) throw new Error(`no main-thread handler for "${method}"`);
  return (handler as (...a: unknown[]) => Promise<unknown>)(...args);
}

let nextCallId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();

/** True inside a worker thread started by the Troupe worker. */
export function inWorkerThread(): boolean {
  return !isMainThread && parentPort !== null && workerThreadActive;
}
let workerThreadActive = false;
export function markWorkerThread(): void {
  workerThreadActive = true;
}

export function callMain<M extends MainMethod>(method: M, ...args: MainRpc[M]["args"]): Promise<MainRpc[M]["result"]> {
  const port = parentPort;
  if (!port) return handleRpc(method, args) as Promise<MainRpc[M]["result"]>;
  const callId = nextCallId++;
  return new Promise((resolve, reject) => {
    pending.set(callId, { resolve: resolve as (v: unknown) => void, reject });
    const message: FromThread = { t: "rpc", callId, method, args };
    port.postMessage(message);
  });
}

export function settleRpc(callId: number, ok: boolean, value: unknown, error?: SerializedError): void {
  const call = pending.get(callId);
  if (!call) return;
  pending.delete(callId);
  if (ok) call.resolve(value);
  else call.reject(new RemoteError(error ?? serializeError(new Error("rpc failed"))));
}
