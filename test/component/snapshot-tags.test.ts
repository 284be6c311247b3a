/**
 * What moto cannot show: one tagging call failing while the others succeed, a Lambda running out of
 * time mid-run, and reads batched over more volumes than one call takes. AWS is simulated with
 * aws-sdk-client-mock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AddTagsToResourceCommand,
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
    ec2.on(CreateTagsCommand, { Resources: ['snap-a1', 'snap-a2'] }).rejects(
      Object.assign(new Error("The snapshot 'snap-a2' does not exist."), {
        name: 'InvalidSnapshot.NotFound',
      }),
    );

    // Act
    const report = await run({ action: 'sweep' }, ctx(), deps());

    // Assess
    expect(outcomes(report)).toEqual(['snap-a1 failed', 'snap-b1 changed', 'snap-a2 failed']);
    const error =
      "CreateTags (one call for 2 snapshot(s) receiving the same tags) failed: InvalidSnapshot.NotFound: The snapshot 'snap-a2' does not exist.";
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
    // Prepare: two CreateTags calls; time runs out after the first
    rdsEstate([]);
    ebsEstate({ 'snap-a1': 'vol-a', 'snap-a2': 'vol-a', 'snap-b1': 'vol-b', 'snap-b2': 'vol-b' });
    ec2.on(CreateTagsCommand).resolves({});
    let budget = 1;

    // Act
    const report = await run(
      { action: 'sweep' },
      ctx(() => budget-- > 0),
      deps(),
    );

    // Assess
    expect(outcomes(report)).toEqual([
      'snap-a1 changed',
      'snap-a2 changed',
      'snap-b1 undone',
      'snap-b2 undone',
    ]);
    expect(report.resources[2]?.detail).toBe(
      'not started: the Lambda was about to time out; the next run starts with it (would have: add 1 tag from volume vol-b: team)',
    );
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(1);
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
      failed: 0,
    });
    expect(report.resources[7]).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(/^volume vol-0007 not found/),
    });
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });
});
