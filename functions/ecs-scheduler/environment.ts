/**
 * Start order in an environment (tag `nightshift:environment`, shared/environment.ts): databases first,
 * then capacity, then services. ecs-scheduler gates its starts on a read of the databases of each
 * environment it starts something in (read-only RDS calls); rds-scheduler starts them. A service (or
 * the capacity group under it) whose environment has a database that is not ready yet is `waiting`,
 * naming each one and its state; a later run starts it. No run sleeps.
 */
import { paginateDescribeDBClusters, paginateDescribeDBInstances, type RDSClient } from '@aws-sdk/client-rds';
import { pagesWithin } from '#shared/deadline.ts';
import {
  databaseReady,
  ENVIRONMENT_TAG,
  environmentOf,
  waitingFor,
  type DatabaseState,
} from '#shared/environment.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';
import type { Estate } from './inventory.ts';
import type { Plan, PlannedAction } from './plan.ts';

/** A database of an environment, as a start gate reads it. */
export interface EnvironmentDatabase extends DatabaseState {
  environment: string;
}

/** DescribeDBInstances and DescribeDBClusters: MaxRecords 20–100 (default 100), the rest behind Marker. */
const RDS_PAGE = 100;

/**
 * The DB instances and Aurora clusters tagged with one of `environments`, with their state. RDS lists
 * cannot filter by tag, so every page is read; TagList comes with each. An Aurora member instance
 * counts through its cluster (the cluster is ready when it and its writer are).
 */
export const readEnvironmentDatabases = async (
  rds: RDSClient,
  environments: ReadonlySet<string>,
  hasTime: () => boolean,
): Promise<EnvironmentDatabase[]> => {
  const out: EnvironmentDatabase[] = [];
  const instanceStatus = new Map<string, string>();
  const instances: { id: string; status: string; cluster?: string; environment?: string }[] = [];
  const pages = paginateDescribeDBInstances({ client: rds }, { MaxRecords: RDS_PAGE });
  for await (const page of pagesWithin(pages, hasTime, 'RDS DB instances')) {
    for (const db of page.DBInstances ?? []) {
      const id = db.DBInstanceIdentifier ?? '';
      instanceStatus.set(id, db.DBInstanceStatus ?? 'unknown');
      const environment = tagMapUpper(db.TagList)[ENVIRONMENT_TAG];
      instances.push({
        id,
        status: db.DBInstanceStatus ?? 'unknown',
        ...(db.DBClusterIdentifier && { cluster: db.DBClusterIdentifier }),
        ...(environment && { environment }),
      });
    }
  }
  for (const i of instances) {
    if (!i.cluster && i.environment && environments.has(i.environment)) {
      out.push({ id: i.id, kind: 'instance', status: i.status, environment: i.environment });
    }
  }
  const clusters = paginateDescribeDBClusters({ client: rds }, { MaxRecords: RDS_PAGE });
  for await (const page of pagesWithin(clusters, hasTime, 'RDS DB clusters')) {
    for (const c of page.DBClusters ?? []) {
      const environment = tagMapUpper(c.TagList)[ENVIRONMENT_TAG];
      if (!environment || !environments.has(environment)) continue;
      const writer = c.DBClusterMembers?.find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
      out.push({
        id: c.DBClusterIdentifier ?? '',
        kind: 'cluster',
        status: c.Status ?? 'unknown',
        writerStatus: writer ? (instanceStatus.get(writer) ?? 'unknown') : 'no writer',
        environment,
      });
    }
  }
  return out;
};

/** A capacity group's environment: its own tag, else that of a cluster it serves. */
const groupEnvironment = (g: { name: string; tags: TagMap }, estate: Estate): string | undefined =>
  environmentOf(
    g.tags,
    ...(estate.groupUsers[g.name] ?? []).flatMap((arn) => {
      const c = estate.clusters.find((x) => x.arn === arn);
      return c ? [c.tags] : [];
    }),
  );

/** The environments of the services and groups a start plan brings back. */
export const environmentsStarted = (plan: Plan | undefined, estate: Estate): Set<string> => {
  const rows = new Set((plan?.phases.flat() ?? []).filter((p) => p.steps.length > 0).map((p) => p.arn));
  const out = new Set<string>();
  for (const c of estate.clusters) {
    for (const s of c.services) {
      const env = environmentOf(s.tags, c.tags);
      if (env && rows.has(s.arn)) out.add(env);
    }
  }
  for (const g of estate.groups) {
    const env = groupEnvironment(g, estate);
    if (env && rows.has(g.arn)) out.add(env);
  }
  return out;
};

const describe = (d: DatabaseState) =>
  d.kind === 'cluster' && d.status === 'available' ? `writer ${d.writerStatus}` : d.status;

/**
 * The start plan with every row that would start something in an environment whose databases are not
 * all ready turned into `waiting` (steps dropped), naming them. Pure.
 */
export const gateStart = (plan: Plan, estate: Estate, databases: readonly EnvironmentDatabase[]): Plan => {
  const blockers = new Map<string, EnvironmentDatabase[]>();
  for (const d of databases) {
    if (databaseReady(d)) continue;
    blockers.set(d.environment, [...(blockers.get(d.environment) ?? []), d]);
  }
  if (blockers.size === 0) return plan;
  const envOf = new Map<string, string>();
  for (const c of estate.clusters) {
    for (const s of c.services) {
      const env = environmentOf(s.tags, c.tags);
      if (env) envOf.set(s.arn, env);
    }
  }
  for (const g of estate.groups) {
    const env = groupEnvironment(g, estate);
    if (env) envOf.set(g.arn, env);
  }
  const gate = (p: PlannedAction): PlannedAction => {
    const env = envOf.get(p.arn);
    const waiting = env === undefined || p.steps.length === 0 ? undefined : blockers.get(env);
    if (!waiting) return p;
    return {
      ...p,
      steps: [],
      outcome: 'waiting',
      detail:
        `${waitingFor(waiting.map((d) => ({ name: d.id, state: describe(d) })))} (environment ${env}: databases ` +
        `start first); nothing changed — a later run starts it (--force starts it now)`,
    };
  };
  return { ...plan, phases: plan.phases.map((phase) => phase.map(gate)) };
};
