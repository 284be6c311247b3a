/**
 * The databases of an environment, as a start gate reads them (environment.ts): imported on demand, with
 * the RDS client, by the starts that have work in an environment.
 */
import { paginateDescribeDBClusters, paginateDescribeDBInstances, type RDSClient } from '@aws-sdk/client-rds';
import { pagesWithin } from '#shared/deadline.ts';
import { ENVIRONMENT_TAG } from '#shared/environment.ts';
import { tagMapUpper } from '#shared/tags.ts';
import type { EnvironmentDatabase } from './environment.ts';

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
