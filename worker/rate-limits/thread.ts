import { callMain } from "../runtime/rpc.js";
import type { RateLimiterBackend } from "./backend.js";

/** The RPC method the main thread answers for rate limiters used inside actors. */
export const RATE_LIMITER_RPC = "rateLimiter";

export type RateLimiterOp = "add" | "incr" | "decr" | "incrAndSum" | "wait" | "waitNotify";

/**
 * The backend actor code sees inside a worker thread: every call goes to the main thread's backend, so all
 * threads of a process (and, with Redis, all processes) share one state and one connection.
 */
export class ThreadRateLimiterBackend implements RateLimiterBackend {
  private call<T>(op: RateLimiterOp, ...args: unknown[]): Promise<T> {
    return callMain<T>(RATE_LIMITER_RPC, op, args);
  }

  add(key: string, value: number, ttl: number): Promise<boolean> {
    return this.call("add", key, value, ttl);
  }
  incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    return this.call("incr", key, amount, maximum, ttl);
  }
  decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    return this.call("decr", key, amount, minimum, ttl);
  }
  incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    return this.call("incrAndSum", key, keys, amount, maximum, ttl);
  }
  wait(key: string, timeout: number | undefined): Promise<boolean> {
    return this.call("wait", key, timeout);
  }
  waitNotify(key: string, ttl: number): Promise<void> {
    return this.call("waitNotify", key, ttl);
  }
}
