import { parseSchedules, type Schedules } from '#shared/schedules.ts';
import { scheduleCalendars, schedulesDocument, SCHEDULES_ORIGIN } from './schedules-source.ts';

/**
 * The stage's schedules, bundled at build time (schedules-source.ts), parsed once per cold start.
 * The build already refused an invalid file, so a parse error here means a broken bundle. Holidays are
 * looked up when a schedule is evaluated: in a bundle, a year it does not carry throws
 * HolidaysNotBuiltError (shared/holiday-table.ts), which fails the run naming calendar and year.
 */
export const bundledSchedules = (): Schedules =>
  parseSchedules(schedulesDocument(), { calendars: scheduleCalendars(), source: SCHEDULES_ORIGIN });
