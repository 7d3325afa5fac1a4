import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CronExpressionParser } from "cron-parser";
import { cronTimetable, firesBetween, intervalTimetable, nextFires, parseEvery, previousFire, zoneOffset } from "../../worker/schedules/next-fire.js";

const PARIS = "Europe/Paris";
const NEW_YORK = "America/New_York";
const MINUTE = 60_000;
const HOUR = 3_600_000;

/** An instant as the zone's wall clock with its offset: `2026-03-29 03:00:00+02:00`. */
function wall(at: number, tz: string): string {
  const offset = zoneOffset(tz, at);
  const text = new Date(at + offset).toISOString().slice(0, 19).replace("T", " ");
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset) / MINUTE;
  return `${text}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

function fires(expression: string, tz: string, from: string, n: number): string[] {
  return nextFires(cronTimetable(expression, tz), n, Date.parse(from)).map((at) => wall(at, tz));
}

// 2026: Paris springs forward on 29 March at 01:00Z (02:00 → 03:00) and falls back on 25 October at 01:00Z
// (03:00 → 02:00); New York springs forward on 8 March at 07:00Z and falls back on 1 November at 06:00Z.
describe("cron next fire times through DST changes (Vixie cron / cronie rule)", () => {
  test("a fixed time skipped by the spring-forward fires once, at the first instant after the gap", () => {
    assert.deepEqual(fires("30 2 * * *", PARIS, "2026-03-27T12:00:00Z", 3), ["2026-03-28 02:30:00+01:00", "2026-03-29 03:00:00+02:00", "2026-03-30 02:30:00+02:00"]);
    assert.deepEqual(fires("30 2 * * *", NEW_YORK, "2026-03-07T12:00:00Z", 3), ["2026-03-08 03:00:00-04:00", "2026-03-09 02:30:00-04:00", "2026-03-10 02:30:00-04:00"]);
    assert.deepEqual(fires("0 2 * * *", PARIS, "2026-03-28T12:00:00Z", 2), ["2026-03-29 03:00:00+02:00", "2026-03-30 02:00:00+02:00"]);
    // Both skipped times fire as one, and the seconds field is honoured the same way.
    assert.deepEqual(fires("0,30 2 * * *", PARIS, "2026-03-28T12:00:00Z", 3), ["2026-03-29 03:00:00+02:00", "2026-03-30 02:00:00+02:00", "2026-03-30 02:30:00+02:00"]);
    assert.deepEqual(fires("15 30 2 * * *", PARIS, "2026-03-28T12:00:00Z", 2), ["2026-03-29 03:00:00+02:00", "2026-03-30 02:30:15+02:00"]);
    // A time at the end of the gap is not doubled by a skipped one.
    assert.deepEqual(fires("30 2,3 * * *", PARIS, "2026-03-28T12:00:00Z", 3), ["2026-03-29 03:00:00+02:00", "2026-03-29 03:30:00+02:00", "2026-03-30 02:30:00+02:00"]);
  });

  test("a fixed time repeated by the fall-back fires once, at its first occurrence", () => {
    assert.deepEqual(fires("30 2 * * *", PARIS, "2026-10-24T12:00:00Z", 2), ["2026-10-25 02:30:00+02:00", "2026-10-26 02:30:00+01:00"]);
    assert.deepEqual(fires("30 1 * * *", NEW_YORK, "2026-10-31T12:00:00Z", 2), ["2026-11-01 01:30:00-04:00", "2026-11-02 01:30:00-05:00"]);
    // From inside the repeated hour, after the first occurrence: the second one does not fire.
    assert.deepEqual(fires("30 2 * * *", PARIS, "2026-10-25T01:15:00Z", 1), ["2026-10-26 02:30:00+01:00"]);
  });

  test("wildcard expressions run on the clock as it is: nothing in the skipped hour, both passes of the repeated one", () => {
    assert.deepEqual(fires("*/30 * * * *", PARIS, "2026-03-28T23:45:00Z", 4), ["2026-03-29 01:00:00+01:00", "2026-03-29 01:30:00+01:00", "2026-03-29 03:00:00+02:00", "2026-03-29 03:30:00+02:00"]);
    const fallBack = nextFires(cronTimetable("*/30 * * * *", PARIS), 6, Date.parse("2026-10-24T23:15:00Z"));
    assert.deepEqual(
      fallBack.map((at) => wall(at, PARIS)),
      ["2026-10-25 01:30:00+02:00", "2026-10-25 02:00:00+02:00", "2026-10-25 02:30:00+02:00", "2026-10-25 02:00:00+01:00", "2026-10-25 02:30:00+01:00", "2026-10-25 03:00:00+01:00"],
    );
    assert.ok(fallBack.every((at, i) => i === 0 || at - fallBack[i - 1]! === 30 * MINUTE), "every 30 minutes in real time");
    assert.deepEqual(fires("0 * * * *", NEW_YORK, "2026-11-01T03:30:00Z", 4), ["2026-11-01 00:00:00-04:00", "2026-11-01 01:00:00-04:00", "2026-11-01 01:00:00-05:00", "2026-11-01 02:00:00-05:00"]);
    assert.deepEqual(fires("0 * * * *", NEW_YORK, "2026-03-08T05:30:00Z", 3), ["2026-03-08 01:00:00-05:00", "2026-03-08 03:00:00-04:00", "2026-03-08 04:00:00-04:00"]);
    // A wildcard minute with a fixed hour: no 02:xx on the spring day, 120 fires on the fall day.
    assert.deepEqual(fires("* 2 * * *", PARIS, "2026-03-28T01:59:30Z", 1), ["2026-03-30 02:00:00+02:00"]);
    assert.equal(firesBetween(cronTimetable("* 2 * * *", PARIS), Date.parse("2026-10-24T12:00:00Z"), Date.parse("2026-10-25T12:00:00Z")).length, 120);
  });

  test("day-level expressions keep their local time across the change, names and macros included", () => {
    assert.deepEqual(fires("0 8 * * MON-FRI", PARIS, "2026-03-26T12:00:00Z", 3), ["2026-03-27 08:00:00+01:00", "2026-03-30 08:00:00+02:00", "2026-03-31 08:00:00+02:00"]);
    assert.deepEqual(fires("0 8 * * mon-fri", NEW_YORK, "2026-10-30T13:00:00Z", 2), ["2026-11-02 08:00:00-05:00", "2026-11-03 08:00:00-05:00"]);
    assert.deepEqual(fires("@daily", NEW_YORK, "2026-10-31T12:00:00Z", 3), ["2026-11-01 00:00:00-04:00", "2026-11-02 00:00:00-05:00", "2026-11-03 00:00:00-05:00"]);
    assert.deepEqual(fires("0 0 1 JAN,JUL *", PARIS, "2026-03-01T00:00:00Z", 2), ["2026-07-01 00:00:00+02:00", "2027-01-01 00:00:00+01:00"]);
    assert.deepEqual(fires("@hourly", PARIS, "2026-03-29T00:30:00Z", 2), ["2026-03-29 03:00:00+02:00", "2026-03-29 04:00:00+02:00"]);
  });

  test("six fields put seconds first; UTC is the default zone; after is exclusive", () => {
    const every15 = cronTimetable("*/15 * * * * *");
    assert.deepEqual(nextFires(every15, 3, Date.parse("2026-12-07T06:00:00Z")).map((at) => new Date(at).toISOString()), [
      "2026-12-07T06:00:15.000Z",
      "2026-12-07T06:00:30.000Z",
      "2026-12-07T06:00:45.000Z",
    ]);
    assert.equal(every15.next(Date.parse("2026-12-07T06:00:14.999Z")), Date.parse("2026-12-07T06:00:15Z"));
    assert.equal(cronTimetable("0 8 * * *").description, "cron 0 8 * * * (UTC)");
  });

  test("bad expressions and zones are errors that say what is wrong", () => {
    assert.throws(() => cronTimetable("* * * *"), /has 4 fields: use 5/);
    assert.throws(() => cronTimetable("* * * * * * *"), /has 7 fields/);
    assert.throws(() => cronTimetable("61 * * * *"), /invalid cron expression "61 \* \* \* \*".*0-59/);
    assert.throws(() => cronTimetable("0 8 * * MOX"), /invalid cron expression/);
    assert.throws(() => cronTimetable("0 8 * * *", "Europe/Atlantis"), /unknown time zone "Europe\/Atlantis"/);
  });

  test("an expression that can never match is rejected when it is declared", () => {
    assert.throws(() => cronTimetable("0 0 30 2 *"), /invalid cron expression "0 0 30 2 \*"/);
  });

  test("zone offsets agree with Intl at every minute around the changes", () => {
    for (const [tz, change] of [[PARIS, "2026-03-29T01:00:00Z"], [PARIS, "2026-10-25T01:00:00Z"], [NEW_YORK, "2026-03-08T07:00:00Z"], [NEW_YORK, "2026-11-01T06:00:00Z"]] as const) {
      const formatter = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" });
      for (let at = Date.parse(change) - 3 * HOUR; at <= Date.parse(change) + 3 * HOUR; at += MINUTE) {
        const name = formatter.formatToParts(new Date(at)).find((p) => p.type === "timeZoneName")!.value; // GMT+02:00
        const [, sign, hours, minutes] = /GMT([+-])(\d\d):(\d\d)/.exec(name)!;
        assert.equal(zoneOffset(tz, at), (sign === "-" ? -1 : 1) * (Number(hours) * HOUR + Number(minutes) * MINUTE), `${tz} ${new Date(at).toISOString()}`);
      }
    }
  });
});

/**
 * A brute-force reading of the same rule, instant by instant over a DST day: an instant whose wall-clock time
 * matches fires (a fixed-time expression only at the first instant showing that wall-clock time), and for a
 * fixed-time expression the first instant after a gap also fires when a skipped wall-clock time matches.
 */
function referenceFires(expression: string, tz: string, from: number, until: number): number[] {
  const fields = CronExpressionParser.parse(expression, { tz: "UTC" }).fields;
  const canonical = CronExpressionParser.parse(expression, { tz: "UTC" }).stringify(true).split(" ");
  const wildcard = canonical[1]!.startsWith("*") || canonical[2]!.startsWith("*");
  const matches = (local: number) => {
    const d = new Date(local);
    return (fields.minute.values as number[]).includes(d.getUTCMinutes()) && (fields.hour.values as number[]).includes(d.getUTCHours());
  };
  const seen = new Set<number>();
  const out: number[] = [];
  let previousWall: number | undefined;
  for (let at = from + MINUTE; at <= until; at += MINUTE) {
    const local = at + zoneOffset(tz, at);
    let fire = matches(local) && (wildcard || !seen.has(local));
    if (!wildcard && previousWall !== undefined && local - previousWall > MINUTE) {
      for (let skipped = previousWall + MINUTE; skipped < local; skipped += MINUTE) fire ||= matches(skipped);
    }
    if (fire) out.push(at);
    seen.add(local);
    previousWall = local;
  }
  return out;
}

describe("cron next fire times against a brute-force reading of the rule", () => {
  const field = (max: number) =>
    fc.oneof(
      fc.constant("*"),
      fc.integer({ min: 1, max: 12 }).map((step) => `*/${step}`),
      fc.uniqueArray(fc.integer({ min: 0, max }), { minLength: 1, maxLength: 4 }).map((values) => values.join(",")),
      fc.tuple(fc.integer({ min: 0, max }), fc.integer({ min: 0, max })).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    );
  const days = [
    [PARIS, "2026-03-28T22:00:00Z"],
    [PARIS, "2026-10-24T22:00:00Z"],
    [NEW_YORK, "2026-03-08T04:00:00Z"],
    [NEW_YORK, "2026-11-01T03:00:00Z"],
  ] as const;

  for (const [tz, start] of days) {
    test(`every minute/hour expression on ${tz}'s DST day from ${start}`, () => {
      fc.assert(
        fc.property(field(59), field(23), (minute, hour) => {
          const expression = `${minute} ${hour} * * *`;
          const from = Date.parse(start);
          const until = from + 5 * HOUR;
          assert.deepEqual(firesBetween(cronTimetable(expression, tz), from, until), referenceFires(expression, tz, from, until), expression);
        }),
        { numRuns: 40 },
      );
    });
  }
});

