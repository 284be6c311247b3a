import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag, tagRulesVar } from '#shared/env.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';

/** Environment of the ecs-scheduler, parsed once per cold start. */
export const SchedulerConfig = z.object({
  /** `key=value,…` compared case-insensitively; unset or empty keeps the default prod/production/live rules. */
  PROTECTED_TAGS: tagRulesVar(DEFAULT_PROTECTED_TAGS),
  /** `true` makes every run a dry run, whatever the event says. */
  DRY_RUN: booleanFlag,
});

export type SchedulerConfig = Infer<typeof SchedulerConfig>;
