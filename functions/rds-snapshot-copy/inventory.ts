import {
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  paginateDescribeDBClusterSnapshots,
  paginateDescribeDBClusters,
  paginateDescribeDBInstances,
  paginateDescribeDBSnapshots,
  type DBClusterSnapshot,
  type DBSnapshot,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';

/** The tag every nightshift copy carries, naming its source. Public contract. */
export const SOURCE_ARN_TAG = 'nightshift:source-arn';
/**
 * When the source was taken, on every copy. Cluster snapshots have no OriginalSnapshotCreateTime, and
 * a copy's own time would let a late copy of an old source pass for the newest one when pruning.
 */
export const SOURCE_TIME_TAG = 'nightshift:source-time';

/** The time a snapshot's data was taken: the source time a nightshift copy carries, else AWS's own. */
const takenAt = (tags: TagMap, fallback: Date | undefined): Date | undefined => {
  const recorded = tags[SOURCE_TIME_TAG] ? new Date(tags[SOURCE_TIME_TAG]) : undefined;
  return recorded && !Number.isNaN(recorded.getTime()) ? recorded : fallback;
};

export type SnapshotKind = 'instance' | 'cluster';

export interface Snapshot {
  arn: string;
  id: string;
  kind: SnapshotKind;
  /** manual, automated, awsbackup… */
  type: string;
  status: string;
  encrypted: boolean;
  kmsKeyId?: string;
  /** When the data was taken: a copy keeps its source's time. */
  created?: Date;
  /** The DB instance or cluster identifier. */
  dbId: string;
  tags: TagMap;
  /** Set on snapshots that are themselves nightshift copies. */
  sourceArn?: string;
}

export interface RegionState {
  region: string;
  /** Snapshots in the region that are nightshift copies, or that hold an identifier a copy would use. */
  snapshots: Snapshot[];
}

export interface CopyEstate {
  sources: Snapshot[];
  /** Every snapshot of the source databases that were read, to tell which is each database's newest. */
  siblings: Snapshot[];
  /** Snapshot ARNs that were asked for but do not exist. */
  missing: string[];
  /** Tags of source databases and clusters, keyed `kind:dbId`; only read when SOURCE_TAGS is set. */
  databaseTags: Record<string, TagMap>;
  regions: RegionState[];
}

const fromInstanceSnapshot = (s: DBSnapshot): Snapshot => {
  const tags = tagMapUpper(s.TagList);
  return {
    arn: s.DBSnapshotArn ?? '',
    id: s.DBSnapshotIdentifier ?? '',
    kind: 'instance',
    type: s.SnapshotType ?? 'unknown',
    status: s.Status ?? 'unknown',
    encrypted: s.Encrypted ?? false,
    ...(s.KmsKeyId && { kmsKeyId: s.KmsKeyId }),
    ...(takenAt(tags, s.OriginalSnapshotCreateTime ?? s.SnapshotCreateTime) && {
      created: takenAt(tags, s.OriginalSnapshotCreateTime ?? s.SnapshotCreateTime),
    }),
    dbId: s.DBInstanceIdentifier ?? '',
    tags,
    ...(tags[SOURCE_ARN_TAG] && { sourceArn: tags[SOURCE_ARN_TAG] }),
  };
};

const fromClusterSnapshot = (s: DBClusterSnapshot): Snapshot => {
  const tags = tagMapUpper(s.TagList);
  return {
    arn: s.DBClusterSnapshotArn ?? '',
    id: s.DBClusterSnapshotIdentifier ?? '',
    kind: 'cluster',
    type: s.SnapshotType ?? 'unknown',
    status: s.Status ?? 'unknown',
    encrypted: s.StorageEncrypted ?? false,
    ...(s.KmsKeyId && { kmsKeyId: s.KmsKeyId }),
    ...(takenAt(tags, s.SnapshotCreateTime) && { created: takenAt(tags, s.SnapshotCreateTime) }),
    dbId: s.DBClusterIdentifier ?? '',
    tags,
    ...(tags[SOURCE_ARN_TAG] && { sourceArn: tags[SOURCE_ARN_TAG] }),
  };
};

/** Every instance and cluster snapshot of the account in a client's region (not shared or public ones). */
export const listSnapshots = async (rds: RDSClient, filter: { dbId?: string; kind?: SnapshotKind } = {}) => {
  const out: Snapshot[] = [];
  if (filter.kind !== 'cluster') {
    const input = filter.dbId ? { DBInstanceIdentifier: filter.dbId } : {};
    for await (const page of paginateDescribeDBSnapshots({ client: rds }, input)) {
      out.push(...(page.DBSnapshots ?? []).map(fromInstanceSnapshot));
    }
  }
  if (filter.kind !== 'instance') {
    const input = filter.dbId ? { DBClusterIdentifier: filter.dbId } : {};
    for await (const page of paginateDescribeDBClusterSnapshots({ client: rds }, input)) {
      out.push(...(page.DBClusterSnapshots ?? []).map(fromClusterSnapshot));
    }
  }
  return out;
};

/** Parses `arn:aws:rds:eu-central-1:123456789012:snapshot:rds:orders-…` into its parts. */
export const parseSnapshotArn = (arn: string) => {
  const [, partition = 'aws', , region = '', account = '', resource = '', ...rest] = arn.split(':');
  return {
    partition,
    region,
    account,
    kind: (resource === 'cluster-snapshot' ? 'cluster' : 'instance') as SnapshotKind,
    id: rest.join(':'),
  };
};

const notFound = (error: unknown) => /NotFound/.test((error as Error).name ?? '');

/** One snapshot by ARN, or undefined when it does not exist. */
export const findSnapshot = async (rds: RDSClient, arn: string): Promise<Snapshot | undefined> => {
  const { kind, id } = parseSnapshotArn(arn);
  try {
    if (kind === 'cluster') {
      const out = await rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: id }));
      const s = out.DBClusterSnapshots?.[0];
      return s && fromClusterSnapshot(s);
    }
    const out = await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }));
    const s = out.DBSnapshots?.[0];
    return s && fromInstanceSnapshot(s);
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
};

