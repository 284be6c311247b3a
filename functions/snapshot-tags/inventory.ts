import {
  paginateDescribeDBClusterSnapshots,
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  paginateDescribeDBSnapshots,
  type DBClusterSnapshot,
  type DBSnapshot,
  type Filter as RdsFilter,
  type RDSClient,
} from '@aws-sdk/client-rds';
import {
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  type EC2Client,
  type Filter as Ec2Filter,
  type Snapshot as Ec2Snapshot,
} from '@aws-sdk/client-ec2';
import { chunk } from '#shared/concurrency.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';
import type { SnapshotRef, SnapshotType } from '#events/snapshot-tags/schema.ts';

export interface Clients {
  rds: RDSClient;
  ec2: EC2Client;
}

/** What a snapshot's tags come from: its DB instance, its DB cluster or its EBS volume. */
export interface SourceRef {
  kind: 'db' | 'cluster' | 'volume';
  id: string;
}

export interface SnapshotState {
  arn: string;
  type: SnapshotType;
  /** The snapshot identifier (`rds:orders-…`, `snap-…`). */
  id: string;
  status: string;
  tags: TagMap;
  /** Undefined when AWS names no source (an EBS snapshot copied or registered from an AMI can have none). */
  source?: SourceRef;
}

export interface Estate {
  snapshots: SnapshotState[];
  /** Tags of every source that exists, by `sourceKey`. A source not in here was not found. */
  sources: Record<string, TagMap>;
  /** Snapshots an event named that do not exist (any more) in this region. */
  missing: { arn: string; type: SnapshotType }[];
}

export const sourceKey = (s: SourceRef) => `${s.kind}:${s.id}`;

/** Filter values per DescribeVolumes call: EC2 caps the values of one filter at 200. */
const VOLUME_BATCH = 200;

const filter = (Name: string, value: string): RdsFilter & Ec2Filter => ({ Name, Values: [value] });

const fromDbSnapshot = (s: DBSnapshot): SnapshotState => ({
  arn: s.DBSnapshotArn ?? '',
  type: 'rds-snapshot',
  id: s.DBSnapshotIdentifier ?? '',
  status: s.Status ?? 'unknown',
  tags: tagMapUpper(s.TagList),
  ...(s.DBInstanceIdentifier && { source: { kind: 'db' as const, id: s.DBInstanceIdentifier } }),
});

const fromClusterSnapshot = (s: DBClusterSnapshot): SnapshotState => ({
  arn: s.DBClusterSnapshotArn ?? '',
  type: 'rds-cluster-snapshot',
  id: s.DBClusterSnapshotIdentifier ?? '',
  status: s.Status ?? 'unknown',
  tags: tagMapUpper(s.TagList),
  ...(s.DBClusterIdentifier && { source: { kind: 'cluster' as const, id: s.DBClusterIdentifier } }),
});

const partitionOf = (region: string) =>
  region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';

/** The ARN a person would look up, with the owner account: EventBridge's own EBS ARNs have none. */
const fromEbsSnapshot = (s: Ec2Snapshot, region: string, volumeFallback?: string): SnapshotState => {
  const volume = s.VolumeId ?? volumeFallback;
  return {
    arn: `arn:${partitionOf(region)}:ec2:${region}:${s.OwnerId ?? ''}:snapshot/${s.SnapshotId ?? ''}`,
    type: 'ebs-snapshot',
    id: s.SnapshotId ?? '',
    status: s.State ?? 'unknown',
    tags: tagMapUpper(s.Tags),
    ...(volume && { source: { kind: 'volume' as const, id: volume } }),
  };
};

// Reads by filter rather than by identifier: a filter that matches nothing returns an empty page,
// where an identifier that does not exist fails the call (DBSnapshotNotFound, InvalidVolume.NotFound).

const dbSnapshots = async (rds: RDSClient, Filters?: RdsFilter[]) => {
  const out: SnapshotState[] = [];
  for await (const page of paginateDescribeDBSnapshots({ client: rds }, { Filters })) {
    out.push(...(page.DBSnapshots ?? []).map(fromDbSnapshot));
  }
  return out;
};

const clusterSnapshots = async (rds: RDSClient, Filters?: RdsFilter[]) => {
  const out: SnapshotState[] = [];
  for await (const page of paginateDescribeDBClusterSnapshots({ client: rds }, { Filters })) {
    out.push(...(page.DBClusterSnapshots ?? []).map(fromClusterSnapshot));
  }
  return out;
};

const dbTags = async (rds: RDSClient, sources: Record<string, TagMap>, Filters?: RdsFilter[]) => {
  for await (const page of paginateDescribeDBInstances({ client: rds }, { Filters })) {
    for (const db of page.DBInstances ?? []) {
      sources[sourceKey({ kind: 'db', id: db.DBInstanceIdentifier ?? '' })] = tagMapUpper(db.TagList);
    }
  }
};

