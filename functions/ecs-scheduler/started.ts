import { startRecords } from '#shared/started.ts';

export type { StartRecord } from '#shared/started.ts';

/** When a nightshift start last brought back each service or group (shared/started.ts). */
export const { startedScope, readStarted, recordStarted } = startRecords('ecs-scheduler');
