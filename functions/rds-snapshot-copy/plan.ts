import type { PlannedWork } from '#shared/execute.ts';
import { matchesTags, type TagMap, type TagRule } from '#shared/tags.ts';
import {
  parseSnapshotArn,
  SOURCE_ARN_TAG,
  SOURCE_TIME_TAG,
  type Snapshot,
  type SnapshotKind,
} from './inventory.ts';

/** AWS's in-flight copy limits per destination region: 20 instance-snapshot copies, 5 cluster-snapshot copies. */
export const IN_FLIGHT_LIMIT: Record<SnapshotKind, number> = { instance: 20, cluster: 5 };
/** RDS allows 50 tags per resource; one of them is nightshift's own. */
export const MAX_TAGS = 50;
const DAY_MS = 86_400_000;
const COPYABLE_TYPES = new Set(['manual', 'automated']);
const IN_FLIGHT_STATUSES = new Set(['pending', 'copying', 'creating']);

export interface CopyWork extends PlannedWork {
  kind: SnapshotKind;
  sourceArn: string;
  sourceRegion: string;
  region: string;
  targetId: string;
  kmsKeyId?: string;
  tags: { Key: string; Value: string }[];
}

export interface PruneWork extends PlannedWork {
  kind: SnapshotKind;
  region: string;
  id: string;
}

export interface CopyPlan {
  copies: CopyWork[];
  prunes: PruneWork[];
}

export interface CopyPlanInput {
  /** sweep: everything eligible, quietly; event: one new snapshot; copy: one snapshot an operator asked for. */
  mode: 'sweep' | 'event' | 'copy';
  sources: Snapshot[];
  /** All snapshots of the sources' databases, to tell which is each database's newest. */
  siblings: Snapshot[];
  missing: string[];
  regions: string[];
  /** Every snapshot in each destination region, by region. */
  destinations: Record<string, Snapshot[]>;
  databaseTags: Record<string, TagMap>;
}

export interface CopyPlanOptions {
  sourceRegion: string;
  retentionDays: number;
  kmsKeys: Record<string, string>;
  sourceTags: readonly TagRule[];
  now: Date;
}

/**
 * The copy's identifier, derived from the source's alone so a re-delivered event meets "already
 * exists": without the `rds:` prefix of automated snapshots, letters, digits and single hyphens only,
 * starting with a letter, at most 255 characters (RDS snapshot identifier rules).
 */
