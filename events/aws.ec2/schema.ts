import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';

/**
 * EBS ids inside the ARNs of `EBS Snapshot Notification`. AWS writes those ARNs without an account and
 * with the region where the account belongs (`arn:aws:ec2::eu-central-1:snapshot/snap-…`), so ids are
 * taken by pattern, never by ARN position. Ids are 8 (older) or 17 hex digits.
 */
export const EBS_SNAPSHOT_ID = /\bsnap-(?:[0-9a-f]{17}|[0-9a-f]{8})\b/;
export const EBS_VOLUME_ID = /\bvol-(?:[0-9a-f]{17}|[0-9a-f]{8})\b/;

const isCreated = (detail: { event: string; result: string }) =>
  detail.event === 'createSnapshot' && detail.result === 'succeeded';

/**
 * EventBridge `EBS Snapshot Notification`. The envelope is not strict: EventBridge adds fields over
 * time, and other events (copySnapshot, shareSnapshot…) carry other fields. `detail.snapshot_id` must
 * name a snapshot only for a successful createSnapshot, the one event acted on.
 */
export const EbsSnapshotNotification = z
  .looseObject({
    source: z.literal('aws.ec2'),
    'detail-type': z.literal('EBS Snapshot Notification'),
    id: z.optional(z.string()),
    region: z.optional(z.string()),
    account: z.optional(z.string()),
    detail: z.looseObject({
      event: z.string(),
      result: z.string(),
      snapshot_id: z.optional(z.string()),
      source: z.optional(z.string()),
    }),
  })
  .check(
    z.refine((e) => !isCreated(e.detail) || EBS_SNAPSHOT_ID.test(e.detail.snapshot_id ?? ''), {
      message: 'expected the ARN or id of an EBS snapshot (snap-…)',
      path: ['detail', 'snapshot_id'],
    }),
  );

export type EbsSnapshotNotification = Infer<typeof EbsSnapshotNotification>;

/** The snapshot a successful createSnapshot made, or undefined for every other notification. */
export const createdSnapshot = (
  e: EbsSnapshotNotification,
): { snapshotId: string; volumeId?: string } | undefined => {
  if (!isCreated(e.detail)) return undefined;
  const snapshotId = e.detail.snapshot_id?.match(EBS_SNAPSHOT_ID)?.[0];
  if (!snapshotId) return undefined;
  const volumeId = e.detail.source?.match(EBS_VOLUME_ID)?.[0];
  return { snapshotId, ...(volumeId && { volumeId }) };
};
