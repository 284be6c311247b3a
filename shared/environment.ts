/**
 * Environments (issue 10): resources that share the tag `nightshift:environment=<name>` start in order —
 * databases, then Auto Scaling groups and capacity, then ECS services — and stop in reverse. Each
 * function gates on a read of the tier before it (rds-scheduler's stop reads the environment's services
 * and groups; ecs-scheduler's start reads its databases): no function gets another tier's mutating
 * permissions, and this module is the one place that decides what "ready" and "at rest" mean. Pure.
 */
import type { TagMap } from './tags.ts';

/** Public contract. A service without it takes its cluster's; a resource with none has no order. */
export const ENVIRONMENT_TAG = 'nightshift:environment';

/** ENVIRONMENT_START_TIMEOUT_MINUTES when unset or empty. */
export const DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES = 30;

/** The environment a resource belongs to: its own tag, else the first parent's that has one. */
export const environmentOf = (...tagSets: TagMap[]): string | undefined =>
  tagSets.map((t) => t[ENVIRONMENT_TAG]).find((v) => v !== undefined && v !== '');

export type Tier = 'database' | 'capacity' | 'service';

/** Start order; a stop goes the other way. */
export const START_ORDER: readonly Tier[] = ['database', 'capacity', 'service'];

/** A database of an environment as the tier behind it sees it. */
export interface DatabaseState {
  /** DB instance or cluster identifier. */
  id: string;
  kind: 'instance' | 'cluster';
  /** DBInstanceStatus or the cluster's Status, as RDS reports it (`available`, `starting`, `stopped`, …). */
  status: string;
  /** Aurora: the status of the cluster's writer instance. */
  writerStatus?: string;
}

/**
 * States in which RDS serves connections (Amazon RDS User Guide, "Viewing Amazon RDS DB instance status":
 * billed, and the database is up while a backup, a storage optimization or a modification runs). The
 * services behind a database that is `backing-up` at 07:00 must not wait for the backup window to end.
 * Not ready: `starting`, `stopped`, `stopping`, `rebooting`, `upgrading`, `maintenance`, `failed`,
 * `incompatible-*`, `inaccessible-encryption-credentials`, `storage-full`, `renaming` (its endpoint
 * changes), and anything unknown.
 */
export const SERVING_STATES: ReadonlySet<string> = new Set([
  'available',
  'backing-up',
  'storage-optimization',
  'modifying',
  'configuring-enhanced-monitoring',
  'configuring-iam-database-auth',
  'configuring-log-exports',
  'resetting-master-credentials',
]);

/** An instance is ready when it serves (SERVING_STATES); an Aurora cluster when it and its writer do. */
export const databaseReady = (d: DatabaseState): boolean =>
  SERVING_STATES.has(d.status) && (d.kind === 'instance' || SERVING_STATES.has(d.writerStatus ?? ''));

/** An ECS service of an environment as the database tier sees it on a stop. */
export interface ServiceRest {
  name: string;
  desiredCount: number;
  /** runningCount + pendingCount. */
  tasks: number;
}

/** A service rests when nothing asks for tasks and none runs. */
export const serviceAtRest = (s: ServiceRest): boolean => s.desiredCount === 0 && s.tasks === 0;

/** An Auto Scaling group of an environment on a stop: parked at 0/0/0 with no instance left. */
export interface GroupRest {
  name: string;
  min: number;
  desired: number;
  max: number;
  instances: number;
}

export const groupAtRest = (g: GroupRest): boolean =>
  g.min === 0 && g.desired === 0 && g.max === 0 && g.instances === 0;

/** A group is ready for the services behind it when it is in service at its desired capacity. */
export const groupReady = (g: { desired: number; inService: number }): boolean => g.inService >= g.desired;

/**
 * The reason of a row that waits: `waiting for shop-db: starting` (and since when, when known), each
 * resource it waits for named once.
 */
export const waitingFor = (
  blockers: ReadonlyArray<{ name: string; state: string; since?: string }>,
): string =>
  `waiting for ${blockers.map((b) => `${b.name}: ${b.state}${b.since ? ` since ${b.since}` : ''}`).join('; ')}`;
