/**
 * What moto cannot show: one tagging call failing while the others succeed, AWS's exact errors for a
 * snapshot deleted between the read and its tagging call (and the look-alikes that must not be taken
 * for one), a Lambda running out of time mid-read and mid-write, the next sweep starting with what the
 * last one left, and reads batched over more volumes than one call takes. AWS is simulated with
 * aws-sdk-client-mock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AddTagsToResourceCommand,
  DBClusterSnapshotNotFoundFault,
  DBSnapshotNotFoundFault,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  CreateTagsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  EC2ServiceException,
} from '@aws-sdk/client-ec2';
import { handler, run, type Deps } from '#functions/snapshot-tags/handler.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import type { Report } from '#shared/report.ts';

const rds = mockClient(RDSClient);
const ec2 = mockClient(EC2Client);

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const snapshotArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${id}`;

const deps = (): Deps => ({
  clients: { rds: new RDSClient({ region: REGION }), ec2: new EC2Client({ region: REGION }) },
  config: { TAG_KEYS: [], EXCLUDE_TAG_KEYS: [], DRY_RUN: false },
});
const ctx = (hasTime: () => boolean = () => true) => runContext({ hasTime });
const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
/**
 * An EC2 error as the SDK surfaces it: EC2 models no error shapes, so the error is an EC2ServiceException
 * named by the `<Code>` of AWS's answer, with its `<Message>`.
 */
const ec2Error = (code: string, message: string) =>
  new EC2ServiceException({
    name: code,
    $fault: 'client',
    message,
    $metadata: { httpStatusCode: 400, requestId: '5f8e1c2a-6b1d-4f0e-9a57-1c2d3e4f5a6b' },
  });
/** AWS's answer to a CreateTags naming a deleted snapshot (as Cloud Custodian and others log it). */
const snapshotNotFound = (id: string) =>
  ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);

/** DB `orders` (team=shop) with these manual snapshots, untagged; no clusters. */
const rdsEstate = (snapshotIds: string[]) => {
  rds.on(DescribeDBSnapshotsCommand).resolves({
    DBSnapshots: snapshotIds.map((id) => ({
      DBSnapshotArn: snapshotArn(id),
      DBSnapshotIdentifier: id,
      DBInstanceIdentifier: 'orders',
      Status: 'available',
      TagList: [],
    })),
  });
  rds.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [{ DBInstanceIdentifier: 'orders', TagList: [{ Key: 'team', Value: 'shop' }] }],
  });
  rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [] });
};

/** EBS snapshots as `snapshot id → volume id`; each volume tagged team=<volume id>, unless `tags` says. */
const ebsEstate = (snapshots: Record<string, string>, tags: (volume: string) => string = (v) => v) => {
  ec2.on(DescribeSnapshotsCommand).resolves({
    Snapshots: Object.entries(snapshots).map(([SnapshotId, VolumeId]) => ({
      SnapshotId,
      VolumeId,
      OwnerId: ACCOUNT,
      State: 'completed',
      Tags: [],
    })),
  });
  ec2.on(DescribeVolumesCommand).callsFake((input: { Filters: { Values: string[] }[] }) => ({
    Volumes: (input.Filters[0]?.Values ?? []).map((VolumeId) => ({
      VolumeId,
      Tags: [{ Key: 'team', Value: tags(VolumeId) }],
    })),
  }));
};

const outcomes = (report: Report) => report.resources.map((r) => `${r.arn.split(/[:/]/).pop()} ${r.outcome}`);

