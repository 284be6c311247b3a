import { createHash } from 'node:crypto';
import type { PlannedWork } from '#shared/execute.ts';
import { formatAge } from '#shared/duration.ts';
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
/**
 * Identifier limits: TargetDBSnapshotIdentifier "from 1 to 255 letters, numbers, or hyphens",
 * TargetDBClusterSnapshotIdentifier "from 1 to 63" (RDS API reference, CopyDBSnapshot and
 * CopyDBClusterSnapshot). An automated cluster snapshot `rds:<cluster>-YYYY-MM-DD-HH-MM` of a cluster
 * whose id is longer than 46 characters does not fit as it is.
 */
export const ID_LIMIT: Record<SnapshotKind, number> = { instance: 255, cluster: 63 };
/** RDS allows 50 tags per resource. */
export const MAX_TAGS = 50;
/** Above this many per region, snapshots that only claim to be nightshift copies are summarised. */
export const FOREIGN_ROWS_LISTED = 20;
export const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const COPYABLE_TYPES = new Set(['manual', 'automated']);
const IN_FLIGHT_STATUSES = new Set(['pending', 'copying', 'creating']);
/** States a copy never leaves: it is nightshift's to remove, and its source is copied again. */
const FAILED_STATUS = /^(failed|error|incompatible)/;

export interface CopyWork extends PlannedWork {
  kind: SnapshotKind;
  sourceArn: string;
  sourceRegion: string;
  region: string;
  targetId: string;
  kmsKeyId?: string;
  optionGroup?: string;
  /**
   * nightshift's two tags, added to the source before its copy when it lacks them. The copy inherits
   * them with CopyTags: the role never writes a tag in a destination region, so it can never make a
   * snapshot it did not create look like one of its copies (infra/rds-snapshot-copy.yml).
   */
  stamp: { Key: string; Value: string }[];
}

export interface PruneWork extends PlannedWork {
  kind: SnapshotKind;
  region: string;
  id: string;
}

export interface CopyPlan {
  copies: CopyWork[];
  /** Deletions, and one skipped row per snapshot that only claims to be a copy (or a summary of them). */
  prunes: PruneWork[];
  /**
   * Per destination region, the oldest source that should have a copy there and has no available one
   * (null when every such source has one): what the "copies stopped" alarm watches.
   */
  uncopied: Record<string, { arn: string; ageHours: number } | null>;
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
  optionGroups: Record<string, string>;
  sourceTags: readonly TagRule[];
  now: Date;
  /** Copy ARNs the previous run left undone: their sources get the in-flight budget first. */
  first?: ReadonlySet<string>;
}

const DATE_SUFFIX = /-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}$/;

/**
 * The copy's identifier, derived from the source's alone so a re-delivered event meets "already
 * exists": without the `rds:` prefix of automated snapshots, letters, digits and single hyphens only,
 * starting with a letter, in lower case (RDS stores identifiers in lower case). One longer than the
 * kind's limit keeps its head, a hash of the whole identifier (two long ids that share a head stay
 * apart) and its date suffix (each day's copy stays apart): `<head>-<8 hex>-2026-11-23-03-24`.
 * Identifiers within the limit are unchanged.
 */
