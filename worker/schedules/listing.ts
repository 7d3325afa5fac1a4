import { nextFires } from "./next-fire.js";
import { definitionTimetable } from "./schedule.js";
import type { DeclaredSchedule, FireRecord, PauseRecord } from "./store.js";

/** One schedule as `list` shows it: the stored definition, its last fire and pause, the next fire times. */
export interface ScheduleRow {
  name: string;
  actor: string;
  queue: string;
  when: string;
  next: string[];
  lastFired?: FireRecord & { lateMs: number };
  paused?: PauseRecord;
  declaredBy: string;
  declaredAt: string;
}

/** Second-precision ISO times, as listings show them. */
export const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

/** The rows of `troupe schedules` and the console: every stored definition with its record, pause and next fire times. */
export function scheduleRows(definitions: Map<string, DeclaredSchedule>, records: Map<string, FireRecord>, paused: Map<string, PauseRecord>, next: number, now = Date.now()): ScheduleRow[] {
  return [...definitions.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((d) => {
      const timetable = definitionTimetable(d);
      const record = records.get(d.name);
      const pause = paused.get(d.name);
      return {
        name: d.name,
        actor: d.actor,
        queue: d.queue,
        when: timetable.description,
        next: nextFires(timetable, next, now).map(iso),
        ...(record ? { lastFired: { ...record, lateMs: record.firedAt - record.tick } } : {}),
        ...(pause ? { paused: pause } : {}),
        declaredBy: d.declaredBy,
        declaredAt: iso(d.declaredAt),
      };
    });
}
