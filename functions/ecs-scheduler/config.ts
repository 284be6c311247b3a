import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag } from '#shared/env.ts';
import { DEFAULT_PROTECTED_TAGS, parseTagRules, type TagRule } from '#shared/tags.ts';

/** `key=value,…` compared case-insensitively; unset or empty keeps the default prod/production/live rules. */
export const protectedTagsVar = z.pipe(
  z.optional(z.string()),
  z.transform((text, ctx): TagRule[] => {
    if (text === undefined || text.trim() === '') return DEFAULT_PROTECTED_TAGS;
    const parsed = parseTagRules(text);
    if ('error' in parsed) {
      ctx.issues.push({ code: 'custom', input: text, message: `expected key=value,…: ${parsed.error}` });
      return [];
    }
    return parsed.rules;
  }),
);

/** Environment of the ecs-scheduler, parsed once per cold start. */
export const SchedulerConfig = z.object({
  PROTECTED_TAGS: protectedTagsVar,
  /** `true` makes every run a dry run, whatever the event says. */
  DRY_RUN: booleanFlag,
});

export type SchedulerConfig = Infer<typeof SchedulerConfig>;
