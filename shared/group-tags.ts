import type { TagMap } from './tags.ts';

/**
 * What ecs-scheduler and instance-rotation must agree on about an Auto Scaling group, read from the
 * group's own tags (public contract: both keys are documented in the README). The functions never import
 * each other; both read this module, so neither acts on a group the other is in the middle of.
 */

/** ecs-scheduler's saved state on a group it parked at 0/0/0 (`min=1 desired=2 max=4 at=…`). */
export const PARKED_TAG = 'nightshift:stopped';
/** instance-rotation's state of a rotation in flight (`desired=2 instance=i-… phase=launching …`). */
export const ROTATION_TAG = 'nightshift:rotation';

/** A group ecs-scheduler parked: it is never rotated. */
export const isParked = (tags: TagMap): boolean => tags[PARKED_TAG] !== undefined;

/** A group with a rotation in flight: it is not parked until the rotation finishes or is rolled back. */
export const rotationInFlight = (tags: TagMap): boolean => tags[ROTATION_TAG] !== undefined;

/**
 * The lease scope of a group, the same in both functions: its ARN, so a rotation step and a stop or
 * start never run on one group at once.
 */
export const groupLeaseScope = (groupArn: string): string => groupArn;
