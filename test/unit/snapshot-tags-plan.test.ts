import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeTags, planTagging, type TagRules } from '#functions/snapshot-tags/plan.ts';
import type { Estate, SnapshotState } from '#functions/snapshot-tags/inventory.ts';
import { SnapshotTagsConfig } from '#functions/snapshot-tags/config.ts';
import { parseSnapshotTagsInput } from '#events/snapshot-tags/schema.ts';
import { ConfigError } from '#shared/errors.ts';
import { parseEnv } from '#shared/env.ts';
import { PLAN_DIGEST, planDigest } from '#shared/plan-digest.ts';
import type { TagMap } from '#shared/tags.ts';

const ALL: TagRules = { only: [], exclude: [] };
const ACCOUNT = 'arn:aws:rds:eu-central-1:123456789012';

/** `count` tags `prefix-00`…, sorted as their keys. */
const many = (prefix: string, count: number): TagMap =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`${prefix}-${String(i).padStart(2, '0')}`, 'x']),
  );

const dbSnapshot = (id: string, tags: TagMap = {}, db = 'orders'): SnapshotState => ({
  arn: `${ACCOUNT}:snapshot:${id}`,
  type: 'rds-snapshot',
  id,
  status: 'available',
  tags,
  source: { kind: 'db', id: db },
});

const ebsSnapshot = (id: string, volume: string, tags: TagMap = {}): SnapshotState => ({
  arn: `arn:aws:ec2:eu-central-1:123456789012:snapshot/${id}`,
  type: 'ebs-snapshot',
  id,
  status: 'completed',
  tags,
  source: { kind: 'volume', id: volume },
});

const estate = (
  snapshots: SnapshotState[],
  sources: Record<string, TagMap>,
  read: Pick<Estate, 'partial' | 'unread'> = { partial: [], unread: [] },
): Estate => ({ snapshots, sources, missing: [], ...read });

const only = (snapshot: SnapshotState, sources: Record<string, TagMap>, rules: TagRules = ALL) => {
  const plan = planTagging('tag', estate([snapshot], sources), rules);
  return plan.snapshots[0];
};

