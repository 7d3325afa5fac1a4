import { setTimeout as delay } from "node:timers/promises";
import type { Counter } from "prom-client";
import type { Broker } from "../broker.js";
import { getLogger } from "../logging.js";
import { workerMetrics } from "../metrics/metrics.js";
import { firesBetween } from "./next-fire.js";
import { defaultSchedules, type Schedule } from "./schedule.js";
import { followWindow, scheduleStoreFor, type FireOutcome, type ScheduleStore } from "./store.js";

const log = getLogger("schedules");

/** Where fires and misfires are counted: the worker's metrics, or the operator's registry. */
export interface ScheduleCounters {
  scheduleFires: Counter<"schedule" | "actor_name">;
  scheduleMisfires: Counter<"schedule" | "actor_name">;
}

export interface SchedulerOptions {
  /** The clock ticks are read on, epoch ms (default Date.now): the operator's injected one. */
  now?: () => number;
  /** Longest single timer, ms (default an hour): a clock that may jump is read again at least this often. */
  maxWaitMs?: number;
  /** Where fires and misfires are counted (default: this process's worker metrics). */
  counters?: ScheduleCounters;
  /** Called after this process fired a tick (not for one another process won). */
  onFire?: (schedule: Schedule, tick: number) => void;
}

/** setTimeout's limit is 2^31 - 1 ms; a far tick is waited for in hops and re-checked. */
const MAX_TIMER = 3_600_000;
/** Most ticks counted as misfires between two fires (a schedule down for a long time). */
const MAX_MISFIRES_COUNTED = 10_000;

/**
 * Fires the schedules declared in this process. Every worker process runs one: at each tick all of them ask the
 * store, which elects one (see store.ts), so a fleet enqueues once per tick and any process may die at any time.
 * A tick is tried only by a process that reaches it within the schedule's lateness (1 s, or its misfire grace);
 * when the event loop stalled past several ticks, only the latest one is tried. With a grace window a process
 * that starts also tries the latest tick within the window, which fires if no one fired it: the misfire policy
 * "fire once late". The process that fires a tick counts, as misfires, the ticks since the previously recorded one.
 * On RabbitMQ a tick another process claimed but has not committed is followed past the lateness (see tryFire).
 */
