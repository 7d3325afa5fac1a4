import { CronExpressionParser, type CronExpression } from "cron-parser";
import { TroupeError } from "../errors.js";

/**
 * When a schedule fires, as pure functions of time (epoch ms): no clock, no I/O. Two kinds of timetable:
 *
 * - cron (5 fields, or 6 with seconds first; names such as MON-FRI and JAN; @daily and the other macros) read on
 *   the wall clock of a time zone. cron-parser matches the fields, on a zone-less ("naive") clock; the zone is
 *   applied here, because cron-parser's own zone handling moves a time skipped by a spring-forward by the length
 *   of the gap (02:30 fires at 03:30) where cron users expect Vixie cron / cronie's rule (man 8 cron):
 *     - a *fixed-time* expression (its minute and hour fields name values: `30 2 * * *`) whose time is skipped by
 *       a spring-forward fires once, at the first instant after the gap (03:00); one whose time is repeated by a
 *       fall-back fires once, at the first occurrence;
 *     - a *wildcard* expression (its minute or hour field starts with `*`: `*\/15 * * * *`, `0 * * * *`) runs on
 *       the clock as it is: nothing in the skipped hour, both passes through the repeated hour, so "hourly" stays
 *       hourly in real time. This is Vixie's MIN_STAR/HR_STAR test.
 * - every (`every: "30s"`, `"5m"`, `"1h30m"`, or ms): the multiples of the period since the Unix epoch, in real
 *   time, so every process computes the same ticks without talking to each other and no zone applies.
 */
export interface Timetable {
  /** For logs and `troupe schedules`: `cron 0 8 * * MON-FRI (Europe/Paris)`, `every 30s`. */
  readonly description: string;
  /** The first fire time strictly after `after`, or undefined when there is none (a cron that never matches). */
  next(after: number): number | undefined;
}

const SECOND = 1000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** The next `n` fire times strictly after `after`. */
export function nextFires(timetable: Timetable, n: number, after: number): number[] {
  const out: number[] = [];
  let at = after;
  while (out.length < n) {
    const next = timetable.next(at);
    if (next === undefined) break;
    out.push(next);
    at = next;
  }
  return out;
}

/** Fire times in (after, until], at most `limit` of them (the earliest). */
export function firesBetween(timetable: Timetable, after: number, until: number, limit = 10_000): number[] {
  const out: number[] = [];
  for (let at = timetable.next(after); at !== undefined && at <= until && out.length < limit; at = timetable.next(at)) out.push(at);
  return out;
}

/** Farthest back `previousFire` looks: a timetable with no fire in the last ten years has none for it. */
const PREVIOUS_HORIZON = 10 * 366 * DAY;

/**
 * The latest fire time at or before `atOrBefore`, found with `next` alone: widen a window back until it holds a
 * fire, then bisect for the last instant whose next fire is still in range (about 60 `next` calls at worst), so a
 * dense timetable far from its last fire costs no more than a sparse one.
 */
export function previousFire(timetable: Timetable, atOrBefore: number): number | undefined {
  const inRange = (at: number) => {
    const next = timetable.next(at);
    return next !== undefined && next <= atOrBefore;
  };
  let span = SECOND;
  while (!inRange(atOrBefore - span)) {
    if (span >= PREVIOUS_HORIZON) return undefined;
    span *= 2;
  }
  let low = atOrBefore - span; // its next fire is in range
  let high = atOrBefore; // its next fire is after atOrBefore
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (inRange(mid)) low = mid;
    else high = mid;
  }
  return timetable.next(low);
}

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: 60 * SECOND, h: HOUR, d: DAY };

/** `"30s"`, `"5m"`, `"1h30m"`, `"1d"`, `"1500ms"` or a number of ms; at least one second, like cron's finest field. */
export function parseEvery(every: string | number): number {
  let ms: number;
  if (typeof every === "number") ms = every;
  else {
    const text = every.trim();
    if (!/^(\d+(ms|s|m|h|d))+$/.test(text)) throw new TroupeError(`every must be a duration like "30s", "5m" or "1h30m", got "${every}"`);
    ms = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(amount) * UNITS[unit!]!;
  }
  if (!Number.isSafeInteger(ms) || ms < SECOND) throw new TroupeError(`every must be a whole number of ms, at least 1s, got ${JSON.stringify(every)}`);
  return ms;
}

