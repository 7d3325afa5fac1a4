import { isMainThread, parentPort } from "node:worker_threads";
import { RemoteError, serializeError, type SerializedError } from "../errors.js";
import type { FromThread } from "./protocol.js";

/**
 * Calls from actor code in a worker thread to services that live in the main thread (the broker, the results
 * and rate-limiter backends), so that a process holds one connection per service whatever its thread count.
 */
export type MainHandler = (...args: never[]) => unknown;
const handlers = new Map<string, MainHandler>();

export function registerMainHandler(method: string, handler: MainHandler): void {
  handlers.set(method, handler);
}

export async function handleRpc(method: string, args: unknown[]): Promise<unknown> {
  const handler = handlers.get(method);
  if (!handler) throw new Error(`no main-thread handler for "${method}"`);
  return (handler as (...a: unknown[]) => unknown)(...args);
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

export function callMain<T>(method: string, ...args: unknown[]): Promise<T> {
  const port = parentPort;
  if (!port) return handleRpc(method, args) as Promise<T>;
  const callId = nextCallId++;
  return new Promise<T>((resolve, reject) => {
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
