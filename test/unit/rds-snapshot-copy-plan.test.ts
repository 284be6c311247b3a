import { describe, expect, it } from 'vitest';
import {
  FOREIGN_ROWS_LISTED,
  nightshiftCopy,
  planCopies,
  targetIdentifier,
  type CopyPlanInput,
} from '#functions/rds-snapshot-copy/plan.ts';
import type { Snapshot } from '#functions/rds-snapshot-copy/inventory.ts';
import type { TagRule } from '#shared/tags.ts';

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
  markerKey: 'nightshift:copy-source',
  tags: { 'nightshift:copy-source': srcArn(id), 'nightshift:source-time': daysAgo(days).toISOString() },
  ...extra,
});
/** A copy an earlier version made: its marker is nightshift:source-arn. */
const legacyCopyOf = (id: string, days: number, extra: Partial<Snapshot> = {}): Snapshot =>
  copyOf(id, days, {
    markerKey: 'nightshift:source-arn',
    tags: { 'nightshift:source-arn': srcArn(id), 'nightshift:source-time': daysAgo(days).toISOString() },
    ...extra,
  });
/** A source marked for its copies. */
const marked = (id: string, extra: Partial<Snapshot> = {}): Snapshot =>
  source(id, {
    sourceArn: srcArn(id),
    markerKey: 'nightshift:copy-source',
    tags: { 'nightshift:copy-source': srcArn(id), 'nightshift:source-time': '2026-11-23T04:00:00Z' },
    ...extra,
  });

const plan = (
  input: Partial<CopyPlanInput>,
  opts: {
    retentionDays?: number;
    kmsKeys?: Record<string, string>;
    optionGroups?: Record<string, string>;
    sourceTags?: TagRule[];
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
      databases: {},
      ...input,
    },
    {
      sourceRegion: SRC,
      retentionDays: opts.retentionDays ?? 7,
      kmsKeys: opts.kmsKeys ?? {},
      optionGroups: opts.optionGroups ?? {},
      sourceTags: opts.sourceTags ?? [],
      now: NOW,
      ...(opts.first && { first: opts.first }),
    },
  );
