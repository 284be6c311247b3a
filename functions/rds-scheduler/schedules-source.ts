/**
 * The schedules document (infra/schedules.yml, as parsed YAML) and the holiday calendars it names.
 * When the code runs from source (tests, `npm run cli -- --local`) both come from the project: the
 * file, and every calendar of the date-holidays package. `npm run build` replaces this module in
 * dist/rds-scheduler/index.mjs (scripts/build.ts, embedSchedules) with the document read and validated
 * at build time and a table of the public holidays of the calendars it names (shared/holiday-table.ts):
 * a deployed function never fetches schedules at run time, nor carries date-holidays.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { holidayCalendars } from '#shared/holidays.ts';
import type { HolidayCalendars } from '#shared/schedules.ts';

export const SCHEDULES_ORIGIN = 'infra/schedules.yml';

export const schedulesDocument = (): unknown =>
  parse(readFileSync(fileURLToPath(new URL('../../infra/schedules.yml', import.meta.url)), 'utf8'));

export const scheduleCalendars = (): HolidayCalendars => holidayCalendars;
