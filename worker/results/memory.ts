import { ResultBackend, type ResultBackendOptions } from "./backend.js";

interface Stored {
  value: string;
  expiresAt: number;
}

/** Results kept in this process, with TTLs and waiters woken when a value arrives (no polling). */
export class MemoryResultBackend extends ResultBackend {
  private readonly values = new Map<string, Stored>();
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(options: ResultBackendOptions = {}) {
    super(options);
  }

  protected async storeRaw(key: string, value: string, ttl: number): Promise<void> {
    this.values.set(key, { value, expiresAt: Date.now() + ttl });
    const waiting = this.waiters.get(key);
    if (waiting) {
      this.waiters.delete(key);
      for (const wake of waiting) wake();
    }
  }

  private read(key: string): string | undefined {
    const stored = this.values.get(key);
    if (!stored) return undefined;
    if (stored.expiresAt <= Date.now()) {
      this.values.delete(key);
      return undefined;
    }
    return stored.value;
  }

  protected async getRaw(key: string, block: boolean, timeout: number): Promise<string | undefined> {
    const now = this.read(key);
    if (now !== undefined || !block) return now;
    await new Promise<void>((resolve) => {
      let set = this.waiters.get(key);
      if (!set) {
        set = new Set();
        this.waiters.set(key, set);
      }
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        set!.delete(wake);
        resolve();
      }, timeout);
      set.add(wake);
    });
    return this.read(key);
  }

  async close(): Promise<void> {
    this.values.clear();
  }
}