const summary = (p: ReturnType<typeof plan>) =>
  [...p.copies, ...p.unmarks, ...p.prunes].map(
    (w) => `${w.arn.split(':').pop()} ${w.hasWork ? 'work' : w.outcome}`,
  );

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
    ['a copy an earlier version made (nightshift:source-arn)', legacyCopyOf('mon', 1), true],
    [
      'a copy whose recorded source differs from its marker only in case',
      { ...copyOf('mon', 1), copiedFrom: srcArn('mon').toUpperCase().replace('ARN:AWS:RDS', 'arn:aws:rds') },
      true,
    ],
    [
      'a copy whose identifier differs from the derived one only in case',
      { ...copyOf('mon', 1), id: 'MON' },
      true,
    ],
    [
      'a source marked by another deployment (its marker names itself)',
      { ...marked('mon'), arn: dstArn('mon'), sourceArn: dstArn('mon') },
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
      mark: {
        add: [
          { Key: 'nightshift:copy-source', Value: srcArn('orders-a') },
          { Key: 'nightshift:source-time', Value: '2026-11-23T04:00:00Z' },
        ],
        remove: [],
      },
      digestKey: 'copy orders-a to eu-west-1 as orders-a with its tags, encrypted with KMS key alias/copies',
      detail:
        'copy orders-a to eu-west-1 as orders-a with its tags, encrypted with KMS key alias/copies; first marks the source with nightshift:copy-source and nightshift:source-time, which the copy inherits',
    });
  });

  it('does not mark a source again that carries both marks already', () => {
    const work = plan({ sources: [marked('orders-a')] }).copies[0];

    expect(work).toMatchObject({
      hasWork: true,
      mark: { add: [], remove: [] },
      detail: 'copy orders-a to eu-west-1 as orders-a with its tags',
    });
  });

  it('marks a source with nightshift:copy-source only, and first removes the legacy nightshift:source-arn, so no new copy carries it', () => {
    // Prepare: an earlier version marked the source with the key older versions take for their copy
    const legacy = source('orders-a', {
      tags: { 'nightshift:source-arn': srcArn('orders-a'), 'nightshift:source-time': '2026-11-23T04:00:00Z' },
      sourceArn: srcArn('orders-a'),
      markerKey: 'nightshift:source-arn',
    });

    // Act
    const work = plan({ mode: 'event', sources: [legacy] }).copies[0];

    // Assess
    expect(work).toMatchObject({
      hasWork: true,
      mark: {
        add: [{ Key: 'nightshift:copy-source', Value: srcArn('orders-a') }],
        remove: ['nightshift:source-arn'],
      },
      detail:
        'copy orders-a to eu-west-1 as orders-a with its tags; first marks the source with nightshift:copy-source, which the copy inherits and removes the legacy nightshift:source-arn from it',
    });
    expect(JSON.stringify(plan({ sources: [source('orders-b')] }).copies)).not.toContain(
      'nightshift:source-arn',
    );
  });

  it('refuses a source with no room for nightshift:copy-source before any call, saying what to do, and leaves out the time when only one tag fits', () => {
    const tags = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v']));

    const p = plan({
      sources: [
        source('full', { tags: tags(50) }),
        source('nearly', { tags: tags(49), dbId: 'other' }),
        // The legacy marker's place is freed before the new one is added
        source('legacy', { tags: { ...tags(49), 'nightshift:source-arn': srcArn('legacy') }, dbId: 'third' }),
        source('system', { tags: { ...tags(48), 'aws:backup:source-resource': 'x' }, dbId: 'fourth' }),
      ],
    });

    expect(p.copies.map((w) => [w.targetId, w.hasWork ? 'work' : w.outcome])).toEqual([
      ['full', 'failed'],
      ['nearly', 'work'],
      ['legacy', 'work'],
      ['system', 'work'],
    ]);
    expect(p.copies[0]?.detail).toBe(
      "the source has 50 tags, RDS's limit, and nightshift needs one free for nightshift:copy-source, which marks its copies: " +
        'remove a tag from this snapshot, and from its database if CopyTagsToSnapshot copies them all (snapshot-tags adds at most 48); nothing attempted',
    );
    expect(p.copies[1]?.mark).toEqual({
      add: [{ Key: 'nightshift:copy-source', Value: srcArn('nearly') }],
      remove: [],
    });
    expect(p.copies[1]?.detail).toMatch(/no room for nightshift:source-time on the source/);
    expect(p.copies[2]?.mark).toEqual({
      add: [{ Key: 'nightshift:copy-source', Value: srcArn('legacy') }],
      remove: ['nightshift:source-arn'],
    });
    expect(p.copies[3]?.mark.add.map((t) => t.Key)).toEqual([
      'nightshift:copy-source',
      'nightshift:source-time',
    ]);
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
      tags: { 'nightshift:copy-source': dstArn('mon'), 'nightshift:source-time': '2026-11-01T00:00:00Z' },
      sourceArn: dstArn('mon'),
      markerKey: 'nightshift:copy-source',
      originalCreated: daysAgo(0.1),
      created: daysAgo(0.1),
    });

    // Act
    const work = plan({ sources: [restored] }).copies[0];

    // Assess: dated by AWS, not by the inherited tag, and marked with its own ARN
    expect(work).toMatchObject({ hasWork: true, targetId: 'restored-2026-11-23-03-24' });
    expect(work?.mark.add).toEqual([
      { Key: 'nightshift:copy-source', Value: restored.arn },
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
      'uses the option group oracle-ee-19-tde, and TARGET_OPTION_GROUPS names none for it in eu-west-1 (add oracle-ee-19-tde@eu-west-1=<group> or eu-west-1=<group>: a copy across Regions needs one there for a non-default option group, and Oracle and SQL Server TDE cannot be restored without it); nothing attempted',
    );
    expect(withGroup.copies[0]).toMatchObject({ hasWork: true, optionGroup: 'oracle-ee-19-tde-dr' });
    expect(withGroup.copies[0]?.detail).toMatch(/, option group oracle-ee-19-tde-dr/);
  });

  it('maps each source option group to its own group in a region, before the region-wide one', () => {
    // Prepare: an Oracle and a SQL Server database, each with its TDE option group
    const oracle = source('oracle-nightly', { optionGroup: 'Oracle-EE-19-TDE', dbId: 'ledger' });
    const mssql = source('mssql-nightly', { optionGroup: 'sqlserver-se-tde', dbId: 'crm' });
    const other = source('mysql-nightly', { optionGroup: 'mysql-audit', dbId: 'shop' });
    const groups = {
      'oracle-ee-19-tde@eu-west-1': 'oracle-tde-dr',
      'sqlserver-se-tde@eu-west-1': 'sqlserver-tde-dr',
      'eu-west-1': 'any-dr',
    };

    // Act
    const p = plan({ sources: [oracle, mssql, other] }, { optionGroups: groups });

    // Assess
    expect(p.copies.map((w) => [w.targetId, w.optionGroup])).toEqual([
      ['oracle-nightly', 'oracle-tde-dr'],
      ['mssql-nightly', 'sqlserver-tde-dr'],
      ['mysql-nightly', 'any-dr'],
    ]);
    expect(
      plan({ sources: [mssql] }, { optionGroups: { 'oracle-ee-19-tde@eu-west-1': 'x' } }).copies[0],
    ).toMatchObject({
      hasWork: false,
      outcome: 'failed',
    });
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

describe('planCopies: how far each destination region is behind', () => {
  const HOURS_36 = 36;

  it.each([0, 1])(
    'crosses 36 hours at RETENTION_DAYS %i when nothing was ever copied, however the sources age',
    (retentionDays) => {
      // Prepare: daily snapshots, the oldest 40 hours old; nothing ever reached the DR region
      const sources = [
        source('a-40h', { originalCreated: new Date(NOW.getTime() - 40 * HOUR) }),
        source('a-16h', { originalCreated: new Date(NOW.getTime() - 16 * HOUR) }),
      ];

      // Act
      const p = plan({ sources, destinations: { [DST]: [] } }, { retentionDays });

      // Assess
      expect(p.lag[DST]).toEqual({
        database: 'instance:orders',
        basis: 'source',
        arn: srcArn('a-40h'),
        since: '2026-11-21T12:00:00Z',
        hours: 40,
      });
      expect(p.lag[DST]?.hours).toBeGreaterThan(HOURS_36);
    },
  );

  it('measures from the newest available copy, not from one still copying, and counts the worst database per region', () => {
    const p = planCopies(
      {
        mode: 'sweep',
        sources: [
          source('a-mon', { originalCreated: daysAgo(3), dbId: 'a' }),
          source('a-tue', { originalCreated: daysAgo(2), dbId: 'a' }),
          source('b-tue', { originalCreated: daysAgo(2), dbId: 'b' }),
        ],
        siblings: [],
        missing: [],
        regions: [DST, 'us-east-1'],
        destinations: {
          [DST]: [
            copyOf('a-mon', 3, { dbId: 'a' }),
            copyOf('a-tue', 2, { dbId: 'a', status: 'copying' }),
            copyOf('b-tue', 2, { dbId: 'b' }),
          ],
          'us-east-1': [],
        },
        databases: {},
      },
      { sourceRegion: SRC, retentionDays: 7, kmsKeys: {}, optionGroups: {}, sourceTags: [], now: NOW },
    );

    expect(p.lag).toEqual({
      [DST]: {
        database: 'instance:a',
        basis: 'copy',
        arn: dstArn('a-mon'),
        since: '2026-11-20T04:00:00Z',
        hours: 72,
      },
      'us-east-1': {
        database: 'instance:a',
        basis: 'source',
        arn: srcArn('a-mon'),
        since: '2026-11-20T04:00:00Z',
        hours: 72,
      },
    });
  });

  it('keeps growing while copies stop, after the sources it could measure from are gone', () => {
    // Prepare: BackupRetentionPeriod 1 keeps one automated snapshot; the last copy is 5 days old
    const today = source('rds:orders-today', {
      type: 'automated',
      originalCreated: new Date(NOW.getTime() - 3 * HOUR),
    });

    // Act
    const p = plan({ sources: [today], destinations: { [DST]: [copyOf('orders-5d', 5)] } });

    // Assess
    expect(p.lag[DST]).toMatchObject({ basis: 'copy', hours: 120 });
  });

  it('is 0 for a database whose newest snapshot is copied, however old: stopped, deleted, or snapshotted weekly', () => {
    // Prepare: a deleted database's final snapshot, copied 200 days ago; a weekly one copied 6 days ago
    const p = plan({
      sources: [
        source('final', { originalCreated: daysAgo(200), dbId: 'retired', type: 'manual' }),
        source('weekly', { originalCreated: daysAgo(6), dbId: 'reports' }),
        source('weekly-before', { originalCreated: daysAgo(13), dbId: 'reports' }),
      ],
      destinations: {
        [DST]: [copyOf('final', 200, { dbId: 'retired' }), copyOf('weekly', 6, { dbId: 'reports' })],
      },
    });

    expect(p.lag[DST]).toEqual({
      database: 'instance:retired',
      basis: 'current',
      arn: dstArn('final'),
      since: '2026-05-07T04:00:00Z',
      hours: 0,
    });
  });

  it('measures a database that never had a copy from its creation when that is earlier than its snapshots', () => {
    // Prepare: BackupRetentionPeriod 1: only today's automated snapshot exists; the database is 10 days old
    const today = source('rds:orders-today', {
      type: 'automated',
      originalCreated: new Date(NOW.getTime() - 3 * HOUR),
    });

    // Act
    const p = plan({
      sources: [today],
      databases: { 'instance:orders': { tags: {}, created: daysAgo(10) } },
    });

    // Assess
    expect(p.lag[DST]).toEqual({
      database: 'instance:orders',
      basis: 'database',
      since: '2026-11-13T04:00:00Z',
      hours: 240,
    });
  });

  it('measures only the databases this deployment copies, and is null where there are none', () => {
    const p = plan(
      {
        sources: [
          source('dev-a', { originalCreated: daysAgo(1), dbId: 'dev' }),
          source('prod-a', { originalCreated: daysAgo(30), dbId: 'prod' }),
          source('backup', { originalCreated: daysAgo(30), dbId: 'dev', type: 'awsbackup' }),
        ],
        databases: { 'instance:dev': { tags: { env: 'dev' } }, 'instance:prod': { tags: { env: 'prod' } } },
      },
      { sourceTags: [{ key: 'env', value: 'dev' }] },
    );

    expect(p.lag[DST]).toMatchObject({ database: 'instance:dev', hours: 24 });
    expect(plan({ sources: [] }).lag).toEqual({ [DST]: null });
    expect(plan({ mode: 'event', sources: [source('a')] }).lag).toEqual({});
  });
});

describe('planCopies: marks are transient', () => {
  it('removes the marks from a source once every target region has an available copy of it', () => {
    // Prepare: two target regions; a is copied to both, b to one, c is still copying into one
    const regions = [DST, 'us-east-1'];
    const inVirginia = (s: Snapshot) => ({ ...s, arn: s.arn.replace(DST, 'us-east-1') });
    const p = plan({
      regions,
      sources: [marked('a', { dbId: 'a' }), marked('b', { dbId: 'b' }), marked('c', { dbId: 'c' })],
      destinations: {
        [DST]: [copyOf('a', 0, { dbId: 'a' }), copyOf('b', 0, { dbId: 'b' }), copyOf('c', 0, { dbId: 'c' })],
        'us-east-1': [
          inVirginia(copyOf('a', 0, { dbId: 'a' })),
          inVirginia(copyOf('c', 0, { dbId: 'c', status: 'copying' })),
        ],
      },
    });

    expect(p.unmarks).toEqual([
      expect.objectContaining({
        arn: srcArn('a'),
        hasWork: true,
        keys: ['nightshift:copy-source', 'nightshift:source-time'],
        detail:
          "remove nightshift:copy-source, nightshift:source-time from a: it has an available copy in every target region (eu-west-1, us-east-1); copies people make of it later are then never taken for nightshift's",
      }),
    ]);
    expect(p.copies.filter((w) => w.hasWork).map((w) => w.arn)).toEqual([
      'arn:aws:rds:us-east-1:123456789012:snapshot:b',
    ]);
  });

  it('keeps the mark of a source whose copy keeps failing', () => {
    const p = plan({
      sources: [marked('a')],
      destinations: { [DST]: [copyOf('a', 0, { status: 'failed' })] },
    });

    expect(p.unmarks).toEqual([]);
  });

  it('removes the marks of a source that is not copied again, and the legacy key from every source it copies', () => {
    // Prepare: an old marked source that is not its database's newest; two sources an earlier version marked
    const legacyTags = (id: string) => ({
      'nightshift:source-arn': srcArn(id),
      'nightshift:source-time': 'x',
    });
    const p = plan({
      sources: [
        marked('old', { originalCreated: daysAgo(9) }),
        source('new', { originalCreated: daysAgo(1) }),
        source('legacy-waiting', { tags: legacyTags('legacy-waiting'), dbId: 'b', status: 'creating' }),
        source('legacy-copied', { tags: legacyTags('legacy-copied'), dbId: 'c' }),
      ],
      destinations: { [DST]: [legacyCopyOf('legacy-copied', 0, { dbId: 'c' })] },
    });

    expect(p.unmarks.map((w) => [w.arn.split(':').pop(), w.keys])).toEqual([
      ['old', ['nightshift:copy-source', 'nightshift:source-time']],
      ['legacy-waiting', ['nightshift:source-arn']],
      ['legacy-copied', ['nightshift:source-time', 'nightshift:source-arn']],
    ]);
    expect(p.unmarks[1]?.detail).toBe(
      'remove the legacy nightshift:source-arn from legacy-waiting: earlier nightshift versions take any snapshot carrying it for one of their copies; it is marked with nightshift:copy-source when it is copied',
    );
  });

  it('never touches the marks of sources another stage copies, nor nightshift copies in the source region, nor outside a sweep', () => {
    const p = plan(
      {
        sources: [
          marked('prod-a', { dbId: 'prod' }),
          {
            ...legacyCopyOf('virginia', 0),
            arn: srcArn('virginia'),
            copiedFrom: 'arn:aws:rds:us-east-1:123456789012:snapshot:virginia',
            sourceArn: 'arn:aws:rds:us-east-1:123456789012:snapshot:virginia',
            tags: { 'nightshift:source-arn': 'arn:aws:rds:us-east-1:123456789012:snapshot:virginia' },
          },
        ],
        destinations: { [DST]: [copyOf('prod-a', 0, { dbId: 'prod' })] },
        databases: { 'instance:prod': { tags: { env: 'prod' } } },
      },
      { sourceTags: [{ key: 'env', value: 'dev' }] },
    );
    const event = plan({
      mode: 'event',
      sources: [marked('a')],
      destinations: { [DST]: [copyOf('a', 0)] },
    });

    expect(p.unmarks).toEqual([]);
    expect(event.unmarks).toEqual([]);
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
      'carries nightshift:copy-source but is not a copy this deployment made: RDS records no source for it (no SourceDBSnapshotIdentifier): it was not copied across Regions; never pruned',
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
      tags: { 'nightshift:copy-source': srcClusterArn('billing-mon') },
      dbId: 'billing',
    };
    const kept = {
      ...ours,
      id: 'billing-tue',
      arn: dstClusterArn('billing-tue'),
      copiedFrom: srcClusterArn('billing-tue'),
      sourceArn: srcClusterArn('billing-tue'),
      tags: { 'nightshift:copy-source': srcClusterArn('billing-tue') },
      created: daysAgo(9),
    };
    const audit = { ...ours, id: 'billing-audit', arn: dstClusterArn('billing-audit'), copiedFrom: ours.arn };

    const p = plan({ destinations: { [DST]: [ours, kept, audit] } });

    expect(summary(p)).toEqual(['billing-mon work', 'billing-audit skipped']);
    expect(p.prunes[1]?.detail).toMatch(
      /RDS says it was copied from arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:billing-mon, not from arn:aws:rds:eu-central-1:123456789012:cluster-snapshot:billing-mon as its nightshift:copy-source tag claims/,
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
            tags: { 'nightshift:copy-source': virginia },
          },
        ],
      },
    });

    expect(p.prunes).toMatchObject([
      {
        arn: 'arn:aws:rds:eu-west-1:123456789012:snapshot:*',
        outcome: 'skipped',
        detail:
          "1 snapshots in eu-west-1 carry a nightshift marker but are not this deployment's to prune: they are nightshift copies of snapshots in another Region or account, pruned by the deployment there (mon); never pruned here",
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
          "25 snapshots in eu-west-1 carry a nightshift marker but are not this deployment's to prune: RDS records no copy source for them (snapshots of a database restored from a copy, copies made inside the region) (restored-0, restored-1, restored-2, restored-3, restored-4, …); never pruned here",
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
      tags: { 'nightshift:copy-source': srcClusterArn(id), 'nightshift:source-time': sourceTime },
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

  it('prunes copies earlier versions made (nightshift:source-arn) by the same rule', () => {
    const p = plan({
      destinations: {
        [DST]: [
          legacyCopyOf('mon', 10),
          legacyCopyOf('tue', 9),
          { ...legacyCopyOf('wed', 8), id: 'audit-wed', arn: dstArn('audit-wed') },
        ],
      },
    });

    expect(summary(p)).toEqual(['mon work', 'audit-wed skipped']);
    expect(p.prunes[1]?.detail).toBe(
      `carries nightshift:source-arn but is not a copy this deployment made: its identifier is not wed, the one nightshift derives from ${srcArn('wed')}; never pruned`,
    );
  });

  it('recognises its copy whatever the case RDS recorded its source or identifier in', () => {
    // Prepare: the copy was asked with a mixed-case source ARN, which RDS keeps as given
    const upper = (id: string) => `arn:aws:rds:${SRC}:123456789012:snapshot:${id.toUpperCase()}`;
    const p = plan({
      sources: [source('tue', { originalCreated: daysAgo(9) })],
      destinations: {
        [DST]: [
          copyOf('mon', 10, { copiedFrom: upper('mon') }),
          copyOf('tue', 9, { copiedFrom: upper('tue'), id: 'TUE' }),
        ],
      },
    });

    expect(summary(p)).toEqual(['tue unchanged', 'mon work']);
    expect(p.copies[0]?.detail).toBe('already copied to eu-west-1 as TUE (available)');
  });

  it("counts, never lists, another deployment's marked sources and copies, however few", () => {
    // Prepare: the deployment in eu-west-1 marks its own production snapshots there for its copies
    const theirs = (id: string) => ({
      ...marked(id),
      arn: dstArn(id),
      sourceArn: dstArn(id),
      tags: { 'nightshift:copy-source': dstArn(id) },
    });

    const p = plan({ destinations: { [DST]: [theirs('ledger-a'), theirs('ledger-b')] } });

    expect(p.prunes).toEqual([
      expect.objectContaining({
        arn: 'arn:aws:rds:eu-west-1:123456789012:snapshot:*',
        hasWork: false,
        outcome: 'skipped',
        detail:
          "2 snapshots in eu-west-1 carry a nightshift marker but are not this deployment's to prune: they are source snapshots the nightshift deployment of eu-west-1 marked for its own copies (their marker names themselves) (ledger-a, ledger-b); never pruned here",
      }),
    ]);
  });

  describe('with SOURCE_TAGS: only copies of the databases this stage copies', () => {
    const env = (value: string) => ({ tags: { env: value } });
    const devOnly = { sourceTags: [{ key: 'env', value: 'dev' }], retentionDays: 7 };

    it("never prunes another stage's copies, nor copies of databases that no longer exist, and counts both", () => {
      // Prepare: prod's database copied by prod; a database deleted since its copies were made
      const p = plan(
        {
          destinations: {
            [DST]: [
              copyOf('dev-mon', 10, { dbId: 'dev' }),
              copyOf('dev-tue', 9, { dbId: 'dev' }),
              copyOf('prod-mon', 10, { dbId: 'prod' }),
              copyOf('prod-tue', 9, { dbId: 'prod' }),
              copyOf('gone-mon', 10, { dbId: 'gone' }),
              copyOf('gone-tue', 9, { dbId: 'gone', status: 'failed' }),
            ],
          },
          databases: { 'instance:dev': env('dev'), 'instance:prod': env('prod') },
        },
        devOnly,
      );

      // Assess
      expect(p.prunes.filter((w) => w.hasWork).map((w) => w.id)).toEqual(['dev-mon']);
      expect(p.prunes.filter((w) => !w.hasWork).map((w) => w.detail)).toEqual([
        "2 snapshots in eu-west-1 carry a nightshift marker but are not this deployment's to prune: they are nightshift copies of databases that do not carry SOURCE_TAGS env=dev, copied and pruned by another stage (prod-mon, prod-tue); never pruned here",
        "2 snapshots in eu-west-1 carry a nightshift marker but are not this deployment's to prune: they are nightshift copies of databases that no longer exist in eu-central-1: with SOURCE_TAGS set, nothing says which stage they belong to, so they are kept; delete them by hand when they are no longer needed (gone-mon, gone-tue); never pruned here",
      ]);
    });

    it('still prunes copies of deleted databases without SOURCE_TAGS', () => {
      const p = plan({
        destinations: {
          [DST]: [copyOf('gone-mon', 10, { dbId: 'gone' }), copyOf('gone-tue', 9, { dbId: 'gone' })],
        },
      });

      expect(p.prunes.map((w) => w.id)).toEqual(['gone-mon']);
    });
  });

  it('prunes nothing outside a sweep', () => {
    expect(
      plan({ mode: 'event', destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9)] } }).prunes,
    ).toEqual([]);
  });
});

