import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { booleanFlag } from '#shared/env.ts';
import { DURATION, parseDuration } from '#shared/duration.ts';

/** Environment of instance-rotation, parsed once per cold start. */
export const RotationConfig = z.object({
  /** Instances older than this are due, unless the input or the group's tag says otherwise. */
  MAX_AGE: z.pipe(
    z.optional(z.string().check(z.regex(DURATION, 'expected a duration such as 30m, 12h or 14d'))),
    z.transform((text) => ({ text: text ?? '14d', ms: parseDuration(text ?? '14d') ?? 0 })),
  ),
  /** How long a replacement may take to come into service before the rotation is abandoned. */
  REPLACEMENT_TIMEOUT_MINUTES: z.pipe(
    z.optional(z.string().check(z.regex(/^\d{1,4}$/, 'expected whole minutes'))),
    z.transform((text) => Number(text ?? '60')),
  ),
  DRY_RUN: booleanFlag,
});

export type RotationConfig = Infer<typeof RotationConfig>;