function formatEvery(ms: number): string {
  let rest = ms;
  let text = "";
  for (const unit of ["d", "h", "m", "s", "ms"]) {
    const size = UNITS[unit]!;
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text;
}

/** Multiples of `every` since the epoch. */
export function intervalTimetable(every: string | number): Timetable {
  const period = parseEvery(every);
  return {
    description: `every ${formatEvery(period)}`,
    next: (after) => (Math.floor(after / period) + 1) * period,
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(tz: string): Intl.DateTimeFormat {
  let formatter = formatters.get(tz);
  if (!formatter) {
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      throw new TroupeError(`unknown time zone "${tz}" (use an IANA name such as Europe/Paris or UTC)`);
    }
    formatters.set(tz, formatter);
  }
  return formatter;
}

function offsetFromIntl(tz: string, at: number): number {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(tz).formatToParts(new Date(at))) parts[part.type] = Number(part.value);
  const local = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return local - (at - (((at % SECOND) + SECOND) % SECOND));
}

/** A week of a zone's offsets: the offset at its start and, when it changes within the week, where and to what. */
interface ZoneWeek {
  start: number;
  change?: { at: number; offset: number };
}

const WEEK = 7 * DAY;
const zoneWeeks = new Map<string, Map<number, ZoneWeek>>();

/**
 * The zone's offset from UTC at instant `at`, in ms (local wall clock = at + offset). Intl is asked once per
 * week and zone, plus a binary search for the instant of a change within the week (zones change offset at most
 * once a week), so that next-fire computations over many ticks stay cheap.
 */
export function zoneOffset(tz: string, at: number): number {
  if (tz === "UTC") return 0;
  let weeks = zoneWeeks.get(tz);
  if (!weeks) zoneWeeks.set(tz, (weeks = new Map()));
  const index = Math.floor(at / WEEK);
  let week = weeks.get(index);
  if (!week) {
    const from = index * WEEK;
    const start = offsetFromIntl(tz, from);
    const end = offsetFromIntl(tz, from + WEEK - 1);
    week = { start };
    if (end !== start) {
      let before = from;
      let after = from + WEEK - 1;
      while (after - before > 1) {
        const mid = Math.floor((before + after) / 2);
        if (offsetFromIntl(tz, mid) === start) before = mid;
        else after = mid;
      }
      week.change = { at: after, offset: end };
    }
    weeks.set(index, week);
  }
  return week.change && at >= week.change.at ? week.change.offset : week.start;
}

/** A cron expression on the wall clock of `tz` (an IANA zone name; default UTC). */
export function cronTimetable(expression: string, tz = "UTC"): Timetable {
  return new CronTimetable(expression, tz);
}

class CronTimetable implements Timetable {
  readonly description: string;
  /** cron-parser on a zone-less clock, reset to each starting point (parsing anew costs more than the search). */
  private readonly naive: CronExpression;
  /** Vixie's rule: a minute or hour field starting with `*` runs on the clock as it is through DST changes. */
  private readonly wildcard: boolean;
  private readonly offsets: (at: number) => number;

  constructor(
    readonly expression: string,
    readonly tz: string,
  ) {
    const text = expression.trim();
    const fields = text.split(/\s+/);
    if (!text.startsWith("@") && fields.length !== 5 && fields.length !== 6) {
      throw new TroupeError(`cron expression "${expression}" has ${fields.length} fields: use 5 (minute hour day month weekday) or 6 (seconds first)`);
    }
    formatterFor(tz);
    this.offsets = (at) => zoneOffset(tz, at);
    let parsed: CronExpression;
    try {
      parsed = CronExpressionParser.parse(text, { tz: "UTC" });
    } catch (err) {
      throw new TroupeError(`invalid cron expression "${expression}": ${(err as Error).message}`);
    }
    this.naive = parsed;
    const [, minute, hour] = parsed.stringify(true).split(" ");
    this.wildcard = minute!.startsWith("*") || hour!.startsWith("*");
    this.description = `cron ${text} (${tz})`;
  }

  /** Smallest and largest offset of the zone within a day either side of `at`: DST changes are months apart. */
  private offsetRange(at: number): [number, number] {
    const samples = [this.offsets(at - DAY), this.offsets(at), this.offsets(at + DAY)];
    return [Math.min(...samples), Math.max(...samples)];
  }

  next(after: number): number | undefined {
    // A fire time x > after has a wall-clock time above after + (the zone's smallest offset around then), so
    // wall-clock matches are read from there on, in order; each maps to at most two instants. Instants mostly
    // increase with wall-clock time, except in a repeated hour, so reading goes on until no later wall-clock
    // time can map below the best instant found.
    const [low, high] = this.offsetRange(after);
    const naive = this.naive;
    naive.reset(new Date(after + low));
    if (low === high) {
      // No offset change within a day: the next wall-clock match is the answer, unless a change comes before it.
      const wall = this.wallAfter(naive);
      if (wall === undefined) return undefined;
      const [lowThen, highThen] = this.offsetRange(wall - low);
      if (lowThen === low && highThen === low) return wall - low;
      naive.reset(new Date(after + low));
    }
    let best: number | undefined;
    let bound = Infinity;
    for (;;) {
      const wall = this.wallAfter(naive);
      if (wall === undefined || wall >= bound) return best;
      for (const at of this.instantsOf(wall)) {
        if (at > after && (best === undefined || at < best)) {
          best = at;
          bound = at + this.offsetRange(at)[1];
        }
      }
    }
  }

  private wallAfter(naive: CronExpression): number | undefined {
    try {
      return naive.next().getTime();
    } catch {
      // cron-parser gives up on expressions that match nothing for years (31 April is refused at parse time).
      return undefined;
    }
  }

  /** The instants a wall-clock time fires at in this zone, by Vixie's rule for skipped and repeated times. */
  private instantsOf(wall: number): number[] {
    // The real instant lies within 14 h of the wall-clock time read as UTC (zones span UTC-12 to UTC+14).
    const candidates = new Set([this.offsets(wall - 14 * HOUR), this.offsets(wall), this.offsets(wall + 14 * HOUR)]);
    const valid = [...candidates].map((offset) => wall - offset).filter((at) => at + this.offsets(at) === wall).sort((a, b) => a - b);
    const unique = valid.filter((at, i) => i === 0 || at !== valid[i - 1]);
    if (unique.length === 1) return unique;
    if (unique.length > 1) return this.wildcard ? unique : [unique[0]!];
    return this.wildcard ? [] : [this.gapEnd(wall, [...candidates])];
  }

  /** The first instant after the spring-forward gap that swallowed `wall`: where the offset changes. */
  private gapEnd(wall: number, offsets: number[]): number {
    let before = wall - Math.max(...offsets); // still on the old offset
    let after = wall - Math.min(...offsets); // already on the new one
    const newOffset = this.offsets(after);
    while (after - before > 1) {
      const mid = Math.floor((before + after) / 2);
      if (this.offsets(mid) === newOffset) after = mid;
      else before = mid;
    }
    return after;
  }
}
