/**
 * What moto 5.2.1 cannot show: copying an automated snapshot by its ARN (moto mis-parses the `rds:`
 * in the name), the in-flight copy limits and the snapshot quota (moto enforces neither, and has no
 * DescribeAccountAttributes), RDS's real SnapshotQuotaExceeded messages, pages of 100 with a Marker
 * (moto answers every Describe in one page), option groups on snapshots, and AWS refusing mid-run.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AddTagsToResourceCommand,
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeAccountAttributesCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  type DBClusterSnapshot,
  type DBInstance,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { run, type Deps } from '#functions/rds-snapshot-copy/handler.ts';
import { CopyConfig } from '#functions/rds-snapshot-copy/config.ts';
import { SERVICE } from '#functions/rds-snapshot-copy/metrics.ts';
import { parseCopyInput } from '#events/rds-snapshot-copy/schema.ts';
import { parseEnv } from '#shared/env.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { NOT_STARTED } from '#shared/execute.ts';
import { withOps } from '#shared/handler.ts';
import { MAX_REPORT_BYTES, UNCHANGED_LISTED } from '#shared/report.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';

const SOURCE = 'eu-central-1';
const TARGET = 'eu-west-1';
const ACCOUNT = '123456789012';
const NOW = new Date('2026-11-23T04:00:00Z');
const HOUR = 3_600_000;
const ctx = runContext();

const source = new RDSClient({ region: SOURCE });
const target = new RDSClient({ region: TARGET });
const src = mockClient(source);
const dst = mockClient(target);

const deps = (env: Record<string, string> = {}, recorded: unknown[] = []): Deps => ({
  clientFor: (region) => (region === TARGET ? target : source),
  config: parseEnv(CopyConfig, { AWS_REGION: SOURCE, TARGET_REGIONS: TARGET, ...env }),
  now: () => NOW,
  recordLag: (r) => recorded.push(r),
});
const deployed = (d: Deps) => withOps(SERVICE, parseCopyInput, (input, c) => run(input, c, d));

const srcArn = (id: string) => `arn:aws:rds:${SOURCE}:${ACCOUNT}:snapshot:${id}`;
const dstArn = (id: string) => `arn:aws:rds:${TARGET}:${ACCOUNT}:snapshot:${id}`;
const snap = (id: string, extra: Partial<DBSnapshot> = {}): DBSnapshot => ({
  DBSnapshotIdentifier: id,
  DBSnapshotArn: srcArn(id),
  DBInstanceIdentifier: 'orders',
  SnapshotType: 'manual',
  Status: 'available',
  Encrypted: false,
  SnapshotCreateTime: new Date('2026-11-23T03:24:00Z'),
  OriginalSnapshotCreateTime: new Date('2026-11-23T03:24:00Z'),
  TagList: [{ Key: 'team', Value: 'shop' }],
  ...extra,
});
/** nightshift's copy of `id` as RDS describes it in the target region. */
const copyOf = (id: string, extra: Partial<DBSnapshot> = {}): DBSnapshot =>
  snap(id, {
    DBSnapshotArn: dstArn(id),
    SourceDBSnapshotIdentifier: srcArn(id),
    TagList: [{ Key: 'nightshift:copy-source', Value: srcArn(id) }],
    ...extra,
  });
