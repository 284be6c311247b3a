import { startRecords } from '#shared/started.ts';

export type { StartRecord } from '#shared/started.ts';

/** When a nightshift start last brought back each DB instance or cluster (shared/started.ts). */
export const { startedScope, readStarted, recordStarted } = startRecords('rds-scheduler');
