import type { BundledSchedules } from '#shared/parked.ts';
import { parseSchedules } from '#shared/schedules.ts';
import { errorMessage } from '#shared/errors.ts';
import { scheduleCalendars, schedulesDocument, SCHEDULES_ORIGIN } from './schedules-source.ts';

let cached: BundledSchedules | undefined;

/**
 * The stage's schedules (the ones ecs-scheduler reconciles by), bundled at build time
 * (schedules-source.ts), parsed once per cold start: this function only asks whether a target's
 * schedule wants it stopped now (shared/parked.ts). Schedules that cannot be read never block the
 * function's work: the rows say they were not checked.
 */
export const bundledSchedules = (): BundledSchedules => {
  if (cached) return cached;
  try {
    cached = {
      schedules: parseSchedules(schedulesDocument(), {
        calendars: scheduleCalendars(),
        source: SCHEDULES_ORIGIN,
      }),
    };
  } catch (error) {
    return { error: `${SCHEDULES_ORIGIN}: ${errorMessage(error)}` };
  }
  return cached;
};
