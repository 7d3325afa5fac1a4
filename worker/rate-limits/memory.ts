import { ExpiringMap, KeyedWaiters } from "../expiring.js";
import type { RateLimiterBackend } from "./backend.js";

/**
 * Rate-limiter state kept in this process (Dramatiq's StubBackend): enough for one worker process, and what the
 * worker threads of a process share through the main thread. Waiters on a key are woken without polling.
 */
export class MemoryRateLimiterBackend implements RateLimiterBackend {
  private readonly values = new ExpiringMap<number>();
  private readonly notified = new ExpiringMap<true>();
  private readonly waiters = new KeyedWaiters();

  async add(key: string, value: number, ttl: number): Promise<boolean> {
    if (this.values.get(key) !== undefined) return false;
    this.values.set(key, value, ttl);
    return true;
  }

  async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    const value = (this.values.get(key) ?? 0) + amount;
    if (value > maximum) return false;
    this.values.set(key, value, ttl);
    return true;
  }

  async decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    const value = (this.values.get(key) ?? 0) - amount;
    if (value < minimum) return false;
    this.values.set(key, value, ttl);
    return true;
  }

  async incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    const value = (this.values.get(key) ?? 0) + amount;
    if (value > maximum) return false;
    const total = keys.reduce((sum, k) => sum + (this.values.get(k) ?? 0), amount);
    if (total > maximum) return false;
    this.values.set(key, value, ttl);
    return true;
  }

  async wait(key: string, timeout: number | undefined): Promise<boolean> {
    return this.notified.get(key) ?? this.waiters.wait(key, timeout);
  }

  async waitNotify(key: string, ttl: number): Promise<void> {
    this.notified.set(key, true, ttl);
    this.waiters.wake(key);
  }

  async close(): Promise<void> {
    this.values.clear();
    this.notified.clear();
  }
}