/** Tags of every DB instance and cluster in the region, keyed `kind:id`. */
export const listDatabaseTags = async (rds: RDSClient, only?: { kind: SnapshotKind; dbId: string }) => {
  const tags: Record<string, TagMap> = {};
  try {
    if (!only || only.kind === 'instance') {
      const input = only ? { DBInstanceIdentifier: only.dbId } : {};
      if (only) {
        const out = await rds.send(new DescribeDBInstancesCommand(input));
        for (const db of out.DBInstances ?? [])
          tags[`instance:${db.DBInstanceIdentifier}`] = tagMapUpper(db.TagList);
      } else {
        for await (const page of paginateDescribeDBInstances({ client: rds }, input)) {
          for (const db of page.DBInstances ?? [])
            tags[`instance:${db.DBInstanceIdentifier}`] = tagMapUpper(db.TagList);
        }
      }
    }
    if (!only || only.kind === 'cluster') {
      const input = only ? { DBClusterIdentifier: only.dbId } : {};
      if (only) {
        const out = await rds.send(new DescribeDBClustersCommand(input));
        for (const db of out.DBClusters ?? [])
          tags[`cluster:${db.DBClusterIdentifier}`] = tagMapUpper(db.TagList);
      } else {
        for await (const page of paginateDescribeDBClusters({ client: rds }, input)) {
          for (const db of page.DBClusters ?? [])
            tags[`cluster:${db.DBClusterIdentifier}`] = tagMapUpper(db.TagList);
        }
      }
    }
  } catch (error) {
    // A deleted database has no tags to match: its snapshots are then not eligible under SOURCE_TAGS.
    if (!notFound(error)) throw error;
  }
  return tags;
};
