import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag, tagRulesVar } from '#shared/env.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { DEFAULT_OVERRIDE_MAX_HOURS } from '#shared/override.ts';
import { DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES } from '#shared/environment.ts';

/** SCHEDULE_GRACE_MINUTES when unset or empty. */
export const DEFAULT_GRACE_MINUTES = 15;

/** Environment of rds-scheduler, parsed once per cold start: the same variables as ecs-scheduler's. */
export const RdsSchedulerConfig = z.object({
  /** `key=value,…` compared case-insensitively; unset or empty keeps the default prod/production/live rules. */
  PROTECTED_TAGS: tagRulesVar(DEFAULT_PROTECTED_TAGS),
  /** `true` makes every run a dry run, whatever the event says. */
  DRY_RUN: booleanFlag,
  /** A reconcile leaves alone a database created less than this many minutes ago (InstanceCreateTime / ClusterCreateTime). */
  SCHEDULE_GRACE_MINUTES: z.optional(
    z.pipe(
      z.string().check(z.regex(/^\d{0,4}$/, 'expected a whole number of minutes (0-9999)')),
      z.transform((text) => (text === '' ? DEFAULT_GRACE_MINUTES : Number(text))),
    ),
  ),
  /** The stage: a database tagged `nightshift:stage` for another stage is left to that stage. */
  NIGHTSHIFT_STAGE: z.optional(
    z.pipe(
      z.string(),
      z.transform((text) => text.trim() || undefined),
    ),
  ),
  /** An override read with more time left than this many hours is not obeyed. */
  OVERRIDE_MAX_HOURS: z.optional(
    z.pipe(
      z.string().check(z.regex(/^(\d{1,4}(\.\d{1,2})?)?$/, 'expected a number of hours, e.g. 24 or 0.5')),
      z.transform((text) => (text === '' ? DEFAULT_OVERRIDE_MAX_HOURS : Number(text))),
    ),
  ),
  /**
   * A database nightshift started that is still not ready this many minutes after the start gets a
   * `failed` row (before that, `waiting`). At least 1.
   */
  ENVIRONMENT_START_TIMEOUT_MINUTES: z.optional(
    z.pipe(
      z.string().check(z.regex(/^([1-9]\d{0,3})?$/, 'expected a whole number of minutes (1-9999)')),
      z.transform((text) => (text === '' ? DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES : Number(text))),
    ),
  ),
});

export type RdsSchedulerConfig = Infer<typeof RdsSchedulerConfig>;
