import { describe, expect, it } from 'vitest';
import {
  FOREIGN_ROWS_LISTED,
  nightshiftCopy,
  planCopies,
  targetIdentifier,
  type CopyPlanInput,
} from '#functions/rds-snapshot-copy/plan.ts';
import type { Snapshot } from '#functions/rds-snapshot-copy/inventory.ts';

const NOW = new Date('2026-11-23T04:00:00Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;
const SRC = 'eu-central-1';
const DST = 'eu-west-1';
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);
const sevenDays23Hours = new Date(NOW.getTime() - 7 * DAY - 23 * HOUR);
const srcArn = (id: string) => `arn:aws:rds:${SRC}:123456789012:snapshot:${id}`;
const dstArn = (id: string) => `arn:aws:rds:${DST}:123456789012:snapshot:${id}`;
const srcClusterArn = (id: string) => `arn:aws:rds:${SRC}:123456789012:cluster-snapshot:${id}`;
const dstClusterArn = (id: string) => `arn:aws:rds:${DST}:123456789012:cluster-snapshot:${id}`;

const source = (id: string, extra: Partial<Snapshot> = {}): Snapshot => ({
  arn: srcArn(id),
  id,
  kind: 'instance',
  type: 'manual',
  status: 'available',
  encrypted: false,
  created: daysAgo(0),
  originalCreated: daysAgo(0),
  dbId: 'orders',
  tags: {},
  ...extra,
});
/** One of nightshift's copies, as RDS describes it: copied from the source, with the inherited tags. */
const copyOf = (id: string, days: number, extra: Partial<Snapshot> = {}): Snapshot => ({
  ...source(id),
  arn: dstArn(id),
  created: daysAgo(days),
  originalCreated: daysAgo(days),
  copiedFrom: srcArn(id),
  sourceArn: srcArn(id),
  tags: { 'nightshift:source-arn': srcArn(id), 'nightshift:source-time': daysAgo(days).toISOString() },
  ...extra,
});

const plan = (
  input: Partial<CopyPlanInput>,
  opts: {
    retentionDays?: number;
    kmsKeys?: Record<string, string>;
    optionGroups?: Record<string, string>;
    first?: Set<string>;
  } = {},
) =>
  planCopies(
    {
      mode: 'sweep',
      sources: [],
      siblings: [],
      missing: [],
      regions: [DST],
      destinations: {},
      databaseTags: {},
      ...input,
    },
    {
      sourceRegion: SRC,
      retentionDays: opts.retentionDays ?? 7,
      kmsKeys: opts.kmsKeys ?? {},
      optionGroups: opts.optionGroups ?? {},
      sourceTags: [],
      now: NOW,
      ...(opts.first && { first: opts.first }),
    },
  );
const summary = (p: ReturnType<typeof plan>) =>
  [...p.copies, ...p.prunes].map((w) => `${w.arn.split(':').pop()} ${w.hasWork ? 'work' : w.outcome}`);

describe('targetIdentifier', () => {
  it.each([
    ['rds:orders-2026-11-23-03-24', 'orders-2026-11-23-03-24'],
    ['orders-before-migration', 'orders-before-migration'],
    ['awsbackup:job-1a2b', 'awsbackup-job-1a2b'],
    ['rds:orders--2026_11', 'orders-2026-11'],
    ['rds:1st-db-', 'copy-1st-db'],
    ['Orders-Before', 'orders-before'],
  ])('derives %s → %s, unchanged in length', (from, to) => {
    expect(targetIdentifier(from)).toBe(to);
    expect(targetIdentifier(from, 'cluster')).toBe(to);
  });

  it('keeps cluster snapshot copies of clusters up to 46 characters exactly as before', () => {
    const id = `rds:${'c'.repeat(46)}-2026-11-23-03-24`;

    expect(targetIdentifier(id, 'cluster')).toBe(id.slice(4));
    expect(targetIdentifier(id, 'cluster')).toHaveLength(63);
  });

  it('shortens a cluster copy past 63 characters deterministically, keeping the date and telling clusters apart', () => {
    // Prepare: two clusters of 55 characters that share their first 40, two days of one of them
    const a = `rds:${'billing-ledger-reconciliation-'.padEnd(40, 'x')}aaaaaaaaaaaaaaa`;
    const b = `rds:${'billing-ledger-reconciliation-'.padEnd(40, 'x')}bbbbbbbbbbbbbbb`;

    // Act
    const monday = targetIdentifier(`${a}-2026-11-23-03-24`, 'cluster');
    const tuesday = targetIdentifier(`${a}-2026-11-24-03-24`, 'cluster');
    const other = targetIdentifier(`${b}-2026-11-23-03-24`, 'cluster');

    // Assess
    for (const id of [monday, tuesday, other]) {
      expect(id.length).toBeLessThanOrEqual(63);
      expect(id).toMatch(/^[a-z](?:-?[a-z0-9])*$/);
    }
    expect(monday).toMatch(/^billing-ledger-reconciliation-x{7}-[0-9a-f]{8}-2026-11-23-03-24$/);
    expect(tuesday).toMatch(/-2026-11-24-03-24$/);
    expect(new Set([monday, tuesday, other]).size).toBe(3);
    expect(targetIdentifier(`${a}-2026-11-23-03-24`, 'cluster')).toBe(monday);
  });

  it('shortens an instance copy only past 255 characters', () => {
    const id = targetIdentifier(`copy:${'a'.repeat(300)}`);

    expect(id).toHaveLength(255);
    expect(id).toMatch(/^copy-a+-[0-9a-f]{8}$/);
  });
});