export const targetIdentifier = (sourceId: string): string => {
  let id = sourceId
    .replace(/^rds:/, '')
    .replace(/[^A-Za-z0-9-]/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
  if (!/^[A-Za-z]/.test(id)) id = `copy-${id}`;
  return id.slice(0, 255).replace(/-+$/, '');
};

export const snapshotArn = (source: string, region: string, kind: SnapshotKind, id: string) => {
  const { partition, account } = parseSnapshotArn(source);
  return `arn:${partition}:rds:${region}:${account}:${kind === 'cluster' ? 'cluster-snapshot' : 'snapshot'}:${id}`;
};

const typeOf = (kind: SnapshotKind) => (kind === 'cluster' ? 'rds-cluster-snapshot' : 'rds-snapshot');
const ageDays = (created: Date | undefined, now: Date) =>
  created ? Math.floor((now.getTime() - created.getTime()) / DAY_MS) : 0;
const dbKey = (s: Pick<Snapshot, 'kind' | 'dbId'>) => `${s.kind}:${s.dbId}`;
const newer = (a: Snapshot, b: Snapshot | undefined) =>
  !b || (a.created?.getTime() ?? 0) > (b.created?.getTime() ?? 0);
const dayOf = (d: Date | undefined) => d?.toISOString().slice(0, 10) ?? 'unknown date';

/** The source's tags minus AWS-reserved keys, plus nightshift's two, within the 50-tag limit (key order). */
const copyTags = (source: Snapshot) => {
  const keys = Object.keys(source.tags)
    .filter((k) => !k.startsWith('aws:') && k !== SOURCE_ARN_TAG && k !== SOURCE_TIME_TAG)
    .sort();
  const ours = [
    { Key: SOURCE_ARN_TAG, Value: source.arn },
    ...(source.created
      ? [{ Key: SOURCE_TIME_TAG, Value: source.created.toISOString().replace(/\.\d{3}Z$/, 'Z') }]
      : []),
  ];
  const room = MAX_TAGS - ours.length;
  return {
    tags: [...keys.slice(0, room).map((Key) => ({ Key, Value: source.tags[Key] ?? '' })), ...ours],
    leftOut: keys.slice(room),
  };
};

const newestByDb = (snapshots: Snapshot[]) => {
  const newest = new Map<string, Snapshot>();
  for (const s of snapshots) if (newer(s, newest.get(dbKey(s)))) newest.set(dbKey(s), s);
  return newest;
};

/**
 * Decides which snapshots to copy into which regions and which nightshift copies to prune, each with
 * a reason. Pure: no I/O, no clock, no environment.
 */
export const planCopies = (input: CopyPlanInput, opts: CopyPlanOptions): CopyPlan => {
  const copies: CopyWork[] = [];
  const quiet = input.mode === 'sweep';
  const newest = newestByDb([...input.siblings, ...input.sources]);
  const budget = Object.fromEntries(
    input.regions.map((region) => {
      const inFlight = (kind: SnapshotKind) =>
        (input.destinations[region] ?? []).filter(
          (s) =>
            s.kind === kind && IN_FLIGHT_STATUSES.has(s.status) && (s.status !== 'creating' || s.sourceArn),
        ).length;
      return [
        region,
        {
          instance: IN_FLIGHT_LIMIT.instance - inFlight('instance'),
          cluster: IN_FLIGHT_LIMIT.cluster - inFlight('cluster'),
        },
      ];
    }),
  );

  for (const arn of input.missing) {
    const kind = parseSnapshotArn(arn).kind;
    copies.push({
      arn,
      type: typeOf(kind),
      hasWork: false,
      outcome: input.mode === 'copy' ? 'failed' : 'skipped',
      detail: 'snapshot not found (deleted, or not in this account and region); nothing copied',
      kind,
      sourceArn: arn,
      sourceRegion: opts.sourceRegion,
      region: '',
      targetId: '',
      tags: [],
    });
  }

  // Newest first, so the in-flight budget goes to the snapshots that matter most.
  const sources = [...input.sources].sort(
    (a, b) => (b.created?.getTime() ?? 0) - (a.created?.getTime() ?? 0),
  );
  for (const source of sources) {
    const base = {
      type: typeOf(source.kind),
      kind: source.kind,
      sourceArn: source.arn,
      sourceRegion: opts.sourceRegion,
    };
    const skipAll = (detail: string, outcome: 'skipped' | 'failed' = 'skipped') => {
      if (!quiet)
        copies.push({
          ...base,
          arn: source.arn,
          hasWork: false,
          outcome,
          detail,
          region: '',
          targetId: '',
          tags: [],
        });
    };
    if (source.sourceArn) {
      skipAll(`is itself a nightshift copy of ${source.sourceArn}; copies are never copied again`);
      continue;
    }
    if (!COPYABLE_TYPES.has(source.type)) {
      skipAll(`${source.type} snapshot: only manual and automated snapshots are copied`);
      continue;
    }
    if (opts.sourceTags.length > 0 && input.mode !== 'copy') {
      const dbTags = input.databaseTags[dbKey(source)] ?? {};
      const wanted = Object.fromEntries(opts.sourceTags.map((r) => [r.key, r.value]));
      if (!matchesTags(dbTags, wanted)) {
        skipAll(
          `${source.kind === 'cluster' ? 'cluster' : 'database'} ${source.dbId} does not carry SOURCE_TAGS ${opts.sourceTags.map((r) => `${r.key}=${r.value}`).join(', ')}`,
        );
        continue;
      }
    }
    const age = ageDays(source.created, opts.now);
    const isNewest = newest.get(dbKey(source))?.arn === source.arn;
    if (input.mode !== 'copy' && age > opts.retentionDays && !isNewest) {
      skipAll(
        `${age} days old, past RETENTION_DAYS ${opts.retentionDays}, and not the newest snapshot of ${source.dbId}: a copy would be pruned at once`,
      );
      continue;
    }
    for (const region of input.regions) {
      const targetId = targetIdentifier(source.id);
      const arn = snapshotArn(source.arn, region, source.kind, targetId);
      const row = { ...base, arn, region, targetId, tags: [] as CopyWork['tags'] };
      const say = (outcome: 'unchanged' | 'skipped' | 'failed', detail: string) =>
        copies.push({ ...row, hasWork: false, outcome, detail });
      if (region === opts.sourceRegion) {
        say('skipped', `${region} is the source region; TARGET_REGIONS should name other regions`);
        continue;
      }
      const inRegion = (input.destinations[region] ?? []).filter((s) => s.kind === source.kind);
      const existing = inRegion.find((s) => s.sourceArn === source.arn);
      if (existing) {
        say('unchanged', `already copied to ${region} as ${existing.id} (${existing.status})`);
        continue;
      }
      const squatter = inRegion.find((s) => s.id === targetId);
      if (squatter) {
        say(
          'failed',
          `identifier ${targetId} in ${region} is taken by a snapshot that is not a nightshift copy of this source` +
            `${squatter.sourceArn ? ` (it copies ${squatter.sourceArn})` : ''}; nothing attempted`,
        );
        continue;
      }
      if (source.status !== 'available') {
        say('skipped', `not available yet (${source.status}); the next sweep copies it`);
        continue;
      }
      const kmsKeyId = source.encrypted ? opts.kmsKeys[region] : undefined;
      if (source.encrypted && !kmsKeyId) {
        say(
          'failed',
          `encrypted snapshot, and no KMS key is configured for ${region} in TARGET_KMS_KEYS; nothing attempted`,
        );
        continue;
      }
      const regionBudget = budget[region] as Record<SnapshotKind, number>;
      if (regionBudget[source.kind] <= 0) {
        say(
          'skipped',
          `in-flight copy limit reached in ${region} (${IN_FLIGHT_LIMIT[source.kind]} ${source.kind}-snapshot copies); left for the next sweep`,
        );
        continue;
      }
      regionBudget[source.kind] -= 1;
      const { tags, leftOut } = copyTags(source);
      copies.push({
        ...row,
        hasWork: true,
        tags,
        ...(kmsKeyId && { kmsKeyId }),
        detail:
          `copy ${source.id} to ${region} as ${targetId} with ${tags.length} tags` +
          (kmsKeyId ? `, encrypted with KMS key ${kmsKeyId}` : '') +
          (leftOut.length > 0 ? `; tags left out (50-tag limit): ${leftOut.join(', ')}` : '') +
          (input.mode === 'copy' && age > opts.retentionDays && !isNewest
            ? `; note: ${age} days old, the next sweep prunes the copy (RETENTION_DAYS ${opts.retentionDays})`
            : ''),
      });
    }
  }
  return { copies, prunes: input.mode === 'sweep' ? planPrunes(input, opts) : [] };
};

/**
 * Nightshift copies older than RETENTION_DAYS are deleted, except each source database's newest copy
 * and newest available copy (incremental copies build on it). Nothing without the nightshift tag is
 * ever considered.
 */
const planPrunes = (input: CopyPlanInput, opts: CopyPlanOptions): PruneWork[] => {
  const prunes: PruneWork[] = [];
  for (const region of input.regions) {
    const copies = (input.destinations[region] ?? []).filter((s) => s.sourceArn);
    const group = (s: Snapshot) => `${s.kind}:${parseSnapshotArn(s.sourceArn ?? '').region}:${s.dbId}`;
    const newestAny = new Map<string, Snapshot>();
    const newestAvailable = new Map<string, Snapshot>();
    for (const s of copies) {
      if (newer(s, newestAny.get(group(s)))) newestAny.set(group(s), s);
      if (s.status === 'available' && newer(s, newestAvailable.get(group(s))))
        newestAvailable.set(group(s), s);
    }
    for (const s of copies) {
      const keep = newestAny.get(group(s)) === s || newestAvailable.get(group(s)) === s;
      const age = ageDays(s.created, opts.now);
      if (keep || s.status !== 'available' || age <= opts.retentionDays) continue;
      prunes.push({
        arn: s.arn,
        type: typeOf(s.kind),
        kind: s.kind,
        region,
        id: s.id,
        hasWork: true,
        detail:
          `delete copy ${s.id} in ${region} (of ${s.sourceArn}, taken ${dayOf(s.created)}): ${age} days old, ` +
          `past RETENTION_DAYS ${opts.retentionDays}; newest copy ${newestAvailable.get(group(s))?.id ?? newestAny.get(group(s))?.id} kept`,
      });
    }
  }
  return prunes;
};
