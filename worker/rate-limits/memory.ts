import type { RateLimiterBackend } from "./backend.js";

interface Entry {
  value: number;
  expiresAt: number;
}

/**
 * Rate-limiter state kept in this process (Dramatiq's StubBackend): enough for one worker process, and what the
 * worker threads of a process share through the main thread. Waiters on a key are woken without polling.
 */
export class MemoryRateLimiterBackend implements RateLimiterBackend {
  private readonly values = new Map<string, Entry>();
  private readonly notified = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  private read(key: string): number | undefined {
    const entry = this.values.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.values.delete(key);
      return undefined;
    }
    return entry.value;
  }

  private write(key: string, value: number, ttl: number): void {
    this.values.set(key, { value, expiresAt: Date.now() + ttl });
  }

  async add(key: string, value: number, ttl: number): Promise<boolean> {
    if (this.read(key) !== undefined) return false;
    this.write(key, value, ttl);
    return true;
  }

  async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    const value = (this.read(key) ?? 0) + amount;
    if (value > maximum) return false;
    this.write(key, value, ttl);
    return true;
  }

  async decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    const value = (this.read(key) ?? 0) - amount;
    if (value < minimum) return false;
    this.write(key, value, ttl);
    return true;
  }

  async incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    const value = (this.read(key) ?? 0) + amount;
    if (value > maximum) return false;
    const total = keys.reduce((sum, k) => sum + (this.read(k) ?? 0), amount);
    if (total > maximum) return false;
    this.write(key, value, ttl);
    return true;
  }

  private isNotified(key: string): boolean {
    const expiresAt = this.notified.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt > Date.now()) return true;
    this.notified.delete(key);
    return false;
  }

  async wait(key: string, timeout: number | undefined): Promise<boolean> {
    if (this.isNotified(key)) return true;
    return new Promise<boolean>((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const waiters = set;
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer =
        timeout === undefined
          ? undefined
          : setTimeout(() => {
              waiters.delete(wake);
              resolve(false);
            }, timeout);
      waiters.add(wake);
    });
  }

  async waitNotify(key: string, ttl: number): Promise<void> {
    this.notified.set(key, Date.now() + ttl);
    const waiting = this.waiters.get(key);
    this.waiters.delete(key);
    for (const wake of waiting ?? []) wake();
  }

  async close(): Promise<void> {
    this.values.clear();
    this.notified.clear();
  }
}
