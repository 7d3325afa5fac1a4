import type { RateLimiterBackend } from "./backend.js";
import { getRateLimiterBackend } from "../global.js";
import { positive } from "./rate-limiter.js";

/** Where blocking waiters are notified: `<barrier key>@events`, Dramatiq's name. */
export const BARRIER_EVENTS_SUFFIX = "@events";

export interface BarrierOptions {
  backend?: RateLimiterBackend;
  /** ms the barrier lives (default 15 minutes). */
  ttl?: number;
}

/**
 * Dramatiq's Barrier: a countdown shared by every process on the backend. `create(parties)` sets it up once;
 * each party calls `wait`; the last one clears it (and wakes blocking waiters through `<key>@events`).
 * A missing or expired barrier counts as cleared, as in Dramatiq.
 */
export class Barrier {
  private configured: RateLimiterBackend | undefined;
  readonly ttl: number;
  readonly eventsKey: string;

  constructor(
    readonly key: string,
    { backend, ttl = 900_000 }: BarrierOptions = {},
  ) {
    this.configured = backend;
    this.ttl = positive("ttl", ttl);
    this.eventsKey = `${key}${BARRIER_EVENTS_SUFFIX}`;
  }

  /** Resolved on first use, so that a limiter declared at import time finds the process wired by then. */
  get backend(): RateLimiterBackend {
    this.configured ??= getRateLimiterBackend();
    return this.configured;
  }

  /** Set the number of parties; false when the barrier already exists. */
  create(parties: number): Promise<boolean> {
    if (!Number.isInteger(parties) || parties <= 0) throw new RangeError(`a barrier needs a positive number of parties, got ${parties}`);
    return this.backend.add(this.key, parties, this.ttl);
  }

  /**
   * Arrive at the barrier. True for the party that clears it (and, when blocking, for every waiter once it is
   * cleared); false when not cleared (non-blocking) or when `timeout` ms passed first.
   */
  async wait({ block = true, timeout }: { block?: boolean; timeout?: number } = {}): Promise<boolean> {
    if (!(await this.backend.decr(this.key, 1, 1, this.ttl))) {
      await this.backend.waitNotify(this.eventsKey, this.ttl);
      return true;
    }
    if (!block) return false;
    return this.backend.wait(this.eventsKey, timeout);
  }
}