export const targetIdentifier = (sourceId: string, kind: SnapshotKind = 'instance'): string => {
  let id = sourceId
    .replace(/^rds:/, '')
    .replace(/[^A-Za-z0-9-]/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase();
  if (!/^[a-z]/.test(id)) id = `copy-${id}`;
  const limit = ID_LIMIT[kind];
  if (id.length <= limit) return id;
  const date = DATE_SUFFIX.exec(id)?.[0] ?? '';
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  const head = id.slice(0, limit - date.length - hash.length - 1).replace(/-+$/, '');
  return `${head}-${hash}${date}`;
};

export const snapshotArn = (source: string, region: string, kind: SnapshotKind, id: string) => {
  const { partition, account } = parseSnapshotArn(source);
  return `arn:${partition}:rds:${region}:${account}:${kind === 'cluster' ? 'cluster-snapshot' : 'snapshot'}:${id}`;
};

const copiedFromField = (kind: SnapshotKind) =>
  kind === 'cluster' ? 'SourceDBClusterSnapshotArn' : 'SourceDBSnapshotIdentifier';

export type Claim =
  | { ours: true; source: string }
  | { ours: false; code: 'not-a-copy' | 'tag' | 'identifier' | 'elsewhere'; reason: string };

/**
 * Whether a snapshot is a nightshift copy, by what RDS records rather than by its tags: RDS says it was
 * copied from a source, it carries `nightshift:source-arn` naming that same source, and its identifier
 * is the one nightshift derives from that source. Tags alone prove nothing: people copy snapshots
 * with their tags, and a database restored from a copy with CopyTagsToSnapshot stamps both tags on
 * every snapshot it makes.
 */
export const nightshiftCopy = (s: Snapshot): Claim => {
  if (!s.copiedFrom)
    return {
      ours: false,
      code: 'not-a-copy',
      reason: `RDS records no source for it (no ${copiedFromField(s.kind)}): it was not copied across Regions`,
    };
  if (s.sourceArn !== s.copiedFrom)
    return {
      ours: false,
      code: 'tag',
      reason: s.sourceArn
        ? `RDS says it was copied from ${s.copiedFrom}, not from ${s.sourceArn} as its ${SOURCE_ARN_TAG} tag claims`
        : `RDS says it was copied from ${s.copiedFrom}, but it carries no ${SOURCE_ARN_TAG}`,
    };
  const derived = targetIdentifier(parseSnapshotArn(s.copiedFrom).id, s.kind);
  if (s.id.toLowerCase() !== derived)
    return {
      ours: false,
      code: 'identifier',
      reason: `its identifier is not ${derived}, the one nightshift derives from ${s.copiedFrom}`,
    };
  return { ours: true, source: s.copiedFrom };
};

/** A nightshift copy of a snapshot of this account in this deployment's own source region: one it may prune. */
const prunable = (s: Snapshot, sourceRegion: string): Claim => {
  const claim = nightshiftCopy(s);
  if (!claim.ours) return claim;
  const from = parseSnapshotArn(claim.source);
  if (from.region !== sourceRegion || from.account !== parseSnapshotArn(s.arn).account)
    return {
      ours: false,
      code: 'elsewhere',
      reason: `a nightshift copy of ${claim.source}, from another Region or account: the deployment there prunes it`,
    };
  return claim;
};

/** When a source's data was taken, by AWS alone: OriginalSnapshotCreateTime (instance), else SnapshotCreateTime. */
const takenAt = (s: Snapshot): Date | undefined => s.originalCreated ?? s.created;

const validDate = (text: string | undefined) => {
  const d = text ? new Date(text) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : undefined;
};

/**
 * When the data of one of nightshift's own copies was taken: OriginalSnapshotCreateTime (instance
 * copies keep the source's), else the source's own time while it exists, else the
 * `nightshift:source-time` the copy inherited from it (only ever read on a proven copy), else when the
 * copy was made (later: the copy is then kept longer, never pruned early).
 */
const copyTakenAt = (copy: Snapshot, sources: ReadonlyMap<string, Snapshot>): Date | undefined => {
  const source = copy.copiedFrom ? sources.get(copy.copiedFrom) : undefined;
  return (
    copy.originalCreated ??
    (source && takenAt(source)) ??
    validDate(copy.tags[SOURCE_TIME_TAG]) ??
    copy.created
  );
};

const typeOf = (kind: SnapshotKind) => (kind === 'cluster' ? 'rds-cluster-snapshot' : 'rds-snapshot');
const ageMs = (at: Date | undefined, now: Date) => (at ? now.getTime() - at.getTime() : 0);
/** "Older than N days" is older than N × 24 hours, to the millisecond: 7 days 23 hours is past 7. */
const pastRetention = (ms: number, days: number) => ms > days * DAY_MS;
const dbKey = (s: Pick<Snapshot, 'kind' | 'dbId'>) => `${s.kind}:${s.dbId}`;
const dayOf = (d: Date | undefined) => d?.toISOString().slice(0, 10) ?? 'unknown date';
const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const isDefaultOptionGroup = (name: string) => name.startsWith('default:');

const newestBy = (
  snapshots: Snapshot[],
  key: (s: Snapshot) => string,
  at: (s: Snapshot) => Date | undefined,
) => {
  const newest = new Map<string, Snapshot>();
  for (const s of snapshots) {
    const held = newest.get(key(s));
    if (!held || (at(s)?.getTime() ?? 0) > (at(held)?.getTime() ?? 0)) newest.set(key(s), s);
  }
  return newest;
};

/**
 * nightshift's tags the source lacks, within RDS's 50 tags. Without room for `nightshift:source-arn` a
 * copy could never be recognised as nightshift's, so none is made; `nightshift:source-time` is left
 * out when there is no room for it (the copy is then dated by AWS's own times).
 */
const stampFor = (source: Snapshot): { stamp: CopyWork['stamp']; error?: string; note?: string } => {
  const wanted = [
    { Key: SOURCE_ARN_TAG, Value: source.arn },
    ...(takenAt(source) ? [{ Key: SOURCE_TIME_TAG, Value: isoSeconds(takenAt(source) as Date) }] : []),
  ];
  const missing = wanted.filter((t) => source.tags[t.Key] !== t.Value);
  const room = MAX_TAGS - Object.keys(source.tags).length;
  const added = missing.filter((t) => !(t.Key in source.tags));
  if (added.length <= room) return { stamp: missing };
  if (missing.some((t) => t.Key === SOURCE_ARN_TAG) && !(SOURCE_ARN_TAG in source.tags) && room < 1)
    return {
      stamp: [],
      error: `the source has ${Object.keys(source.tags).length} tags, RDS's limit: nightshift needs one free for ${SOURCE_ARN_TAG}, which marks its copies; remove a tag from it; nothing attempted`,
    };
  return {
    stamp: missing.filter((t) => t.Key !== SOURCE_TIME_TAG),
    note: `no room for ${SOURCE_TIME_TAG} on the source (50 tags): the copy is dated by AWS's times`,
  };
};

/**
 * Decides which snapshots to copy into which regions and which of nightshift's own copies to prune,
 * each with a reason. Pure: no I/O, no clock, no environment.
 */
export const planCopies = (input: CopyPlanInput, opts: CopyPlanOptions): CopyPlan => {
  const copies: CopyWork[] = [];
  const quiet = input.mode === 'sweep';
  const known = new Map([...input.siblings, ...input.sources].map((s) => [s.arn, s]));
  // A database's newest snapshot is copied however old it is; copies from elsewhere do not count.
  const newest = newestBy(
    [...known.values()].filter((s) => COPYABLE_TYPES.has(s.type) && !nightshiftCopy(s).ours),
    dbKey,
    takenAt,
  );
  const budget = Object.fromEntries(
    input.regions.map((region) => {
      // AWS's limit counts every copy in flight into the region, whoever started it.
      const inFlight = (kind: SnapshotKind) =>
        (input.destinations[region] ?? []).filter(
          (s) =>
            s.kind === kind &&
            IN_FLIGHT_STATUSES.has(s.status) &&
            (s.status !== 'creating' || s.copiedFrom || s.sourceArn),
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
  const uncopied: CopyPlan['uncopied'] = Object.fromEntries(input.regions.map((r) => [r, null]));
  const noteUncopied = (region: string, source: Snapshot) => {
    const ageHours = Math.max(0, ageMs(takenAt(source), opts.now)) / HOUR_MS;
    const held = uncopied[region];
    if (region in uncopied && (!held || ageHours > held.ageHours))
      uncopied[region] = { arn: source.arn, ageHours: Math.round(ageHours * 100) / 100 };
  };

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
      stamp: [],
    });
  }

  // Carried over from a run the deadline cut first, then newest first: the in-flight budget goes to them.
  const carried = (s: Snapshot) =>
    input.regions.some((r) => opts.first?.has(snapshotArn(s.arn, r, s.kind, targetIdentifier(s.id, s.kind))));
  const sources = [...input.sources].sort(
    (a, b) =>
      Number(carried(b)) - Number(carried(a)) || (takenAt(b)?.getTime() ?? 0) - (takenAt(a)?.getTime() ?? 0),
  );
  for (const source of sources) {
    const base = {
      type: typeOf(source.kind),
      kind: source.kind,
      sourceArn: source.arn,
      sourceRegion: opts.sourceRegion,
      stamp: [],
    };
    const skipAll = (detail: string, outcome: 'skipped' | 'failed' = 'skipped') => {
      if (!quiet)
        copies.push({ ...base, arn: source.arn, hasWork: false, outcome, detail, region: '', targetId: '' });
    };
    const self = nightshiftCopy(source);
    if (self.ours) {
      skipAll(`is itself a nightshift copy of ${self.source}; copies are never copied again`);
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
    const age = ageMs(takenAt(source), opts.now);
    const old = pastRetention(age, opts.retentionDays);
    const isNewest = newest.get(dbKey(source))?.arn === source.arn;
    if (input.mode !== 'copy' && old && !isNewest) {
      skipAll(
        `${formatAge(age)} old, past RETENTION_DAYS ${opts.retentionDays}, and not the newest snapshot of ${source.dbId}: a copy would be pruned at once`,
      );
      continue;
    }
    const marks = stampFor(source);
    for (const region of input.regions) {
      const targetId = targetIdentifier(source.id, source.kind);
      const arn = snapshotArn(source.arn, region, source.kind, targetId);
      const row = { ...base, arn, region, targetId };
      const say = (outcome: 'unchanged' | 'skipped' | 'failed', detail: string) =>
        copies.push({ ...row, hasWork: false, outcome, detail });
      if (region === opts.sourceRegion) {
        say('skipped', `${region} is the source region; TARGET_REGIONS should name other regions`);
        continue;
      }
      const inRegion = (input.destinations[region] ?? []).filter((s) => s.kind === source.kind);
      const atTarget = inRegion.find((s) => s.id.toLowerCase() === targetId);
      if (atTarget) {
        const claim = nightshiftCopy(atTarget);
        if (!claim.ours || claim.source !== source.arn) {
          say(
            'failed',
            `identifier ${targetId} in ${region} is taken by a snapshot that is not nightshift's copy of this source ` +
              `(${claim.ours ? `it copies ${claim.source}` : claim.reason}); nothing attempted`,
          );
          if (source.status === 'available') noteUncopied(region, source);
          continue;
        }
        if (FAILED_STATUS.test(atTarget.status)) {
          say(
            'failed',
            `the copy ${atTarget.id} in ${region} ended in state ${atTarget.status}: ` +
              (input.mode === 'sweep'
                ? 'this sweep deletes it and the next sweep copies the source again'
                : 'the next sweep deletes it and copies the source again'),
          );
          noteUncopied(region, source);
          continue;
        }
        if (atTarget.status !== 'available' && source.status === 'available') noteUncopied(region, source);
        say('unchanged', `already copied to ${region} as ${atTarget.id} (${atTarget.status})`);
        continue;
      }
      if (source.status !== 'available') {
        say('skipped', `not available yet (${source.status}); the next sweep copies it`);
        continue;
      }
      noteUncopied(region, source);
      const kmsKeyId = source.encrypted ? opts.kmsKeys[region] : undefined;
      const optionGroup =
        source.optionGroup && !isDefaultOptionGroup(source.optionGroup)
          ? opts.optionGroups[region]
          : undefined;
      const problems = [
        ...(source.encrypted && !kmsKeyId
          ? [`encrypted snapshot, and no KMS key is configured for ${region} in TARGET_KMS_KEYS`]
          : []),
        ...(source.optionGroup && !isDefaultOptionGroup(source.optionGroup) && !optionGroup
          ? [
              `uses the option group ${source.optionGroup}, and no option group is configured for ${region} in ` +
                `TARGET_OPTION_GROUPS (a copy across Regions needs one there for a non-default option group; ` +
                `Oracle and SQL Server TDE cannot be restored without it)`,
            ]
          : []),
        ...(marks.error ? [marks.error.replace(/; nothing attempted$/, '')] : []),
      ];
      if (problems.length > 0) {
        say('failed', `${problems.join('; ')}; nothing attempted`);
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
      const what =
        `copy ${source.id} to ${region} as ${targetId} with its tags` +
        (kmsKeyId ? `, encrypted with KMS key ${kmsKeyId}` : '') +
        (optionGroup ? `, option group ${optionGroup}` : '');
      copies.push({
        ...row,
        hasWork: true,
        ...(kmsKeyId && { kmsKeyId }),
        ...(optionGroup && { optionGroup }),
        stamp: marks.stamp,
        digestKey: what,
        detail:
          what +
          (marks.stamp.length > 0
            ? `; first marks the source with ${marks.stamp.map((t) => t.Key).join(' and ')}, which the copy inherits`
            : '') +
          (marks.note ? `; ${marks.note}` : '') +
          (input.mode === 'copy' && old && !isNewest
            ? `; note: ${formatAge(age)} old, the next sweep prunes the copy (RETENTION_DAYS ${opts.retentionDays})`
            : ''),
      });
    }
  }
  return {
    copies,
    prunes: input.mode === 'sweep' ? planPrunes(input, opts, known) : [],
    uncopied,
  };
};

/**
 * nightshift's own copies (by what RDS records, see nightshiftCopy) older than RETENTION_DAYS are
 * deleted, except each source database's newest copy and newest available copy (incremental copies
 * build on it); a copy that ended in a failed state is deleted whatever its age. Snapshots that only
 * claim to be copies (they carry the tag) are never deleted, and the report says why.
 */
const planPrunes = (
  input: CopyPlanInput,
  opts: CopyPlanOptions,
  known: ReadonlyMap<string, Snapshot>,
): PruneWork[] => {
  const prunes: PruneWork[] = [];
  for (const region of input.regions) {
    if (region === opts.sourceRegion) continue;
    const owned: Snapshot[] = [];
    const claimed: { s: Snapshot; claim: Exclude<Claim, { ours: true }> }[] = [];
    for (const s of input.destinations[region] ?? []) {
      const claim = prunable(s, opts.sourceRegion);
      if (claim.ours) owned.push(s);
      else if (s.sourceArn) claimed.push({ s, claim });
    }
    const at = (s: Snapshot) => copyTakenAt(s, known);
    const failed = owned.filter((s) => FAILED_STATUS.test(s.status));
    const usable = owned.filter((s) => !FAILED_STATUS.test(s.status));
    const newestAny = newestBy(usable, dbKey, at);
    const newestAvailable = newestBy(
      usable.filter((s) => s.status === 'available'),
      dbKey,
      at,
    );
    const prune = (s: Snapshot, detail: string, digestKey: string) =>
      prunes.push({
        arn: s.arn,
        type: typeOf(s.kind),
        kind: s.kind,
        region,
        id: s.id,
        hasWork: true,
        detail,
        digestKey,
      });
    for (const s of failed)
      prune(
        s,
        `delete copy ${s.id} in ${region} (of ${s.copiedFrom}): it ended in state ${s.status}; the next sweep copies the source again`,
        `delete failed copy ${s.id} in ${region}`,
      );
    for (const s of usable) {
      const keep = newestAny.get(dbKey(s)) === s || newestAvailable.get(dbKey(s)) === s;
      const age = ageMs(at(s), opts.now);
      if (keep || s.status !== 'available' || !pastRetention(age, opts.retentionDays)) continue;
      prune(
        s,
        `delete copy ${s.id} in ${region} (of ${s.copiedFrom}, taken ${dayOf(at(s))}): ${formatAge(age)} old, ` +
          `past RETENTION_DAYS ${opts.retentionDays}; newest copy ${newestAvailable.get(dbKey(s))?.id ?? newestAny.get(dbKey(s))?.id} kept`,
        `delete copy ${s.id} in ${region} past RETENTION_DAYS ${opts.retentionDays}`,
      );
    }
    prunes.push(...claimedRows(region, claimed));
  }
  return prunes;
};

const CLAIM_SUMMARY: Record<Exclude<Claim, { ours: true }>['code'], string> = {
  'not-a-copy':
    'RDS records no copy source for them (snapshots of a database restored from a copy, copies made inside the region)',
  tag: 'RDS says they were copied from another snapshot than their tag names',
  identifier: 'their identifiers are not the ones nightshift derives from their sources',
  elsewhere:
    'they are nightshift copies of snapshots in another Region or account, pruned by the deployment there',
};

/**
 * Why each snapshot that carries `nightshift:source-arn` but is not one of this deployment's copies
 * was left alone: a row each, or, past FOREIGN_ROWS_LISTED in a region, one row per reason with a count
 * and examples, so a region full of them keeps the report readable.
 */
const claimedRows = (
  region: string,
  claimed: { s: Snapshot; claim: Exclude<Claim, { ours: true }> }[],
): PruneWork[] => {
  const row = (s: Pick<Snapshot, 'arn' | 'kind' | 'id'>, detail: string): PruneWork => ({
    arn: s.arn,
    type: typeOf(s.kind),
    kind: s.kind,
    region,
    id: s.id,
    hasWork: false,
    outcome: 'skipped',
    detail,
  });
  if (claimed.length <= FOREIGN_ROWS_LISTED)
    return claimed.map(({ s, claim }) =>
      row(
        s,
        `carries ${SOURCE_ARN_TAG} but is not a copy this deployment made: ${claim.reason}; never pruned`,
      ),
    );
  const byReason = new Map<string, { code: keyof typeof CLAIM_SUMMARY; snapshots: Snapshot[] }>();
  for (const { s, claim } of claimed) {
    const key = `${s.kind}:${claim.code}`;
    byReason.set(key, { code: claim.code, snapshots: [...(byReason.get(key)?.snapshots ?? []), s] });
  }
  return [...byReason.values()].map(({ code, snapshots }) => {
    const first = snapshots[0] as Snapshot;
    const examples = snapshots.slice(0, 5).map((s) => s.id);
    return row(
      { arn: snapshotArn(first.arn, region, first.kind, '*'), kind: first.kind, id: '*' },
      `${snapshots.length} ${first.kind === 'cluster' ? 'cluster snapshots' : 'snapshots'} in ${region} carry ${SOURCE_ARN_TAG} but are not copies this deployment made: ` +
        `${CLAIM_SUMMARY[code]} (${examples.join(', ')}${snapshots.length > examples.length ? ', …' : ''}); never pruned`,
    );
  });
};
