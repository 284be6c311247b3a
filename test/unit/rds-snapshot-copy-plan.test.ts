import { describe, expect, it } from 'vitest';
import { planCopies, targetIdentifier, type CopyPlanInput } from '#functions/rds-snapshot-copy/plan.ts';
import type { Snapshot } from '#functions/rds-snapshot-copy/inventory.ts';

const NOW = new Date('2026-11-23T04:00:00Z');
const DAY = 86_400_000;
const SRC = 'eu-central-1';
const DST = 'eu-west-1';
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);
const srcArn = (id: string) => `arn:aws:rds:${SRC}:123456789012:snapshot:${id}`;
const dstArn = (id: string) => `arn:aws:rds:${DST}:123456789012:snapshot:${id}`;

const source = (id: string, extra: Partial<Snapshot> = {}): Snapshot => ({
  arn: srcArn(id),
  id,
  kind: 'instance',
  type: 'manual',
  status: 'available',
  encrypted: false,
  created: daysAgo(0),
  dbId: 'orders',
  tags: {},
  ...extra,
});
const copyOf = (id: string, days: number, extra: Partial<Snapshot> = {}): Snapshot => ({
  ...source(id),
  arn: dstArn(id),
  created: daysAgo(days),
  sourceArn: srcArn(id),
  tags: { 'nightshift:source-arn': srcArn(id) },
  ...extra,
});

const plan = (
  input: Partial<CopyPlanInput>,
  opts: { retentionDays?: number; kmsKeys?: Record<string, string> } = {},
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
      sourceTags: [],
      now: NOW,
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
    [`rds:${'a'.repeat(300)}`, 'a'.repeat(255)],
  ])('derives %s → %s', (from, to) => {
    expect(targetIdentifier(from)).toBe(to);
    expect(to).toMatch(/^[A-Za-z](?:-?[A-Za-z0-9])*$/);
  });
});

describe('planCopies: what to copy', () => {
  it('copies a source with its tags, minus aws: keys, plus the source ARN, and names the KMS key', () => {
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
      tags: [
        { Key: 'team', Value: 'shop' },
        { Key: 'nightshift:source-arn', Value: srcArn('orders-a') },
        { Key: 'nightshift:source-time', Value: '2026-11-23T04:00:00Z' },
      ],
      detail: 'copy orders-a to eu-west-1 as orders-a with 3 tags, encrypted with KMS key alias/copies',
    });
  });

  it('keeps within the 50-tag limit, in key order, and says which tags were left out', () => {
    const tags = Object.fromEntries(
      Array.from({ length: 52 }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v']),
    );

    const work = plan({ sources: [source('orders-a', { tags })] }).copies[0];

    expect(work?.tags).toHaveLength(50);
    expect(work?.tags.at(-3)).toEqual({ Key: 'k47', Value: 'v' });
    expect(work?.detail).toMatch(/tags left out \(50-tag limit\): k48, k49, k50, k51$/);
  });

  it('passes by copies, foreign snapshot types and the source region quietly in a sweep', () => {
    const p = plan({
      sources: [
        source('imported', { sourceArn: 'arn:aws:rds:us-east-1:123456789012:snapshot:x' }),
        source('backup', { type: 'awsbackup' }),
      ],
    });

    expect(p.copies).toEqual([]);
  });

  it('says why in an on-demand copy of a nightshift copy', () => {
    const p = plan({
      mode: 'copy',
      sources: [source('imported', { sourceArn: 'arn:aws:rds:us-east-1:1:snapshot:x' })],
    });

    expect(p.copies[0]).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        'is itself a nightshift copy of arn:aws:rds:us-east-1:1:snapshot:x; copies are never copied again',
    });
  });

  it('does not copy an old source that is not its database newest, but copies the newest however old', () => {
    const p = plan({
      sources: [
        source('old', { created: daysAgo(9) }),
        source('recent', { created: daysAgo(1) }),
        source('billing-only', { created: daysAgo(8), dbId: 'billing' }),
      ],
    });

    expect(summary(p)).toEqual(['recent work', 'billing-only work']);
  });

  it('copies an old snapshot an operator asks for, warning that the next sweep prunes it', () => {
    const p = plan({
      mode: 'copy',
      sources: [source('old', { created: daysAgo(9) })],
      siblings: [source('new', { created: daysAgo(1) })],
    });

    expect(p.copies[0]?.detail).toMatch(
      /note: 9 days old, the next sweep prunes the copy \(RETENTION_DAYS 7\)$/,
    );
  });

  it('refuses a target identifier held by a snapshot that is not its copy, and skips snapshots not yet available', () => {
    const p = plan({
      mode: 'copy',
      sources: [source('orders-a'), source('orders-b', { status: 'creating' })],
      destinations: { [DST]: [{ ...source('orders-a'), arn: dstArn('orders-a') }] },
    });

    expect(p.copies.map((w) => [w.outcome, w.detail])).toEqual([
      [
        'failed',
        'identifier orders-a in eu-west-1 is taken by a snapshot that is not a nightshift copy of this source; nothing attempted',
      ],
      ['skipped', 'not available yet (creating); the next sweep copies it'],
    ]);
  });

  it('reports a missing snapshot as failed on demand and skipped for an event', () => {
    const failed = plan({ mode: 'copy', missing: [srcArn('gone')] });
    const skipped = plan({ mode: 'event', missing: [srcArn('gone')] });

    expect(failed.copies[0]).toMatchObject({ outcome: 'failed', hasWork: false });
    expect(skipped.copies[0]).toMatchObject({ outcome: 'skipped', hasWork: false });
  });
});