describe('nightshiftCopy: ours by what RDS records, not by tags', () => {
  it.each([
    ['a copy RDS says came from the source it names, under the derived identifier', copyOf('mon', 1), true],
    [
      'a snapshot of a database restored from a copy (both tags, no copy source)',
      {
        ...copyOf('mon', 1),
        copiedFrom: undefined,
        id: 'rds:restored-2026-11-22',
        arn: dstArn('rds:restored-2026-11-22'),
      },
      false,
    ],
    [
      'a copy of another snapshot than its tag names',
      { ...copyOf('mon', 1), copiedFrom: srcArn('tue') },
      false,
    ],
    [
      'a copy with the right source under another identifier',
      { ...copyOf('mon', 1), id: 'audit-mon' },
      false,
    ],
  ])('%s: %s', (_, snapshot, ours) => {
    expect(nightshiftCopy(snapshot as Snapshot).ours).toBe(ours);
  });
});

describe('planCopies: what to copy', () => {
  it('marks the source with nightshift tags its copy inherits, and names the KMS key', () => {
    const p = plan(
      {
        sources: [source('orders-a', { encrypted: true, tags: { team: 'shop', 'aws:backup:source': 'x' } })],
      },
      { kmsKeys: { [DST]: 'alias/copies' } },
    );

    expect(p.copies[0]).toMatchObject({
      arn: dstArn('orders-a'),
      hasWork: true,
      targetId: 'orders-a',
      kmsKeyId: 'alias/copies',
      stamp: [
        { Key: 'nightshift:source-arn', Value: srcArn('orders-a') },
        { Key: 'nightshift:source-time', Value: '2026-11-23T04:00:00Z' },
      ],
      digestKey: 'copy orders-a to eu-west-1 as orders-a with its tags, encrypted with KMS key alias/copies',
      detail:
        'copy orders-a to eu-west-1 as orders-a with its tags, encrypted with KMS key alias/copies; first marks the source with nightshift:source-arn and nightshift:source-time, which the copy inherits',
    });
  });

  it('does not mark a source again that carries both tags already', () => {
    const tags = {
      'nightshift:source-arn': srcArn('orders-a'),
      'nightshift:source-time': '2026-11-23T04:00:00Z',
    };

    const work = plan({ sources: [source('orders-a', { tags })] }).copies[0];

    expect(work).toMatchObject({
      hasWork: true,
      stamp: [],
      detail: 'copy orders-a to eu-west-1 as orders-a with its tags',
    });
  });

  it('refuses a source with no room for nightshift:source-arn before any call, and leaves out the time when only one tag fits', () => {
    const tags = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v']));

    const p = plan({
      sources: [source('full', { tags: tags(50) }), source('nearly', { tags: tags(49), dbId: 'other' })],
    });

    expect(p.copies.map((w) => [w.targetId, w.hasWork ? 'work' : w.outcome])).toEqual([
      ['full', 'failed'],
      ['nearly', 'work'],
    ]);
    expect(p.copies[0]?.detail).toMatch(
      /^the source has 50 tags, RDS's limit: nightshift needs one free for nightshift:source-arn/,
    );
    expect(p.copies[1]?.stamp).toEqual([{ Key: 'nightshift:source-arn', Value: srcArn('nearly') }]);
    expect(p.copies[1]?.detail).toMatch(/no room for nightshift:source-time on the source/);
  });

  it('passes by real copies and foreign snapshot types quietly in a sweep', () => {
    const fromVirginia = {
      ...source('imported'),
      copiedFrom: 'arn:aws:rds:us-east-1:123456789012:snapshot:imported',
      sourceArn: 'arn:aws:rds:us-east-1:123456789012:snapshot:imported',
    };

    const p = plan({ sources: [fromVirginia, source('backup', { type: 'awsbackup' })] });

    expect(p.copies).toEqual([]);
  });

  it('copies a snapshot that only carries the nightshift tags (a database restored from a copy), marking it afresh', () => {
    // Prepare: CopyTagsToSnapshot stamped both tags of the copy it was restored from on its new snapshot
    const restored = source('rds:restored-2026-11-23-03-24', {
      type: 'automated',
      dbId: 'restored',
      tags: { 'nightshift:source-arn': dstArn('mon'), 'nightshift:source-time': '2026-11-01T00:00:00Z' },
      originalCreated: daysAgo(0.1),
      created: daysAgo(0.1),
    });

    // Act
    const work = plan({ sources: [restored] }).copies[0];

    // Assess: dated by AWS, not by the inherited tag, and marked with its own ARN
    expect(work).toMatchObject({ hasWork: true, targetId: 'restored-2026-11-23-03-24' });
    expect(work?.stamp).toEqual([
      { Key: 'nightshift:source-arn', Value: restored.arn },
      { Key: 'nightshift:source-time', Value: '2026-11-23T01:36:00Z' },
    ]);
  });

  it('says why in an on-demand copy of a nightshift copy', () => {
    const copy = {
      ...source('imported'),
      copiedFrom: 'arn:aws:rds:us-east-1:1:snapshot:imported',
      sourceArn: 'arn:aws:rds:us-east-1:1:snapshot:imported',
    };

    const p = plan({ mode: 'copy', sources: [copy] });

    expect(p.copies[0]).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        'is itself a nightshift copy of arn:aws:rds:us-east-1:1:snapshot:imported; copies are never copied again',
    });
  });

  it('does not copy an old source that is not its database newest, but copies the newest however old', () => {
    const p = plan({
      sources: [
        source('old', { originalCreated: daysAgo(9) }),
        source('recent', { originalCreated: daysAgo(1) }),
        source('billing-only', { originalCreated: daysAgo(8), dbId: 'billing' }),
      ],
    });

    expect(summary(p)).toEqual(['recent work', 'billing-only work']);
  });

  it('counts RETENTION_DAYS in 24-hour days: a source 7 days 23 hours old is past 7', () => {
    const p = plan({
      mode: 'event',
      sources: [source('old', { created: sevenDays23Hours, originalCreated: sevenDays23Hours })],
      siblings: [source('new', { originalCreated: daysAgo(1) })],
    });

    expect(p.copies[0]).toMatchObject({ hasWork: false, outcome: 'skipped' });
    expect(p.copies[0]?.detail).toBe(
      '7d 23h old, past RETENTION_DAYS 7, and not the newest snapshot of orders: a copy would be pruned at once',
    );
  });

  it('copies an old snapshot an operator asks for, warning that the next sweep prunes it, outside the digest', () => {
    const p = plan({
      mode: 'copy',
      sources: [source('old', { originalCreated: daysAgo(9) })],
      siblings: [source('new', { originalCreated: daysAgo(1) })],
    });

    expect(p.copies[0]?.detail).toMatch(/note: 9d old, the next sweep prunes the copy \(RETENTION_DAYS 7\)$/);
    expect(p.copies[0]?.digestKey).toBe('copy old to eu-west-1 as old with its tags');
  });

  it('refuses a target identifier held by a snapshot that only carries the tag, and skips snapshots not yet available', () => {
    // Prepare: an operator copied the source by hand into the target's name, with copy-tags, inside eu-west-1
    const squatter = { ...copyOf('orders-a', 0), copiedFrom: undefined };

    // Act
    const p = plan({
      mode: 'copy',
      sources: [source('orders-a'), source('orders-b', { status: 'creating' })],
      destinations: { [DST]: [squatter] },
    });

    // Assess
    expect(p.copies.map((w) => [w.outcome, w.detail])).toEqual([
      [
        'failed',
        "identifier orders-a in eu-west-1 is taken by a snapshot that is not nightshift's copy of this source (RDS records no source for it (no SourceDBSnapshotIdentifier): it was not copied across Regions); nothing attempted",
      ],
      ['skipped', 'not available yet (creating); the next sweep copies it'],
    ]);
  });

  it('counts a copy RDS made from this source under the derived identifier as done', () => {
    const p = plan({
      mode: 'event',
      sources: [source('orders-a')],
      destinations: { [DST]: [copyOf('orders-a', 0)] },
    });

    expect(p.copies[0]).toMatchObject({
      outcome: 'unchanged',
      detail: 'already copied to eu-west-1 as orders-a (available)',
    });
  });

  it('reports a copy that ended in a failed state as failed, and the sweep deletes it so the next sweep copies again', () => {
    const p = plan({
      sources: [source('orders-a')],
      destinations: { [DST]: [copyOf('orders-a', 0, { status: 'failed' })] },
    });
    const event = plan({
      mode: 'event',
      sources: [source('orders-a')],
      destinations: { [DST]: [copyOf('orders-a', 0, { status: 'failed' })] },
    });

    expect(summary(p)).toEqual(['orders-a failed', 'orders-a work']);
    expect(p.copies[0]?.detail).toBe(
      'the copy orders-a in eu-west-1 ended in state failed: this sweep deletes it and the next sweep copies the source again',
    );
    expect(p.prunes[0]?.detail).toBe(
      `delete copy orders-a in eu-west-1 (of ${srcArn('orders-a')}): it ended in state failed; the next sweep copies the source again`,
    );
    expect(event.copies[0]?.detail).toMatch(/the next sweep deletes it and copies the source again$/);
    expect(event.prunes).toEqual([]);
  });

  it('copies a non-default option group snapshot only with TARGET_OPTION_GROUPS for the region, before any call', () => {
    const tde = source('oracle-nightly', { optionGroup: 'oracle-ee-19-tde', dbId: 'ledger' });
    const plain = source('pg-nightly', { optionGroup: 'default:postgres-16' });

    const without = plan({ sources: [tde, plain] });
    const withGroup = plan({ sources: [tde] }, { optionGroups: { [DST]: 'oracle-ee-19-tde-dr' } });

    expect(without.copies.map((w) => [w.targetId, w.hasWork ? 'work' : w.outcome, w.optionGroup])).toEqual([
      ['oracle-nightly', 'failed', undefined],
      ['pg-nightly', 'work', undefined],
    ]);
    expect(without.copies[0]?.detail).toBe(
      'uses the option group oracle-ee-19-tde, and no option group is configured for eu-west-1 in TARGET_OPTION_GROUPS (a copy across Regions needs one there for a non-default option group; Oracle and SQL Server TDE cannot be restored without it); nothing attempted',
    );
    expect(withGroup.copies[0]).toMatchObject({ hasWork: true, optionGroup: 'oracle-ee-19-tde-dr' });
    expect(withGroup.copies[0]?.detail).toMatch(/, option group oracle-ee-19-tde-dr/);
  });

  it('reports a missing snapshot as failed on demand and skipped for an event', () => {
    const failed = plan({ mode: 'copy', missing: [srcArn('gone')] });
    const skipped = plan({ mode: 'event', missing: [srcArn('gone')] });

    expect(failed.copies[0]).toMatchObject({ outcome: 'failed', hasWork: false });
    expect(skipped.copies[0]).toMatchObject({ outcome: 'skipped', hasWork: false });
  });

  it('gives the in-flight budget first to the copies the previous run left undone', () => {
    const inFlight = Array.from({ length: 19 }, (_, i) => ({ ...copyOf(`busy-${i}`, 0), status: 'copying' }));
    const p = plan(
      {
        sources: [source('newest'), source('carried', { originalCreated: daysAgo(0.5), dbId: 'other' })],
        destinations: { [DST]: inFlight },
      },
      { first: new Set([dstArn('carried')]) },
    );

    expect(p.copies.map((w) => `${w.targetId} ${w.hasWork ? 'work' : w.outcome}`)).toEqual([
      'carried work',
      'newest skipped',
    ]);
  });
});

