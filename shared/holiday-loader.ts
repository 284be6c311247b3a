/**
 * The full holiday calendars (shared/holidays.ts, date-holidays and its data for every country: about
 * 1.5 MiB of code), loaded on demand: only for a schedules document that names a calendar. Code that
 * reads arbitrary schedules files (the nightshift CLI, the build) imports this module instead of
 * shared/holidays.ts, so a command that evaluates no calendar, `nightshift --help` first of all, never
 * loads them (the built CLI keeps them in a chunk of their own, scripts/build.ts).
 */
import type { HolidayCalendars } from './schedules.ts';

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether any schedule of a schedules document (parsed YAML, not yet validated) names a calendar. */
export const namesCalendar = (doc: unknown): boolean =>
  isRecord(doc) &&
  isRecord(doc.schedules) &&
  Object.values(doc.schedules).some(
    (s) => isRecord(s) && isRecord(s.holidays) && s.holidays.calendar !== undefined,
  );

/** Every date-holidays calendar. */
export const loadHolidayCalendars = async (): Promise<HolidayCalendars> =>
  (await import('./holidays.ts')).holidayCalendars;

/** The calendars a schedules document needs to be parsed: none (undefined) when it names none. */
export const calendarsFor = async (doc: unknown): Promise<HolidayCalendars | undefined> =>
  namesCalendar(doc) ? loadHolidayCalendars() : undefined;