const clusterTags = async (rds: RDSClient, sources: Record<string, TagMap>, Filters?: RdsFilter[]) => {
  for await (const page of paginateDescribeDBClusters({ client: rds }, { Filters })) {
    for (const c of page.DBClusters ?? []) {
      sources[sourceKey({ kind: 'cluster', id: c.DBClusterIdentifier ?? '' })] = tagMapUpper(c.TagList);
    }
  }
};

const ebsSnapshots = async (ec2: EC2Client, input: { OwnerIds?: string[]; Filters?: Ec2Filter[] }) => {
  const region = await ec2.config.region();
  const out: Ec2Snapshot[] = [];
  for await (const page of paginateDescribeSnapshots({ client: ec2, pageSize: 1000 }, input)) {
    out.push(...(page.Snapshots ?? []));
  }
  return { region, snapshots: out };
};

/** Volumes by id, 200 to a call, so a deleted volume is simply absent from the answer. */
const volumeTags = async (ec2: EC2Client, sources: Record<string, TagMap>, ids: string[]) => {
  for (const batch of chunk([...new Set(ids)], VOLUME_BATCH)) {
    const input = { Filters: [{ Name: 'volume-id', Values: batch }] };
    for await (const page of paginateDescribeVolumes({ client: ec2 }, input)) {
      for (const v of page.Volumes ?? []) {
        sources[sourceKey({ kind: 'volume', id: v.VolumeId ?? '' })] = tagMapUpper(v.Tags);
      }
    }
  }
};

const volumesOf = (snapshots: SnapshotState[]) =>
  snapshots.flatMap((s) => (s.source?.kind === 'volume' ? [s.source.id] : []));

/** Every RDS instance and cluster snapshot and every EBS snapshot the account owns in the region, with their sources' tags, each read once. */
export const readRegion = async (clients: Clients): Promise<Estate> => {
  const sources: Record<string, TagMap> = {};
  const [dbSnaps, clusterSnaps, ebs] = await Promise.all([
    dbSnapshots(clients.rds),
    clusterSnapshots(clients.rds),
    ebsSnapshots(clients.ec2, { OwnerIds: ['self'] }),
    dbTags(clients.rds, sources),
    clusterTags(clients.rds, sources),
  ]);
  const ebsSnaps = ebs.snapshots.map((s) => fromEbsSnapshot(s, ebs.region));
  await volumeTags(clients.ec2, sources, volumesOf(ebsSnaps));
  return { snapshots: [...dbSnaps, ...clusterSnaps, ...ebsSnaps], sources, missing: [] };
};

const readRds = async (clients: Clients, ref: Extract<SnapshotRef, { arn: string }>): Promise<Estate> => {
  const sources: Record<string, TagMap> = {};
  const cluster = ref.type === 'rds-cluster-snapshot';
  const found = cluster
    ? await clusterSnapshots(clients.rds, [filter('db-cluster-snapshot-id', ref.id)])
    : await dbSnapshots(clients.rds, [filter('db-snapshot-id', ref.id)]);
  // Identifiers are per region: a snapshot of the same name elsewhere is not the one the event names.
  const snapshot = found.find((s) => s.arn === ref.arn);
  if (!snapshot) return { snapshots: [], sources, missing: [{ arn: ref.arn, type: ref.type }] };
  if (snapshot.source?.kind === 'cluster') {
    await clusterTags(clients.rds, sources, [filter('db-cluster-id', snapshot.source.id)]);
  } else if (snapshot.source?.kind === 'db') {
    await dbTags(clients.rds, sources, [filter('db-instance-id', snapshot.source.id)]);
  }
  return { snapshots: [snapshot], sources, missing: [] };
};

const readEbs = async (clients: Clients, ref: Extract<SnapshotRef, { type: 'ebs-snapshot' }>) => {
  const sources: Record<string, TagMap> = {};
  const { region, snapshots } = await ebsSnapshots(clients.ec2, {
    OwnerIds: ['self'],
    Filters: [filter('snapshot-id', ref.id)],
  });
  const found = snapshots.find((s) => s.SnapshotId === ref.id);
  if (!found) {
    const arn = `arn:${partitionOf(region)}:ec2:${region}:${ref.account ?? ''}:snapshot/${ref.id}`;
    return { snapshots: [], sources, missing: [{ arn, type: ref.type }] };
  }
  const snapshot = fromEbsSnapshot(found, region, ref.volumeId);
  await volumeTags(clients.ec2, sources, volumesOf([snapshot]));
  return { snapshots: [snapshot], sources, missing: [] };
};

/** The one snapshot an event names and its source's tags: a handful of reads, whatever the estate. */
export const readSnapshot = (clients: Clients, ref: SnapshotRef): Promise<Estate> =>
  ref.type === 'ebs-snapshot' ? readEbs(clients, ref) : readRds(clients, ref);