describe('planCopies: the oldest source without a copy, per destination region', () => {
  it('names the oldest source that should have a copy and has no available one, per region', () => {
    const p = planCopies(
      {
        mode: 'sweep',
        sources: [
          source('copied', { originalCreated: daysAgo(3), dbId: 'a' }),
          source('copying', { originalCreated: daysAgo(2), dbId: 'b' }),
          source('waiting', { originalCreated: daysAgo(1), dbId: 'c' }),
          source('old-not-newest', { originalCreated: daysAgo(30), dbId: 'c' }),
        ],
        siblings: [],
        missing: [],
        regions: [DST, 'us-east-1'],
        destinations: {
          [DST]: [copyOf('copied', 3), copyOf('copying', 2, { status: 'copying' }), copyOf('waiting', 1)],
          'us-east-1': [],
        },
        databaseTags: {},
      },
      { sourceRegion: SRC, retentionDays: 7, kmsKeys: {}, optionGroups: {}, sourceTags: [], now: NOW },
    );

    expect(p.uncopied).toEqual({
      [DST]: { arn: srcArn('copying'), ageHours: 48 },
      'us-east-1': { arn: srcArn('copied'), ageHours: 72 },
    });
  });

  it('is null for a region where every source has an available copy', () => {
    expect(plan({ sources: [source('a')], destinations: { [DST]: [copyOf('a', 0)] } }).uncopied).toEqual({
      [DST]: null,
    });
  });
});

