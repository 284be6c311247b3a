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
import type { EC2Client, Filter as Ec2Filter } from '@aws-sdk/client-ec2';
import { OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';
import type { SnapshotRef, SnapshotType } from '#events/snapshot-tags/schema.ts';

/**
 * The clients of a run. EC2 is given as it is, or as `ec2OnDemand`, which makes it on first use: the
 * handler's, so that a run about an RDS snapshot never loads the EC2 SDK client (ebs.ts, an on-demand
 * chunk of the bundle, with every EBS read and CreateTags).
 */
export type Clients = { rds: RDSClient } & ({ ec2: EC2Client } | { ec2OnDemand: () => Promise<EC2Client> });

/** The EC2 client: the one given, or made now (`ec2OnDemand`). */
export const ec2Of = async (clients: Clients): Promise<EC2Client> =>
  'ec2' in clients ? clients.ec2 : clients.ec2OnDemand();

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
  /** Tags of every source that was read, by `sourceKey`. A source not in here was not found, unless its kind is in `partial`. */
  sources: Record<string, TagMap>;
  /** Snapshots an event named that do not exist (any more) in this region. */
  missing: { arn: string; type: SnapshotType }[];
  /**
   * Source kinds the Lambda deadline cut short while reading: a snapshot whose source is not in
   * `sources` may still have one, so it is left undone rather than reported as having no source.
   */
  partial: SourceRef['kind'][];
  /** Snapshot listings the deadline cut short: what was not read, in words (`EBS snapshots after the first 3000`). */
  unread: { type: SnapshotType; what: string }[];
}

export const sourceKey = (s: SourceRef) => `${s.kind}:${s.id}`;

// Page sizes, each the API's maximum. RDS Describe* calls: MaxRecords 20–100, default 100, with a
// Marker (RDS API reference, "Constraints: Minimum 20, maximum 100"). EC2 DescribeSnapshots: MaxResults
// 5–1000 with a NextToken; DescribeVolumes: 5–500. With a filter, EC2 may answer a page with fewer
// items than asked, even none, and a NextToken: every token is followed, not every full page.
const RDS_PAGE = 100;
/** Filter values per DescribeVolumes / DescribeSnapshots call: EC2 caps the values of one filter at 200. */
export const FILTER_VALUES = 200;
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

/** What one listing read before the deadline, and whether it read everything. */
export interface Listing<T> {
  items: T[];
  complete: boolean;
}

/**
 * Every item of every page, the deadline checked before each further page (pagesWithin). A listing the
 * deadline cuts short returns what it read with `complete: false` instead of throwing, so the sweep can
 * say exactly what it left.
 */
export const list = async <P, T>(
  pages: AsyncIterable<P>,
  itemsOf: (page: P) => T[],
  hasTime: () => boolean,
  what: string,
): Promise<Listing<T>> => {
  const items: T[] = [];
  try {
    for await (const page of pagesWithin(pages, hasTime, what)) items.push(...itemsOf(page));
  } catch (error) {
    if (!(error instanceof OutOfTimeError)) throw error;
    return { items, complete: false };
  }
  return { items, complete: true };
};

// Reads by filter rather than by identifier: a filter that matches nothing returns an empty page,
// where an identifier that does not exist fails the call (DBSnapshotNotFound, InvalidVolume.NotFound).

const dbSnapshots = (rds: RDSClient, hasTime: () => boolean, Filters?: RdsFilter[]) =>
  list(
    paginateDescribeDBSnapshots({ client: rds, pageSize: RDS_PAGE }, { Filters }),
    (page) => (page.DBSnapshots ?? []).map(fromDbSnapshot),
    hasTime,
    'RDS DB snapshots',
  );

const clusterSnapshots = (rds: RDSClient, hasTime: () => boolean, Filters?: RdsFilter[]) =>
  list(
    paginateDescribeDBClusterSnapshots({ client: rds, pageSize: RDS_PAGE }, { Filters }),
    (page) => (page.DBClusterSnapshots ?? []).map(fromClusterSnapshot),
    hasTime,
    'RDS DB cluster snapshots',
  );

const dbTags = async (
  rds: RDSClient,
  sources: Record<string, TagMap>,
  hasTime: () => boolean,
  Filters?: RdsFilter[],
) => {
  const read = await list(
    paginateDescribeDBInstances({ client: rds, pageSize: RDS_PAGE }, { Filters }),
    (page) => page.DBInstances ?? [],
    hasTime,
    'RDS DB instances',
  );
  for (const db of read.items) {
    sources[sourceKey({ kind: 'db', id: db.DBInstanceIdentifier ?? '' })] = tagMapUpper(db.TagList);
  }
  return read.complete;
};

const clusterTags = async (
  rds: RDSClient,
  sources: Record<string, TagMap>,
  hasTime: () => boolean,
  Filters?: RdsFilter[],
) => {
  const read = await list(
    paginateDescribeDBClusters({ client: rds, pageSize: RDS_PAGE }, { Filters }),
    (page) => page.DBClusters ?? [],
    hasTime,
    'RDS DB clusters',
  );
  for (const c of read.items) {
    sources[sourceKey({ kind: 'cluster', id: c.DBClusterIdentifier ?? '' })] = tagMapUpper(c.TagList);
  }
  return read.complete;
};

const volumesOf = (snapshots: SnapshotState[]) =>
  snapshots.flatMap((s) => (s.source?.kind === 'volume' ? [s.source.id] : []));