describe('snapshot-tags planner: which tags a snapshot receives', () => {
  it('copies every tag of the source a snapshot lacks, in key order', () => {
    const p = only(dbSnapshot('orders-1'), {
      'db:orders': { team: 'shop', owner: 'ann', 'cost-center': '42' },
    });

    expect(p).toMatchObject({
      hasWork: true,
      add: { 'cost-center': '42', owner: 'ann', team: 'shop' },
      detail: 'add 3 tags from db orders: cost-center, owner, team',
      doneDetail: 'added 3 tags from db orders: cost-center, owner, team',
    });
    expect(Object.keys(p?.add ?? {})).toEqual(['cost-center', 'owner', 'team']);
  });

  it('never overwrites a key the snapshot already has, even with another value', () => {
    const p = only(dbSnapshot('orders-1', { team: 'dba', Owner: 'x' }), {
      'db:orders': { team: 'shop', owner: 'ann' },
    });

    expect(p?.add).toEqual({ owner: 'ann' });
    expect(p?.detail).toBe("add 1 tag from db orders: owner; kept the snapshot's own value of: team");
  });

  it('skips aws: and rds: keys on RDS snapshots, and aws: keys on EBS snapshots', () => {
    const source = { 'aws:cloudformation:stack-name': 'db', 'rds:x': '1', 'AWS:odd': '2', team: 'shop' };

    expect(only(dbSnapshot('a'), { 'db:orders': source })?.add).toEqual({ team: 'shop' });
    expect(only(ebsSnapshot('snap-1', 'vol-1'), { 'volume:vol-1': source })?.add).toEqual({
      'rds:x': '1',
      team: 'shop',
    });
  });

  it('never copies nightshift: state, such as the source-arn a restored DB inherits from its copy', () => {
    const p = only(dbSnapshot('a'), {
      'db:orders': { 'nightshift:source-arn': `${ACCOUNT}:snapshot:x`, team: 'shop' },
    });

    expect(p?.add).toEqual({ team: 'shop' });
  });

  it('copies only TAG_KEYS when given, and never EXCLUDE_TAG_KEYS, which wins', () => {
    const sources = { 'db:orders': { team: 'shop', owner: 'ann', 'cost-center': '42', Team: 'case' } };

    expect(only(dbSnapshot('a'), sources, { only: ['team', 'owner'], exclude: [] })?.add).toEqual({
      owner: 'ann',
      team: 'shop',
    });
    expect(only(dbSnapshot('a'), sources, { only: [], exclude: ['owner', 'Team'] })?.add).toEqual({
      'cost-center': '42',
      team: 'shop',
    });
    expect(only(dbSnapshot('a'), sources, { only: ['team', 'owner'], exclude: ['owner'] })?.add).toEqual({
      team: 'shop',
    });
  });

  it('adds as many as fit under the 50-tag limit, in key order, and reports the keys left out', () => {
    // Prepare: 45 tags on the snapshot, 10 new ones on the source
    const p = only(ebsSnapshot('snap-1', 'vol-1', many('own', 45)), { 'volume:vol-1': many('new', 10) });

    expect(Object.keys(p?.add ?? {})).toEqual(['new-00', 'new-01', 'new-02', 'new-03', 'new-04']);
    expect(p?.detail).toBe(
      'add 5 tags from volume vol-1: new-00, new-01, new-02, new-03, new-04; ' +
        'left out (50-tag limit): new-05, new-06, new-07, new-08, new-09',
    );
  });

  it('does not count aws: tags on the snapshot toward the limit, as AWS does not', () => {
    const tags = { ...many('own', 48), 'aws:backup:source-resource': 'x', 'aws:x': 'y' };

    expect(mergeTags(tags, many('new', 3), 'ebs-snapshot', ALL)).toEqual({
      add: ['new-00', 'new-01'],
      leftOut: ['new-02'],
      kept: [],
      eligible: ['new-00', 'new-01', 'new-02'],
    });
  });

  it('skips a snapshot that already has 50 tags, naming what it lacks', () => {
    const p = only(dbSnapshot('a', many('own', 50)), { 'db:orders': { team: 'shop' } });
    const ebs = only(ebsSnapshot('snap-1', 'vol-1', many('own', 50)), { 'volume:vol-1': { team: 'shop' } });

    expect(p).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        "the snapshot already has 50 tags; left out (50-tag limit, 2 kept free for nightshift's copy marks): team",
    });
    expect(ebs?.detail).toBe('the snapshot already has 50 tags; left out (50-tag limit): team');
  });

  it("fills an RDS snapshot to 48 tags at most, keeping two free for nightshift's copy marks", () => {
    // Prepare: rds-snapshot-copy cannot copy a snapshot without room for nightshift:copy-source
    const sources = { 'db:orders': many('new', 5) };

    // Act
    const partly = only(dbSnapshot('a', many('own', 45)), sources);
    const full = only(dbSnapshot('b', many('own', 48)), sources);
    const marked = mergeTags(
      { ...many('own', 46), 'nightshift:copy-source': 'x', 'nightshift:source-time': 'y' },
      sources['db:orders'],
      'rds-snapshot',
      ALL,
    );
    const cluster = mergeTags(many('own', 47), sources['db:orders'], 'rds-cluster-snapshot', ALL);
    const volume = mergeTags(many('own', 47), sources['db:orders'], 'ebs-snapshot', ALL);

    // Assess
    expect(partly).toMatchObject({
      hasWork: true,
      add: { 'new-00': 'x', 'new-01': 'x', 'new-02': 'x' },
      detail:
        "add 3 tags from db orders: new-00, new-01, new-02; left out (50-tag limit, 2 kept free for nightshift's copy marks): new-03, new-04",
    });
    expect(full).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        "the snapshot already has 48 tags; left out (50-tag limit, 2 kept free for nightshift's copy marks): new-00, new-01, new-02, new-03, new-04",
    });
    // The marks already there use the room kept for them: 46 + 2 + 2 = 50
    expect(marked.add).toEqual(['new-00', 'new-01']);
    expect(cluster.add).toEqual(['new-00']);
    expect(volume.add).toEqual(['new-00', 'new-01', 'new-02']);
  });

  it('leaves a snapshot unchanged when it already carries every tag of its source', () => {
    const p = only(dbSnapshot('a', { team: 'shop', owner: 'other', extra: '1' }), {
      'db:orders': { team: 'shop', owner: 'ann', 'aws:x': '1' },
    });

    expect(p).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
      detail: "already carries all 2 tags of db orders; kept the snapshot's own value of: owner",
    });
  });

  it('leaves a snapshot unchanged when its source has nothing to copy', () => {
    expect(only(dbSnapshot('a'), { 'db:orders': {} })).toMatchObject({
      outcome: 'unchanged',
      detail: 'db orders has no tags to copy',
    });
    expect(
      only(dbSnapshot('a'), { 'db:orders': { 'aws:x': '1', owner: 'ann' } }, { only: ['team'], exclude: [] }),
    ).toMatchObject({
      outcome: 'unchanged',
      detail:
        'db orders has no tags to copy: its 2 tags are all reserved (aws:, rds:, nightshift:) or left out by TAG_KEYS / EXCLUDE_TAG_KEYS',
    });
  });

  it('skips a snapshot whose source is gone, and one that names no source', () => {
    const orphan = only(dbSnapshot('copy', { 'nightshift:source-arn': 'x' }, 'legacy'), {});
    const noVolume = { ...ebsSnapshot('snap-2', 'vol-2'), source: undefined };

    expect(orphan).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail: 'db legacy not found in this region (deleted, or the snapshot is a copy); no tags to copy',
    });
    expect(only(noVolume, {})).toMatchObject({
      outcome: 'skipped',
      detail: 'the snapshot names no source volume (copied, or registered from an AMI); no tags to copy',
    });
  });

  it('skips a snapshot an event named that no longer exists', () => {
    const arn = `${ACCOUNT}:snapshot:gone`;
    const plan = planTagging(
      'tag',
      { snapshots: [], sources: {}, missing: [{ arn, type: 'rds-snapshot' }], partial: [], unread: [] },
      ALL,
    );

    expect(plan.snapshots).toEqual([
      expect.objectContaining({ arn, type: 'rds-snapshot', hasWork: false, outcome: 'skipped' }),
    ]);
    expect(plan.batches).toEqual([]);
  });
});

