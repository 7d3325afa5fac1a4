import { CronExpressionParser } from "cron-parser";

export interface ScheduleCheck {
  /** The most recent scheduled time not yet run (≤ now), if any. */
  due?: Date;
  /** The next scheduled time after now. */
  next: Date;
}

/**
 * Which run of a cron schedule is due, CronJob style: only the most recent missed time runs (missed runs are not
 * replayed one by one), and not at all when it is older than the starting deadline. Throws on an invalid expression.
 */
export function checkSchedule(expression: string, args: { now: Date; last?: Date; timeZone?: string; startingDeadlineSeconds?: number }): ScheduleCheck {
  const options = { currentDate: new Date(args.now.getTime() + 1), tz: args.timeZone ?? "UTC" };
  const latest = CronExpressionParser.parse(expression, options).prev().toDate();
  const next = CronExpressionParser.parse(expression, options).next().toDate();
  const fresh = args.last === undefined || latest.getTime() > args.last.getTime();
  const inDeadline = args.startingDeadlineSeconds === undefined || args.now.getTime() - latest.getTime() <= args.startingDeadlineSeconds * 1000;
  return { due: fresh && inDeadline ? latest : undefined, next };
}

/** A clear error for an invalid cron expression, or undefined when it parses. */
export function scheduleProblem(expression: string, timeZone?: string): string | undefined {
  if (timeZone !== undefined) {
    try {
      new Intl.DateTimeFormat("en", { timeZone });
    } catch {
      return `invalid time zone ${JSON.stringify(timeZone)}: not an IANA zone name such as "Europe/Paris"`;
    }
  }
  try {
    // cron-parser accepts some zones and expressions at parse time that fail only when a date is computed.
    CronExpressionParser.parse(expression, { tz: timeZone ?? "UTC" }).next();
    return undefined;
  } catch (err) {
    return `invalid schedule "${expression}": ${(err as Error).message}`;
  }
}
