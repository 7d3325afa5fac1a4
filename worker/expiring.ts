/**
 * The in-process stand-ins for a key-value service with TTLs and blocking reads, shared by the memory results and
 * rate-limiter backends.
 */

/** A map whose entries expire `ttl` ms after they are set: an expired entry reads as absent and is dropped. */
export class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttl: number): void {
    this.entries.set(key, { value, expiresAt: Date.now() + ttl });
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Callers waiting on a key, each until the key is woken or its own timeout passes (no polling). */
export class KeyedWaiters {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** True when woken, false when `timeout` ms (undefined: no limit) passed first. */
  wait(key: string, timeout: number | undefined): Promise<boolean> {
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

  /** Wake everyone waiting on `key` now. */
  wake(key: string): void {
    const waiting = this.waiters.get(key);
    this.waiters.delete(key);
    for (const wake of waiting ?? []) wake();
  }
}
