import type { Actor } from "../actor.js";
import type { JsonValue } from "../encoder.js";
import { TroupeError } from "../errors.js";
import { Message } from "../message.js";
import { cronTimetable, intervalTimetable, nextFires, type Timetable } from "./next-fire.js";

/** What to do with a tick that no worker reached in time (none was running, the store was unreachable). */
export type MisfirePolicy = "skip" | { graceMs: number };

export interface ScheduleOptions<A extends unknown[]> {
  /** Unique name, the key of the schedule's records in the store (default `<actor>@<cron or every>`). */
  name?: string;
  /** IANA time zone the cron fields are read in (default UTC); intervals ignore it. */
  tz?: string;
  args?: A;
  kwargs?: Record<string, JsonValue>;
  /** `"skip"` (default): a tick fires only if a worker reaches it within a second. `{ graceMs }`: once, late, within the window. */
  misfire?: MisfirePolicy;
}

/** A schedule as the store keeps it (Redis: the hash `<ns>:schedules.defs`), written by each process that runs it. */
export interface ScheduleDefinition {
  name: string;
  actor: string;
  queue: string;
  cron?: string;
  tz?: string;
  every?: string | number;
  misfire: MisfirePolicy;
  args: JsonValue[];
  kwargs?: Record<string, JsonValue>;
}

/**
 * One message of a stored schedule enqueued now, outside its ticks (`troupe schedules trigger`, the console): its
 * arguments, tagged with its name and `schedule_triggered` instead of a tick.
 */
export function triggerMessage(definition: ScheduleDefinition): Message {
  return new Message({
    queueName: definition.queue,
    actorName: definition.actor,
    args: definition.args,
    kwargs: definition.kwargs ?? {},
    options: { [SCHEDULE_OPTION]: definition.name, schedule_triggered: true },
  });
}

/** The fire times of a stored definition, as the processes that declared it compute them. */
export function definitionTimetable(definition: ScheduleDefinition): Timetable {
  return definition.cron !== undefined ? cronTimetable(definition.cron, definition.tz ?? "UTC") : intervalTimetable(definition.every!);
}

/** `schedule(actor, { every: "30s" })`: a period (see parseEvery) instead of a cron expression. */
export interface Every {
  every: string | number;
}

const OPTION_KEYS = new Set(["name", "tz", "args", "kwargs", "misfire"]);

/** Wire options a scheduled message carries, so consumers and tests can tell which tick sent it. */
export const SCHEDULE_OPTION = "schedule";
export const SCHEDULE_TICK_OPTION = "schedule_tick";

/** A recurring enqueue of one actor, fired by the workers that load the module declaring it (see Scheduler). */
export class Schedule {
  readonly name: string;
  readonly timetable: Timetable;
  /** How late a tick may still fire: a second by default (a slow timer or store call), else the grace window. */
  readonly lateness: number;
  readonly misfire: MisfirePolicy;

  constructor(
    readonly actor: Pick<Actor<never[], unknown>, "actorName" | "queueName" | "messageWithOptions">,
    readonly when: string | Every,
    private readonly options: ScheduleOptions<unknown[]> = {},
  ) {
    for (const key of Object.keys(options)) {
      if (!OPTION_KEYS.has(key)) throw new TroupeError(`schedule of "${actor.actorName}": unknown option "${key}"`);
    }
    if (typeof when === "string") this.timetable = cronTimetable(when, options.tz ?? "UTC");
    else if (when && typeof when === "object" && "every" in when) {
      if (options.tz !== undefined) throw new TroupeError(`schedule of "${actor.actorName}": tz applies to cron expressions, not to every`);
      this.timetable = intervalTimetable(when.every);
    } else throw new TroupeError(`schedule of "${actor.actorName}": give a cron expression or { every: "30s" }`);
    const misfire = options.misfire ?? "skip";
    if (misfire !== "skip" && !(typeof misfire === "object" && Number.isFinite(misfire.graceMs) && misfire.graceMs > 0)) {
      throw new TroupeError(`schedule of "${actor.actorName}": misfire must be "skip" or { graceMs: a positive number of ms }`);
    }
    this.misfire = misfire;
    this.lateness = misfire === "skip" ? 1000 : misfire.graceMs;
    this.name = options.name ?? `${actor.actorName}@${typeof when === "string" ? when.trim() : this.timetable.description.replace(/^every /, "every:")}`;
    if (this.name === "") throw new TroupeError(`schedule of "${actor.actorName}": the name must not be empty`);
    // Built once now, so that bad args fail at declaration rather than at the first tick.
    this.message(0);
  }

  get actorName(): string {
    return this.actor.actorName;
  }

  get queueName(): string {
    return this.actor.queueName;
  }

  /** The message one tick enqueues: the schedule's arguments, tagged with the schedule's name and the tick. */
  message(tick: number): Message {
    return this.actor.messageWithOptions({
      args: (this.options.args ?? []) as never[],
      kwargs: this.options.kwargs,
      options: { [SCHEDULE_OPTION]: this.name, [SCHEDULE_TICK_OPTION]: tick },
    });
  }

  /** What the store keeps of the schedule for `troupe schedules`, which reads it without the actor's code. */
  definition(): ScheduleDefinition {
    const when = typeof this.when === "string" ? { cron: this.when.trim(), tz: this.options.tz ?? "UTC" } : { every: this.when.every };
    return {
      name: this.name,
      actor: this.actorName,
      queue: this.queueName,
      ...when,
      misfire: this.misfire,
      args: (this.options.args ?? []) as JsonValue[],
      ...(this.options.kwargs ? { kwargs: this.options.kwargs } : {}),
    };
  }

  /** The next `n` fire times (epoch ms) after `after`. */
  nextFires(n: number, after = Date.now()): number[] {
    return nextFires(this.timetable, n, after);
  }
}

/** Schedules by name, one registry per thread like actors'; only a worker process's main thread fires them. */
export class ScheduleRegistry {
  private readonly schedules = new Map<string, Schedule>();

  add(schedule: Schedule): Schedule {
    if (this.schedules.has(schedule.name)) {
      throw new TroupeError(`a schedule named "${schedule.name}" is already declared: give the other one a name`);
    }
    this.schedules.set(schedule.name, schedule);
    return schedule;
  }

  list(): Schedule[] {
    return [...this.schedules.values()];
  }

  get(name: string): Schedule | undefined {
    return this.schedules.get(name);
  }
}

export const defaultSchedules = new ScheduleRegistry();

/**
 * Declare a periodic enqueue of `actor`, next to it in the actor module:
 *
 * ```ts
 * schedule(sendDigest, "0 8 * * MON-FRI", { tz: "Europe/Paris", args: ["daily"] });
 * schedule(poll, { every: "30s" });
 * ```
 *
 * Every `troupe worker` process that imports the module runs the schedule, and exactly one enqueue happens per
 * tick across all of them (see docs/schedules.md).
 */
export function schedule<A extends unknown[], R>(actor: Actor<A, R>, when: string | Every, options: ScheduleOptions<A> = {}): Schedule {
  return defaultSchedules.add(new Schedule(actor as unknown as Schedule["actor"], when, options as ScheduleOptions<unknown[]>));
}
