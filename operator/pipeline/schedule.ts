import { cronTimetable, previousFire } from "../../worker/schedules/next-fire.js";

export interface ScheduleCheck {
  /** The most recent scheduled time not yet run (≤ now), if any. */
  due?: Date;
  /** The next scheduled time after now; undefined for an expression that matches no later time. */
  next?: Date;
}

/**
 * Which run of a cron schedule is due, CronJob style: only the most recent missed time runs (missed runs are not
 * replayed one by one), and not at all when it is older than the starting deadline. Fire times are the periodic
 * actors' (worker/schedules/next-fire.ts), so a Pipeline and a schedule on the same cron and zone agree, DST days
 * included. Throws on an invalid expression or zone.
 */
export function checkSchedule(expression: string, args: { now: Date; last?: Date; timeZone?: string; startingDeadlineSeconds?: number }): ScheduleCheck {
  const timetable = cronTimetable(expression, args.timeZone ?? "UTC");
  const now = args.now.getTime();
  const latest = previousFire(timetable, now);
  const next = timetable.next(now);
  const fresh = latest !== undefined && (args.last === undefined || latest > args.last.getTime());
  const inDeadline = latest !== undefined && (args.startingDeadlineSeconds === undefined || now - latest <= args.startingDeadlineSeconds * 1000);
  return { due: fresh && inDeadline ? new Date(latest) : undefined, next: next === undefined ? undefined : new Date(next) };
}

/** A clear error for an invalid cron expression or time zone, or undefined when both are usable. */
export function scheduleProblem(expression: string, timeZone?: string): string | undefined {
  if (timeZone !== undefined) {
    try {
      new Intl.DateTimeFormat("en", { timeZone });
    } catch {
      return `invalid time zone ${JSON.stringify(timeZone)}: not an IANA zone name such as "Europe/Paris"`;
    }
  }
  try {
    cronTimetable(expression, timeZone ?? "UTC");
    return undefined;
  } catch (err) {
    return `invalid schedule "${expression}": ${(err as Error).message}`;
  }
}