describe("every", () => {
  test("ticks are the multiples of the period since the epoch, in real time", () => {
    const every30s = intervalTimetable("30s");
    assert.equal(every30s.next(Date.parse("2026-12-07T06:00:10Z")), Date.parse("2026-12-07T06:00:30Z"));
    assert.equal(every30s.next(Date.parse("2026-12-07T06:00:30Z")), Date.parse("2026-12-07T06:01:00Z"), "after is exclusive");
    assert.equal(every30s.description, "every 30s");
    const sevenMinutes = intervalTimetable("7m");
    assert.ok(nextFires(sevenMinutes, 50, Date.parse("2026-03-29T00:00:00Z")).every((at) => at % (7 * MINUTE) === 0));
    // No zone applies: a DST change does not move an interval.
    const hourly = nextFires(intervalTimetable("1h"), 4, Date.parse("2026-10-24T23:30:00Z"));
    assert.ok(hourly.every((at, i) => i === 0 || at - hourly[i - 1]! === HOUR));
  });

  test("durations: units, compounds and ms; below a second or malformed is an error", () => {
    assert.equal(parseEvery("1h30m"), 90 * MINUTE);
    assert.equal(parseEvery("1d"), 24 * HOUR);
    assert.equal(parseEvery("1500ms"), 1500);
    assert.equal(parseEvery(2000), 2000);
    assert.equal(intervalTimetable("1h30m").description, "every 1h30m");
    for (const bad of ["30", "1.5s", "500ms", "0s", "-1s", "ten minutes", 999, 1.5]) assert.throws(() => parseEvery(bad), /every must be/, String(bad));
  });
});

