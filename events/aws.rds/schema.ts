import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';

/** RDS event IDs that mean "a snapshot was created". Every other event ID is a quiet no-op. */
export const SNAPSHOT_CREATED_EVENTS: Record<
  string,
  { kind: 'instance' | 'cluster'; type: 'manual' | 'automated' }
> = {
  'RDS-EVENT-0042': { kind: 'instance', type: 'manual' },
  'RDS-EVENT-0091': { kind: 'instance', type: 'automated' },
  'RDS-EVENT-0075': { kind: 'cluster', type: 'manual' },
  'RDS-EVENT-0169': { kind: 'cluster', type: 'automated' },
};

export const RDS_SNAPSHOT_ARN =
  /^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:(snapshot|cluster-snapshot):[A-Za-z0-9:-]{1,255}$/;

/**
 * EventBridge `RDS DB Snapshot Event` and `RDS DB Cluster Snapshot Event`. The envelope is not strict:
 * EventBridge adds fields over time. `detail.SourceArn` is required only for the snapshot-created IDs.
 */
export const RdsSnapshotEvent = z
  .looseObject({
    source: z.literal('aws.rds'),
    'detail-type': z.enum(['RDS DB Snapshot Event', 'RDS DB Cluster Snapshot Event']),
    id: z.optional(z.string()),
    region: z.optional(z.string()),
    detail: z.looseObject({
      EventID: z.string(),
      SourceArn: z.optional(z.string()),
      SourceIdentifier: z.optional(z.string()),
    }),
  })
  .check(
    z.refine(
      (e) =>
        !(e.detail.EventID in SNAPSHOT_CREATED_EVENTS) || RDS_SNAPSHOT_ARN.test(e.detail.SourceArn ?? ''),
      { message: 'expected the ARN of an RDS snapshot or cluster snapshot', path: ['detail', 'SourceArn'] },
    ),
  );

export type RdsSnapshotEvent = Infer<typeof RdsSnapshotEvent>;

/** True for anything shaped like an EventBridge event rather than an on-demand action. */
export const isEventBridgeEvent = (event: unknown): boolean =>
  typeof event === 'object' && event !== null && 'detail-type' in event;
