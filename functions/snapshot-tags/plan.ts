import type { PlannedWork } from '#shared/execute.ts';
import type { TagMap } from '#shared/tags.ts';
import type { SnapshotType } from '#events/snapshot-tags/schema.ts';
import { sourceKey, type Estate, type SnapshotState, type SourceRef } from './inventory.ts';

/** AWS allows 50 user tags per RDS or EC2 resource; keys starting with `aws:` do not count. */
export const TAG_LIMIT = 50;
/**
 * Tags snapshot-tags leaves free on an RDS snapshot: rds-snapshot-copy marks a source it copies with
 * two (`nightshift:copy-source` and `nightshift:source-time`) and cannot copy a snapshot that has no
 * room for them. So snapshot-tags fills an RDS snapshot to at most 48 tags of its own.
 */
export const RDS_ROOM_KEPT = 2;
/** EC2 CreateTags takes up to 1000 resource ids per call. */
export const CREATE_TAGS_BATCH = 1000;

/**
 * Keys never copied: `aws:` is reserved by AWS and `rds:` by RDS (neither can be written), and
 * `nightshift:` keys are state nightshift keeps on one resource. A database restored from a nightshift
 * copy inherits `nightshift:source-arn`; copied onto its own snapshots, that tag would make them look
 * like copies, which rds-snapshot-copy prunes.
 */
const RESERVED_PREFIXES: Record<SnapshotType, readonly string[]> = {
  'rds-snapshot': ['aws:', 'rds:', 'nightshift:'],
  'rds-cluster-snapshot': ['aws:', 'rds:', 'nightshift:'],
  'ebs-snapshot': ['aws:', 'nightshift:'],
};

export interface TagRules {
  /** Only these keys are copied (TAG_KEYS); empty copies every key. */
  only: readonly string[];
  /** Never these keys (EXCLUDE_TAG_KEYS); wins over `only`. */
  exclude: readonly string[];
}

export interface SnapshotTagging extends PlannedWork {
  type: SnapshotType;
  /** Snapshot identifier: `rds:orders-…`, `snap-…`. */
  id: string;
  /** Tags to add, in key order; empty when there is no work. */
  add: TagMap;
  /** The detail once the tags are added. */
  doneDetail: string;
  /** The deadline cut the read of its source short: left `undone`, for the next sweep to start with. */
  unread?: true;
}

/** One tagging call: a single RDS snapshot, or EBS snapshots that all receive exactly these tags. */
export interface TagBatch {
  service: 'rds' | 'ec2';
  tags: TagMap;
  snapshots: SnapshotTagging[];
}

export interface Plan {
  action: 'sweep' | 'tag';
  /** One row per snapshot, in report order. */
  snapshots: SnapshotTagging[];
  /** Every snapshot with work exactly once, grouped into the calls that add its tags. */
  batches: TagBatch[];
  /** Snapshot listings the deadline cut short (Estate.unread): reported `undone`. */
  unread: Estate['unread'];
}

const isReserved = (key: string, type: SnapshotType) =>
  RESERVED_PREFIXES[type].some((prefix) => key.toLowerCase().startsWith(prefix));

const countsTowardLimit = (key: string) => !key.toLowerCase().startsWith('aws:');

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const label = (s: SourceRef) => `${s.kind} ${s.id}`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export interface TagMerge {
  /** Keys to add, in key order, as many as the limit leaves room for. */
  add: string[];
  /** Keys that would be added but do not fit under the limit. */
  leftOut: string[];
  /** Source keys the snapshot already has with another value: its own value stays. */
  kept: string[];
  /** Source keys eligible for copying (after prefixes, TAG_KEYS and EXCLUDE_TAG_KEYS). */
  eligible: string[];
}

/**
 * Which of a source's tags a snapshot receives: never a key it already has (whatever the value), no
 * reserved prefixes, only TAG_KEYS when given, never EXCLUDE_TAG_KEYS, and no more than the 50-tag
 * limit leaves room for (on RDS snapshots, keeping RDS_ROOM_KEPT free for nightshift's copy marks), in
 * key order.
 */
export const mergeTags = (
  snapshotTags: TagMap,
  sourceTags: TagMap,
  type: SnapshotType,
  rules: TagRules,
): TagMerge => {
  const eligible = Object.keys(sourceTags)
    .filter(
      (key) =>
        !isReserved(key, type) &&
        (rules.only.length === 0 || rules.only.includes(key)) &&
        !rules.exclude.includes(key),
    )
    .sort(byKey);
  const has = (key: string) => Object.hasOwn(snapshotTags, key);
  const missing = eligible.filter((key) => !has(key));
  const kept = eligible.filter((key) => has(key) && snapshotTags[key] !== sourceTags[key]);
  const counted = Object.keys(snapshotTags).filter(countsTowardLimit);
  // nightshift's own keys on the snapshot already use the room kept for them.
  const ownKeys = counted.filter((key) => key.toLowerCase().startsWith('nightshift:')).length;
  const room = Math.max(
    0,
    type === 'ebs-snapshot'
      ? TAG_LIMIT - counted.length
      : Math.min(TAG_LIMIT - RDS_ROOM_KEPT - (counted.length - ownKeys), TAG_LIMIT - counted.length),
  );
  return { add: missing.slice(0, room), leftOut: missing.slice(room), kept, eligible };
};