const unreadAfter = (type: SnapshotType, what: string, read: Listing<unknown>) =>
  read.complete ? [] : [{ type, what: `${what} after the first ${read.items.length}` }];

/**
 * Every RDS instance and cluster snapshot and every EBS snapshot the account owns in the region, with
 * their sources' tags, each read once. Reads stop at the deadline: what was read is returned, with
 * what was not (`unread`, `partial`), never half a picture passed off as the whole.
 */
export const readRegion = async (clients: Clients, hasTime: () => boolean): Promise<Estate> => {
  const sources: Record<string, TagMap> = {};
  const { ebsSnapshots, fromEbsSnapshot, volumeTags } = await import('./ebs.ts');
  const ec2 = await ec2Of(clients);
  const [dbSnaps, clusterSnaps, ebs, dbsRead, clustersRead] = await Promise.all([
    dbSnapshots(clients.rds, hasTime),
    clusterSnapshots(clients.rds, hasTime),
    ebsSnapshots(ec2, hasTime),
    dbTags(clients.rds, sources, hasTime),
    clusterTags(clients.rds, sources, hasTime),
  ]);
  const ebsSnaps = ebs.items.map((s) => fromEbsSnapshot(s, ebs.region));
  const volumesRead = await volumeTags(ec2, sources, hasTime, volumesOf(ebsSnaps));
  const partial: SourceRef['kind'][] = [
    ...(dbsRead ? [] : (['db'] as const)),
    ...(clustersRead ? [] : (['cluster'] as const)),
    ...(volumesRead ? [] : (['volume'] as const)),
  ];
  return {
    snapshots: [...dbSnaps.items, ...clusterSnaps.items, ...ebsSnaps],
    sources,
    missing: [],
    partial,
    unread: [
      ...unreadAfter('rds-snapshot', 'RDS DB snapshots', dbSnaps),
      ...unreadAfter('rds-cluster-snapshot', 'RDS DB cluster snapshots', clusterSnaps),
      ...unreadAfter('ebs-snapshot', 'EBS snapshots', ebs),
    ],
  };
};

/** The one-snapshot reads of an event: a handful of calls, so a deadline there ends the run (withOps). */
const whole = <T>(read: Listing<T>, what: string): T[] => {
  if (!read.complete) throw new OutOfTimeError(what);
  return read.items;
};

const readRds = async (
  clients: Clients,
  ref: Extract<SnapshotRef, { arn: string }>,
  hasTime: () => boolean,
): Promise<Estate> => {
  const sources: Record<string, TagMap> = {};
  const cluster = ref.type === 'rds-cluster-snapshot';
  const found = whole(
    cluster
      ? await clusterSnapshots(clients.rds, hasTime, [filter('db-cluster-snapshot-id', ref.id)])
      : await dbSnapshots(clients.rds, hasTime, [filter('db-snapshot-id', ref.id)]),
    `the snapshot ${ref.id}`,
  );
  // Identifiers are per region: a snapshot of the same name elsewhere is not the one the event names.
  const snapshot = found.find((s) => s.arn === ref.arn);
  const none = { sources, partial: [], unread: [] };
  if (!snapshot) return { ...none, snapshots: [], missing: [{ arn: ref.arn, type: ref.type }] };
  const source = snapshot.source;
  const complete =
    source?.kind === 'cluster'
      ? await clusterTags(clients.rds, sources, hasTime, [filter('db-cluster-id', source.id)])
      : source?.kind === 'db'
        ? await dbTags(clients.rds, sources, hasTime, [filter('db-instance-id', source.id)])
        : true;
  if (!complete) throw new OutOfTimeError(`the source of ${ref.id}`);
  return { ...none, snapshots: [snapshot], missing: [] };
};

const readEbs = async (
  clients: Clients,
  ref: Extract<SnapshotRef, { type: 'ebs-snapshot' }>,
  hasTime: () => boolean,
): Promise<Estate> => {
  const sources: Record<string, TagMap> = {};
  const { ebsSnapshots, fromEbsSnapshot, partitionOf, volumeTags } = await import('./ebs.ts');
  const ec2 = await ec2Of(clients);
  const ebs = await ebsSnapshots(ec2, hasTime, [filter('snapshot-id', ref.id)]);
  const found = whole(ebs, `the snapshot ${ref.id}`).find((s) => s.SnapshotId === ref.id);
  const none = { sources, partial: [], unread: [] };
  if (!found) {
    const arn = `arn:${partitionOf(ebs.region)}:ec2:${ebs.region}:${ref.account ?? ''}:snapshot/${ref.id}`;
    return { ...none, snapshots: [], missing: [{ arn, type: ref.type }] };
  }
  const snapshot = fromEbsSnapshot(found, ebs.region, ref.volumeId);
  if (!(await volumeTags(ec2, sources, hasTime, volumesOf([snapshot])))) {
    throw new OutOfTimeError(`the source volume of ${ref.id}`);
  }
  return { ...none, snapshots: [snapshot], missing: [] };
};

/** The one snapshot an event names and its source's tags: a handful of reads, whatever the estate. */
export const readSnapshot = (clients: Clients, ref: SnapshotRef, hasTime: () => boolean): Promise<Estate> =>
  ref.type === 'ebs-snapshot' ? readEbs(clients, ref, hasTime) : readRds(clients, ref, hasTime);
