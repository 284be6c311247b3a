import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag } from '#shared/env.ts';
import { assertTimeZone, CronError, parseCron, type CronSchedule } from '#shared/cron.ts';
import { DURATION, parseDuration } from '#shared/duration.ts';

const duration = (fallback: string) =>
  z.pipe(
    z.optional(z.string().check(z.regex(DURATION, 'expected a duration such as 30m, 12h or 14d'))),
    z.transform((text) => ({ text: text || fallback, ms: parseDuration(text || fallback) ?? 0 })),
  );

/**
 * The defaults are serverless.yml's: the deployed function always gets the stage's values
 * (`rotationCron`, `scheduleTimezone`), and a run without them (tests, scripts) assumes the default window.
 */
export const DEFAULT_ROTATION_SCHEDULE = 'cron(0/10 1-5 ? * MON-FRI *)';
export const DEFAULT_SCHEDULE_TIMEZONE = 'Europe/Berlin';

const cronMessage = (error: unknown) => (error instanceof CronError ? error.message : String(error));

/** Environment of instance-rotation, parsed once per cold start. */
export const RotationConfig = z.pipe(
  z.object({
    /** Instances older than this are due, unless the input or the group's tag says otherwise. */
    MAX_AGE: duration('14d'),
    /** How long a replacement may take to come into service (and a drain to finish) before the rotation is abandoned. */
    REPLACEMENT_TIMEOUT_MINUTES: z.pipe(
      z.optional(z.string().check(z.regex(/^\d{1,4}$/, 'expected whole minutes'))),
      z.transform((text) => Number(text || '60')),
    ),
    /** After a rotation was abandoned, no new one starts in that group for this long. */
    ABANDON_BACKOFF: duration('24h'),
    /** The function's own schedule (serverless.yml `rotationCron`): its windows. */
    ROTATION_SCHEDULE: z.pipe(
      z.optional(z.string()),
      z.transform((text, ctx) => {
        const expression = text?.trim() || DEFAULT_ROTATION_SCHEDULE;
        try {
          parseCron(expression, 'UTC');
        } catch (error) {
          ctx.issues.push({ code: 'custom', input: text, message: cronMessage(error) });
        }
        return expression;
      }),
    ),
    /** The zone the schedule is evaluated in (`scheduleTimezone`). */
    SCHEDULE_TIMEZONE: z.pipe(
      z.optional(z.string()),
      z.transform((text, ctx) => {
        const zone = text?.trim() || DEFAULT_SCHEDULE_TIMEZONE;
        try {
          assertTimeZone(zone);
        } catch (error) {
          ctx.issues.push({ code: 'custom', input: text, message: cronMessage(error) });
        }
        return zone;
      }),
    ),
    /** `DISABLED` (`rotationSchedulesState`): no scheduled runs, so no windows. */
    ROTATION_SCHEDULE_STATE: z.pipe(
      z.optional(z.enum(['ENABLED', 'DISABLED', ''], 'expected ENABLED or DISABLED')),
      z.transform((v) => v !== 'DISABLED'),
    ),
    DRY_RUN: booleanFlag,
  }),
  // Both fields were checked above: this parse cannot fail.
  z.transform((env) => ({
    MAX_AGE: env.MAX_AGE,
    REPLACEMENT_TIMEOUT_MINUTES: env.REPLACEMENT_TIMEOUT_MINUTES,
    ABANDON_BACKOFF: env.ABANDON_BACKOFF,
    /** The schedule, in its zone: the windows rotations must fit in. */
    schedule: parseCron(env.ROTATION_SCHEDULE, env.SCHEDULE_TIMEZONE) as CronSchedule,
    /** False (the schedule is DISABLED): no windows, so no run leaves anything suspended. */
    scheduleEnabled: env.ROTATION_SCHEDULE_STATE,
    DRY_RUN: env.DRY_RUN,
  })),
);

export type RotationConfig = Infer<typeof RotationConfig>;
