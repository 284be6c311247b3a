/**
 * Reading a schedules file: the YAML parser and the schedule validator, imported by schedule.ts when a
 * `schedule` command runs (and by the build), never by `nightshift --help`.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { calendarsFor } from '#shared/holiday-loader.ts';
import { parseSchedules, ScheduleError, type Schedules } from '#shared/schedules.ts';

/**
 * Reads and validates a schedules file (YAML; JSON is YAML). Throws ScheduleError naming the file,
 * the schedule and the field, or the line of a YAML syntax error. The holiday calendars (date-holidays)
 * are loaded only when the file names one: every other command, and a file without, never loads them.
 */
export const readSchedulesFile = async (file: string): Promise<Schedules> => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ScheduleError(
      [{ field: file, message: `cannot read it (${(error as Error).message}); give the file with --file` }],
      file,
    );
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ScheduleError(
      doc.errors.map((e) => ({ field: file, message: e.message })),
      file,
    );
  }
  const js: unknown = doc.toJS();
  return parseSchedules(js, { calendars: await calendarsFor(js), source: file });
};
