import type { SerializedError } from "../errors.js";

/** The error name of a message a thread gave back unstarted. */
export const RECALLED = "Recalled";
export const RECALLED_ERROR: SerializedError = { name: RECALLED, message: "given back before it began", chain: [RECALLED] };

/** Messages from the main thread to a worker thread. */
export type ToThread =
  /** Runs when the thread has room; the thread records the start in its RunningSlots instead of posting it. */
  /** `body`: the message as JSON text (a string crosses threads far cheaper than an object graph). */
  | { t: "run"; id: number; actor: string; body: string }
  | { t: "batch"; items: ToThread[] }
  | { t: "abort"; id: number; reason: SerializedError }
  /** Give back a message sent ahead if it has not begun; a running one is left alone, or aborted with `abort`. */
  | { t: "recall"; id: number; abort?: SerializedError }
  | { t: "shutdown" }
  | { t: "overrides"; overrides: Record<string, Record<string, unknown>> }
  | { t: "rpcResult"; callId: number; ok: true; value: unknown }
  | { t: "rpcResult"; callId: number; ok: false; error: SerializedError };

/** Messages from a worker thread to the main thread. */
export type FromThread =
  | { t: "ready" }
  | { t: "bootError"; error: SerializedError }
  /** `ms`: how long the actor ran (absent when it never began: recalled, aborted while waiting). */
  | { t: "done"; id: number; ok: true; result: unknown; ms?: number }
  | { t: "done"; id: number; ok: false; error: SerializedError; ms?: number }
  | { t: "batch"; items: FromThread[] }
  | { t: "rpc"; callId: number; method: string; args: unknown[] };

export interface ThreadData {
  modules: string[];
  threadIndex: number;
  concurrency: number;
  /** The thread's RunningSlots (one slot per concurrent message). */
  running: SharedArrayBuffer;
}
