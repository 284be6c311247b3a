import { holidayCalendars } from '#shared/holidays.ts';
import { parseSchedules, type Schedules } from '#shared/schedules.ts';
import { schedulesDocument, SCHEDULES_ORIGIN } from './schedules-source.ts';

/**
 * The stage's schedules, bundled at build time (schedules-source.ts), parsed once per cold start.
 * The build already refused an invalid file, so a parse error here means a broken bundle.
 */
export const bundledSchedules = (): Schedules =>
  parseSchedules(schedulesDocument(), { calendars: holidayCalendars, source: SCHEDULES_ORIGIN });