describe('planCopies: pruning', () => {
  it('deletes copies past retention but keeps the newest of each database', () => {
    const p = plan({ destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9), copyOf('wed', 8)] } });

    expect(p.prunes.map((w) => w.id)).toEqual(['mon', 'tue']);
    expect(p.prunes[0]).toMatchObject({
      detail: `delete copy mon in eu-west-1 (of ${srcArn('mon')}, taken 2026-11-13): 10d old, past RETENTION_DAYS 7; newest copy wed kept`,
      digestKey: 'delete copy mon in eu-west-1 past RETENTION_DAYS 7',
    });
  });

  it('keeps the newest available copy while a newer one is still copying', () => {
    const p = plan({
      destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9), copyOf('wed', 8, { status: 'copying' })] },
    });

    expect(p.prunes.map((w) => w.id)).toEqual(['mon']);
  });

  it('counts RETENTION_DAYS in 24-hour days: a copy 7 days 23 hours old is pruned at 7', () => {
    const p = plan({
      destinations: {
        [DST]: [
          copyOf('mon', 0, { created: sevenDays23Hours, originalCreated: sevenDays23Hours }),
          copyOf('tue', 1),
        ],
      },
    });

    expect(p.prunes.map((w) => w.id)).toEqual(['mon']);
  });

  it('keeps only the newest copy of each database at RETENTION_DAYS 0, and never considers untagged snapshots', () => {
    const p = plan(
      {
        destinations: {
          [DST]: [
            copyOf('a1', 0.5),
            copyOf('a2', 0.1),
            copyOf('b1', 5, { dbId: 'billing' }),
            { ...source('manual-keep', { originalCreated: daysAgo(90) }), arn: dstArn('manual-keep') },
          ],
        },
      },
      { retentionDays: 0 },
    );

    expect(p.prunes.map((w) => w.id)).toEqual(['a1']);
  });

  it('never deletes a snapshot that only carries the tags, however old or new it claims to be, and says why', () => {
    // Prepare: an operator copied wed's copy inside eu-west-1 with copy-tags for an audit; a database
    // restored from a copy stamped both tags on its snapshots; both claim a newer source time than any copy
    const audit = {
      ...copyOf('wed', 1),
      id: 'audit-wed',
      arn: dstArn('audit-wed'),
      copiedFrom: undefined,
      tags: { ...copyOf('wed', 1).tags, 'nightshift:source-time': NOW.toISOString() },
    };
    const restored = {
      ...copyOf('wed', 1),
      id: 'rds:restored-2026-11-01-03-00',
      arn: dstArn('rds:restored-2026-11-01-03-00'),
      dbId: 'orders',
      type: 'automated',
      copiedFrom: undefined,
      originalCreated: daysAgo(22),
    };

    // Act
    const p = plan({ destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9), audit, restored] } });

    // Assess: tue is still the newest copy of orders; neither foreign snapshot is touched
    expect(summary(p)).toEqual(['mon work', 'audit-wed skipped', 'restored-2026-11-01-03-00 skipped']);
    expect(p.prunes[1]?.detail).toBe(
      'carries nightshift:source-arn but is not a copy this deployment made: RDS records no source for it (no SourceDBSnapshotIdentifier): it was not copied across Regions; never pruned',
    );
  });

  it('never deletes a cluster snapshot copied inside the region from a copy, although RDS records its source', () => {
    // Prepare: SourceDBClusterSnapshotArn is set for any copy, in-Region too: it names the copy it came from
    const ours = {
      ...copyOf('billing-mon', 10),
      kind: 'cluster' as const,
      arn: dstClusterArn('billing-mon'),
      copiedFrom: srcClusterArn('billing-mon'),
      sourceArn: srcClusterArn('billing-mon'),
      originalCreated: undefined,
      tags: { 'nightshift:source-arn': srcClusterArn('billing-mon') },
      dbId: 'billing',
    };
    const kept = {
      ...ours,
      id: 'billing-tue',
      arn: dstClusterArn('billing-tue'),
      copiedFrom: srcClusterArn('billing-tue'),
      sourceArn: srcClusterArn('billing-tue'),
      tags: { 'nightshift:source-arn': srcClusterArn('billing-tue') },
      created: daysAgo(9),
    };
    const audit = { ...ours, id: 'billing-audit', arn: dstClusterArn('billing-audit'), copiedFrom: ours.arn };

    const p = plan({ destinations: { [DST]: [ours, kept, audit] } });

    expect(summary(p)).toEqual(['billing-mon work', 'billing-audit skipped']);
    expect(p.prunes[1]?.detail).toMatch(
      /RDS says it was copied from arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:billing-mon, not from arn:aws:rds:eu-central-1:123456789012:cluster-snapshot:billing-mon as its nightshift:source-arn tag claims/,
    );
  });

  it('leaves copies made by a deployment in another region to that deployment', () => {
    const virginia = 'arn:aws:rds:us-east-1:123456789012:snapshot:mon';
    const p = plan({
      destinations: {
        [DST]: [
          {
            ...copyOf('mon', 30),
            copiedFrom: virginia,
            sourceArn: virginia,
            tags: { 'nightshift:source-arn': virginia },
          },
        ],
      },
    });

    expect(p.prunes).toMatchObject([
      {
        outcome: 'skipped',
        detail: expect.stringMatching(/from another Region or account: the deployment there prunes it/),
      },
    ]);
  });

  it('summarises a region full of snapshots that only carry the tag in one row per reason', () => {
    const restored = Array.from({ length: FOREIGN_ROWS_LISTED + 5 }, (_, i) => ({
      ...copyOf(`r${i}`, 1),
      id: `restored-${i}`,
      arn: dstArn(`restored-${i}`),
      copiedFrom: undefined,
    }));

    const p = plan({ destinations: { [DST]: restored } });

    expect(p.prunes).toEqual([
      expect.objectContaining({
        arn: 'arn:aws:rds:eu-west-1:123456789012:snapshot:*',
        outcome: 'skipped',
        hasWork: false,
        detail:
          '25 snapshots in eu-west-1 carry nightshift:source-arn but are not copies this deployment made: RDS records no copy source for them (snapshots of a database restored from a copy, copies made inside the region) (restored-0, restored-1, restored-2, restored-3, restored-4, …); never pruned',
      }),
    ]);
  });

  it('dates a cluster copy by its source while the source exists, else by the time it inherited', () => {
    // Prepare: tue was copied late (left for a later sweep): by its own creation time it would look newest
    const cluster = (id: string, copiedDaysAgo: number, sourceTime: string) => ({
      ...copyOf(id, copiedDaysAgo),
      kind: 'cluster' as const,
      arn: dstClusterArn(id),
      copiedFrom: srcClusterArn(id),
      sourceArn: srcClusterArn(id),
      originalCreated: undefined,
      dbId: 'billing',
      tags: { 'nightshift:source-arn': srcClusterArn(id), 'nightshift:source-time': sourceTime },
    });
    const tueSource = {
      ...source('tue'),
      kind: 'cluster' as const,
      arn: srcClusterArn('tue'),
      originalCreated: undefined,
      created: daysAgo(10),
      dbId: 'billing',
    };

    // Act
    const p = plan({
      sources: [tueSource],
      destinations: {
        [DST]: [cluster('tue', 1, 'not-a-date'), cluster('wed', 2, '2026-11-14T04:00:00Z')],
      },
    });

    // Assess
    expect(p.prunes.map((w) => w.id)).toEqual(['tue']);
  });

  it('prunes nothing outside a sweep', () => {
    expect(
      plan({ mode: 'event', destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9)] } }).prunes,
    ).toEqual([]);
  });
});