describe('planCopies: pruning', () => {
  it('deletes copies past retention but keeps the newest of each database', () => {
    const p = plan({ destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9), copyOf('wed', 8)] } });

    expect(p.prunes.map((w) => w.id)).toEqual(['mon', 'tue']);
    expect(p.prunes[0]?.detail).toBe(
      `delete copy mon in eu-west-1 (of ${srcArn('mon')}, taken 2026-11-13): 10 days old, past RETENTION_DAYS 7; newest copy wed kept`,
    );
  });

  it('keeps the newest available copy while a newer one is still copying', () => {
    const p = plan({
      destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9), copyOf('wed', 8, { status: 'copying' })] },
    });

    expect(p.prunes.map((w) => w.id)).toEqual(['mon']);
  });

  it('never considers snapshots without the nightshift tag, and keeps one copy per database at RETENTION_DAYS 0', () => {
    const p = plan(
      {
        destinations: {
          [DST]: [
            copyOf('a1', 3),
            copyOf('a2', 2),
            copyOf('b1', 5, { dbId: 'billing' }),
            { ...source('manual-keep', { created: daysAgo(90) }), arn: dstArn('manual-keep') },
          ],
        },
      },
      { retentionDays: 0 },
    );

    expect(p.prunes.map((w) => w.id)).toEqual(['a1']);
  });

  it('ages and orders copies by the source time they carry, not by when they were copied', () => {
    // tue's copy was made late (e.g. left for a later sweep at the in-flight limit): by copy time it
    // would look newer than wed's and wed's copy would be pruned.
    const p = plan({
      destinations: {
        [DST]: [
          copyOf('tue', 1, {
            tags: {
              'nightshift:source-arn': srcArn('tue'),
              'nightshift:source-time': '2026-11-13T04:00:00Z',
            },
          }),
          copyOf('wed', 2, {
            tags: {
              'nightshift:source-arn': srcArn('wed'),
              'nightshift:source-time': '2026-11-14T04:00:00Z',
            },
          }),
        ].map((c) => ({ ...c, created: new Date(c.tags['nightshift:source-time'] ?? '') })),
      },
    });

    expect(p.prunes.map((w) => w.id)).toEqual(['tue']);
  });

  it('prunes nothing outside a sweep', () => {
    expect(
      plan({ mode: 'event', destinations: { [DST]: [copyOf('mon', 10), copyOf('tue', 9)] } }).prunes,
    ).toEqual([]);
  });
});