describe("previousFire", () => {
  test("the latest fire at or before an instant, through DST changes, for dense and sparse timetables", () => {
    const at = (expression: string, tz: string, before: string) => {
      const found = previousFire(cronTimetable(expression, tz), Date.parse(before));
      return found === undefined ? undefined : wall(found, tz);
    };
    assert.equal(at("30 2 * * *", PARIS, "2026-03-29T12:00:00Z"), "2026-03-29 03:00:00+02:00", "the skipped 02:30 fired after the gap");
    assert.equal(at("30 2 * * *", PARIS, "2026-10-25T12:00:00Z"), "2026-10-25 02:30:00+02:00", "the first of the repeated 02:30s");
    assert.equal(at("*/5 * * * *", "UTC", "2026-12-07T10:05:00Z"), "2026-12-07 10:05:00+00:00", "at is inclusive");
    assert.equal(at("* * * * * *", "UTC", "2026-12-07T10:05:00.999Z"), "2026-12-07 10:05:00+00:00");
    assert.equal(at("0 0 29 2 *", "UTC", "2026-12-07T00:00:00Z"), "2024-02-29 00:00:00+00:00", "years back");
    assert.equal(previousFire(intervalTimetable("7m"), Date.parse("2026-12-07T10:05:00Z")), Math.floor(Date.parse("2026-12-07T10:05:00Z") / (7 * MINUTE)) * 7 * MINUTE);
  });

  test("agrees with walking the fires forward", () => {
    fc.assert(
      fc.property(fc.constantFrom("*/7 * * * *", "30 2 * * *", "0 */3 * * MON-FRI", "15 10 * * * *"), fc.constantFrom(PARIS, NEW_YORK, "UTC"), fc.integer({ min: Date.parse("2026-01-01T00:00:00Z"), max: Date.parse("2027-01-01T00:00:00Z") }), (expression, tz, instant) => {
        const timetable = cronTimetable(expression, tz);
        const found = previousFire(timetable, instant);
        assert.ok(found !== undefined && found <= instant);
        assert.ok(timetable.next(found)! > instant, "no fire between it and the instant");
      }),
      { numRuns: 200 },
    );
  });
});
