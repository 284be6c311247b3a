/**
 * What moto 5.2.1 cannot show: copying an automated snapshot by its ARN (moto mis-parses the `rds:`
 * in the name), the in-flight copy limits (moto enforces none), and AWS refusing a copy mid-run.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { run, type Deps } from '#functions/rds-snapshot-copy/handler.ts';
import { CopyConfig } from '#functions/rds-snapshot-copy/config.ts';
import { parseEnv } from '#shared/env.ts';
import { runContext } from '#test/support/context.ts';

const SOURCE = 'eu-central-1';
const TARGET = 'eu-west-1';
const NOW = new Date('2026-11-23T04:00:00Z');
const ctx = runContext();

const source = new RDSClient({ region: SOURCE });
const target = new RDSClient({ region: TARGET });
const src = mockClient(source);
const dst = mockClient(target);

const deps = (env: Record<string, string> = {}): Deps => ({
  clientFor: (region) => (region === TARGET ? target : source),
  config: parseEnv(CopyConfig, { AWS_REGION: SOURCE, TARGET_REGIONS: TARGET, ...env }),
  now: () => NOW,
});

const snap = (id: string, extra: Partial<DBSnapshot> = {}): DBSnapshot => ({
  DBSnapshotIdentifier: id,
  DBSnapshotArn: `arn:aws:rds:${SOURCE}:123456789012:snapshot:${id}`,
  DBInstanceIdentifier: 'orders',
  SnapshotType: 'manual',
  Status: 'available',
  Encrypted: false,
  SnapshotCreateTime: new Date('2026-11-23T03:24:00Z'),
  TagList: [{ Key: 'team', Value: 'shop' }],
  ...extra,
});

const automatedEvent = {
  version: '0',
  id: '844e2571-85d4-695f-b930-0153b71dcb42',
  'detail-type': 'RDS DB Snapshot Event',
  source: 'aws.rds',
  region: SOURCE,
  detail: {
    SourceArn: `arn:aws:rds:${SOURCE}:123456789012:snapshot:rds:orders-2026-11-23-03-24`,
    SourceIdentifier: 'rds:orders-2026-11-23-03-24',
    EventID: 'RDS-EVENT-0091',
  },
};

describe('rds-snapshot-copy with simulated RDS', () => {
  beforeEach(() => {
    src.reset();
    dst.reset();
    src.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
    dst.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
    dst.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] });
  });

  it('copies an automated snapshot by its ARN, naming the copy without the rds: prefix', async () => {
    // Prepare
    const automated = snap('rds:orders-2026-11-23-03-24', { SnapshotType: 'automated' });
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [automated] });
    dst.on(CopyDBSnapshotCommand).resolves({});

    // Act
    const report = await run({ action: 'event', event: automatedEvent as never }, ctx, deps());

    // Assess
    expect(dst.commandCalls(CopyDBSnapshotCommand).map((c) => c.args[0].input)).toEqual([
      {
        SourceDBSnapshotIdentifier: automated.DBSnapshotArn,
        TargetDBSnapshotIdentifier: 'orders-2026-11-23-03-24',
        SourceRegion: SOURCE,
        Tags: [
          { Key: 'team', Value: 'shop' },
          { Key: 'nightshift:source-arn', Value: automated.DBSnapshotArn },
          { Key: 'nightshift:source-time', Value: '2026-11-23T03:24:00Z' },
        ],
      },
    ]);
    expect(src.commandCalls(DescribeDBSnapshotsCommand)[0]?.args[0].input).toEqual({
      DBSnapshotIdentifier: 'rds:orders-2026-11-23-03-24',
    });
    expect(report.resources[0]).toMatchObject({
      arn: `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-2026-11-23-03-24`,
      outcome: 'changed',
    });
  });

  it('never sleeps at the in-flight limit: starts what fits and leaves the rest for the next sweep', async () => {
    // Prepare: 18 instance-snapshot copies already in flight in the target region, 4 new snapshots
    dst.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: Array.from({ length: 18 }, (_, i) =>
        snap(`other-${i}`, {
          DBSnapshotArn: `arn:aws:rds:${TARGET}:123456789012:snapshot:other-${i}`,
          Status: 'copying',
          TagList: [
            { Key: 'nightshift:source-arn', Value: `arn:aws:rds:${SOURCE}:123456789012:snapshot:o-${i}` },
          ],
        }),
      ),
    });
    src.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: ['a', 'b', 'c', 'd'].map((id, i) =>
        snap(`orders-${id}`, { SnapshotCreateTime: new Date(NOW.getTime() - (i + 1) * 3_600_000) }),
      ),
    });
    dst.on(CopyDBSnapshotCommand).resolves({});
    const started = Date.now();

    // Act
    const report = await run({ action: 'sweep' }, ctx, deps());

    // Assess: the two newest go now
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(
      dst.commandCalls(CopyDBSnapshotCommand).map((c) => c.args[0].input.TargetDBSnapshotIdentifier),
    ).toEqual(['orders-a', 'orders-b']);
    expect(report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`)).toEqual([
      'orders-a changed',
      'orders-b changed',
      'orders-c skipped',
      'orders-d skipped',
    ]);
    expect(report.resources[2]?.detail).toBe(
      'in-flight copy limit reached in eu-west-1 (20 instance-snapshot copies); left for the next sweep',
    );
  });

  it('holds cluster-snapshot copies to 5 in flight', async () => {
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] });
    src.on(DescribeDBClusterSnapshotsCommand).resolves({
      DBClusterSnapshots: Array.from({ length: 7 }, (_, i) => ({
        DBClusterSnapshotIdentifier: `billing-${i}`,
        DBClusterSnapshotArn: `arn:aws:rds:${SOURCE}:123456789012:cluster-snapshot:billing-${i}`,
        DBClusterIdentifier: `billing-${i}`,
        SnapshotType: 'manual',
        Status: 'available',
        SnapshotCreateTime: NOW,
      })),
    });
    dst.on(CopyDBClusterSnapshotCommand).resolves({});

    const report = await run({ action: 'sweep' }, ctx, deps());

    expect(dst.commandCalls(CopyDBClusterSnapshotCommand)).toHaveLength(5);
    expect(report.summary).toMatchObject({ changed: 5, skipped: 2 });
  });

  it('counts "already exists" as done when the existing copy is ours, and as failed when it is not', async () => {
    // Prepare: both copies raced with another run; only the first target is a nightshift copy of its source
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a'), snap('orders-b')] });
    dst
      .on(CopyDBSnapshotCommand)
      .rejects(Object.assign(new Error('exists'), { name: 'DBSnapshotAlreadyExistsFault' }));
    dst
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'orders-a' })
      .resolves({
        DBSnapshots: [
          snap('orders-a', {
            Status: 'copying',
            TagList: [{ Key: 'nightshift:source-arn', Value: snap('orders-a').DBSnapshotArn ?? '' }],
          }),
        ],
      })
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'orders-b' })
      .resolves({ DBSnapshots: [snap('orders-b', { TagList: [] })] });

    const report = await run({ action: 'sweep' }, ctx, deps());

    expect(report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`)).toEqual([
      'orders-a unchanged',
      'orders-b failed',
    ]);
    expect(report.resources[1]?.error).toMatch(
      /^orders-b already exists in eu-west-1 and is not a nightshift copy/,
    );
  });

  it('leaves a copy AWS refuses for quota for the next sweep instead of failing the run', async () => {
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a')] });
    dst.on(CopyDBSnapshotCommand).rejects(
      Object.assign(new Error('too many snapshot copies in progress'), {
        name: 'SnapshotQuotaExceededFault',
      }),
    );

    const report = await run({ action: 'sweep' }, ctx, deps());

    expect(report.resources[0]).toMatchObject({ outcome: 'skipped' });
    expect(report.resources[0]?.detail).toMatch(/left for the next sweep$/);
  });
});