const noWork = (
  s: Pick<SnapshotState, 'arn' | 'type' | 'id'>,
  outcome: 'unchanged' | 'skipped',
  detail: string,
): SnapshotTagging => ({
  arn: s.arn,
  type: s.type,
  id: s.id,
  add: {},
  hasWork: false,
  outcome,
  detail,
  doneDetail: detail,
});

const NO_SOURCE: Record<SnapshotType, string> = {
  'rds-snapshot': 'the snapshot names no DB instance; no tags to copy',
  'rds-cluster-snapshot': 'the snapshot names no DB cluster; no tags to copy',
  'ebs-snapshot': 'the snapshot names no source volume (copied, or registered from an AMI); no tags to copy',
};

/** A snapshot whose source the deadline left unread: no plan from half a picture. */
const unreadSource = (s: SnapshotState, from: string): SnapshotTagging => ({
  ...noWork(
    s,
    'skipped',
    `not planned: the Lambda was about to time out before ${from} was read; the next sweep starts with it`,
  ),
  unread: true,
});

const planSnapshot = (s: SnapshotState, estate: Estate, rules: TagRules): SnapshotTagging => {
  if (!s.source) return noWork(s, 'skipped', NO_SOURCE[s.type]);
  const from = label(s.source);
  const sourceTags = estate.sources[sourceKey(s.source)];
  if (!sourceTags && estate.partial.includes(s.source.kind)) return unreadSource(s, from);
  if (!sourceTags) {
    return noWork(
      s,
      'skipped',
      `${from} not found in this region (deleted, or the snapshot is a copy); no tags to copy`,
    );
  }
  const merge = mergeTags(s.tags, sourceTags, s.type, rules);
  const kept = merge.kept.length > 0 ? `; kept the snapshot's own value of: ${merge.kept.join(', ')}` : '';
  const limit =
    s.type === 'ebs-snapshot'
      ? `${TAG_LIMIT}-tag limit`
      : `${TAG_LIMIT}-tag limit, ${RDS_ROOM_KEPT} kept free for nightshift's copy marks`;
  const leftOut = merge.leftOut.length > 0 ? `left out (${limit}): ${merge.leftOut.join(', ')}` : '';
  const total = Object.keys(sourceTags).length;
  if (merge.eligible.length === 0) {
    return noWork(
      s,
      'unchanged',
      total === 0
        ? `${from} has no tags to copy`
        : `${from} has no tags to copy: its ${plural(total, 'tag')} are all reserved (aws:, rds:, nightshift:) or left out by TAG_KEYS / EXCLUDE_TAG_KEYS`,
    );
  }
  if (merge.add.length === 0 && merge.leftOut.length === 0) {
    return noWork(
      s,
      'unchanged',
      `already carries ${merge.eligible.length === 1 ? 'the one tag' : `all ${merge.eligible.length} tags`} of ${from}${kept}`,
    );
  }
  if (merge.add.length === 0) {
    const has = Object.keys(s.tags).filter(countsTowardLimit).length;
    return noWork(s, 'skipped', `the snapshot already has ${has} tags; ${leftOut}${kept}`);
  }
  const add = Object.fromEntries(merge.add.map((key) => [key, sourceTags[key] ?? '']));
  const what = `${plural(merge.add.length, 'tag')} from ${from}: ${merge.add.join(', ')}`;
  const rest = `${leftOut ? `; ${leftOut}` : ''}${kept}`;
  return {
    arn: s.arn,
    type: s.type,
    id: s.id,
    add,
    hasWork: true,
    detail: `add ${what}${rest}`,
    doneDetail: `added ${what}${rest}`,
    // The plan digest covers the values too: the same keys with another value is another change.
    digestKey: `add ${JSON.stringify(add)} from ${from}`,
  };
};

/** EBS snapshots that receive an identical tag set share CreateTags calls, up to 1000 ids each. */
const batchesOf = (snapshots: SnapshotTagging[]): TagBatch[] => {
  const rds: TagBatch[] = [];
  const ec2 = new Map<string, SnapshotTagging[]>();
  for (const s of snapshots.filter((p) => p.hasWork)) {
    if (s.type !== 'ebs-snapshot') {
      rds.push({ service: 'rds', tags: s.add, snapshots: [s] });
      continue;
    }
    const key = JSON.stringify(Object.entries(s.add));
    const group = ec2.get(key);
    if (group) group.push(s);
    else ec2.set(key, [s]);
  }
  const grouped = [...ec2.values()].flatMap((group) => {
    const out: TagBatch[] = [];
    for (let i = 0; i < group.length; i += CREATE_TAGS_BATCH) {
      const part = group.slice(i, i + CREATE_TAGS_BATCH);
      out.push({ service: 'ec2', tags: part[0]?.add ?? {}, snapshots: part });
    }
    return out;
  });
  return [...rds, ...grouped];
};

/**
 * Decides, from what was read, which tags each snapshot receives from its source, with a reason for
 * each. A snapshot that is still being created is tagged too: RDS and EC2 accept tags on a snapshot in
 * any state, and tagging it at once is what lets cost and ownership reports see it. Pure: no I/O.
 */
export const planTagging = (action: Plan['action'], estate: Estate, rules: TagRules): Plan => {
  const snapshots = [
    ...estate.missing.map((m) =>
      noWork(
        { ...m, id: m.arn },
        'skipped',
        'snapshot not found in this region (deleted since the event?); nothing to tag',
      ),
    ),
    ...estate.snapshots.map((s) => planSnapshot(s, estate, rules)),
  ];
  return { action, snapshots, batches: batchesOf(snapshots), unread: estate.unread };
};