describe('snapshot-tags planner: a read the deadline cut short', () => {
  it('leaves a snapshot undone when the read of its kind of source was cut short, and plans the rest', () => {
    // Prepare: DB instances were read only in part; volumes in full
    const snapshots = [
      dbSnapshot('orders-1'),
      dbSnapshot('billing-1', {}, 'billing'),
      ebsSnapshot('snap-1', 'vol-gone'),
    ];
    const read = {
      partial: ['db' as const],
      unread: [{ type: 'ebs-snapshot' as const, what: 'EBS snapshots after the first 1000' }],
    };

    // Act
    const plan = planTagging('sweep', estate(snapshots, { 'db:orders': { team: 'shop' } }, read), ALL);

    // Assess: billing may exist on a page nobody read; vol-gone was looked for and is not there
    expect(plan.snapshots.map((s) => [s.id, s.hasWork, s.unread ?? false, s.outcome])).toEqual([
      ['orders-1', true, false, undefined],
      ['billing-1', false, true, 'skipped'],
      ['snap-1', false, false, 'skipped'],
    ]);
    expect(plan.snapshots[1]?.detail).toBe(
      'not planned: the Lambda was about to time out before db billing was read; the next sweep starts with it',
    );
    expect(plan.snapshots[2]?.detail).toMatch(/^volume vol-gone not found in this region/);
    expect(plan.unread).toEqual(read.unread);
    expect(plan.batches.flatMap((b) => b.snapshots.map((s) => s.id))).toEqual(['orders-1']);
  });
});

