import type { SerializedError } from "../errors.js";
import type { MessageData } from "../message.js";

/** The error name of a message a thread gave back unstarted. */
export const RECALLED = "Recalled";

/** Messages from the main thread to a worker thread. */
export type ToThread =
  /** `queued`: the thread is already running `concurrency` tasks; it reports `started` when this one begins. */
  | { t: "run"; id: number; data: MessageData; queued: boolean }
  | { t: "batch"; items: ToThread[] }
  | { t: "abort"; id: number; reason: SerializedError }
  /** Give back a message sent ahead if it has not begun (the worker is stopping); a running one is left alone. */
  | { t: "recall"; id: number }
  | { t: "shutdown" }
  | { t: "overrides"; overrides: Record<string, Record<string, unknown>> }
  | { t: "rpcResult"; callId: number; ok: true; value: unknown }
  | { t: "rpcResult"; callId: number; ok: false; error: SerializedError };

/** Messages from a worker thread to the main thread. */
export type FromThread =
  | { t: "ready" }
  | { t: "bootError"; error: SerializedError }
  | { t: "done"; id: number; ok: true; result: unknown }
  | { t: "done"; id: number; ok: false; error: SerializedError }
  | { t: "started"; id: number }
  | { t: "batch"; items: FromThread[] }
  | { t: "rpc"; callId: number; method: string; args: unknown[] };

export interface ThreadData {
  modules: string[];
  threadIndex: number;
  concurrency: number;
}
