import type { SerializedError } from "../errors.js";
import type { MessageData } from "../message.js";

/** Messages from the main thread to a worker thread. */
export type ToThread =
  | { t: "run"; id: number; data: MessageData }
  | { t: "abort"; id: number; reason: SerializedError }
  | { t: "shutdown" }
  | { t: "overrides"; overrides: Record<string, Record<string, unknown>> }
  | { t: "rpcResult"; callId: number; ok: true; value: unknown }
  | { t: "rpcResult"; callId: number; ok: false; error: SerializedError };

/** Messages from a worker thread to the main thread. */
export type FromThread =
  | { t: "ready"; actors: string[] }
  | { t: "bootError"; error: SerializedError }
  | { t: "done"; id: number; ok: true; result: unknown }
  | { t: "done"; id: number; ok: false; error: SerializedError }
  | { t: "rpc"; callId: number; method: string; args: unknown[] };

export interface ThreadData {
  modules: string[];
  threadIndex: number;
}
