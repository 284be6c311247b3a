import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { DURATION } from '#shared/duration.ts';

// Auto Scaling group names: 1-255 characters, no colon (the ARN separator).
const GROUP = /^[^:\s][^:]{0,254}$/;

/** What instance-rotation accepts, from its schedule or on demand. */
export const RotateInput = z.strictObject({
  action: z.literal('rotate'),
  maxAge: z.optional(z.string().check(z.regex(DURATION, 'expected a duration such as 30m, 12h or 14d'))),
  groups: z.optional(
    z
      .array(z.string().check(z.regex(GROUP, 'expected an Auto Scaling group name')))
      .check(z.minLength(1, 'name at least one group, or leave groups out'), z.maxLength(100)),
  ),
  dryRun: z.optional(z.boolean()),
});

export type RotateInput = Infer<typeof RotateInput>;