describe('snapshot-tags planner: the plan digest', () => {
  const digestOf = (sources: Record<string, TagMap>) =>
    planDigest(
      planTagging('sweep', estate([dbSnapshot('orders-1'), ebsSnapshot('snap-1', 'vol-a')], sources), ALL)
        .snapshots,
    );

  it('changes with the values to be written, not only with the keys the report names', () => {
    const a = digestOf({ 'db:orders': { team: 'shop' }, 'volume:vol-a': { team: 'ops' } });

    expect(a).toMatch(PLAN_DIGEST);
    expect(digestOf({ 'db:orders': { team: 'shop' }, 'volume:vol-a': { team: 'ops' } })).toBe(a);
    expect(digestOf({ 'db:orders': { team: 'shop' }, 'volume:vol-a': { team: 'platform' } })).not.toBe(a);
    // snapshots with nothing to do are not part of the plan
    expect(digestOf({ 'db:orders': { team: 'shop' }, 'volume:vol-a': {} })).toBe(
      planDigest(
        planTagging('sweep', estate([dbSnapshot('orders-1')], { 'db:orders': { team: 'shop' } }), ALL)
          .snapshots,
      ),
    );
  });
});

describe('snapshot-tags planner: tagging calls', () => {
  it('puts EBS snapshots that receive identical tags in one CreateTags batch, others apart', () => {
    const snapshots = [
      ebsSnapshot('snap-a1', 'vol-a'),
      ebsSnapshot('snap-b1', 'vol-b'),
      ebsSnapshot('snap-a2', 'vol-a'),
      // Same tags from another volume: the same call
      ebsSnapshot('snap-c1', 'vol-c'),
      // Same volume, but it already has one of the tags: another call
      ebsSnapshot('snap-a3', 'vol-a', { team: 'mine' }),
      ebsSnapshot('snap-a4', 'vol-a', { Name: 'a', team: 'shop' }),
    ];
    const sources = {
      'volume:vol-a': { team: 'shop', Name: 'a' },
      'volume:vol-b': { team: 'ops' },
      'volume:vol-c': { Name: 'a', team: 'shop' },
    };

    const plan = planTagging('sweep', estate(snapshots, sources), ALL);

    expect(
      plan.batches.map((b) => ({ service: b.service, tags: b.tags, ids: b.snapshots.map((s) => s.id) })),
    ).toEqual([
      { service: 'ec2', tags: { Name: 'a', team: 'shop' }, ids: ['snap-a1', 'snap-a2', 'snap-c1'] },
      { service: 'ec2', tags: { team: 'ops' }, ids: ['snap-b1'] },
      { service: 'ec2', tags: { Name: 'a' }, ids: ['snap-a3'] },
    ]);
    expect(plan.snapshots.map((s) => s.id)).toEqual(snapshots.map((s) => s.id));
    expect(plan.snapshots[5]).toMatchObject({ outcome: 'unchanged' });
  });

  it('splits a CreateTags batch at 1000 snapshots', () => {
    const snapshots = Array.from({ length: 2500 }, (_, i) => ebsSnapshot(`snap-${i}`, 'vol-a'));

    const plan = planTagging('sweep', estate(snapshots, { 'volume:vol-a': { team: 'shop' } }), ALL);

    expect(plan.batches.map((b) => b.snapshots.length)).toEqual([1000, 1000, 500]);
  });

  it('tags each RDS snapshot in its own call: AddTagsToResource takes one resource', () => {
    const plan = planTagging(
      'sweep',
      estate([dbSnapshot('a'), dbSnapshot('b')], { 'db:orders': { team: 'shop' } }),
      ALL,
    );

    expect(plan.batches.map((b) => [b.service, b.snapshots.map((s) => s.id)])).toEqual([
      ['rds', ['a']],
      ['rds', ['b']],
    ]);
  });
});

