import { test } from "node:test";
import assert from "node:assert/strict";
import { checkSchedule, scheduleProblem } from "../../operator/pipeline/schedule.js";

test("scheduleProblem names an invalid expression or time zone, including those cron-parser only rejects when computing a date", () => {
  assert.equal(scheduleProblem("*/5 * * * *"), undefined);
  assert.equal(scheduleProblem("0 8 * * MON-FRI", "Europe/Paris"), undefined);
  assert.match(scheduleProblem("every day") ?? "", /^invalid schedule "every day"/);
  // Found by the operator fuzz test: a zone of random code points parses, and fails on the first next().
  assert.match(scheduleProblem("* * *", "\u{F24C4}\u{4F9AE}") ?? "", /^invalid time zone ".+": not an IANA zone name/u);
  assert.match(scheduleProblem("* * * * *", "Mars/Olympus") ?? "", /^invalid time zone "Mars\/Olympus"/);
});

test("checkSchedule: the most recent missed time is due once, within the starting deadline", () => {
  const now = new Date("2026-12-07T10:07:30Z");
  assert.deepEqual(checkSchedule("*/5 * * * *", { now }), { due: new Date("2026-12-07T10:05:00Z"), next: new Date("2026-12-07T10:10:00Z") });
  assert.equal(checkSchedule("*/5 * * * *", { now, last: new Date("2026-12-07T10:05:00Z") }).due, undefined, "already run");
  assert.equal(checkSchedule("*/5 * * * *", { now, startingDeadlineSeconds: 60 }).due, undefined, "missed by more than the deadline");
  assert.deepEqual(checkSchedule("0 8 * * *", { now, timeZone: "Europe/Paris" }).next, new Date("2026-12-08T07:00:00Z"));
  // The periodic actors' DST rule: a 02:30 skipped by the spring-forward runs once, at 03:00, not at 03:30.
  assert.deepEqual(checkSchedule("30 2 * * *", { now: new Date("2026-03-29T01:10:00Z"), timeZone: "Europe/Paris" }).due, new Date("2026-03-29T01:00:00Z"));
});
