import { ExpiringMap, KeyedWaiters } from "../expiring.js";
import { ResultBackend, type ResultBackendOptions } from "./backend.js";

/** Results kept in this process, with TTLs and waiters woken when a value arrives (no polling). */
export class MemoryResultBackend extends ResultBackend {
  private readonly values = new ExpiringMap<string>();
  private readonly waiters = new KeyedWaiters();

  constructor(options: ResultBackendOptions = {}) {
    super(options);
  }

  protected async storeRaw(key: string, value: string, ttl: number): Promise<void> {
    this.values.set(key, value, ttl);
    this.waiters.wake(key);
  }

  protected async getRaw(key: string, block: boolean, timeout: number): Promise<string | undefined> {
    const now = this.values.get(key);
    if (now !== undefined || !block) return now;
    await this.waiters.wait(key, timeout);
    return this.values.get(key);
  }

  async close(): Promise<void> {
    this.values.clear();
  }
}