const clusterSnap = (id: string, extra: Partial<DBClusterSnapshot> = {}): DBClusterSnapshot => ({
  DBClusterSnapshotIdentifier: id,
  DBClusterSnapshotArn: `arn:aws:rds:${SOURCE}:${ACCOUNT}:cluster-snapshot:${id}`,
  DBClusterIdentifier: id,
  SnapshotType: 'manual',
  Status: 'available',
  SnapshotCreateTime: NOW,
  ...extra,
});
const awsError = (name: string, message: string) => Object.assign(new Error(message), { name });
const rows = (report: { resources: { arn: string; outcome: string }[] }) =>
  report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`);

/** Serves `items` in pages of at most MaxRecords (RDS: 20 to 100) with a Marker, as RDS does. */
const paged =
  <T>(items: T[], key: 'DBSnapshots' | 'DBClusterSnapshots' | 'DBInstances', served: { pages: number }) =>
  (input: { MaxRecords?: number; Marker?: string }) => {
    const size = input.MaxRecords ?? 100;
    const start = Number(input.Marker ?? 0);
    served.pages += 1;
    const next = start + size;
    return { [key]: items.slice(start, next), ...(next < items.length && { Marker: String(next) }) };
  };

const automatedEvent = {
  version: '0',
  id: '844e2571-85d4-695f-b930-0153b71dcb42',
  'detail-type': 'RDS DB Snapshot Event',
  source: 'aws.rds',
  region: SOURCE,
  detail: {
    SourceArn: srcArn('rds:orders-2026-11-23-03-24'),
    SourceIdentifier: 'rds:orders-2026-11-23-03-24',
    EventID: 'RDS-EVENT-0091',
  },
};

describe('rds-snapshot-copy with simulated RDS', () => {
  beforeEach(() => {
    src.reset();
    dst.reset();
    src.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
    src.on(DescribeDBInstancesCommand).resolves({ DBInstances: [] });
    src.on(DescribeDBClustersCommand).resolves({ DBClusters: [] });
    src.on(AddTagsToResourceCommand).resolves({});
    src.on(RemoveTagsFromResourceCommand).resolves({});
    dst.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
    dst.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] });
  });

  it('marks an automated snapshot and copies it by its ARN with CopyTags, naming the copy without the rds: prefix', async () => {
    // Prepare
    const automated = snap('rds:orders-2026-11-23-03-24', { SnapshotType: 'automated' });
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [automated] });
    dst.on(CopyDBSnapshotCommand).resolves({});

    // Act
    const report = await run({ action: 'event', event: automatedEvent as never }, ctx, deps());

    // Assess
    expect(src.commandCalls(AddTagsToResourceCommand).map((c) => c.args[0].input)).toEqual([
      {
        ResourceName: automated.DBSnapshotArn,
        Tags: [
          { Key: 'nightshift:copy-source', Value: automated.DBSnapshotArn },
          { Key: 'nightshift:source-time', Value: '2026-11-23T03:24:00Z' },
        ],
      },
    ]);
    expect(dst.commandCalls(CopyDBSnapshotCommand).map((c) => c.args[0].input)).toEqual([
      {
        SourceDBSnapshotIdentifier: automated.DBSnapshotArn,
        TargetDBSnapshotIdentifier: 'orders-2026-11-23-03-24',
        SourceRegion: SOURCE,
        CopyTags: true,
      },
    ]);
    expect(dst.commandCalls(AddTagsToResourceCommand)).toEqual([]);
    expect(src.commandCalls(DescribeDBSnapshotsCommand)[0]?.args[0].input).toEqual({
      DBSnapshotIdentifier: 'rds:orders-2026-11-23-03-24',
    });
    expect(report.resources[0]).toMatchObject({ arn: dstArn('orders-2026-11-23-03-24'), outcome: 'changed' });
  });

  it('never sleeps at the in-flight limit: starts what fits and leaves the rest for the next sweep', async () => {
    // Prepare: 18 instance-snapshot copies already in flight in the target region, 4 new snapshots
    dst.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: Array.from({ length: 18 }, (_, i) => copyOf(`other-${i}`, { Status: 'copying' })),
    });
    src.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: ['a', 'b', 'c', 'd'].map((id, i) =>
        snap(`orders-${id}`, { OriginalSnapshotCreateTime: new Date(NOW.getTime() - (i + 1) * HOUR) }),
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
    expect(rows(report)).toEqual([
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
      DBClusterSnapshots: Array.from({ length: 7 }, (_, i) => clusterSnap(`billing-${i}`)),
    });
    dst.on(CopyDBClusterSnapshotCommand).resolves({});

    const report = await run({ action: 'sweep' }, ctx, deps());

    expect(dst.commandCalls(CopyDBClusterSnapshotCommand)).toHaveLength(5);
    expect(dst.commandCalls(CopyDBClusterSnapshotCommand)[0]?.args[0].input).toMatchObject({
      CopyTags: true,
    });
    expect(report.summary).toMatchObject({ changed: 5, skipped: 2 });
  });

  it('counts "already exists" as done only when RDS says the existing snapshot is a copy of this source, not by its tag', async () => {
    // Prepare: both copies raced with another run; both targets carry the tag, only orders-a is a copy RDS made of its source
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a'), snap('orders-b')] });
    dst
      .on(CopyDBSnapshotCommand)
      .rejects(
        awsError(
          'DBSnapshotAlreadyExistsFault',
          'Cannot create the snapshot because a snapshot with the identifier orders-a already exists.',
        ),
      );
    dst
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'orders-a' })
      .resolves({ DBSnapshots: [copyOf('orders-a', { Status: 'copying' })] })
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'orders-b' })
      .resolves({ DBSnapshots: [copyOf('orders-b', { SourceDBSnapshotIdentifier: undefined })] });

    // Act
    const report = await run({ action: 'sweep' }, ctx, deps());

    // Assess
    expect(rows(report)).toEqual(['orders-a unchanged', 'orders-b failed']);
    expect(report.resources[1]?.error).toBe(
      "orders-b already exists in eu-west-1 and is not nightshift's copy of arn:aws:rds:eu-central-1:123456789012:snapshot:orders-b " +
        '(RDS records no source for it (no SourceDBSnapshotIdentifier): it was not copied across Regions): ' +
        'DBSnapshotAlreadyExistsFault: Cannot create the snapshot because a snapshot with the identifier orders-a already exists.',
    );
  });

  describe('SnapshotQuotaExceeded: the in-flight limit or the manual snapshot quota', () => {
    const quotas = (used: number, max = 100) => ({
      AccountQuotas: [
        { AccountQuotaName: 'DBInstances', Used: 3, Max: 40 },
        { AccountQuotaName: 'ManualSnapshots', Used: used, Max: max },
        { AccountQuotaName: 'ManualClusterSnapshots', Used: 7, Max: 100 },
      ],
    });

    beforeEach(() => {
      src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a')] });
    });

    it('leaves a copy refused at the in-flight limit for the next sweep, without looking at quotas', async () => {
      dst
        .on(CopyDBSnapshotCommand)
        .rejects(awsError('SnapshotQuotaExceeded', 'Cannot copy more than 20 snapshots across regions'));

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(report.resources[0]).toMatchObject({
        outcome: 'skipped',
        detail:
          "AWS's in-flight copy limit in eu-west-1 is reached; left for the next sweep (would have: copy orders-a to eu-west-1 as orders-a with its tags; first marks the source with nightshift:copy-source and nightshift:source-time, which the copy inherits)",
        error: 'SnapshotQuotaExceeded: Cannot copy more than 20 snapshots across regions',
      });
      expect(dst.commandCalls(DescribeAccountAttributesCommand)).toEqual([]);
    });

    it('fails a copy refused by the full manual snapshot quota, naming the quota and its usage in the destination region', async () => {
      dst
        .on(CopyDBSnapshotCommand)
        .rejects(awsError('SnapshotQuotaExceeded', 'Cannot create more than 100 manual snapshots'));
      dst.on(DescribeAccountAttributesCommand).resolves(quotas(100));

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        error:
          'the manual snapshot quota in eu-west-1 is full (ManualSnapshots: 100 of 100 used); copies count toward it: raise the quota (Service Quotas, Amazon RDS) or delete snapshots there; ' +
          'the source keeps its nightshift:copy-source mark until every target region has its copy; RDS said: SnapshotQuotaExceeded: Cannot create more than 100 manual snapshots',
      });
      expect(src.commandCalls(DescribeAccountAttributesCommand)).toEqual([]);
    });

    it('names ManualClusterSnapshots for a cluster snapshot copy', async () => {
      src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] });
      src.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [clusterSnap('billing-a')] });
      dst
        .on(CopyDBClusterSnapshotCommand)
        .rejects(awsError('SnapshotQuotaExceeded', 'Cannot create more than 100 manual snapshots'));
      dst.on(DescribeAccountAttributesCommand).resolves({
        AccountQuotas: [{ AccountQuotaName: 'ManualClusterSnapshots', Used: 100, Max: 100 }],
      });

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(report.resources[0]?.error).toMatch(
        /^the manual cluster snapshot quota in eu-west-1 is full \(ManualClusterSnapshots: 100 of 100 used\)/,
      );
    });

    it.each([
      { used: 42, outcome: 'skipped' },
      { used: 100, outcome: 'failed' },
    ])(
      'asks the quota usage when the message does not say which ($used of 100 used: $outcome)',
      async ({ used, outcome }) => {
        dst
          .on(CopyDBSnapshotCommand)
          .rejects(
            awsError(
              'SnapshotQuotaExceeded',
              'The request cannot be processed because it would exceed the maximum number of snapshots.',
            ),
          );
        dst.on(DescribeAccountAttributesCommand).resolves(quotas(used));

        const report = await run({ action: 'sweep' }, ctx, deps());

        expect(report.resources[0]?.outcome).toBe(outcome);
        expect(dst.commandCalls(DescribeAccountAttributesCommand).length).toBeGreaterThan(0);
      },
    );

    it('fails, saying the usage is unknown, when the quotas cannot be read', async () => {
      dst
        .on(CopyDBSnapshotCommand)
        .rejects(awsError('SnapshotQuotaExceeded', 'Cannot create more than 100 manual snapshots'));
      dst.on(DescribeAccountAttributesCommand).rejects(awsError('AccessDenied', 'not allowed'));

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(report.resources[0]?.error).toMatch(
        /is full \(ManualSnapshots: usage unknown, DescribeAccountAttributes failed: AccessDenied: not allowed\)/,
      );
    });
  });

  it('copies an instance snapshot with a non-default option group into the configured option group', async () => {
    src.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: [
        snap('ledger-nightly', { OptionGroupName: 'oracle-ee-19-tde', DBInstanceIdentifier: 'ledger' }),
      ],
    });
    dst.on(CopyDBSnapshotCommand).resolves({});

    const without = await run({ action: 'sweep' }, ctx, deps());
    const withGroup = await run(
      { action: 'sweep' },
      ctx,
      deps({ TARGET_OPTION_GROUPS: `${TARGET}=oracle-tde-dr` }),
    );

    expect(without.resources[0]).toMatchObject({ outcome: 'failed' });
    expect(withGroup.resources[0]).toMatchObject({ outcome: 'changed' });
    expect(dst.commandCalls(CopyDBSnapshotCommand).map((c) => c.args[0].input)).toEqual([
      expect.objectContaining({
        OptionGroupName: 'oracle-tde-dr',
        TargetDBSnapshotIdentifier: 'ledger-nightly',
      }),
    ]);
  });

  it('never copies a snapshot of this region that only shares its identifier with the one asked for', async () => {
    // Prepare: the operator names a snapshot in eu-west-2; eu-central-1 has one with the same identifier
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-before-migration')] });
    const elsewhere = `arn:aws:rds:eu-west-2:${ACCOUNT}:snapshot:orders-before-migration`;

    // Act
    const report = await run({ action: 'copy', snapshot: elsewhere }, ctx, deps());

    // Assess
    expect(report.resources).toEqual([
      expect.objectContaining({
        arn: elsewhere,
        outcome: 'failed',
        detail: 'snapshot not found (deleted, or not in this account and region); nothing copied',
      }),
    ]);
    expect(
      [...src.calls(), ...dst.calls()].filter((c) => !/^Describe/.test(c.args[0].constructor.name)),
    ).toEqual([]);
  });

  it('copies nothing when the source cannot be marked, and says so', async () => {
    src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a')] });
    src
      .on(AddTagsToResourceCommand)
      .rejects(awsError('AccessDenied', 'not authorized to perform rds:AddTagsToResource'));

    const report = await run({ action: 'sweep' }, ctx, deps());

    expect(report.resources[0]).toMatchObject({
      outcome: 'failed',
      error:
        `marking the source with nightshift:copy-source and nightshift:source-time failed: IAM refused it: the role needs ` +
        `rds:AddTagsToResource of exactly nightshift:copy-source and nightshift:source-time, and rds:RemoveTagsFromResource ` +
        `of nightshift's keys, on the snapshots of ${SOURCE} (statements MarkSources and UnmarkSources of ` +
        `functions/rds-snapshot-copy/permissions.ts): a role deployed by an earlier version lacks them (README: Upgrading from an ` +
        `earlier version); AWS said: AccessDenied: not authorized to perform rds:AddTagsToResource; nothing copied`,
    });
    expect(dst.commandCalls(CopyDBSnapshotCommand)).toEqual([]);
  });

  describe('a copy IAM or KMS refuses says what the role lacks', () => {
    const ROLE = `arn:aws:sts::${ACCOUNT}:assumed-role/nightshift-prod-rds-snapshot-copy/nightshift-prod-rds-snapshot-copy`;
    const KEY = `arn:aws:kms:${TARGET}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    const failedRow = async (error: Error, encrypted = false) => {
      src
        .on(DescribeDBSnapshotsCommand)
        .resolves({ DBSnapshots: [snap('orders-a', { Encrypted: encrypted })] });
      dst.on(CopyDBSnapshotCommand).rejects(error);
      const report = await run(
        { action: 'sweep' },
        ctx,
        deps(encrypted ? { TARGET_KMS_KEYS: `${TARGET}=${KEY}` } : {}),
      );
      expect(report.resources[0]?.outcome).toBe('failed');
      return report.resources[0]?.error ?? '';
    };

    it('names rds:CopyDBSnapshot, where the role needs it, and the service control policy that denied it', async () => {
      const error = await failedRow(
        awsError(
          'AccessDenied',
          `User: ${ROLE} is not authorized to perform: rds:CopyDBSnapshot on resource: ${dstArn('orders-a')} with an explicit deny in a service control policy`,
        ),
      );

      expect(error).toMatch(
        new RegExp(
          `^IAM refused rds:CopyDBSnapshot on ${dstArn('orders-a')} \\(an explicit deny in a service control policy\\): ` +
            `the role needs rds:CopyDBSnapshot on the source snapshot in ${SOURCE} and on the new snapshot orders-a in ${TARGET} ` +
            `\\(statement CopySnapshots of functions/rds-snapshot-copy/permissions.ts`,
        ),
      );
      expect(error).toMatch(/nothing was copied; the source keeps its nightshift:copy-source mark/);
    });

    it('names the KMS grant RDS needs, the key and the param, when KMS refuses the copy of an encrypted snapshot', async () => {
      const error = await failedRow(
        awsError('KMSKeyNotAccessibleFault', 'The specified KMS key is not accessible.'),
        true,
      );

      expect(error).toMatch(
        new RegExp(
          `^KMS refused the copy to ${TARGET}: RDS uses the key ${KEY} in ${TARGET} and the source snapshot's key in ${SOURCE} ` +
            `through grants it creates with the role's rights: the role needs kms:CreateGrant and kms:DescribeKey on the key in ` +
            `${TARGET} \\(list its ARN in the copyKmsKeyArns param`,
        ),
      );
      expect(dst.commandCalls(CopyDBSnapshotCommand)[0]?.args[0].input).toMatchObject({ KmsKeyId: KEY });
    });

    it('names kms:CreateGrant when IAM refuses it', async () => {
      const error = await failedRow(
        awsError(
          'AccessDenied',
          `User: ${ROLE} is not authorized to perform: kms:CreateGrant on resource: ${KEY}`,
        ),
        true,
      );

      expect(error).toMatch(new RegExp(`^IAM refused kms:CreateGrant on ${KEY}: RDS uses the key`));
      expect(error).toMatch(/copyKmsKeyArns/);
    });

    it('names a permissions boundary that denies the inherited tags, rather than blaming rds:TagsFromRequest', async () => {
      const error = await failedRow(
        awsError(
          'AccessDenied',
          `User: ${ROLE} is not authorized to perform: rds:AddTagsToResource on resource: ${dstArn('orders-a')} with an explicit deny in a permissions boundary`,
        ),
      );

      expect(error).toMatch(
        new RegExp(
          `^IAM refused the tags the copy inherits from its source \\(rds:AddTagsToResource on the new snapshot in ${TARGET}\\) ` +
            `with an explicit deny in a permissions boundary, outside the role's own policy`,
        ),
      );
    });

    it('lists what the copy needs when IAM names no permission', async () => {
      const error = await failedRow(
        awsError('AccessDenied', 'Encoded authorization failure message: AbCdEf'),
      );

      expect(error).toMatch(
        new RegExp(
          `^IAM refused the copy to ${TARGET} without naming the permission: the role needs rds:CopyDBSnapshot on the source ` +
            `and on the new snapshot \\(CopySnapshots\\), rds:AddTagsToResource of the inherited tags on the new snapshot ` +
            `\\(InheritTagsOnCopies\\); decode the message with sts:DecodeAuthorizationMessage`,
        ),
      );
    });
  });

  it('reads every page of every Describe (MaxRecords 100, Marker) and plans from all of them', async () => {
    // Prepare: 250 sources of 250 databases, 230 of them copied; 120 cluster snapshots, all copied; an old
    // copy on the last page
    const served = { pages: 0 };
    const databases: DBInstance[] = Array.from({ length: 250 }, (_, i) => ({
      DBInstanceIdentifier: `db-${i}`,
      InstanceCreateTime: new Date(NOW.getTime() - 10 * 24 * HOUR),
      TagList: [],
    }));
    const sources = Array.from({ length: 250 }, (_, i) =>
      snap(`orders-${String(i).padStart(3, '0')}`, { DBInstanceIdentifier: `db-${i}` }),
    );
    const copies = sources
      .slice(0, 230)
      .map((s) => copyOf(s.DBSnapshotIdentifier ?? '', { DBInstanceIdentifier: s.DBInstanceIdentifier }));
    const old = copyOf('orders-old', {
      DBInstanceIdentifier: 'db-0',
      OriginalSnapshotCreateTime: new Date(NOW.getTime() - 30 * 24 * HOUR),
    });
    const clusters = Array.from({ length: 120 }, (_, i) => clusterSnap(`billing-${i}`));
    const clusterCopies = clusters.map((c) => ({
      ...c,
      DBClusterSnapshotArn: c.DBClusterSnapshotArn?.replace(SOURCE, TARGET),
      SourceDBClusterSnapshotArn: c.DBClusterSnapshotArn,
      TagList: [{ Key: 'nightshift:copy-source', Value: c.DBClusterSnapshotArn }],
    }));
    src.on(DescribeDBSnapshotsCommand).callsFake(paged(sources, 'DBSnapshots', served));
    dst.on(DescribeDBSnapshotsCommand).callsFake(paged([...copies, old], 'DBSnapshots', served));
    src.on(DescribeDBClusterSnapshotsCommand).callsFake(paged(clusters, 'DBClusterSnapshots', served));
    dst.on(DescribeDBClusterSnapshotsCommand).callsFake(paged(clusterCopies, 'DBClusterSnapshots', served));
    src.on(DescribeDBInstancesCommand).callsFake(paged(databases, 'DBInstances', served));
    dst.on(CopyDBSnapshotCommand).resolves({});
    dst.on(DeleteDBSnapshotCommand).resolves({});
    const recorded: unknown[] = [];

    // Act
    const report = await run({ action: 'sweep' }, ctx, deps({}, recorded));

    // Assess
    expect(served.pages).toBe(3 + 3 + 2 + 2 + 3);
    for (const call of [
      ...src.commandCalls(DescribeDBSnapshotsCommand),
      ...dst.commandCalls(DescribeDBSnapshotsCommand),
      ...src.commandCalls(DescribeDBClusterSnapshotsCommand),
      ...dst.commandCalls(DescribeDBClusterSnapshotsCommand),
      ...src.commandCalls(DescribeDBInstancesCommand),
    ])
      expect(call.args[0].input.MaxRecords).toBe(100);
    expect(report.summary).toMatchObject({ unchanged: 230 + 120, changed: 20 + 1, failed: 0 });
    expect(
      dst.commandCalls(DeleteDBSnapshotCommand).map((c) => c.args[0].input.DBSnapshotIdentifier),
    ).toEqual(['orders-old']);
    // The 20 databases read on the third page of DescribeDBInstances have no copy yet: since their creation
    expect(recorded).toEqual([
      {
        [TARGET]: {
          database: 'instance:db-230',
          basis: 'database',
          since: '2026-11-13T04:00:00Z',
          hours: 240,
        },
      },
    ]);
  });

  it('changes nothing when the deadline cuts a read, and reports the run undone', async () => {
    // Prepare: the Lambda runs out of time after the first page of the target region's copies
    const served = { pages: 0 };
    const sources = Array.from({ length: 150 }, (_, i) =>
      snap(`orders-${i}`, { DBInstanceIdentifier: `db-${i}` }),
    );
    const copies = sources.map((s) =>
      copyOf(s.DBSnapshotIdentifier ?? '', {
        DBInstanceIdentifier: s.DBInstanceIdentifier,
        OriginalSnapshotCreateTime: new Date(NOW.getTime() - 30 * 24 * HOUR),
      }),
    );
    src.on(DescribeDBSnapshotsCommand).callsFake(paged(sources, 'DBSnapshots', { pages: 0 }));
    dst.on(DescribeDBSnapshotsCommand).callsFake(paged(copies, 'DBSnapshots', served));
    const recorded: unknown[] = [];
    const handler = deployed(deps({}, recorded));

    // Act
    const report = await handler(
      { action: 'sweep' },
      lambdaContext('rds-snapshot-copy', () => (served.pages >= 1 ? 5_000 : 900_000)),
    );
    const direct = await run(
      { action: 'sweep' },
      runContext({ hasTime: () => served.pages < 1 }),
      deps(),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect(report.resources).toEqual([
      {
        arn: '',
        type: 'run',
        outcome: 'undone',
        detail:
          'OutOfTimeError: the Lambda was about to time out while reading the DB snapshots in eu-west-1; nothing was changed after that point — the next run starts over',
      },
    ]);
    expect(direct).toBeInstanceOf(OutOfTimeError);
    const mutations = [...src.calls(), ...dst.calls()].filter((c) =>
      /^(Copy|Delete|AddTags)/.test(c.args[0].constructor.name),
    );
    expect(mutations).toEqual([]);
    expect(recorded).toEqual([]);
  });

  it('reports the copies the deadline left unstarted as undone, and the next sweep starts with them', async () => {
    // Prepare: 6 new snapshots; time runs out after two copies
    src.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: ['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) =>
        snap(`orders-${id}`, {
          DBInstanceIdentifier: `db-${id}`,
          OriginalSnapshotCreateTime: new Date(NOW.getTime() - (i + 1) * HOUR),
        }),
      ),
    });
    let started = 0;
    dst.on(CopyDBSnapshotCommand).callsFake(() => {
      started += 1;
      return {};
    });

    // Act
    const cut = await run({ action: 'sweep' }, runContext({ hasTime: () => started < 2 }), deps());
    const undone = cut.resources.filter((r) => r.outcome === 'undone').map((r) => r.arn);
    dst.reset();
    dst.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
    // Meanwhile 19 copies are in flight: one slot left, and it goes to a carried-over copy
    dst.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: Array.from({ length: 19 }, (_, i) => copyOf(`busy-${i}`, { Status: 'copying' })),
    });
    dst.on(CopyDBSnapshotCommand).resolves({});
    const next = await run({ action: 'sweep' }, runContext({ carried: { sweep: undone } }), deps());

    // Assess
    expect(rows(cut).filter((r) => r.endsWith('undone'))).toHaveLength(undone.length);
    expect(undone.length).toBeGreaterThan(0);
    expect(cut.resources.find((r) => r.outcome === 'undone')?.detail).toMatch(new RegExp(`^${NOT_STARTED}`));
    expect(
      dst
        .commandCalls(CopyDBSnapshotCommand)
        .map((c) => dstArn(c.args[0].input.TargetDBSnapshotIdentifier ?? '')),
    ).toEqual([undone[0]]);
    expect(rows(next).filter((r) => r.endsWith('changed'))).toEqual([
      `${undone[0]?.split(':').pop()} changed`,
    ]);
  });

  it('returns a report that fits a synchronous invoke for a sweep over thousands of snapshots', async () => {
    // Prepare: 2,500 sources, every one copied already, in pages of 100
    const sources = Array.from({ length: 2500 }, (_, i) =>
      snap(`orders-${String(i).padStart(4, '0')}`, { DBInstanceIdentifier: `db-${i}` }),
    );
    const copies = sources.map((s) =>
      copyOf(s.DBSnapshotIdentifier ?? '', { DBInstanceIdentifier: s.DBInstanceIdentifier }),
    );
    src.on(DescribeDBSnapshotsCommand).callsFake(paged(sources, 'DBSnapshots', { pages: 0 }));
    dst.on(DescribeDBSnapshotsCommand).callsFake(paged(copies, 'DBSnapshots', { pages: 0 }));

    // Act
    const report = await deployed(deps())({ action: 'sweep' }, lambdaContext('rds-snapshot-copy'));

    // Assess
    expect(report.summary).toMatchObject({ unchanged: 2500, changed: 0, failed: 0 });
    expect(report.summary.unchanged).toBeGreaterThan(UNCHANGED_LISTED);
    expect(report.omitted).toEqual({ unchanged: 2500 });
    expect(report.resources).toEqual([]);
    expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(MAX_REPORT_BYTES);
  });
  describe('marking, unmarking and what RDS answers', () => {
    const legacy = snap('orders-a', {
      TagList: [
        { Key: 'team', Value: 'shop' },
        { Key: 'nightshift:source-arn', Value: srcArn('orders-a') },
      ],
    });

    it('removes the legacy marker from the source before marking it anew, then copies: no call tags the destination', async () => {
      const order: string[] = [];
      src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [legacy] });
      src.on(RemoveTagsFromResourceCommand).callsFake(() => order.push('remove') && {});
      src.on(AddTagsToResourceCommand).callsFake(() => order.push('add') && {});
      dst.on(CopyDBSnapshotCommand).callsFake(() => order.push('copy') && {});

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(order).toEqual(['remove', 'add', 'copy']);
      expect(src.commandCalls(RemoveTagsFromResourceCommand)[0]?.args[0].input).toEqual({
        ResourceName: srcArn('orders-a'),
        TagKeys: ['nightshift:source-arn'],
      });
      expect(src.commandCalls(AddTagsToResourceCommand)[0]?.args[0].input.Tags?.map((t) => t.Key)).toEqual([
        'nightshift:copy-source',
        'nightshift:source-time',
      ]);
      expect([
        ...dst.commandCalls(AddTagsToResourceCommand),
        ...dst.commandCalls(RemoveTagsFromResourceCommand),
      ]).toEqual([]);
      expect(report.resources[0]?.outcome).toBe('changed');
    });

    it('removes the marks of a source copied everywhere, and counts a source deleted meanwhile as done', async () => {
      const marked = (id: string) =>
        snap(id, {
          DBInstanceIdentifier: id,
          TagList: [
            { Key: 'nightshift:copy-source', Value: srcArn(id) },
            { Key: 'nightshift:source-time', Value: '2026-11-23T03:24:00Z' },
          ],
        });
      src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [marked('orders-a'), marked('orders-b')] });
      dst.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [
          copyOf('orders-a', { DBInstanceIdentifier: 'orders-a' }),
          copyOf('orders-b', { DBInstanceIdentifier: 'orders-b' }),
        ],
      });
      src
        .on(RemoveTagsFromResourceCommand, { ResourceName: srcArn('orders-b') })
        .rejects(awsError('DBSnapshotNotFoundFault', 'DBSnapshot orders-b not found.'));

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(src.commandCalls(RemoveTagsFromResourceCommand).map((c) => c.args[0].input)).toEqual([
        { ResourceName: srcArn('orders-a'), TagKeys: ['nightshift:copy-source', 'nightshift:source-time'] },
        { ResourceName: srcArn('orders-b'), TagKeys: ['nightshift:copy-source', 'nightshift:source-time'] },
      ]);
      expect(rows(report)).toEqual([
        'orders-a unchanged',
        'orders-b unchanged',
        'orders-a changed',
        'orders-b unchanged',
      ]);
      expect(report.resources[3]?.detail).toBe('the source is already gone');
    });

    it.each([
      ['marking it', AddTagsToResourceCommand, 'DBSnapshotNotFoundFault'],
      ['copying it', CopyDBSnapshotCommand, 'DBSnapshotNotFound'],
    ])(
      'reports a source deleted between the read and %s as skipped, not failed',
      async (_, command, name) => {
        src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a')] });
        (command === AddTagsToResourceCommand ? src : dst)
          .on(command as typeof CopyDBSnapshotCommand)
          .rejects(awsError(name, 'DBSnapshot orders-a not found.'));

        const report = await run({ action: 'copy', snapshot: srcArn('orders-a') }, ctx, deps());

        expect(report.resources[0]).toMatchObject({
          outcome: 'skipped',
          detail: 'the source was deleted since it was read; nothing copied',
        });
      },
    );

    it('names the cause when IAM refuses a copy the tags it inherits (rds:TagsFromRequest not reported false)', async () => {
      src.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snap('orders-a')] });
      dst
        .on(CopyDBSnapshotCommand)
        .rejects(
          awsError(
            'AccessDenied',
            `User: arn:aws:sts::${ACCOUNT}:assumed-role/nightshift-prod-rds-snapshot-copy/nightshift-prod-rds-snapshot-copy is not authorized to perform: rds:AddTagsToResource on resource: ${dstArn('orders-a')} with an explicit deny in an identity-based policy`,
          ),
        );

      const report = await run({ action: 'sweep' }, ctx, deps());

      expect(report.resources[0]?.outcome).toBe('failed');
      expect(report.resources[0]?.error).toMatch(
        /^IAM denied the copy the tags it inherits from its source \(rds:AddTagsToResource on the new snapshot\): the role allows them only when RDS reports them inherited \(rds:TagsFromRequest false\), and RDS did not; nothing was copied/,
      );
    });

    it('keeps rows short when thousands of deletions and unmarkings fail with long AWS messages, so the report fits', async () => {
      // Prepare: 1,500 marked sources copied everywhere, and 1,500 copies past retention of one database;
      // IAM refuses every RemoveTagsFromResource and DeleteDBSnapshot with a 10,000-character message
      const refusal = awsError(
        'AccessDenied',
        `Encoded authorization failure message: ${'x'.repeat(10_000)}`,
      );
      const sources = Array.from({ length: 1500 }, (_, i) =>
        snap(`orders-${i}`, {
          DBInstanceIdentifier: `db-${i}`,
          TagList: [{ Key: 'nightshift:copy-source', Value: srcArn(`orders-${i}`) }],
        }),
      );
      const copies = sources.map((c) =>
        copyOf(c.DBSnapshotIdentifier ?? '', { DBInstanceIdentifier: c.DBInstanceIdentifier }),
      );
      const old = Array.from({ length: 1500 }, (_, i) =>
        copyOf(`old-${i}`, { OriginalSnapshotCreateTime: new Date(NOW.getTime() - (30 + i) * 24 * HOUR) }),
      );
      src.on(DescribeDBSnapshotsCommand).callsFake(paged(sources, 'DBSnapshots', { pages: 0 }));
      dst.on(DescribeDBSnapshotsCommand).callsFake(paged([...copies, ...old], 'DBSnapshots', { pages: 0 }));
      src.on(RemoveTagsFromResourceCommand).rejects(refusal);
      dst.on(DeleteDBSnapshotCommand).rejects(refusal);

      // Act
      const report = await deployed(deps())({ action: 'sweep' }, lambdaContext('rds-snapshot-copy'));

      // Assess: every failure is listed, and short: what IAM refused and what the role needs, then AWS's
      // message cut at MESSAGE_CHARS
      expect(report.summary.failed).toBe(1500 + 1499);
      expect(report.resources.filter((r) => r.outcome === 'failed')).toHaveLength(2999);
      expect(Math.max(...report.resources.map((r) => (r.error ?? '').length))).toBeLessThan(1000);
      expect(report.resources.every((r) => (r.error ?? '').endsWith('x…'))).toBe(true);
      expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(MAX_REPORT_BYTES);
    });

    it('copies into the option group mapped for the source option group in that region', async () => {
      src.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [
          snap('ledger-nightly', { OptionGroupName: 'oracle-ee-19-tde', DBInstanceIdentifier: 'ledger' }),
        ],
      });
      dst.on(CopyDBSnapshotCommand).resolves({});

      await run(
        { action: 'sweep' },
        ctx,
        deps({ TARGET_OPTION_GROUPS: `${TARGET}=any-dr,oracle-ee-19-tde@${TARGET}=oracle-tde-dr` }),
      );

      expect(dst.commandCalls(CopyDBSnapshotCommand)[0]?.args[0].input.OptionGroupName).toBe('oracle-tde-dr');
    });
  });

  it.each(['0', '1'])(
    'records a copy lag past the 36-hour alarm at RETENTION_DAYS %s when nothing was ever copied',
    async (days) => {
      // Prepare: encrypted snapshots 40 and 16 hours old, no key for the region: every copy fails
      src.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [40, 16].map((h) =>
          snap(`orders-${h}h`, {
            Encrypted: true,
            OriginalSnapshotCreateTime: new Date(NOW.getTime() - h * HOUR),
          }),
        ),
      });
      const recorded: { [TARGET]: { hours: number } }[] = [];

      // Act
      await run({ action: 'sweep' }, ctx, deps({ RETENTION_DAYS: days }, recorded));

      // Assess
      expect(dst.commandCalls(CopyDBSnapshotCommand)).toEqual([]);
      expect(recorded[0]?.[TARGET].hours).toBe(40);
      expect(recorded[0]?.[TARGET].hours).toBeGreaterThan(36);
    },
  );
});