export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  /** The schedules fired now, by name: a timer of a schedule removed or replaced since it was armed does nothing. */
  private readonly active = new Map<string, Schedule>();
  private readonly now: () => number;
  private stopped = false;
  /** Ends the waits of fires in progress (a retry's backoff, a claim followed) when the scheduler stops. */
  private readonly halt = new AbortController();

  constructor(
    readonly store: ScheduleStore,
    readonly schedules: readonly Schedule[],
    private readonly options: SchedulerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    await this.store.connect();
    await this.add(this.schedules);
    log.info("schedules started", { schedules: this.schedules.map((s) => `${s.name} (${s.timetable.description})`), store: this.store.description });
  }

  /** Fire `schedules` too, from now on; one with the name of a schedule already fired here replaces it. */
  async add(schedules: readonly Schedule[]): Promise<void> {
    await this.store.declare(schedules.map((s) => s.definition()));
    for (const schedule of schedules) {
      this.remove(schedule.name);
      this.active.set(schedule.name, schedule);
      const now = this.now();
      if (schedule.misfire !== "skip") {
        const missed = firesBetween(schedule.timetable, now - schedule.lateness, now).at(-1);
        if (missed !== undefined) this.track(this.tryFire(schedule, missed, now));
      }
      this.arm(schedule, schedule.timetable.next(now));
    }
  }

  /** Stop firing the schedule `name` here (its records stay in the store). */
  remove(name: string): void {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
    this.active.delete(name);
  }

  /** The schedules fired now. */
  list(): Schedule[] {
    return [...this.active.values()];
  }

  private arm(schedule: Schedule, tick: number | undefined): void {
    if (this.stopped || tick === undefined || this.active.get(schedule.name) !== schedule) return;
    const wait = Math.min(this.options.maxWaitMs ?? MAX_TIMER, Math.max(0, tick - this.now()));
    this.timers.set(schedule.name, setTimeout(() => this.onTimer(schedule, tick), wait));
  }

  private onTimer(schedule: Schedule, tick: number): void {
    const now = this.now();
    if (now < tick) return this.arm(schedule, tick);
    // The latest tick due: earlier ones the loop slept through are past saving by this process.
    const due = firesBetween(schedule.timetable, tick, now).at(-1) ?? tick;
    const fired = now - due <= schedule.lateness ? this.tryFire(schedule, due, now) : Promise.resolve();
    if (now - due > schedule.lateness) log.warn("tick reached too late to fire here", { schedule: schedule.name, tick: new Date(due).toISOString(), lateMs: now - due });
    this.track(fired);
    // The next tick is armed at once, not after the store answers: a slow store must not delay the next tick.
    this.arm(schedule, schedule.timetable.next(due));
  }

  /**
   * Ask the store for `tick` until it answers: a failed call (the store is unreachable) is retried with backoff
   * while the tick is within the schedule's lateness, so a short outage delays a tick rather than losing it. A
   * tick another process claimed and has not committed (RabbitMQ) is asked again whenever that claim's lease may
   * have lapsed, for as long as the claim lives (followWindow): if its holder died before its publish was
   * confirmed, this process takes the tick over and publishes it. The tick was won in time, so following it is not
   * bounded by the lateness; a process that stops leaves it to the others that follow it.
   */
  private async tryFire(schedule: Schedule, tick: number, now: number): Promise<void> {
    for (let attempt = 0; !this.stopped; ) {
      let wait: number;
      try {
        const outcome = await this.store.fire(schedule, tick, schedule.message(tick));
        if (!outcome.heldBy) return this.fired(schedule, tick, outcome);
        if (this.now() - tick > followWindow(schedule)) {
          log.error("tick claimed by another process and never committed; no longer following it", { schedule: schedule.name, tick: new Date(tick).toISOString(), holder: outcome.heldBy.holder });
          return;
        }
        // A little past the lease, so that the holder's lapsed lease is gone from Redis's view too.
        wait = outcome.heldBy.leaseLeftMs + 10;
        attempt = 0;
      } catch (err) {
        wait = Math.min(2000, 100 * 2 ** attempt++);
        if (this.now() + wait - tick > schedule.lateness) {
          log.error("schedule could not fire; the tick is another process's or missed", { schedule: schedule.name, tick: new Date(tick).toISOString(), lateMs: now - tick, err });
          return;
        }
        log.warn("schedule store call failed; retrying within the tick's lateness", { schedule: schedule.name, tick: new Date(tick).toISOString(), retryIn: wait, err });
      }
      await delay(wait, undefined, { signal: this.halt.signal }).catch(() => undefined);
    }
  }

  /** Count and log the outcome of this process's call for `tick`. */
  private fired(schedule: Schedule, tick: number, outcome: FireOutcome): void {
    if (outcome.paused) log.debug("schedule paused: tick skipped", { schedule: schedule.name, tick: new Date(tick).toISOString() });
    if (!outcome.fired) return;
    const labels = { schedule: schedule.name, actor_name: schedule.actorName };
    const counters = this.options.counters ?? workerMetrics();
    counters.scheduleFires.inc(labels);
    if (outcome.previous !== undefined) {
      const missed = firesBetween(schedule.timetable, outcome.previous, tick - 1, MAX_MISFIRES_COUNTED).length;
      if (missed > 0) {
        counters.scheduleMisfires.inc(labels, missed);
        log.warn("schedule missed ticks", { schedule: schedule.name, missed, since: new Date(outcome.previous).toISOString() });
      }
    }
    log.info("schedule fired", { schedule: schedule.name, actor: schedule.actorName, tick: new Date(tick).toISOString(), lateMs: this.now() - tick });
    this.options.onFire?.(schedule, tick);
  }

  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  /** Stop arming ticks, let fires in progress finish, close the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halt.abort();
    for (const name of [...this.active.keys()]) this.remove(name);
    await Promise.all(this.running);
    await this.store.close();
  }
}

/**
 * Start firing the schedules this process declared (`schedule(...)` in its modules) on `broker`; undefined when
 * there are none. `troupe worker` calls this in each worker process; call it yourself when you embed a Worker.
 */
export async function startScheduler(broker: Broker, schedules: readonly Schedule[] = defaultSchedules.list()): Promise<Scheduler | undefined> {
  if (schedules.length === 0) return undefined;
  const scheduler = new Scheduler(scheduleStoreFor(broker), schedules);
  await scheduler.start();
  return scheduler;
}
