import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag, tagRulesVar } from '#shared/env.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { DEFAULT_OVERRIDE_MAX_HOURS } from '#shared/override.ts';
import { DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES } from '#shared/environment.ts';

/** SCHEDULE_GRACE_MINUTES when unset or empty. */
export const DEFAULT_GRACE_MINUTES = 15;

/** Environment of the ecs-scheduler, parsed once per cold start. */
export const SchedulerConfig = z.object({
  /** `key=value,…` compared case-insensitively; unset or empty keeps the default prod/production/live rules. */
  PROTECTED_TAGS: tagRulesVar(DEFAULT_PROTECTED_TAGS),
  /** `true` makes every run a dry run, whatever the event says. */
  DRY_RUN: booleanFlag,
  /**
   * A reconcile leaves alone a service created less than this many minutes ago (ECS `createdAt`; a
   * cluster has no creation time, so its services' count): a new environment is not parked the minute
   * it is created.
   */
  SCHEDULE_GRACE_MINUTES: z.optional(
    z.pipe(
      z.string().check(z.regex(/^\d{0,4}$/, 'expected a whole number of minutes (0-9999)')),
      z.transform((text) => (text === '' ? DEFAULT_GRACE_MINUTES : Number(text))),
    ),
  ),
  /**
   * The stage this function is deployed as (serverless.yml sets it; the CLI's --local too). A service
   * or cluster tagged `nightshift:stage` is reconciled and overridden only by that stage; unset, only
   * resources without that tag are.
   */
  NIGHTSHIFT_STAGE: z.optional(
    z.pipe(
      z.string(),
      z.transform((text) => text.trim() || undefined),
    ),
  ),
  /** Overrides (`nightshift wake|sleep`) may last at most this many hours: more is refused, naming it. */
  OVERRIDE_MAX_HOURS: z.optional(
    z.pipe(
      z.string().check(z.regex(/^(\d{1,4}(\.\d{1,2})?)?$/, 'expected a number of hours, e.g. 24 or 0.5')),
      z.transform((text) => (text === '' ? DEFAULT_OVERRIDE_MAX_HOURS : Number(text))),
    ),
  ),
  /**
   * A standalone Auto Scaling group of an environment that nightshift started and that is still not in
   * service at its desired capacity this many minutes later gets a `failed` row; the services of its
   * environment keep waiting for it. At least 1.
   */
  ENVIRONMENT_START_TIMEOUT_MINUTES: z.optional(
    z.pipe(
      z.string().check(z.regex(/^([1-9]\d{0,3})?$/, 'expected a whole number of minutes (1-9999)')),
      z.transform((text) => (text === '' ? DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES : Number(text))),
    ),
  ),
});

export type SchedulerConfig = Infer<typeof SchedulerConfig>;
