/**
 * Everything snapshot-tags sends to EC2: the EBS snapshot and volume reads and CreateTags, with the EC2
 * client. inventory.ts and execute.ts import it on demand: a run about an RDS snapshot never loads the
 * EC2 SDK client (issue 12's lean bundles).
 */
import {
  CreateTagsCommand,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  type EC2Client,
  type Filter as Ec2Filter,
  type Snapshot as Ec2Snapshot,
  type Tag,
} from '@aws-sdk/client-ec2';
import { ec2Client } from '#shared/aws/ec2.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';
import { FILTER_VALUES, list, sourceKey, type SnapshotState } from './inventory.ts';

/** The EC2 client where the function runs, or a fleet target's (one per cold start / per scope). */
export const ebsClient = (scope?: ClientScope): EC2Client => ec2Client(scope);

// EC2 DescribeSnapshots: MaxResults 5–1000 with a NextToken; DescribeVolumes: 5–500 (inventory.ts).
const SNAPSHOT_PAGE = 1000;
const VOLUME_PAGE = 500;
/** DescribeVolumes calls in flight at once: a sweep over tens of thousands of snapshots reads hundreds. */
const VOLUME_READS = 4;
/**
 * The volume id AWS gives EBS snapshots made by CopySnapshot: "an arbitrary volume ID that should not be
 * used for any purpose" (EC2 API reference, Snapshot.VolumeId). Such a snapshot has no source here.
 */
const COPY_VOLUME_ID = 'vol-ffffffff';

export const partitionOf = (region: string) =>
  region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';

/** The ARN a person would look up, with the owner account: EventBridge's own EBS ARNs have none. */
export const fromEbsSnapshot = (s: Ec2Snapshot, region: string, volumeFallback?: string): SnapshotState => {
  const named = s.VolumeId ?? volumeFallback;
  const volume = named === COPY_VOLUME_ID ? undefined : named;
  return {
    arn: `arn:${partitionOf(region)}:ec2:${region}:${s.OwnerId ?? ''}:snapshot/${s.SnapshotId ?? ''}`,
    type: 'ebs-snapshot',
    id: s.SnapshotId ?? '',
    status: s.State ?? 'unknown',
    tags: tagMapUpper(s.Tags),
    ...(volume && { source: { kind: 'volume' as const, id: volume } }),
  };
};

/** EBS snapshots, 1000 to a page. OwnerIds `self`: never the public and shared snapshots EC2 also lists. */
export const ebsSnapshots = async (ec2: EC2Client, hasTime: () => boolean, Filters?: Ec2Filter[]) => {
  const region = await ec2.config.region();
  const read = await list(
    paginateDescribeSnapshots({ client: ec2, pageSize: SNAPSHOT_PAGE }, { OwnerIds: ['self'], Filters }),
    (page) => page.Snapshots ?? [],
    hasTime,
    'EBS snapshots',
  );
  return { region, ...read };
};

/**
 * Volumes by id, 200 to a call, a few calls at once, so a deleted volume is simply absent from the
 * answer. False when the deadline left some unread.
 */
export const volumeTags = async (
  ec2: EC2Client,
  sources: Record<string, TagMap>,
  hasTime: () => boolean,
  ids: string[],
): Promise<boolean> => {
  const reads = await mapLimit(
    chunk([...new Set(ids)], FILTER_VALUES),
    VOLUME_READS,
    async (batch) => {
      const input = { Filters: [{ Name: 'volume-id', Values: batch }] };
      const read = await list(
        paginateDescribeVolumes({ client: ec2, pageSize: VOLUME_PAGE }, input),
        (page) => page.Volumes ?? [],
        hasTime,
        'EBS volumes',
      );
      for (const v of read.items) {
        sources[sourceKey({ kind: 'volume', id: v.VolumeId ?? '' })] = tagMapUpper(v.Tags);
      }
      return read.complete;
    },
    { shouldStart: hasTime, notStarted: () => false },
  );
  return reads.every(Boolean);
};

/**
 * Which of these EBS snapshots no longer exist, read by filter (a filter that matches nothing is an
 * empty answer, where SnapshotIds would fail on the first missing id). At most 1000 ids (one CreateTags
 * call): five reads, so it runs to the end once its call has started.
 */
export const goneEbsSnapshots = async (ec2: EC2Client, ids: readonly string[]): Promise<Set<string>> => {
  const found = new Set<string>();
  for (const batch of chunk(ids, FILTER_VALUES)) {
    const input = { OwnerIds: ['self'], Filters: [{ Name: 'snapshot-id', Values: batch }] };
    for await (const page of paginateDescribeSnapshots({ client: ec2, pageSize: SNAPSHOT_PAGE }, input)) {
      for (const s of page.Snapshots ?? []) if (s.SnapshotId) found.add(s.SnapshotId);
    }
  }
  return new Set(ids.filter((id) => !found.has(id)));
};

/** One CreateTags call (execute.ts tagEbs decides what a failure means). */
export const createTags = (ec2: EC2Client, Resources: string[], Tags: Tag[]) =>
  ec2.send(new CreateTagsCommand({ Resources, Tags }));
