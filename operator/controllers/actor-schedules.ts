import type { Broker } from "../../worker/broker.js";
import { getLogger, redactUrl } from "../../worker/logging.js";
import type { Schedule } from "../../worker/schedules/schedule.js";
import { Scheduler, type ScheduleCounters } from "../../worker/schedules/scheduler.js";
import { FIRED_BY, scheduleStoreFor, type FireRecord, type PauseRecord, type ScheduleStore } from "../../worker/schedules/store.js";
import type { BrokerFactory } from "../brokers/connections.js";
import type { ActorSchedule, ScheduleTarget } from "../resources/actor-schedules.js";

const log = getLogger("operator.schedules");

export interface ScheduleRunnerOptions {
  brokerFactory: BrokerFactory;
  /** The clock ticks are read on (the operator's injected one). */
  now: () => number;
  counters?: ScheduleCounters;
  /** After this process fired a tick of a schedule of `owner`. */
  onFire?: (owner: string, schedule: Schedule, tick: number) => void;
}

/** One broker's (and election Redis's) store, with the worker's Scheduler firing every owner's schedules on it. */
interface StoreEntry {
  broker: Broker;
  store: ScheduleStore;
  scheduler: Scheduler;
  /** Schedule name → owner, for onFire. */
  owners: Map<string, string>;
}

interface Owned {
  storeKey: string;
  /** Schedule name → its definition as JSON, to tell a changed schedule from one seen before. */
  signatures: Map<string, string>;
}

/** What the store says of an owner's schedules, for status. */
export interface OwnerRecords {
  store: string;
  records: Map<string, FireRecord>;
  paused: Map<string, PauseRecord>;
}

/**
 * Fires the schedules Actor resources declare, with the workers' own machinery: per broker, one Scheduler on the
 * store the workers elect in (worker/schedules/store.ts), so that a tick is enqueued once whoever tries it — this
 * operator, the next leader, or a worker declaring a schedule of the same name in code. The operator's controllers
 * (leader only) and `troupe up` keep it in step with the Actors they read: `sync` per Actor, `retain` for the Actors
 * that still exist.
 */
export class ActorScheduleRunner {
  private readonly stores = new Map<string, StoreEntry>();
  private readonly owned = new Map<string, Owned>();
  private stopped = false;

  constructor(private readonly options: ScheduleRunnerOptions) {}

  /**
   * Fire exactly `schedules` for `owner` (`namespace/name` of an Actor) on `target`. A schedule with `pause` set is
   * paused or resumed in the store before it fires anything (the store's pause is the one `troupe schedules` sets).
   * Throws when the store cannot be reached; the owner's schedules then fire nowhere until a later sync succeeds.
   */
  async sync(owner: string, target: ScheduleTarget, schedules: readonly (ActorSchedule & { pause?: boolean })[]): Promise<string> {
    if (this.stopped) throw new Error("schedules are stopped");
    const key = `${target.brokerUrl}\n${target.electionUrl ?? ""}`;
    const previous = this.owned.get(owner);
    if (previous && previous.storeKey !== key) await this.release(owner);
    let entry: StoreEntry;
    try {
      entry = await this.entry(key, target);
    } catch (err) {
      await this.release(owner);
      throw err;
    }
    const owned = this.owned.get(owner) ?? { storeKey: key, signatures: new Map() };
    this.owned.set(owner, owned);
    const wanted = new Set(schedules.map((s) => s.schedule.name));
    for (const name of [...owned.signatures.keys()].filter((n) => !wanted.has(n))) await this.drop(entry, owned, name);
    for (const { schedule, pause } of schedules) {
      if (pause !== undefined) await entry.store.setPaused(schedule.name, pause);
    }
    const changed = schedules.filter(({ schedule }) => owned.signatures.get(schedule.name) !== JSON.stringify(schedule.definition())).map((s) => s.schedule);
    for (const schedule of changed) {
      owned.signatures.set(schedule.name, JSON.stringify(schedule.definition()));
      entry.owners.set(schedule.name, owner);
    }
    if (changed.length) {
      await entry.scheduler.add(changed);
      log.info("actor schedules firing", { owner, schedules: changed.map((s) => `${s.name} (${s.timetable.description})`), store: entry.store.description });
    }
    return entry.store.description;
  }

