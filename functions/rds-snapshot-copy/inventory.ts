import {
  DescribeAccountAttributesCommand,
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
import { pagesWithin } from '#shared/deadline.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';

/**
 * The tag that marks a source snapshot, and so every copy of it (CopyTags), with the source's ARN.
 * Public contract. Earlier versions used nightshift:source-arn, and they (another stage, another
 * region's deployment copying into this one, a rollback) take any snapshot carrying that key for one of
 * their copies: a new key they never act on keeps the sources this version marks out of their reach.
 */
export const COPY_SOURCE_TAG = 'nightshift:copy-source';
/**
 * When the source was taken, on the source while it is marked and so on every copy. Cluster snapshots
 * have no OriginalSnapshotCreateTime, and a copy's own time would let a late copy of an old source pass
 * for the newest one when pruning.
 */
export const SOURCE_TIME_TAG = 'nightshift:source-time';
/**
 * The marker of earlier versions. Copies they made carry it and are still recognised (by what RDS records,
 * like new copies) and pruned; no new copy carries it, and the sweep removes it from sources.
 */
export const LEGACY_SOURCE_TAG = 'nightshift:source-arn';
/** Every key nightshift puts on a source snapshot: what unmarking removes. */
export const MARK_KEYS = [COPY_SOURCE_TAG, SOURCE_TIME_TAG, LEGACY_SOURCE_TAG] as const;

/**
 * Every Describe call that pages asks for RDS's largest page: DescribeDBSnapshots,
 * DescribeDBClusterSnapshots, DescribeDBInstances and DescribeDBClusters take MaxRecords 20 to 100
 * (default 100) and return a Marker while more records follow (RDS API reference, MaxRecords).
 */
export const PAGE_SIZE = 100;

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
  /** SnapshotCreateTime: when this snapshot itself was made (a copy: when the copy was made). */
  created?: Date;
  /**
   * OriginalSnapshotCreateTime of an instance snapshot: when its data was taken. RDS keeps it on copies
   * ("doesn't change when the snapshot is copied"); cluster snapshots have no such field.
   */
  originalCreated?: Date;
  /** The DB instance or cluster identifier. */
  dbId: string;
  tags: TagMap;
  /**
   * The source its nightshift tag names: `nightshift:copy-source`, else the legacy
   * `nightshift:source-arn`. A claim, never proof: tags are copied by people (a copy with "copy tags")
   * and by AWS (CopyTagsToSnapshot on a database restored from a copy).
   */
  sourceArn?: string;
  /** Which key `sourceArn` came from. */
  markerKey?: typeof COPY_SOURCE_TAG | typeof LEGACY_SOURCE_TAG;
  /**
   * What RDS itself records this snapshot was copied from: `SourceDBSnapshotIdentifier` on instance
   * snapshots ("the DB snapshot ARN that the DB snapshot was copied from; it only has a value in the
   * case of a cross-account or cross-Region copy") and `SourceDBClusterSnapshotArn` on cluster
   * snapshots (the source's ARN for any copy, else null). RDS API reference, DBSnapshot and
   * DBClusterSnapshot.
   */
  copiedFrom?: string;
  /** The option group of an instance snapshot (`default:<engine>-<version>` unless someone chose one). */
  optionGroup?: string;
}

/** The marker a snapshot carries: the new key wins over the legacy one. */
const marker = (tags: TagMap): Pick<Snapshot, 'sourceArn' | 'markerKey'> => {
  if (tags[COPY_SOURCE_TAG]) return { sourceArn: tags[COPY_SOURCE_TAG], markerKey: COPY_SOURCE_TAG };
  if (tags[LEGACY_SOURCE_TAG]) return { sourceArn: tags[LEGACY_SOURCE_TAG], markerKey: LEGACY_SOURCE_TAG };
  return {};
};

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
    ...(s.SnapshotCreateTime && { created: s.SnapshotCreateTime }),
    ...(s.OriginalSnapshotCreateTime && { originalCreated: s.OriginalSnapshotCreateTime }),
    dbId: s.DBInstanceIdentifier ?? '',
    tags,
    ...marker(tags),
    // A same-Region copy may name its source by identifier; only an ARN says where the data came from.
    ...(s.SourceDBSnapshotIdentifier?.startsWith('arn:') && { copiedFrom: s.SourceDBSnapshotIdentifier }),
    ...(s.OptionGroupName && { optionGroup: s.OptionGroupName }),
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
    ...(s.SnapshotCreateTime && { created: s.SnapshotCreateTime }),
    dbId: s.DBClusterIdentifier ?? '',
    tags,
    ...marker(tags),
    ...(s.SourceDBClusterSnapshotArn && { copiedFrom: s.SourceDBClusterSnapshotArn }),
  };
};