describe('snapshot-tags with simulated AWS failures', () => {
  beforeEach(() => {
    rds.reset();
    ec2.reset();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('tags the other RDS snapshots when AddTagsToResource fails for one', async () => {
    // Prepare
    rdsEstate(['a', 'b', 'c']);
    ebsEstate({});
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(AddTagsToResourceCommand, { ResourceName: snapshotArn('b') }).rejects(throttled());

    // Act
    const report = await run({ action: 'sweep' }, ctx(), deps());

    // Assess
    expect(outcomes(report)).toEqual(['a changed', 'b failed', 'c changed']);
    expect(report.resources[1]).toEqual({
      arn: snapshotArn('b'),
      type: 'rds-snapshot',
      outcome: 'failed',
      detail: 'add 1 tag from db orders: team',
      error: 'AddTagsToResource failed: ThrottlingException: Rate exceeded',
    });
    expect(rds.commandCalls(AddTagsToResourceCommand).map((c) => c.args[0].input)).toEqual(
      ['a', 'b', 'c'].map((id) => ({
        ResourceName: snapshotArn(id),
        Tags: [{ Key: 'team', Value: 'shop' }],
      })),
    );
  });

  it('fails every snapshot of a batched CreateTags that fails, and no other', async () => {
    // Prepare: snap-a1 and snap-a2 share vol-a, so one call; snap-b1 has its own
    rdsEstate([]);
    ebsEstate({ 'snap-a1': 'vol-a', 'snap-b1': 'vol-b', 'snap-a2': 'vol-a' });
    ec2.on(CreateTagsCommand).resolves({});
    ec2
      .on(CreateTagsCommand, { Resources: ['snap-a1', 'snap-a2'] })
      .rejects(ec2Error('RequestLimitExceeded', 'Request limit exceeded.'));

    // Act
    const report = await run({ action: 'sweep' }, ctx(), deps());

    // Assess
    expect(outcomes(report)).toEqual(['snap-a1 failed', 'snap-b1 changed', 'snap-a2 failed']);
    const error =
      'CreateTags (one call for 2 snapshot(s) receiving the same tags) failed: RequestLimitExceeded: Request limit exceeded.';
    expect(report.resources[0]).toMatchObject({ detail: 'add 1 tag from volume vol-a: team', error });
    expect(report.resources[2]).toMatchObject({ error });
    expect(report.resources[0]?.arn).toBe(`arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/snap-a1`);
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(2);
  });

  it('throws only when every snapshot failed, with the report attached', async () => {
    // Prepare: the handler's own clients, as Lambda builds them
    vi.stubEnv('AWS_REGION', REGION);
    rdsEstate(['a']);
    rds.on(AddTagsToResourceCommand).rejects(throttled());
    const event = {
      'detail-type': 'RDS DB Snapshot Event',
      source: 'aws.rds',
      detail: { EventID: 'RDS-EVENT-0042', SourceArn: snapshotArn('a') },
    };

    // Act
    const error = await handler(event, lambdaContext('snapshot-tags')).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect(error).toMatchObject({
      name: 'RunFailedError',
      message:
        'all 1 resource(s) failed; first error: AddTagsToResource failed: ThrottlingException: Rate exceeded',
    });
    expect((error as { report: Report }).report.resources[0]?.arn).toBe(snapshotArn('a'));
  });

  it('stops starting new calls when the Lambda is about to time out, and says which snapshots are left', async () => {
    // Prepare: six CreateTags calls (one per volume); time runs out once five have been sent
    rdsEstate([]);
    const volumes = ['a', 'b', 'c', 'd', 'e', 'f'];
    ebsEstate(
      Object.fromEntries(
        volumes.flatMap((v) => [
          [`snap-${v}1`, `vol-${v}`],
          [`snap-${v}2`, `vol-${v}`],
        ]),
      ),
    );
    let sent = 0;
    ec2.on(CreateTagsCommand).callsFake(() => {
      sent += 1;
      return {};
    });

    // Act
    const report = await run(
      { action: 'sweep' },
      ctx(() => sent < 5),
      deps(),
    );

    // Assess
    expect(outcomes(report).slice(8)).toEqual([
      'snap-e1 changed',
      'snap-e2 changed',
      'snap-f1 undone',
      'snap-f2 undone',
    ]);
    expect(report.summary).toMatchObject({ changed: 10, undone: 2 });
    expect(report.resources[10]?.detail).toBe(
      'not started: the Lambda was about to time out; the next run starts with it (would have: add 1 tag from volume vol-f: team)',
    );
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(5);
  });

  it('reads volumes 200 to a call by filter, so a deleted volume does not fail the read', async () => {
    // Prepare: 250 snapshots of 250 volumes, every volume tagged alike; vol-0007 is gone
    const snapshots = Object.fromEntries(
      Array.from({ length: 250 }, (_, i) => [`snap-${i}`, `vol-${String(i).padStart(4, '0')}`]),
    );
    rdsEstate([]);
    ebsEstate(snapshots, () => 'shop');
    ec2.on(DescribeVolumesCommand).callsFake((input: { Filters: { Values: string[] }[] }) => ({
      Volumes: (input.Filters[0]?.Values ?? [])
        .filter((id) => id !== 'vol-0007')
        .map((VolumeId) => ({ VolumeId, Tags: [{ Key: 'team', Value: 'shop' }] })),
    }));

    // Act
    const report = await run({ action: 'sweep', dryRun: true }, ctx(), deps());

    // Assess
    const reads = ec2.commandCalls(DescribeVolumesCommand).map((c) => c.args[0].input);
    expect(reads.map((r) => [r.VolumeIds, r.Filters?.[0]?.Name, r.Filters?.[0]?.Values?.length])).toEqual([
      [undefined, 'volume-id', 200],
      [undefined, 'volume-id', 50],
    ]);
    expect(ec2.commandCalls(DescribeSnapshotsCommand)[0]?.args[0].input).toMatchObject({
      OwnerIds: ['self'],
    });
    expect(report.summary).toEqual({
      changed: 0,
      planned: 249,
      unchanged: 0,
      skipped: 1,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(report.resources[7]).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(/^volume vol-0007 not found/),
    });
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });

  describe('a snapshot deleted between the read and its CreateTags (InvalidSnapshot.NotFound)', () => {
    /** snap-1…snap-5 of vol-a: one CreateTags call for all five. */
    const five = Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`snap-${i}`, 'vol-a']));
    const fiveOfOneVolume = () => {
      rdsEstate([]);
      ebsEstate(five);
    };
    const fiveOfOneVolumeListing = () => ({
      Snapshots: Object.keys(five).map((SnapshotId) => ({
        SnapshotId,
        VolumeId: 'vol-a',
        OwnerId: ACCOUNT,
        Tags: [],
      })),
    });
    const sentIds = () => ec2.commandCalls(CreateTagsCommand).map((c) => c.args[0].input.Resources);
    /** DescribeSnapshots by snapshot-id filter answers with the ids that still exist; the sweep's own listing is kept. */
    const answerLookups = (exists: (id: string) => boolean) => {
      const listing = fiveOfOneVolumeListing();
      ec2.on(DescribeSnapshotsCommand).callsFake((input: { Filters?: { Values: string[] }[] }) =>
        input.Filters
          ? {
              Snapshots: (input.Filters[0]?.Values ?? [])
                .filter(exists)
                .map((SnapshotId) => ({ SnapshotId })),
            }
          : listing,
      );
    };
    const gone =
      'no longer exists: InvalidSnapshot.NotFound when its tags were sent (deleted since it was read); nothing to tag';

    it('drops the snapshot AWS names and resends the rest of the batch, reporting it as gone, not failed', async () => {
      // Prepare: snap-3 was deleted after the read; CreateTags refuses any call naming it
      fiveOfOneVolume();
      ec2.on(CreateTagsCommand).resolves({});
      ec2
        .on(CreateTagsCommand, { Resources: ['snap-1', 'snap-2', 'snap-3', 'snap-4', 'snap-5'] })
        .rejects(snapshotNotFound('snap-3'));

      // Act
      const report = await run({ action: 'sweep' }, ctx(), deps());

      // Assess
      expect(sentIds()).toEqual([
        ['snap-1', 'snap-2', 'snap-3', 'snap-4', 'snap-5'],
        ['snap-1', 'snap-2', 'snap-4', 'snap-5'],
      ]);
      expect(outcomes(report)).toEqual([
        'snap-1 changed',
        'snap-2 changed',
        'snap-3 skipped',
        'snap-4 changed',
        'snap-5 changed',
      ]);
      expect(report.resources[2]).toEqual({
        arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/snap-3`,
        type: 'ebs-snapshot',
        outcome: 'skipped',
        detail: gone,
      });
      // AWS named the id: no read was needed to find it
      expect(ec2.commandCalls(DescribeSnapshotsCommand)).toHaveLength(1);
    });

    it('drops every id one message names', async () => {
      fiveOfOneVolume();
      ec2.on(CreateTagsCommand).resolves({});
      ec2
        .on(CreateTagsCommand, { Resources: ['snap-1', 'snap-2', 'snap-3', 'snap-4', 'snap-5'] })
        .rejects(ec2Error('InvalidSnapshot.NotFound', "The snapshots 'snap-2, snap-5' do not exist."));

      const report = await run({ action: 'sweep' }, ctx(), deps());

      expect(sentIds()[1]).toEqual(['snap-1', 'snap-3', 'snap-4']);
      expect(report.summary).toMatchObject({ changed: 3, skipped: 2, failed: 0 });
    });

    it('asks DescribeSnapshots which are gone when the message names none of the batch, and when a resend fails again', async () => {
      // Prepare: AWS answers without naming an id (moto does this too); then a second snapshot goes
      fiveOfOneVolume();
      const exists = new Set(['snap-1', 'snap-2', 'snap-4', 'snap-5']);
      ec2.on(CreateTagsCommand).callsFake((input: { Resources: string[] }) => {
        if (input.Resources.length === 4) exists.delete('snap-4'); // deleted while the first resend was on its way
        if (input.Resources.every((id) => exists.has(id))) return {};
        throw ec2Error('InvalidSnapshot.NotFound', '');
      });
      answerLookups((id) => exists.has(id));

      // Act
      const report = await run({ action: 'sweep' }, ctx(), deps());

      // Assess
      expect(sentIds()).toEqual([
        ['snap-1', 'snap-2', 'snap-3', 'snap-4', 'snap-5'],
        ['snap-1', 'snap-2', 'snap-4', 'snap-5'],
        ['snap-1', 'snap-2', 'snap-5'],
      ]);
      const lookups = ec2
        .commandCalls(DescribeSnapshotsCommand)
        .slice(1)
        .map((c) => c.args[0].input);
      expect(lookups).toEqual([
        {
          OwnerIds: ['self'],
          MaxResults: 1000,
          Filters: [{ Name: 'snapshot-id', Values: ['snap-1', 'snap-2', 'snap-3', 'snap-4', 'snap-5'] }],
        },
        {
          OwnerIds: ['self'],
          MaxResults: 1000,
          Filters: [{ Name: 'snapshot-id', Values: ['snap-1', 'snap-2', 'snap-4', 'snap-5'] }],
        },
      ]);
      expect(outcomes(report)).toEqual([
        'snap-1 changed',
        'snap-2 changed',
        'snap-3 skipped',
        'snap-4 skipped',
        'snap-5 changed',
      ]);
    });

    it('sends at most three CreateTags for one batch, then fails what is left with the error', async () => {
      // Prepare: every call finds another snapshot deleted
      fiveOfOneVolume();
      let next = 1;
      ec2.on(CreateTagsCommand).callsFake(() => {
        throw snapshotNotFound(`snap-${next++}`);
      });
      answerLookups((id) => id !== 'snap-2');

      // Act
      const report = await run({ action: 'sweep' }, ctx(), deps());

      // Assess
      expect(sentIds()).toHaveLength(3);
      expect(outcomes(report)).toEqual([
        'snap-1 skipped',
        'snap-2 skipped',
        'snap-3 failed',
        'snap-4 failed',
        'snap-5 failed',
      ]);
      expect(report.resources[2]?.error).toBe(
        "CreateTags (one call for 3 snapshot(s) receiving the same tags) failed: InvalidSnapshot.NotFound: The snapshot 'snap-3' does not exist. (attempt 3 of 3, after dropping deleted snapshots)",
      );
    });

    it.each([
      { code: 'InvalidSnapshotID.Malformed', message: 'Invalid id: "snap-3" (expecting "snap-...")' },
      { code: 'InvalidID', message: "The ID 'snap-3' is not valid" },
      { code: 'RequestLimitExceeded', message: 'Request limit exceeded.' },
      { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.' },
    ])(
      'fails the batch on $code without resending: it does not say a snapshot is gone',
      async ({ code, message }) => {
        fiveOfOneVolume();
        ec2.on(CreateTagsCommand).rejects(ec2Error(code, message));

        const report = await run({ action: 'sweep' }, ctx(), deps());

        expect(sentIds()).toHaveLength(1);
        expect(report.summary).toMatchObject({ failed: 5, skipped: 0 });
        expect(report.resources[2]?.error).toBe(
          `CreateTags (one call for 5 snapshot(s) receiving the same tags) failed: ${code}: ${message}`,
        );
      },
    );

    it('reports an RDS snapshot deleted before AddTagsToResource as gone, not failed', async () => {
      // Prepare: b is gone (automated snapshots expire every day); a cluster snapshot c too
      rdsEstate(['a', 'b']);
      rds.on(DescribeDBClusterSnapshotsCommand).resolves({
        DBClusterSnapshots: [
          {
            DBClusterSnapshotArn: `arn:aws:rds:${REGION}:${ACCOUNT}:cluster-snapshot:c`,
            DBClusterSnapshotIdentifier: 'c',
            DBClusterIdentifier: 'billing',
            TagList: [],
          },
        ],
      });
      rds.on(DescribeDBClustersCommand).resolves({
        DBClusters: [{ DBClusterIdentifier: 'billing', TagList: [{ Key: 'team', Value: 'billing' }] }],
      });
      ebsEstate({});
      rds.on(AddTagsToResourceCommand).resolves({});
      rds.on(AddTagsToResourceCommand, { ResourceName: snapshotArn('b') }).rejects(
        new DBSnapshotNotFoundFault({
          message: 'DBSnapshot b not found.',
          $metadata: { httpStatusCode: 404 },
        }),
      );
      rds
        .on(AddTagsToResourceCommand, { ResourceName: `arn:aws:rds:${REGION}:${ACCOUNT}:cluster-snapshot:c` })
        .rejects(
          new DBClusterSnapshotNotFoundFault({
            message: 'DBClusterSnapshot c not found.',
            $metadata: { httpStatusCode: 404 },
          }),
        );

      // Act
      const report = await run({ action: 'sweep' }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['a changed', 'b skipped', 'c skipped']);
      expect(report.resources[1]?.detail).toBe(
        'no longer exists: DBSnapshotNotFoundFault when its tags were sent (deleted since it was read); nothing to tag',
      );
      expect(report.resources[2]?.detail).toMatch(/^no longer exists: DBClusterSnapshotNotFoundFault/);
    });
  });

  describe('the Lambda deadline during the reads', () => {
    it('reports a listing cut short as undone, with the ARNs of what it read, and changes nothing', async () => {
      // Prepare: three pages of EBS snapshots; time runs out once the first page is in
      rdsEstate([]);
      const page = (n: number, NextToken?: string) => ({
        Snapshots: [1, 2].map((i) => ({
          SnapshotId: `snap-${n}${i}`,
          VolumeId: 'vol-a',
          OwnerId: ACCOUNT,
          Tags: [],
        })),
        ...(NextToken && { NextToken }),
      });
      ec2
        .on(DescribeSnapshotsCommand)
        .resolvesOnce(page(1, 't2'))
        .resolvesOnce(page(2, 't3'))
        .resolves(page(3));
      ec2
        .on(DescribeVolumesCommand)
        .resolves({ Volumes: [{ VolumeId: 'vol-a', Tags: [{ Key: 'team', Value: 'a' }] }] });
      const hasTime = () => ec2.commandCalls(DescribeSnapshotsCommand).length === 0;

      // Act
      const report = await run({ action: 'sweep' }, ctx(hasTime), deps());

      // Assess: no crash, no silent partial success
      expect(ec2.commandCalls(DescribeSnapshotsCommand)).toHaveLength(1);
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(report.summary).toEqual({
        changed: 0,
        planned: 0,
        unchanged: 0,
        skipped: 0,
        undone: 3,
        waiting: 0,
        failed: 0,
      });
      // the volume was not read either: nothing was planned from half a picture
      expect(ec2.commandCalls(DescribeVolumesCommand)).toHaveLength(0);
      expect(report.resources).toEqual([
        {
          arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/snap-11`,
          type: 'ebs-snapshot',
          outcome: 'undone',
          detail:
            'not planned: the Lambda was about to time out before volume vol-a was read; the next sweep starts with it',
        },
        expect.objectContaining({
          arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/snap-12`,
          outcome: 'undone',
        }),
        {
          arn: '',
          type: 'ebs-snapshot',
          outcome: 'undone',
          detail:
            'not read: the Lambda was about to time out while listing EBS snapshots after the first 2; the next sweep reads them again',
        },
      ]);
    });

    it('leaves a snapshot undone, not "source not found", when the deadline cut the read of its sources', async () => {
      // Prepare: DB instances come in two pages; the deadline falls after the first
      rds.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: ['orders', 'billing'].map((db) => ({
          DBSnapshotArn: snapshotArn(`${db}-1`),
          DBSnapshotIdentifier: `${db}-1`,
          DBInstanceIdentifier: db,
          TagList: [],
        })),
      });
      rds.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
      rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [] });
      rds
        .on(DescribeDBInstancesCommand)
        .resolvesOnce({
          DBInstances: [{ DBInstanceIdentifier: 'orders', TagList: [{ Key: 'team', Value: 'shop' }] }],
          Marker: 'm2',
        })
        .resolves({
          DBInstances: [{ DBInstanceIdentifier: 'billing', TagList: [{ Key: 'team', Value: 'billing' }] }],
        });
      ebsEstate({});
      const hasTime = () => rds.commandCalls(DescribeDBInstancesCommand).length === 0;

      // Act
      const report = await run({ action: 'sweep', dryRun: true }, ctx(hasTime), deps());

      // Assess
      expect(rds.commandCalls(DescribeDBInstancesCommand)).toHaveLength(1);
      expect(report.resources).toEqual([
        {
          arn: snapshotArn('orders-1'),
          type: 'rds-snapshot',
          outcome: 'planned',
          detail: 'add 1 tag from db orders: team',
        },
        {
          arn: snapshotArn('billing-1'),
          type: 'rds-snapshot',
          outcome: 'undone',
          detail:
            'not planned: the Lambda was about to time out before db billing was read; the next sweep starts with it',
        },
      ]);
    });

    it("gives up reading an event's snapshot at the deadline, for withOps to report the run undone", async () => {
      rds
        .on(DescribeDBSnapshotsCommand)
        .resolvesOnce({ DBSnapshots: [], Marker: 'm2' })
        .resolves({ DBSnapshots: [] });

      const error = await run(
        { action: 'tag', snapshot: { type: 'rds-snapshot', arn: snapshotArn('a'), id: 'a' } },
        ctx(() => false),
        deps(),
      ).catch((e: unknown) => e);

      expect(error).toMatchObject({
        name: 'OutOfTimeError',
        message: 'the Lambda was about to time out while reading the snapshot a',
      });
    });
  });

  describe('the next sweep starts with what the last one left undone', () => {
    /** Six RDS snapshots and three EBS volumes' snapshots needing tags: nine calls, RDS ones planned first. */
    const estate = () => {
      rdsEstate(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
      ebsEstate({ 'snap-a1': 'vol-a', 'snap-a2': 'vol-a', 'snap-b1': 'vol-b', 'snap-c1': 'vol-c' });
      rds.on(AddTagsToResourceCommand).resolves({});
    };
    /** Time for five calls: the executor starts five at once, then checks the clock before each next one. */
    const timeForFiveCalls = () => {
      let sent = 0;
      const count = () => {
        sent += 1;
        return {};
      };
      rds.on(AddTagsToResourceCommand).callsFake(count);
      ec2.on(CreateTagsCommand).callsFake(count);
      return () => sent < 5;
    };

    it('sends the calls carrying a carried-over snapshot first, batches included', async () => {
      // Prepare: the previous sweep left snap-a2 and snap-c1 undone; time for five calls only
      estate();
      const hasTime = timeForFiveCalls();
      const carried = [
        `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/snap-a2`,
        `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/snap-c1`,
      ];

      // Act
      const report = await run(
        { action: 'sweep' },
        runContext({ hasTime, carried: { sweep: carried } }),
        deps(),
      );

      // Assess: the two EBS calls went out with the first five; without the carry-over they come last
      expect(ec2.commandCalls(CreateTagsCommand).map((c) => c.args[0].input.Resources)).toEqual([
        ['snap-a1', 'snap-a2'],
        ['snap-c1'],
      ]);
      expect(rds.commandCalls(AddTagsToResourceCommand)).toHaveLength(3);
      expect(outcomes(report)).toEqual([
        'r1 changed',
        'r2 changed',
        'r3 changed',
        'r4 undone',
        'r5 undone',
        'r6 undone',
        'snap-a1 changed',
        'snap-a2 changed',
        'snap-b1 undone',
        'snap-c1 changed',
      ]);
    });

    it('without a carry-over, the same deadline cuts the EBS calls', async () => {
      estate();
      const hasTime = timeForFiveCalls();

      const report = await run({ action: 'sweep' }, runContext({ hasTime }), deps());

      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(report.summary).toMatchObject({ changed: 5, undone: 5 });
    });
  });
});
