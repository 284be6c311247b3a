import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { DURATION } from '#shared/duration.ts';
import { parseInput, refuseMissingInput } from '#shared/input.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';

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
  /** The digest of the dry run a person confirmed: the apply changes nothing if its plan differs. */
  planDigest: z.optional(
    z.string().check(z.regex(PLAN_DIGEST, 'expected the planDigest of a dry run (64 hex characters)')),
  ),
});

export type RotateInput = Infer<typeof RotateInput>;

/** The rotate input; a schedule that passes none is refused, showing the one it should pass. */
export const parseRotateInput = (event: unknown): RotateInput => {
  refuseMissingInput(event, { action: 'rotate' });
  return parseInput(RotateInput, event);
};
