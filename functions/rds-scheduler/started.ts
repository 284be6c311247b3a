import { startRecords } from '#shared/started.ts';

export type { StartRecord } from '#shared/started.ts';

/** When a nightshift start last brought back each DB instance or cluster (shared/started.ts). */
export const { startedScope, readStarted, recordStarted } = startRecords('rds-scheduler');

/**
 * When RDS said it started a database by itself (RDS-EVENT-0154 / 0153: stopped for 7 days), recorded by
 * the event's run: a later "started" event or reconcile then knows the start was AWS's, not someone's.
 */
export const {
  startedScope: autoStartScope,
  readStarted: readAutoStarts,
  recordStarted: recordAutoStarts,
} = startRecords('rds-scheduler', 'autostart');