describe('snapshot-tags configuration', () => {
  it('copies every key by default and runs for real', () => {
    expect(parseEnv(SnapshotTagsConfig, {})).toEqual({ TAG_KEYS: [], EXCLUDE_TAG_KEYS: [], DRY_RUN: false });
  });

  it('reads comma lists of keys, trimmed, without duplicates, case kept', () => {
    expect(
      parseEnv(SnapshotTagsConfig, { TAG_KEYS: ' team, Owner,team,,cost-center ', EXCLUDE_TAG_KEYS: '' }),
    ).toMatchObject({ TAG_KEYS: ['team', 'Owner', 'cost-center'], EXCLUDE_TAG_KEYS: [] });
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      parseEnv(SnapshotTagsConfig, {
        TAG_KEYS: 'team,a;b',
        EXCLUDE_TAG_KEYS: 'x'.repeat(129),
        DRY_RUN: 'yes',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variables).toEqual(['TAG_KEYS', 'EXCLUDE_TAG_KEYS', 'DRY_RUN']);
    expect((error as ConfigError).message).toMatch(/^invalid configuration: TAG_KEYS: not tag keys: "a;b"; /);
  });
});

describe('snapshot-tags input', () => {
  const sample = (dir: string, file: string): unknown =>
    JSON.parse(readFileSync(join('events', dir, 'samples', file), 'utf8'));

  // events/aws.rds holds rds-scheduler's DB instance and cluster events too: only snapshot events here.
  const SNAPSHOT_EVENTS = [
    'RDS DB Snapshot Event',
    'RDS DB Cluster Snapshot Event',
    'EBS Snapshot Notification',
  ];
  const samples = ['aws.rds', 'aws.ec2', 'snapshot-tags'].flatMap((dir) =>
    readdirSync(join('events', dir, 'samples'))
      .filter(
        (file) =>
          !dir.startsWith('aws.') ||
          SNAPSHOT_EVENTS.includes((sample(dir, file) as Record<string, string>)['detail-type'] ?? ''),
      )
      .map((file) => ({ dir, file })),
  );

  it.each(samples)('accepts the sample $dir/$file', ({ dir, file }) => {
    expect(() => parseSnapshotTagsInput(sample(dir, file))).not.toThrow();
  });

  it('names the snapshot of each snapshot-created event, and nothing for other events', () => {
    expect(parseSnapshotTagsInput(sample('aws.rds', 'db-snapshot-automated-created.json'))).toEqual({
      action: 'tag',
      snapshot: {
        type: 'rds-snapshot',
        arn: 'arn:aws:rds:eu-central-1:123456789012:snapshot:rds:orders-2026-11-23-03-24',
        id: 'rds:orders-2026-11-23-03-24',
      },
    });
    expect(parseSnapshotTagsInput(sample('aws.rds', 'cluster-snapshot-manual-created.json'))).toMatchObject({
      snapshot: { type: 'rds-cluster-snapshot', id: 'billing-before-upgrade' },
    });
    expect(parseSnapshotTagsInput(sample('aws.rds', 'db-snapshot-creating.json'))).toEqual({ action: 'tag' });
    expect(parseSnapshotTagsInput(sample('aws.ec2', 'ebs-snapshot-failed.json'))).toEqual({ action: 'tag' });
  });

  it('takes the planDigest of a confirmed dry run, and refuses anything else naming the field', () => {
    const digest = 'a'.repeat(64);
    expect(parseSnapshotTagsInput({ action: 'sweep', planDigest: digest })).toEqual({
      action: 'sweep',
      planDigest: digest,
    });
    expect(() => parseSnapshotTagsInput({ action: 'sweep', planDigest: 'yes' })).toThrow(
      expect.objectContaining({ name: 'InputError', field: 'planDigest' }),
    );
  });

  it('takes EBS ids by pattern from the ARNs of EBS notifications, which put the region where the account goes', () => {
    expect(parseSnapshotTagsInput(sample('aws.ec2', 'ebs-snapshot-created.json'))).toEqual({
      action: 'tag',
      snapshot: {
        type: 'ebs-snapshot',
        id: 'snap-0a1b2c3d4e5f60718',
        volumeId: 'vol-0123456789abcdef0',
        account: '123456789012',
      },
    });
  });
});
