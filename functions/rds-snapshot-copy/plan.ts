import { createHash } from 'node:crypto';
import type { PlannedWork } from '#shared/execute.ts';
import { formatAge } from '#shared/duration.ts';
import { matchesTags, type TagRule } from '#shared/tags.ts';
import {
  COPY_SOURCE_TAG,
  LEGACY_SOURCE_TAG,
  MARK_KEYS,
  parseSnapshotArn,
  SOURCE_TIME_TAG,
  type Database,
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
/** RDS allows 50 tags per resource; keys starting with `aws:` do not count. */
export const MAX_TAGS = 50;
/** Above this many per region, snapshots that only claim to be nightshift copies are summarised. */
export const FOREIGN_ROWS_LISTED = 20;
export const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const COPYABLE_TYPES = new Set(['manual', 'automated']);
const IN_FLIGHT_STATUSES = new Set(['pending', 'copying', 'creating']);
/** States a copy never leaves: it is nightshift's to remove, and its source is copied again. */
const FAILED_STATUS = /^(failed|error|incompatible)/;

/** What is added to and removed from a source snapshot before it is copied (the copy inherits the result). */
export interface Mark {
  add: { Key: string; Value: string }[];
  /** The legacy `nightshift:source-arn`: no new copy may inherit it. */
  remove: string[];
}

export interface CopyWork extends PlannedWork {
  kind: SnapshotKind;
  sourceArn: string;
  sourceRegion: string;
  region: string;
  targetId: string;
  kmsKeyId?: string;
  optionGroup?: string;
  /**
   * nightshift's marks, put on the source before its copy when it lacks them. The copy inherits them
   * with CopyTags: the role never writes a tag in a destination region, so it can never make a
   * snapshot it did not create look like one of its copies (functions/rds-snapshot-copy/permissions.ts).
   */
  mark: Mark;
}

/** The removal of nightshift's marks from a source that no longer needs them (`arn` is the source's). */
export interface UnmarkWork extends PlannedWork {
  kind: SnapshotKind;
  keys: string[];
}

export interface PruneWork extends PlannedWork {
  kind: SnapshotKind;
  region: string;
  id: string;
}

/**
 * How far a destination region is behind, for its worst database: hours since the data of its newest
 * available copy there was taken while a newer source snapshot waits (0 once the newest is copied).
 */
export interface CopyLag {
  /** `instance:orders`, `cluster:billing`. */
  database: string;
  /** Hours from `since` to the sweep; 0 when the database's newest snapshot has an available copy. */
  hours: number;
  since: string;
  /**
   * current: its newest source snapshot has an available copy there (`since` is its data time);
   * copy: it does not, and `since` is the data time of its newest available copy there; source: it has
   * no available copy there, and `since` is its oldest source snapshot that still exists; database: the
   * same, and `since` is when the database was created, which is earlier.
   */
  basis: 'current' | 'copy' | 'source' | 'database';
  /** The copy or source snapshot `since` comes from. */
  arn?: string;
}

export interface CopyPlan {
  copies: CopyWork[];
  /** Sources whose marks are removed (sweeps only). */
  unmarks: UnmarkWork[];
  /** Deletions, and skipped rows for snapshots that carry a marker but are not pruned here. */
  prunes: PruneWork[];
  /** Per destination region, its worst database's lag (null: no eligible database); sweeps only. */
  lag: Record<string, CopyLag | null>;
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
  /**
   * DB instances and clusters of the source region by `kind:id`: every one in a sweep, the source's own
   * for an event or a copy when SOURCE_TAGS is set. A sweep reads them all, so a missing key means the
   * database no longer exists.
   */
  databases: Record<string, Database>;
}

export interface CopyPlanOptions {
  sourceRegion: string;
  retentionDays: number;
  kmsKeys: Record<string, string>;
  /** TARGET_OPTION_GROUPS: `region` or `<source-option-group>@<region>` → the option group there. */
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

/**
 * ARNs compared as RDS compares identifiers: without regard to case. A SourceDBSnapshotIdentifier may
 * carry the case the copy was asked with, while RDS stores and tags identifiers in lower case.
 */
export const sameArn = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

const copiedFromField = (kind: SnapshotKind) =>
  kind === 'cluster' ? 'SourceDBClusterSnapshotArn' : 'SourceDBSnapshotIdentifier';

export type ClaimCode =
  'not-a-copy' | 'marked-source' | 'tag' | 'identifier' | 'elsewhere' | 'other-stage' | 'database-gone';

export type Claim =
  { ours: true; source: string; legacy: boolean } | { ours: false; code: ClaimCode; reason: string };

/**
 * Whether a snapshot is a nightshift copy, by what RDS records rather than by its tags: RDS says it was
 * copied from a source, it carries nightshift's marker naming that same source (`nightshift:copy-source`,
 * or on copies earlier versions made `nightshift:source-arn`), and its identifier is the one nightshift
 * derives from that source. Tags alone prove nothing: people copy snapshots with their tags, and a
 * database restored from a copy with CopyTagsToSnapshot stamps the marker on every snapshot it makes.
 */
export const nightshiftCopy = (s: Snapshot): Claim => {
  if (!s.copiedFrom) {
    if (sameArn(s.sourceArn, s.arn))
      return {
        ours: false,
        code: 'marked-source',
        reason:
          `a source snapshot marked by the nightshift deployment of ${parseSnapshotArn(s.arn).region} ` +
          `for its own copies (its ${s.markerKey} names itself)`,
      };
    return {
      ours: false,
      code: 'not-a-copy',
      reason: `RDS records no source for it (no ${copiedFromField(s.kind)}): it was not copied across Regions`,
    };
  }
  if (!sameArn(s.sourceArn, s.copiedFrom))
    return {
      ours: false,
      code: 'tag',
      reason: s.sourceArn
        ? `RDS says it was copied from ${s.copiedFrom}, not from ${s.sourceArn} as its ${s.markerKey} tag claims`
        : `RDS says it was copied from ${s.copiedFrom}, but it carries no ${COPY_SOURCE_TAG}`,
    };
  const derived = targetIdentifier(parseSnapshotArn(s.copiedFrom).id, s.kind);
  if (s.id.toLowerCase() !== derived)
    return {
      ours: false,
      code: 'identifier',
      reason: `its identifier is not ${derived}, the one nightshift derives from ${s.copiedFrom}`,
    };
  return { ours: true, source: s.copiedFrom, legacy: s.markerKey === LEGACY_SOURCE_TAG };
};

/** A nightshift copy of a snapshot of this account in this deployment's own source region. */
const copyOfOurs = (s: Snapshot, sourceRegion: string): Claim => {
  const claim = nightshiftCopy(s);
  if (!claim.ours) return claim;
  const from = parseSnapshotArn(claim.source);
  if (
    from.region.toLowerCase() !== sourceRegion.toLowerCase() ||
    from.account !== parseSnapshotArn(s.arn).account
  )
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

/** Snapshots by lower-case ARN. */
const byArn = (snapshots: Iterable<Snapshot>) => new Map([...snapshots].map((s) => [s.arn.toLowerCase(), s]));

/**
 * When the data of one of nightshift's own copies was taken: OriginalSnapshotCreateTime (instance
 * copies keep the source's), else the source's own time while it exists, else the
 * `nightshift:source-time` the copy inherited from it (only ever read on a proven copy), else when the
 * copy was made (later: the copy is then kept longer, never pruned early).
 */
const copyTakenAt = (copy: Snapshot, sources: ReadonlyMap<string, Snapshot>): Date | undefined => {
  const source = copy.copiedFrom ? sources.get(copy.copiedFrom.toLowerCase()) : undefined;
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
const dbLabel = (s: Pick<Snapshot, 'kind' | 'dbId'>) =>
  `${s.kind === 'cluster' ? 'cluster' : 'database'} ${s.dbId}`;
const dayOf = (d: Date | undefined) => d?.toISOString().slice(0, 10) ?? 'unknown date';
const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const isDefaultOptionGroup = (name: string) => name.startsWith('default:');
const countable = (tags: Record<string, string>) =>
  Object.keys(tags).filter((k) => !k.toLowerCase().startsWith('aws:')).length;
const rules = (sourceTags: readonly TagRule[]) => sourceTags.map((r) => `${r.key}=${r.value}`).join(', ');

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
 * The marks a source needs before its copy, within RDS's 50 tags. Without room for
 * `nightshift:copy-source` a copy could never be recognised as nightshift's, so none is made;
 * `nightshift:source-time` is left out when there is no room for it (the copy is then dated by AWS's own
 * times). The legacy `nightshift:source-arn` is removed first (no new copy may inherit it), which frees
 * its place.
 */
const markFor = (source: Snapshot): { mark: Mark; error?: string; note?: string } => {
  const remove = LEGACY_SOURCE_TAG in source.tags ? [LEGACY_SOURCE_TAG] : [];
  const wanted = [
    { Key: COPY_SOURCE_TAG, Value: source.arn },
    ...(takenAt(source) ? [{ Key: SOURCE_TIME_TAG, Value: isoSeconds(takenAt(source) as Date) }] : []),
  ];
  const missing = wanted.filter((t) => source.tags[t.Key] !== t.Value);
  const used = countable(source.tags) - remove.length;
  const room = MAX_TAGS - used;
  const added = missing.filter((t) => !(t.Key in source.tags));
  if (added.length <= room) return { mark: { add: missing, remove } };
  if (!(COPY_SOURCE_TAG in source.tags) && room < 1)
    return {
      mark: { add: [], remove: [] },
      error:
        `the source has ${used} tags, RDS's limit, and nightshift needs one free for ${COPY_SOURCE_TAG}, which marks its copies: ` +
        `remove a tag from this snapshot, and from its database if CopyTagsToSnapshot copies them all (snapshot-tags adds at most 48); ` +
        `nothing attempted`,
    };
  return {
    mark: { add: missing.filter((t) => t.Key !== SOURCE_TIME_TAG), remove },
    note: `no room for ${SOURCE_TIME_TAG} on the source (50 tags): the copy is dated by AWS's times`,
  };
};

/** Per destination region, its snapshots by `kind:lower-case identifier` (RDS identifiers ignore case). */
type DestinationIndex = ReadonlyMap<string, ReadonlyMap<string, Snapshot>>;

/**
 * Built once per plan, so looking up a source's target is constant time: a sweep over thousands of
 * sources and thousands of copies stays linear (the identifier is unique per kind in a region).
 */
const indexDestinations = (destinations: CopyPlanInput['destinations']): DestinationIndex =>
  new Map(
    Object.entries(destinations).map(([region, snapshots]) => [
      region,
      new Map(snapshots.map((s) => [`${s.kind}:${s.id.toLowerCase()}`, s])),
    ]),
  );

/** The option group a copy gets in `region`: `<source-group>@<region>` first, then `<region>`. */
export const optionGroupFor = (groups: Record<string, string>, sourceGroup: string, region: string) =>
  groups[`${sourceGroup.toLowerCase()}@${region}`] ?? groups[region];

/**
 * Decides which snapshots to copy into which regions, which sources no longer need their marks, and
 * which of nightshift's own copies to prune, each with a reason; and how far each destination region is
 * behind. Pure: no I/O, no clock, no environment.
 */
export const planCopies = (input: CopyPlanInput, opts: CopyPlanOptions): CopyPlan => {
  const copies: CopyWork[] = [];
  const quiet = input.mode === 'sweep';
  const known = byArn([...input.siblings, ...input.sources]);
  const wantedTags = Object.fromEntries(opts.sourceTags.map((r) => [r.key, r.value]));
  const selected = (s: Pick<Snapshot, 'kind' | 'dbId'>) =>
    opts.sourceTags.length === 0 || matchesTags(input.databases[dbKey(s)]?.tags ?? {}, wantedTags);
  // A database's newest snapshot is copied however old it is; copies from elsewhere do not count.
  const newest = newestBy(
    [...known.values()].filter((s) => COPYABLE_TYPES.has(s.type) && !nightshiftCopy(s).ours),
    dbKey,
    takenAt,
  );
  const atTargets = indexDestinations(input.destinations);
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
      mark: { add: [], remove: [] },
    });
  }

  // Carried over from a run the deadline cut first, then newest first: the in-flight budget goes to them.
  const carried = new Set(
    opts.first && opts.first.size > 0
      ? input.sources
          .filter((s) =>
            input.regions.some((r) =>
              opts.first?.has(snapshotArn(s.arn, r, s.kind, targetIdentifier(s.id, s.kind))),
            ),
          )
          .map((s) => s.arn)
      : [],
  );
  const sources = [...input.sources].sort(
    (a, b) =>
      Number(carried.has(b.arn)) - Number(carried.has(a.arn)) ||
      (takenAt(b)?.getTime() ?? 0) - (takenAt(a)?.getTime() ?? 0),
  );
  for (const source of sources) {
    const base = {
      type: typeOf(source.kind),
      kind: source.kind,
      sourceArn: source.arn,
      sourceRegion: opts.sourceRegion,
      mark: { add: [], remove: [] },
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
    if (input.mode !== 'copy' && !selected(source)) {
      skipAll(`${dbLabel(source)} does not carry SOURCE_TAGS ${rules(opts.sourceTags)}`);
      continue;
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
    const marks = markFor(source);
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
      const atTarget = atTargets.get(region)?.get(`${source.kind}:${targetId}`);
      if (atTarget) {
        const claim = nightshiftCopy(atTarget);
        if (!claim.ours || !sameArn(claim.source, source.arn)) {
          say(
            'failed',
            `identifier ${targetId} in ${region} is taken by a snapshot that is not nightshift's copy of this source ` +
              `(${claim.ours ? `it copies ${claim.source}` : claim.reason}); nothing attempted`,
          );
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
          continue;
        }
        say('unchanged', `already copied to ${region} as ${atTarget.id} (${atTarget.status})`);
        continue;
      }
      if (source.status !== 'available') {
        say('skipped', `not available yet (${source.status}); the next sweep copies it`);
        continue;
      }
      const kmsKeyId = source.encrypted ? opts.kmsKeys[region] : undefined;
      const customGroup =
        source.optionGroup && !isDefaultOptionGroup(source.optionGroup) ? source.optionGroup : undefined;
      const optionGroup = customGroup ? optionGroupFor(opts.optionGroups, customGroup, region) : undefined;
      const problems = [
        ...(source.encrypted && !kmsKeyId
          ? [`encrypted snapshot, and no KMS key is configured for ${region} in TARGET_KMS_KEYS`]
          : []),
        ...(customGroup && !optionGroup
          ? [
              `uses the option group ${customGroup}, and TARGET_OPTION_GROUPS names none for it in ${region} ` +
                `(add ${customGroup}@${region}=<group> or ${region}=<group>: a copy across Regions needs one there ` +
                `for a non-default option group, and Oracle and SQL Server TDE cannot be restored without it)`,
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
      const { add, remove } = marks.mark;
      const marking = [
        ...(add.length > 0
          ? [`marks the source with ${add.map((t) => t.Key).join(' and ')}, which the copy inherits`]
          : []),
        ...(remove.length > 0 ? [`removes the legacy ${remove.join(', ')} from it`] : []),
      ];
      copies.push({
        ...row,
        hasWork: true,
        ...(kmsKeyId && { kmsKeyId }),
        ...(optionGroup && { optionGroup }),
        mark: marks.mark,
        digestKey: what,
        detail:
          what +
          (marking.length > 0 ? `; first ${marking.join(' and ')}` : '') +
          (marks.note ? `; ${marks.note}` : '') +
          (input.mode === 'copy' && old && !isNewest
            ? `; note: ${formatAge(age)} old, the next sweep prunes the copy (RETENTION_DAYS ${opts.retentionDays})`
            : ''),
      });
    }
  }
  const sweep = input.mode === 'sweep';
  return {
    copies,
    unmarks: sweep ? planUnmarks(input, opts, { copies, newest, selected, atTargets }) : [],
    prunes: sweep ? planPrunes(input, opts, known, selected) : [],
    lag: sweep ? planLag(input, opts, known, selected) : {},
  };
};

/**
 * Marks are transient. A source keeps `nightshift:copy-source` only until every target region has an
 * available copy that inherited it (or until it is past RETENTION_DAYS and not its database's newest, so
 * it is never copied again); then the sweep removes nightshift's keys from it, so copies people make of
 * it later carry no marker and are never taken for nightshift's. A source whose copy keeps failing keeps
 * its mark. The legacy `nightshift:source-arn` is removed from every source this deployment copies:
 * earlier versions take any snapshot carrying it for one of their copies.
 */
const planUnmarks = (
  input: CopyPlanInput,
  opts: CopyPlanOptions,
  seen: {
    copies: readonly CopyWork[];
    newest: ReadonlyMap<string, Snapshot>;
    selected: (s: Snapshot) => boolean;
    atTargets: DestinationIndex;
  },
): UnmarkWork[] => {
  const unmarks: UnmarkWork[] = [];
  const targets = input.regions.filter((r) => r !== opts.sourceRegion);
  const copying = new Set(seen.copies.filter((w) => w.hasWork).map((w) => w.sourceArn));
  for (const source of input.sources) {
    const present: string[] = MARK_KEYS.filter((k) => k in source.tags);
    if (present.length === 0) continue;
    // Only the sources this deployment copies: another stage's marks are that stage's to remove.
    if (!COPYABLE_TYPES.has(source.type) || nightshiftCopy(source).ours || !seen.selected(source)) continue;
    const targetId = targetIdentifier(source.id, source.kind);
    const atTargets = targets.map((region) => {
      const at = seen.atTargets.get(region)?.get(`${source.kind}:${targetId}`);
      const claim = at && nightshiftCopy(at);
      return { at, ours: !!claim?.ours && sameArn(claim.source, source.arn) };
    });
    const copied = atTargets.every((t) => t.ours && t.at?.status === 'available');
    const old = pastRetention(ageMs(takenAt(source), opts.now), opts.retentionDays);
    const retired = old && seen.newest.get(dbKey(source))?.arn !== source.arn;
    const unmark = (keys: string[], detail: string) =>
      unmarks.push({
        arn: source.arn,
        type: typeOf(source.kind),
        kind: source.kind,
        keys,
        hasWork: true,
        detail,
        digestKey: detail,
      });
    const keys = present.join(', ');
    if (copied) {
      unmark(
        present,
        `remove ${keys} from ${source.id}: it has an available copy in every target region (${targets.join(', ')}); ` +
          `copies people make of it later are then never taken for nightshift's`,
      );
    } else if (retired && atTargets.every((t) => !t.at || t.ours)) {
      unmark(
        present,
        `remove ${keys} from ${source.id}: past RETENTION_DAYS ${opts.retentionDays} and not the newest snapshot of ` +
          `${source.dbId}, it is not copied again`,
      );
    } else if (present.includes(LEGACY_SOURCE_TAG) && !copying.has(source.arn)) {
      unmark(
        [LEGACY_SOURCE_TAG],
        `remove the legacy ${LEGACY_SOURCE_TAG} from ${source.id}: earlier nightshift versions take any snapshot ` +
          `carrying it for one of their copies; it is marked with ${COPY_SOURCE_TAG} when it is copied`,
      );
    }
  }
  return unmarks;
};

/**
 * Per destination region, how far it is behind, for the worst of the databases this deployment copies
 * (those with manual or automated snapshots here, matching SOURCE_TAGS): 0 while a database's newest
 * available snapshot has an available copy there (a stopped or deleted database, or one snapshotted
 * weekly, is then current, not late); otherwise the hours since the data of its newest available copy
 * there was taken, or, with none, since the earlier of its oldest snapshot still here and its creation.
 * Measured from the copies, not from the sources, so it keeps growing when copies stop even where the
 * sources it could be measured from expire daily (BackupRetentionPeriod 1, RETENTION_DAYS 0 or 1). A
 * copy still copying is no recovery point: a sweep that meets one reports the age of what is there.
 */
const planLag = (
  input: CopyPlanInput,
  opts: CopyPlanOptions,
  known: ReadonlyMap<string, Snapshot>,
  selected: (s: Snapshot) => boolean,
): CopyPlan['lag'] => {
  const eligible = new Map<string, Snapshot[]>();
  for (const s of input.sources) {
    if (!COPYABLE_TYPES.has(s.type) || nightshiftCopy(s).ours || !selected(s)) continue;
    const held = eligible.get(dbKey(s));
    if (held) held.push(s);
    else eligible.set(dbKey(s), [s]);
  }
  const hoursSince = (d: Date) =>
    Math.round((Math.max(0, opts.now.getTime() - d.getTime()) / HOUR_MS) * 100) / 100;
  const earliest = (snapshots: Snapshot[], pick: (a: Date, b: Date) => boolean) =>
    snapshots
      .filter((s) => takenAt(s))
      .reduce<Snapshot | undefined>(
        (held, s) => (!held || pick(takenAt(s) as Date, takenAt(held) as Date) ? s : held),
        undefined,
      );
  const lag: CopyPlan['lag'] = {};
  for (const region of input.regions) {
    if (region === opts.sourceRegion) continue;
    const at = (s: Snapshot) => copyTakenAt(s, known);
    const newestCopy = newestBy(
      (input.destinations[region] ?? []).filter(
        (s) => s.status === 'available' && copyOfOurs(s, opts.sourceRegion).ours,
      ),
      dbKey,
      at,
    );
    let worst: CopyLag | null = null;
    for (const [database, sources] of eligible) {
      const copy = newestCopy.get(database);
      const copyAt = copy && at(copy);
      const newestSource = earliest(
        sources.filter((s) => s.status === 'available'),
        (a, b) => a > b,
      );
      let point: (Omit<CopyLag, 'hours' | 'since'> & { at: Date }) | undefined;
      if (copy && copyAt && (!newestSource || copyAt >= (takenAt(newestSource) as Date)))
        point = { database, basis: 'current', arn: copy.arn, at: copyAt };
      else if (copy && copyAt) point = { database, basis: 'copy', arn: copy.arn, at: copyAt };
      else {
        const oldest = earliest(sources, (a, b) => a < b);
        const created = input.databases[database]?.created;
        if (oldest && (!created || (takenAt(oldest) as Date) <= created))
          point = { database, basis: 'source', arn: oldest.arn, at: takenAt(oldest) as Date };
        else if (created) point = { database, basis: 'database', at: created };
      }
      if (!point) continue;
      const { at: since, ...rest } = point;
      const hours = point.basis === 'current' ? 0 : hoursSince(since);
      if (!worst || hours > worst.hours) worst = { ...rest, hours, since: isoSeconds(since) };
    }
    lag[region] = worst;
  }
  return lag;
};

/**
 * nightshift's own copies (by what RDS records, see nightshiftCopy) of the sources this deployment
 * copies are deleted past RETENTION_DAYS, except each source database's newest copy and newest available
 * copy (incremental copies build on it); a copy that ended in a failed state is deleted whatever its age.
 * With SOURCE_TAGS set, a copy counts only while its database exists and carries them: another stage
 * in the same account and region copies the rest. Snapshots that only claim to be copies (they carry a
 * marker) are never deleted, and the report says why.
 */
const planPrunes = (
  input: CopyPlanInput,
  opts: CopyPlanOptions,
  known: ReadonlyMap<string, Snapshot>,
  selected: (s: Snapshot) => boolean,
): PruneWork[] => {
  const prunes: PruneWork[] = [];
  for (const region of input.regions) {
    if (region === opts.sourceRegion) continue;
    const owned: Snapshot[] = [];
    const claimed: { s: Snapshot; claim: Exclude<Claim, { ours: true }> }[] = [];
    for (const s of input.destinations[region] ?? []) {
      const claim = copyOfOurs(s, opts.sourceRegion);
      if (claim.ours && opts.sourceTags.length > 0 && !input.databases[dbKey(s)])
        claimed.push({
          s,
          claim: {
            ours: false,
            code: 'database-gone',
            reason: `${dbLabel(s)} no longer exists in ${opts.sourceRegion}, so SOURCE_TAGS cannot say which stage copies it`,
          },
        });
      else if (claim.ours && !selected(s))
        claimed.push({
          s,
          claim: {
            ours: false,
            code: 'other-stage',
            reason: `${dbLabel(s)} does not carry SOURCE_TAGS ${rules(opts.sourceTags)}: another stage copies it`,
          },
        });
      else if (claim.ours) owned.push(s);
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
    prunes.push(...claimedRows(region, opts, claimed));
  }
  return prunes;
};

/**
 * One row per reason and region whatever their number: these are expected every day (another
 * deployment's marked sources and copies, another stage's copies, copies of deleted databases), and
 * a row each would bury what matters.
 */
const ALWAYS_COUNTED = new Set<ClaimCode>(['marked-source', 'elsewhere', 'other-stage', 'database-gone']);

const claimSummary = (code: ClaimCode, region: string, opts: CopyPlanOptions): string =>
  ({
    'not-a-copy':
      'RDS records no copy source for them (snapshots of a database restored from a copy, copies made inside the region)',
    'marked-source': `they are source snapshots the nightshift deployment of ${region} marked for its own copies (their marker names themselves)`,
    tag: 'RDS says they were copied from another snapshot than their marker names',
    identifier: 'their identifiers are not the ones nightshift derives from their sources',
    elsewhere:
      'they are nightshift copies of snapshots in another Region or account, pruned by the deployment there',
    'other-stage': `they are nightshift copies of databases that do not carry SOURCE_TAGS ${rules(opts.sourceTags)}, copied and pruned by another stage`,
    'database-gone': `they are nightshift copies of databases that no longer exist in ${opts.sourceRegion}: with SOURCE_TAGS set, nothing says which stage they belong to, so they are kept; delete them by hand when they are no longer needed`,
  })[code];

/**
 * Why each snapshot that carries a nightshift marker but is not one this deployment prunes was left
 * alone: a row each for the suspicious ones (up to FOREIGN_ROWS_LISTED in a region), one row per reason
 * with a count and examples otherwise.
 */
const claimedRows = (
  region: string,
  opts: CopyPlanOptions,
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
  const listed = claimed.filter(({ claim }) => !ALWAYS_COUNTED.has(claim.code));
  const counted =
    listed.length <= FOREIGN_ROWS_LISTED
      ? claimed.filter(({ claim }) => ALWAYS_COUNTED.has(claim.code))
      : claimed;
  const rows =
    listed.length <= FOREIGN_ROWS_LISTED
      ? listed.map(({ s, claim }) =>
          row(
            s,
            `carries ${s.markerKey} but is not a copy this deployment made: ${claim.reason}; never pruned`,
          ),
        )
      : [];
  const byReason = new Map<string, { code: ClaimCode; snapshots: Snapshot[] }>();
  for (const { s, claim } of counted) {
    const key = `${s.kind}:${claim.code}`;
    const held = byReason.get(key);
    if (held) held.snapshots.push(s);
    else byReason.set(key, { code: claim.code, snapshots: [s] });
  }
  return [
    ...rows,
    ...[...byReason.values()].map(({ code, snapshots }) => {
      const first = snapshots[0] as Snapshot;
      const examples = snapshots.slice(0, 5).map((s) => s.id);
      return row(
        { arn: snapshotArn(first.arn, region, first.kind, '*'), kind: first.kind, id: '*' },
        `${snapshots.length} ${first.kind === 'cluster' ? 'cluster snapshots' : 'snapshots'} in ${region} carry a nightshift marker ` +
          `but are not this deployment's to prune: ${claimSummary(code, region, opts)} ` +
          `(${examples.join(', ')}${snapshots.length > examples.length ? ', …' : ''}); never pruned here`,
      );
    }),
  ];
};
