import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { parseInput, refuseMissingInput } from '#shared/input.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import { isEventBridgeEvent, RdsSnapshotEvent, SNAPSHOT_CREATED_EVENTS } from '#events/aws.rds/schema.ts';
import { createdSnapshot, EbsSnapshotNotification } from '#events/aws.ec2/schema.ts';

/** The on-demand action, also the daily schedule's input: tag every snapshot in the region. */
export const SnapshotTagsAction = z.strictObject({
  action: z.literal('sweep'),
  dryRun: z.optional(z.boolean()),
  /** The `planDigest` of the dry run a person confirmed: the sweep changes nothing if its plan differs. */
  planDigest: z.optional(
    z.string().check(z.regex(PLAN_DIGEST, 'expected the planDigest of a dry run (64 hex digits)')),
  ),
});

export type SnapshotTagsAction = Infer<typeof SnapshotTagsAction>;

export type SnapshotType = 'rds-snapshot' | 'rds-cluster-snapshot' | 'ebs-snapshot';

/** The one snapshot an event names. */
export type SnapshotRef =
  | { type: 'rds-snapshot' | 'rds-cluster-snapshot'; arn: string; id: string }
  | { type: 'ebs-snapshot'; id: string; volumeId?: string; account?: string };

/**
 * What a run acts on: a sweep of the region, or the snapshot an event names. An event that is not
 * about a created snapshot (another RDS event ID, a failed or other EBS notification) has no
 * `snapshot`: a quiet no-op.
 */
export type SnapshotTagsInput = SnapshotTagsAction | { action: 'tag'; snapshot?: SnapshotRef };

const EventSource = z.looseObject({ source: z.enum(['aws.rds', 'aws.ec2']) });

/** `arn:aws:rds:<region>:<account>:snapshot:rds:orders-…`: the identifier may itself hold colons. */
const rdsSnapshotRef = (arn: string): SnapshotRef => {
  const parts = arn.split(':');
  return {
    type: parts[5] === 'cluster-snapshot' ? 'rds-cluster-snapshot' : 'rds-snapshot',
    arn,
    id: parts.slice(6).join(':'),
  };
};

/**
 * Validates an invocation before any AWS call: an EventBridge event (dispatched on `source`) or the
 * strict on-demand action. Throws InputError naming the field.
 */
export const parseSnapshotTagsInput = (event: unknown): SnapshotTagsInput => {
  refuseMissingInput(event, { action: 'sweep' });
  if (!isEventBridgeEvent(event)) return parseInput(SnapshotTagsAction, event);
  const { source } = parseInput(EventSource, event);
  if (source === 'aws.ec2') {
    const ebs = parseInput(EbsSnapshotNotification, event);
    const created = createdSnapshot(ebs);
    if (!created) return { action: 'tag' };
    return {
      action: 'tag',
      snapshot: {
        type: 'ebs-snapshot',
        id: created.snapshotId,
        ...(created.volumeId && { volumeId: created.volumeId }),
        ...(ebs.account && { account: ebs.account }),
      },
    };
  }
  const rds = parseInput(RdsSnapshotEvent, event);
  // The schema has checked SourceArn for exactly these event IDs.
  if (!Object.hasOwn(SNAPSHOT_CREATED_EVENTS, rds.detail.EventID) || !rds.detail.SourceArn) {
    return { action: 'tag' };
  }
  return { action: 'tag', snapshot: rdsSnapshotRef(rds.detail.SourceArn) };
};