describe('planCopies: scale', () => {
  /**
   * An array that counts how many times its elements are read (by index, iteration, filter, find…): a
   * plan that looks up each source's copy by scanning a region reads sources × copies elements.
   */
  const counted = <T>(items: T[], reads: { n: number }): T[] =>
    new Proxy(items, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads.n += 1;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });

  it('plans a sweep over thousands of sources and copies in two regions reading each snapshot a few times, not once per pair', () => {
    // Prepare: 3,000 daily snapshots of 300 databases, each copied to two regions (copies 3,000 each),
    // half the sources still marked, and 300 snapshots a person copied with the tags
    const N = 3000;
    const US = 'us-east-1';
    const sources = Array.from({ length: N }, (_, i) =>
      (i % 2 ? marked : source)(`s-${i}`, { dbId: `db-${i % 300}`, originalCreated: daysAgo(i % 7) }),
    );
    const copiesIn = (region: string) =>
      sources.map((s) => {
        const c = copyOf(s.id, 0, { dbId: s.dbId, originalCreated: s.originalCreated });
        return { ...c, arn: c.arn.replace(DST, region) };
      });
    const strays = Array.from({ length: 300 }, (_, i) =>
      copyOf(`s-${i}`, 1, { id: `audit-${i}`, arn: dstArn(`audit-${i}`), copiedFrom: dstArn(`s-${i}`) }),
    );
    const reads = { n: 0 };

    // Act
    const p = planCopies(
      {
        mode: 'sweep',
        sources: counted(sources, reads),
        siblings: [],
        missing: [],
        regions: [DST, US],
        destinations: {
          [DST]: counted([...copiesIn(DST), ...strays], reads),
          [US]: counted(copiesIn(US), reads),
        },
        databases: {},
      },
      { sourceRegion: SRC, retentionDays: 7, kmsKeys: {}, optionGroups: {}, sourceTags: [], now: NOW },
    );

    // Assess: every source is found copied in both regions, the strays counted in one row, the marks of the copied sources removed; and every snapshot was read a bounded number of times
    expect(p.copies.filter((w) => w.hasWork)).toEqual([]);
    expect(p.copies.filter((w) => w.outcome === 'unchanged')).toHaveLength(2 * N);
    expect(p.unmarks).toHaveLength(N / 2);
    expect(p.prunes.filter((w) => w.outcome === 'skipped')).toHaveLength(1);
    const snapshots = N + 2 * N + strays.length;
    expect(reads.n).toBeLessThan(20 * snapshots);
  });
});
