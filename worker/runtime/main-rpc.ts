import type { EnqueueOptions, QueueStats } from "../broker.js";
import type { GetResultOptions, MessageData } from "../message.js";
import type { RateLimiterBackend } from "../rate-limits/backend.js";

/** The rate-limiter primitives, each its own method, so that a primitive added to the backend is added here. */
type RateLimiterOp = Exclude<keyof RateLimiterBackend, "connect" | "close">;

type RateLimiterRpc = {
  [O in RateLimiterOp as `rateLimiter.${O}`]: { args: Parameters<RateLimiterBackend[O]>; result: Awaited<ReturnType<RateLimiterBackend[O]>> };
};

/**
 * Every call a worker thread makes to the main thread: method name → argument tuple and result. Both ends are
 * checked against it: `callMain` (rpc.ts) accepts only these calls, and the main thread's handler table must
 * answer each with the declared result. Values cross the thread boundary by structured clone, so messages travel
 * as MessageData. Types only, so that this module sits below everything it names.
 */
export type MainRpc = {
  enqueueMany: { args: [messages: MessageData[], options: EnqueueOptions]; result: MessageData[] };
  queueStats: { args: [queue: string]; result: QueueStats };
  getResult: { args: [message: MessageData, options: GetResultOptions]; result: unknown };
} & RateLimiterRpc;

export type MainMethod = keyof MainRpc;

/** What the main thread installs to answer worker threads (setMainHandlers in rpc.ts). */
export type MainHandlers = { [M in MainMethod]: (...args: MainRpc[M]["args"]) => Promise<MainRpc[M]["result"]> };
