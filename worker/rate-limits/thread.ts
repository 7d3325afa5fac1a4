import { callMain } from "../runtime/rpc.js";
import type { RateLimiterBackend } from "./backend.js";

/**
 * The backend actor code sees inside a worker thread: every call goes to the main thread's backend, so all
 * threads of a process (and, with Redis, all processes) share one state and one connection.
 */
export class ThreadRateLimiterBackend implements RateLimiterBackend {
  add(key: string, value: number, ttl: number): Promise<boolean> {
    return callMain("rateLimiter.add", key, value, ttl);
  }
  incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    return callMain("rateLimiter.incr", key, amount, maximum, ttl);
  }
  decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    return callMain("rateLimiter.decr", key, amount, minimum, ttl);
  }
  incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    return callMain("rateLimiter.incrAndSum", key, keys, amount, maximum, ttl);
  }
  wait(key: string, timeout: number | undefined): Promise<boolean> {
    return callMain("rateLimiter.wait", key, timeout);
  }
  waitNotify(key: string, ttl: number): Promise<void> {
    return callMain("rateLimiter.waitNotify", key, ttl);
  }
}
