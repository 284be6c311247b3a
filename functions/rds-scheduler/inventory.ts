import {
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  paginateDescribeGlobalClusters,
  type DBCluster,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import {
  DescribeClustersCommand,
  DescribeServicesCommand,
  paginateListClusters,
  paginateListServices,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { paginateDescribeAutoScalingGroups, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { chunk } from '#shared/concurrency.ts';
import { assertTime, pagesWithin } from '#shared/deadline.ts';
import { ENVIRONMENT_TAG, environmentOf, type GroupRest, type ServiceRest } from '#shared/environment.ts';
import { tagMap, tagMapUpper, type TagMap } from '#shared/tags.ts';

export interface Clients {
  rds: RDSClient;
  /** Read-only: the environment gate reads services and groups (never changes them). */
  ecs: ECSClient;
  autoscaling: AutoScalingClient;
  /** Silence while parked (alarms.ts); without it, alarms are left alone. */
  cloudwatch?: CloudWatchClient;
}

export interface Reader {
  clients: Clients;
  hasTime: () => boolean;
}

/** A DB instance or an Aurora / Multi-AZ DB cluster, as the planner needs it. */
export interface Database {
  kind: 'instance' | 'cluster';
  id: string;
  arn: string;
  /** DBInstanceStatus, or the cluster's Status. */
  status: string;
  engine: string;
  tags: TagMap;
  createdAt?: Date;
  /** A `nightshift:stopped` older than the database (copied from a snapshot's source): not its own. */
  copiedStopTag?: string;
  /** An instance that belongs to a cluster (Aurora, Multi-AZ DB cluster): the cluster is stopped instead. */
  memberOf?: string;
  /** The instance or cluster it replicates (a read replica). */
  replicaOf?: string;
  /** Its own read replicas (instances) or cross-Region replica clusters. */
  replicas: string[];
  multiAz: boolean;
  /** Clusters: `provisioned`, `serverless` (Aurora Serverless v1), … */
  engineMode?: string;
  /** Aurora Serverless v2: the minimum capacity in ACUs. */
  minCapacity?: number;
  /** The Aurora global database it is a member of. */
  globalCluster?: string;
  /** Clusters: the status of the writer instance (the environment's readiness, status rows). */
  writerStatus?: string;
  /** Clusters: the tags of each member instance (a member tagged production protects its cluster). */
  memberTags?: Array<{ id: string; tags: TagMap }>;
}

export interface Estate {
  instances: Database[];
  clusters: Database[];
}

// DescribeDBInstances, DescribeDBClusters and DescribeGlobalClusters: MaxRecords 20-100, default 100,
// further pages by Marker (Amazon RDS API Reference, DescribeDBInstances "MaxRecords": "Default: 100
// Constraints: Minimum 20, maximum 100"). Every page is followed, within the deadline.
const RDS_PAGE = 100;

const STOPPED = 'nightshift:stopped';

/**
 * The estate without a `nightshift:stopped` whose `at=` is older than its database: a database restored
 * from a snapshot (or a cluster's clone) can carry the tags of the one nightshift stopped, and that tag
 * is not about it — never start it, or count it as stopped by nightshift, because of a copy. Only for a
 * database created before `now` (the clock of the run). Pure.
 */
export const withoutCopiedTags = (estate: Estate, now: Date): Estate => {
  const own = (db: Database): Database => {
    const at = Date.parse(db.tags[STOPPED]?.match(/(?:^| )at=(\S+)/)?.[1] ?? '');
    const created = db.createdAt?.getTime();
    // A minute's slack for clocks: nightshift's tag is written after the database exists.
    if (created === undefined || Number.isNaN(at) || created > now.getTime() || at >= created - 60_000)
      return db;
    const { [STOPPED]: copied, ...tags } = db.tags;
    return { ...db, tags, copiedStopTag: copied };
  };
  return { instances: estate.instances.map(own), clusters: estate.clusters.map(own) };
};

const instanceOf = (d: DBInstance): Database => ({
  kind: 'instance',
  id: d.DBInstanceIdentifier ?? '',
  arn: d.DBInstanceArn ?? '',
  status: d.DBInstanceStatus ?? 'unknown',
  engine: d.Engine ?? '',
  tags: tagMapUpper(d.TagList),
  ...(d.InstanceCreateTime && { createdAt: new Date(d.InstanceCreateTime) }),
  ...(d.DBClusterIdentifier && { memberOf: d.DBClusterIdentifier }),
  ...((d.ReadReplicaSourceDBInstanceIdentifier ?? d.ReadReplicaSourceDBClusterIdentifier) && {
    replicaOf: d.ReadReplicaSourceDBInstanceIdentifier ?? d.ReadReplicaSourceDBClusterIdentifier,
  }),
  replicas: [...(d.ReadReplicaDBInstanceIdentifiers ?? []), ...(d.ReadReplicaDBClusterIdentifiers ?? [])],
  multiAz: d.MultiAZ === true,
});

const clusterOf = (c: DBCluster, members: ReadonlyMap<string, DBInstance>): Database => {
  const writer = (c.DBClusterMembers ?? []).find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
  const writerStatus = writer ? members.get(writer)?.DBInstanceStatus : undefined;
  return {
    kind: 'cluster',
    id: c.DBClusterIdentifier ?? '',
    arn: c.DBClusterArn ?? '',
    status: c.Status ?? 'unknown',
    engine: c.Engine ?? '',
    tags: tagMapUpper(c.TagList),
    ...(c.ClusterCreateTime && { createdAt: new Date(c.ClusterCreateTime) }),
    ...(c.ReplicationSourceIdentifier && { replicaOf: c.ReplicationSourceIdentifier }),
    replicas: c.ReadReplicaIdentifiers ?? [],
    multiAz: c.MultiAZ === true,
    ...(c.EngineMode && { engineMode: c.EngineMode }),
    ...(c.ServerlessV2ScalingConfiguration?.MinCapacity !== undefined && {
      minCapacity: c.ServerlessV2ScalingConfiguration.MinCapacity,
    }),
    ...(writerStatus && { writerStatus }),
    memberTags: (c.DBClusterMembers ?? []).flatMap((m) => {
      const member = members.get(m.DBInstanceIdentifier ?? '');
      return member ? [{ id: member.DBInstanceIdentifier ?? '', tags: tagMapUpper(member.TagList) }] : [];
    }),
  };
};

/**
 * Every DB instance and DB cluster of the account and region, with their tags (TagList comes with
 * Describe*), and the Aurora global databases their clusters belong to. Each read follows every page.
 */
export const readDatabases = async ({ clients, hasTime }: Reader): Promise<Estate> => {
  const rawInstances: DBInstance[] = [];
  const instancePages = paginateDescribeDBInstances({ client: clients.rds, pageSize: RDS_PAGE }, {});
  for await (const page of pagesWithin(instancePages, hasTime, 'RDS DB instances'))
    rawInstances.push(...(page.DBInstances ?? []));
  assertTime(hasTime, 'RDS DB clusters');
  const rawClusters: DBCluster[] = [];
  const clusterPages = paginateDescribeDBClusters({ client: clients.rds, pageSize: RDS_PAGE }, {});
  for await (const page of pagesWithin(clusterPages, hasTime, 'RDS DB clusters'))
    rawClusters.push(...(page.DBClusters ?? []));
  const global = new Map<string, string>();
  if (rawClusters.length > 0) {
    assertTime(hasTime, 'Aurora global databases');
    const globalPages = paginateDescribeGlobalClusters({ client: clients.rds, pageSize: RDS_PAGE }, {});
    for await (const page of pagesWithin(globalPages, hasTime, 'Aurora global databases'))
      for (const g of page.GlobalClusters ?? [])
        for (const m of g.GlobalClusterMembers ?? [])
          if (m.DBClusterArn) global.set(m.DBClusterArn, g.GlobalClusterIdentifier ?? '');
  }
  const byId = new Map(rawInstances.map((d) => [d.DBInstanceIdentifier ?? '', d]));
  return {
    instances: rawInstances.map(instanceOf),
    clusters: rawClusters.map((c) => {
      const db = clusterOf(c, byId);
      const g = global.get(db.arn);
      return g !== undefined ? { ...db, globalCluster: g } : db;
    }),
  };
};

/** The ECS services and Auto Scaling groups of environments, as the stop gate sees them. */
export interface EnvironmentRest {
  services: Map<string, ServiceRest[]>;
  groups: Map<string, GroupRest[]>;
}

// ListClusters / ListServices: maxResults up to 100. DescribeClusters: up to 100 clusters a call;
// DescribeServices: up to 10 services a call (Amazon ECS API Reference). DescribeAutoScalingGroups:
// MaxRecords up to 100 (Amazon EC2 Auto Scaling API Reference).
const ECS_PAGE = 100;
const DESCRIBE_CLUSTERS = 100;
const DESCRIBE_SERVICES = 10;
const GROUP_PAGE = 100;

/**
 * Read-only: the ECS services (a service without `nightshift:environment` takes its cluster's) and the
 * Auto Scaling groups of the environments named, for the stop gate (shared/environment.ts).
 */
export const readEnvironments = async (
  { clients, hasTime }: Reader,
  environments: ReadonlySet<string>,
): Promise<EnvironmentRest> => {
  const services = new Map<string, ServiceRest[]>();
  const groups = new Map<string, GroupRest[]>();
  if (environments.size === 0) return { services, groups };
  const add = <T>(map: Map<string, T[]>, env: string, item: T) =>
    map.set(env, [...(map.get(env) ?? []), item]);

  const clusterArns: string[] = [];
  const listed = paginateListClusters({ client: clients.ecs, pageSize: ECS_PAGE }, {});
  for await (const page of pagesWithin(listed, hasTime, 'ECS clusters'))
    clusterArns.push(...(page.clusterArns ?? []));
  for (const batch of chunk(clusterArns, DESCRIBE_CLUSTERS)) {
    assertTime(hasTime, 'ECS clusters');
    const out = await clients.ecs.send(new DescribeClustersCommand({ clusters: batch, include: ['TAGS'] }));
    for (const cluster of out.clusters ?? []) {
      const clusterTags = tagMap(cluster.tags);
      const serviceArns: string[] = [];
      const pages = paginateListServices(
        { client: clients.ecs, pageSize: ECS_PAGE },
        { cluster: cluster.clusterArn },
      );
      for await (const page of pagesWithin(pages, hasTime, `ECS services of ${cluster.clusterName}`))
        serviceArns.push(...(page.serviceArns ?? []));
      for (const names of chunk(serviceArns, DESCRIBE_SERVICES)) {
        assertTime(hasTime, `ECS services of ${cluster.clusterName}`);
        const described = await clients.ecs.send(
          new DescribeServicesCommand({ cluster: cluster.clusterArn, services: names, include: ['TAGS'] }),
        );
        for (const s of described.services ?? []) {
          if (s.status === 'INACTIVE') continue;
          const env = environmentOf(tagMap(s.tags), clusterTags);
          if (env === undefined || !environments.has(env)) continue;
          add(services, env, {
            name: `${cluster.clusterName}/${s.serviceName}`,
            desiredCount: s.desiredCount ?? 0,
            tasks: (s.runningCount ?? 0) + (s.pendingCount ?? 0),
          });
        }
      }
    }
  }
  assertTime(hasTime, 'Auto Scaling groups');
  const groupPages = paginateDescribeAutoScalingGroups(
    { client: clients.autoscaling, pageSize: GROUP_PAGE },
    { Filters: [{ Name: 'tag-key', Values: [ENVIRONMENT_TAG] }] },
  );
  for await (const page of pagesWithin(groupPages, hasTime, 'Auto Scaling groups')) {
    for (const g of page.AutoScalingGroups ?? []) {
      const env = environmentOf(tagMapUpper(g.Tags));
      if (env === undefined || !environments.has(env)) continue;
      add(groups, env, {
        name: g.AutoScalingGroupName ?? '',
        min: g.MinSize ?? 0,
        desired: g.DesiredCapacity ?? 0,
        max: g.MaxSize ?? 0,
        instances: (g.Instances ?? []).length,
      });
    }
  }
  return { services, groups };
};
