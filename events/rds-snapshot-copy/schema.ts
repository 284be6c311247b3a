import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { parseInput, refuseMissingInput } from '#shared/input.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import { isEventBridgeEvent, RDS_SNAPSHOT_ARN, RdsSnapshotEvent } from '#events/aws.rds/schema.ts';

export const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** The digest of the dry run a person confirmed (its report's planDigest): the apply refuses a changed plan. */
const PlanDigest = z.optional(
  z.string().check(z.regex(PLAN_DIGEST, 'expected the planDigest of a dry run: 64 hex characters')),
);

const Sweep = z.strictObject({
  action: z.literal('sweep'),
  dryRun: z.optional(z.boolean()),
  planDigest: PlanDigest,
});

const Copy = z.strictObject({
  action: z.literal('copy'),
  snapshot: z
    .string()
    .check(z.regex(RDS_SNAPSHOT_ARN, 'expected the ARN of an RDS snapshot or cluster snapshot')),
  regions: z.optional(
    z
      .array(z.string().check(z.regex(REGION, 'expected an AWS region such as eu-west-1')))
      .check(z.minLength(1)),
  ),
  dryRun: z.optional(z.boolean()),
  planDigest: PlanDigest,
});

/** On-demand actions: `sweep` (copy everything missing, then prune) and `copy` (one snapshot). */
export const CopyAction = z.discriminatedUnion('action', [Sweep, Copy]);

export type CopyAction = Infer<typeof CopyAction>;
export type CopyInput = CopyAction | ({ action: 'event' } & { event: RdsSnapshotEvent });

/** An RDS snapshot event from EventBridge, or an on-demand action; a schedule without input is refused. */
export const parseCopyInput = (event: unknown): CopyInput => {
  refuseMissingInput(event, { action: 'sweep' });
  return isEventBridgeEvent(event)
    ? { action: 'event', event: parseInput(RdsSnapshotEvent, event) }
    : parseInput(CopyAction, event);
};
