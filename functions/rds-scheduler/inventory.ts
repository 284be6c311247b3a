import {
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  paginateDescribeGlobalClusters,
  type DBCluster,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { assertTime, pagesWithin } from '#shared/deadline.ts';
import type { GroupRest, ServiceRest } from '#shared/environment.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';

/** Read-only: the environment gate reads services and groups (never changes them). */
export interface GateClients {
  ecs: ECSClient;
  autoscaling: AutoScalingClient;
}

/**
 * The clients of a run. The gate's are given as they are, or as `gate`, which makes them on first use:
 * the handler's, so that only a run that gates a stop loads the ECS and Auto Scaling SDK clients
 * (environments.ts, an on-demand chunk of the bundle).
 */
export type Clients = {
  rds: RDSClient;
  /** Silence while parked (alarms.ts); without it, alarms are left alone. */
  cloudwatch?: CloudWatchClient;
} & (GateClients | { gate: () => Promise<GateClients> });

export interface Reader {
  clients: Clients;
  hasTime: () => boolean;
}

/** The gate's clients: those given, or made now (`gate`). */
export const gateClients = async (clients: Clients): Promise<GateClients> =>
  'gate' in clients ? clients.gate() : { ecs: clients.ecs, autoscaling: clients.autoscaling };

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

/** The ECS services and Auto Scaling groups of environments, as the stop gate sees them (environments.ts). */
export interface EnvironmentRest {
  services: Map<string, ServiceRest[]>;
  groups: Map<string, GroupRest[]>;
}
