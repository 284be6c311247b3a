import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag } from '#shared/env.ts';

// SSM's own patterns for SendCommand's MaxConcurrency and MaxErrors: a count or a percentage.
const MAX_CONCURRENCY = /^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$/;
const MAX_ERRORS = /^([1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%)$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
// A stage name is part of the lease table's name, so it holds only what DynamoDB table names may.
const STAGE = /^[A-Za-z0-9_.-]{1,128}$/;

/** An optional variable matching `pattern`; unset or empty gives `fallback`. */
const optionalVar = (pattern: RegExp, fallback: string, message: string) =>
  z.pipe(
    z.optional(z.string()),
    z.transform((text, ctx): string => {
      const value = text?.trim() ?? '';
      if (value === '') return fallback;
      if (!pattern.test(value)) ctx.issues.push({ code: 'custom', input: text, message });
      return value;
    }),
  );

/** Environment of ssm-restart, parsed once per cold start. */
export const RestartConfig = z.object({
  /** Alarm-triggered restarts of a target restarted less than this many minutes ago are skipped. */
  RESTART_COOLDOWN_MINUTES: z.pipe(
    optionalVar(/^\d{1,5}$/, '15', 'expected a whole number of minutes, 0 or more'),
    z.transform(Number),
  ),
  /**
   * The flap guard: an alarm restart of a target already restarted this many times by alarms in the
   * last hour is refused (failed), and so is every later one, until a person restarts it on demand.
   */
  RESTART_MAX_PER_HOUR: z.pipe(
    optionalVar(/^[1-9]\d{0,3}$/, '3', 'expected a whole number of restarts, 1 or more'),
    z.transform(Number),
  ),
  /**
   * SendCommand MaxConcurrency: how many instances of one send (up to 50) restart at once. Every send
   * goes out together, so a count applies per send, a percentage across the fleet.
   */
  MAX_CONCURRENCY: optionalVar(
    MAX_CONCURRENCY,
    '25%',
    'expected a number of instances (1 or more) or a percentage (1% to 100%)',
  ),
  /**
   * SendCommand MaxErrors: after this many failed invocations SSM sends to no more instances of that
   * send (up to 50): a count applies per send, a percentage across the fleet.
   */
  MAX_ERRORS: optionalVar(
    MAX_ERRORS,
    '1',
    'expected a number of errors (0 or more) or a percentage (0% to 100%)',
  ),
  DRY_RUN: booleanFlag,
  /**
   * The stage this function is deployed as (serverless.yml sets it; the CLI's --local too). An alarm
   * tagged `nightshift:stage` is restarted for only by that stage; unset, this function acts only on
   * alarms without that tag.
   */
  NIGHTSHIFT_STAGE: z.pipe(
    z.optional(z.string()),
    z.transform((text, ctx): string | undefined => {
      const value = text?.trim() ?? '';
      if (value === '') return undefined;
      if (!STAGE.test(value))
        ctx.issues.push({
          code: 'custom',
          input: text,
          message: 'expected a stage name: letters, digits, "_", "." or "-"',
        });
      return value;
    }),
  ),
  /** The function's own region, for instance ARNs in the report. */
  AWS_REGION: z.string().check(z.regex(REGION, 'expected the Lambda region')),
});

export type RestartConfig = Infer<typeof RestartConfig>;