  /** Stop firing the schedules of every owner in `namespace` but those in `keep`. */
  async retain(namespace: string, keep: ReadonlySet<string>): Promise<void> {
    for (const owner of [...this.owned.keys()]) {
      if (owner.startsWith(`${namespace}/`) && !keep.has(owner)) await this.release(owner);
    }
  }

  /** What the store has recorded for `owner`'s schedules; undefined when it fires none. */
  async records(owner: string): Promise<OwnerRecords | undefined> {
    const owned = this.owned.get(owner);
    const entry = owned && this.stores.get(owned.storeKey);
    if (!entry) return undefined;
    const [records, paused] = await Promise.all([entry.store.records(), entry.store.paused()]);
    return { store: entry.store.description, records, paused };
  }

  /** Stop every timer and close the stores; nothing fires after this resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    const entries = [...this.stores.values()];
    this.stores.clear();
    this.owned.clear();
    await Promise.allSettled(entries.map((e) => this.close(e)));
  }

  private async entry(key: string, target: ScheduleTarget): Promise<StoreEntry> {
    const existing = this.stores.get(key);
    if (existing) return existing;
    const broker = this.options.brokerFactory(target.brokerUrl);
    const owners = new Map<string, string>();
    try {
      await broker.connect();
      const store = scheduleStoreFor(broker, target.electionUrl);
      const scheduler = new Scheduler(store, [], {
        now: this.options.now,
        // The operator's clock may be stepped (NTP, a test's): it is read again every second, not once an hour.
        maxWaitMs: 1000,
        counters: this.options.counters,
        onFire: (schedule, tick) => {
          const owner = owners.get(schedule.name);
          if (owner) this.options.onFire?.(owner, schedule, tick);
        },
      });
      await scheduler.start();
      const entry = { broker, store, scheduler, owners };
      if (this.stopped) {
        await this.close(entry);
        throw new Error("schedules are stopped");
      }
      this.stores.set(key, entry);
      return entry;
    } catch (err) {
      await broker.close().catch(() => undefined);
      throw new Error(`schedule store on ${redactUrl(target.electionUrl ?? target.brokerUrl)} unavailable: ${(err as Error).message}`);
    }
  }

  /**
   * Stop firing one schedule and drop what the store keeps of it, unless a worker declared it since (a schedule of
   * the same name in code): `troupe schedules` then no longer lists a schedule nothing fires.
   */
  private async drop(entry: StoreEntry, owned: Owned, name: string): Promise<void> {
    entry.scheduler.remove(name);
    entry.owners.delete(name);
    owned.signatures.delete(name);
    try {
      if ((await entry.store.definitions()).get(name)?.declaredBy === FIRED_BY) await entry.store.forget(name);
    } catch (err) {
      log.warn("could not forget a removed schedule in its store", { schedule: name, store: entry.store.description, err });
    }
  }

  private async release(owner: string): Promise<void> {
    const owned = this.owned.get(owner);
    if (!owned) return;
    this.owned.delete(owner);
    const entry = this.stores.get(owned.storeKey);
    if (!entry) return;
    for (const name of [...owned.signatures.keys()]) await this.drop(entry, owned, name);
    if (![...this.owned.values()].some((o) => o.storeKey === owned.storeKey)) {
      this.stores.delete(owned.storeKey);
      await this.close(entry);
    }
  }

  private async close(entry: StoreEntry): Promise<void> {
    await entry.scheduler.stop();
    await entry.broker.close();
  }
}