export interface ListOptions {
  /** Only the snapshots of this DB instance or cluster. */
  dbId?: string;
  kind?: SnapshotKind;
  /** The run's deadline: a read still paging when it passes throws OutOfTimeError. */
  hasTime?: () => boolean;
  /** Where, for the OutOfTimeError: `eu-west-1`. */
  where?: string;
}

/**
 * Every instance and cluster snapshot of the account in a client's region (not shared or public ones),
 * every page of them. A read cut by the deadline throws, so nothing is ever planned from half a picture.
 */
export const listSnapshots = async (rds: RDSClient, options: ListOptions = {}): Promise<Snapshot[]> => {
  const { dbId, kind, hasTime = () => true, where = 'the region' } = options;
  const out: Snapshot[] = [];
  if (kind !== 'cluster') {
    const input = dbId ? { DBInstanceIdentifier: dbId } : {};
    const pages = paginateDescribeDBSnapshots({ client: rds, pageSize: PAGE_SIZE }, input);
    for await (const page of pagesWithin(pages, hasTime, `the DB snapshots in ${where}`)) {
      out.push(...(page.DBSnapshots ?? []).map(fromInstanceSnapshot));
    }
  }
  if (kind !== 'instance') {
    const input = dbId ? { DBClusterIdentifier: dbId } : {};
    const pages = paginateDescribeDBClusterSnapshots({ client: rds, pageSize: PAGE_SIZE }, input);
    for await (const page of pagesWithin(pages, hasTime, `the DB cluster snapshots in ${where}`)) {
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

/** A DB instance or cluster of the source region: its tags, and when it was created. */
export interface Database {
  tags: TagMap;
  /** InstanceCreateTime or ClusterCreateTime. */
  created?: Date;
}

/**
 * Every DB instance and cluster in the region (or one), keyed `kind:id`: their tags decide SOURCE_TAGS,
 * and a key that is missing means the database no longer exists.
 */
export const listDatabases = async (
  rds: RDSClient,
  only?: { kind: SnapshotKind; dbId: string },
  hasTime: () => boolean = () => true,
) => {
  const databases: Record<string, Database> = {};
  const add = (kind: SnapshotKind, id: string | undefined, tags: TagMap, created: Date | undefined) => {
    databases[`${kind}:${id}`] = { tags, ...(created && { created }) };
  };
  try {
    if (!only || only.kind === 'instance') {
      if (only) {
        // One identifier: one record, no Marker.
        const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: only.dbId }));
        for (const db of out.DBInstances ?? [])
          add('instance', db.DBInstanceIdentifier, tagMapUpper(db.TagList), db.InstanceCreateTime);
      } else {
        const pages = paginateDescribeDBInstances({ client: rds, pageSize: PAGE_SIZE }, {});
        for await (const page of pagesWithin(pages, hasTime, 'the DB instances')) {
          for (const db of page.DBInstances ?? [])
            add('instance', db.DBInstanceIdentifier, tagMapUpper(db.TagList), db.InstanceCreateTime);
        }
      }
    }
    if (!only || only.kind === 'cluster') {
      if (only) {
        const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: only.dbId }));
        for (const db of out.DBClusters ?? [])
          add('cluster', db.DBClusterIdentifier, tagMapUpper(db.TagList), db.ClusterCreateTime);
      } else {
        const pages = paginateDescribeDBClusters({ client: rds, pageSize: PAGE_SIZE }, {});
        for await (const page of pagesWithin(pages, hasTime, 'the DB clusters')) {
          for (const db of page.DBClusters ?? [])
            add('cluster', db.DBClusterIdentifier, tagMapUpper(db.TagList), db.ClusterCreateTime);
        }
      }
    }
  } catch (error) {
    // Only the one-database read can meet NotFound: a deleted database has no tags to match, and its
    // snapshots are then not eligible under SOURCE_TAGS.
    if (!only || !notFound(error)) throw error;
  }
  return databases;
};

export interface Quota {
  used: number;
  max: number;
}

/**
 * RDS's account quotas in a client's region, by name (`ManualSnapshots`, `ManualClusterSnapshots`…).
 * DescribeAccountAttributes takes no parameters and returns every quota in one response: no pages.
 */
export const accountQuotas = async (rds: RDSClient): Promise<Record<string, Quota>> => {
  const out = await rds.send(new DescribeAccountAttributesCommand({}));
  return Object.fromEntries(
    (out.AccountQuotas ?? []).map((q) => [q.AccountQuotaName ?? '', { used: q.Used ?? 0, max: q.Max ?? 0 }]),
  );
};
