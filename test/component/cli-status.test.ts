/**
 * `nightshift status` reads every list to its last page, at each API's largest page size, and shows
 * the stage's leases. Simulated with aws-sdk-client-mock: moto returns these lists in one page, so it
 * cannot show that a second page is read.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  DescribeClustersCommand,
  DescribeServicesCommand,
  ECSClient,
  ListClustersCommand,
  ListServicesCommand,
  type Service,
} from '@aws-sdk/client-ecs';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeDBClustersCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  type DBClusterSnapshot,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { cli } from '#test/support/cli.ts';

const ecs = mockClient(ECSClient);
const autoscaling = mockClient(AutoScalingClient);
const ec2 = mockClient(EC2Client);
const rds = mockClient(RDSClient);
const dynamo = mockClient(DynamoDBClient);

const ACCOUNT = '123456789012';
const clusterArn = (i: number) => `arn:aws:ecs:eu-central-1:${ACCOUNT}:cluster/c${i}`;
const serviceArn = (cluster: string, i: number) =>
  `arn:aws:ecs:eu-central-1:${ACCOUNT}:service/${cluster}/s${i}`;
/** Copies of the inputs sent: SDK paginators reuse one input object and set the next token on it. */
const sent: Record<string, Record<string, unknown>[]> = {};
const record = <T extends object>(op: string, input: T): T => {
  (sent[op] ??= []).push({ ...(input as Record<string, unknown>) });
  return input;
};
const recently = () => new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('nightshift status past the first page', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    process.env.AWS_REGION = 'eu-central-1';
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  });
  afterAll(() => {
    process.env = saved;
  });

  beforeEach(() => {
    for (const m of [ecs, autoscaling, ec2, rds, dynamo]) m.reset();
    for (const op of Object.keys(sent)) delete sent[op];
    // 101 clusters: 100 on the first page (ListClusters' maximum), one on the second.
    ecs
      .on(ListClustersCommand)
      .callsFake((input: { nextToken?: string }) =>
        record('ListClusters', input).nextToken === 'clusters-2'
          ? { clusterArns: [clusterArn(100)] }
          : { clusterArns: Array.from({ length: 100 }, (_, i) => clusterArn(i)), nextToken: 'clusters-2' },
      );
    // The last cluster has 105 services: 100 on the first page (ListServices' maximum), 5 on the second.
    ecs.on(ListServicesCommand).callsFake((input: { cluster?: string; nextToken?: string }) => {
      record('ListServices', input);
      if (input.cluster !== clusterArn(100)) return { serviceArns: [] };
      return input.nextToken === 'services-2'
        ? { serviceArns: Array.from({ length: 5 }, (_, i) => serviceArn('c100', 100 + i)) }
        : {
            serviceArns: Array.from({ length: 100 }, (_, i) => serviceArn('c100', i)),
            nextToken: 'services-2',
          };
    });
    // The last cluster follows a schedule, so all its 105 services are listed under it.
    ecs.on(DescribeClustersCommand).callsFake((input: { clusters?: string[] }) => ({
      clusters: (input.clusters ?? []).map((arn) => ({
        clusterArn: arn,
        clusterName: arn.split('/').pop(),
        tags: arn === clusterArn(100) ? [{ key: 'nightshift:schedule', value: 'office-hours' }] : [],
      })),
    }));
    ecs.on(DescribeServicesCommand).callsFake((input: { services?: string[] }) => ({
      services: (input.services ?? []).map((arn): Service => ({
        serviceArn: arn,
        serviceName: arn.split('/').pop(),
        status: 'ACTIVE',
        desiredCount: 0,
        tags: arn.endsWith('/s104')
          ? [{ key: 'nightshift:stopped', value: 'desired=3 at=2026-11-23T18:00:00Z' }]
          : [],
      })),
    }));
    // 101 groups: 100 on the first page (DescribeAutoScalingGroups' maximum), the parked one on the second.
    const group = (name: string, tags: AutoScalingGroup['Tags'] = []): AutoScalingGroup =>
      ({
        AutoScalingGroupName: name,
        MinSize: 0,
        MaxSize: 0,
        DesiredCapacity: 0,
        Tags: tags,
        Instances: [],
      }) as unknown as AutoScalingGroup;
    autoscaling.on(DescribeAutoScalingGroupsCommand).callsFake((input: { NextToken?: string }) =>
      record('DescribeAutoScalingGroups', input).NextToken === 'groups-2'
        ? {
            AutoScalingGroups: [
              group('g-parked', [
                { Key: 'nightshift:stopped', Value: 'min=1 desired=2 max=4 at=2026-11-23T18:00:00Z' },
              ]),
            ],
          }
        : {
            AutoScalingGroups: Array.from({ length: 100 }, (_, i) => group(`g${i}`)),
            NextToken: 'groups-2',
          },
    );
    // Instances restarted recently: the one on the second page counts as much as the first page's.
    ec2.on(DescribeInstancesCommand).callsFake((input: { NextToken?: string }) => {
      record('DescribeInstances', input);
      const instance = (id: string) => ({
        InstanceId: id,
        Tags: [
          { Key: 'nightshift:last-restart', Value: `at=${recently()} what=unit:nginx.service via=alarm` },
        ],
      });
      return input.NextToken === 'instances-2'
        ? { Reservations: [{ Instances: [instance('i-0000000000000second')] }] }
        : { Reservations: [{ Instances: [instance('i-00000000000000first')] }], NextToken: 'instances-2' };
    });
    // 101 snapshots in the copy region: the copy still in flight is on the second page (Marker).
    const snapshot = (id: string, status: string, tags: DBSnapshot['TagList'] = []): DBSnapshot => ({
      DBSnapshotIdentifier: id,
      DBSnapshotArn: `arn:aws:rds:eu-west-1:${ACCOUNT}:snapshot:${id}`,
      DBInstanceIdentifier: 'orders',
      SnapshotType: 'manual',
      Status: status,
      TagList: tags,
    });
    rds.on(DescribeDBSnapshotsCommand).callsFake((input: { Marker?: string }) =>
      record('DescribeDBSnapshots', input).Marker === 'snapshots-2'
        ? {
            DBSnapshots: [
              snapshot('orders-2026-11-23-03-24', 'copying', [
                {
                  Key: 'nightshift:source-arn',
                  Value: `arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:rds:orders-2026-11-23-03-24`,
                },
              ]),
            ],
          }
        : {
            DBSnapshots: Array.from({ length: 100 }, (_, i) => snapshot(`other-${i}`, 'available')),
            Marker: 'snapshots-2',
          },
    );
    rds.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] });
    // Databases on a schedule and parked ones: test/integration/cli-rds-override.test.ts pages them.
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [] });
    rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [] });
  });

  it('reads every page of clusters, services, groups, instances and snapshots, at the largest page sizes', async () => {
    // Prepare
    dynamo.on(ScanCommand).resolves({ Items: [] });

    // Act
    const run = await cli(['status', '--stage', 'stage', '--copy-region', 'eu-west-1', '--json']);
    const status = JSON.parse(run.out);

    // Assess
    expect(run.code).toBe(0);
    expect(status.parked).toEqual([
      {
        resource: 'group g-parked',
        detail:
          'parked at 2026-11-23T18:00:00Z (now min 0 desired 0 max 0); comes back to min 1 desired 2 max 4',
      },
      expect.objectContaining({ resource: 'service c100/s104' }),
    ]);
    expect(status.restarts.map((r: { resource: string }) => r.resource)).toEqual([
      'instance i-00000000000000first',
      'instance i-0000000000000second',
    ]);
    expect(status.copies).toEqual([
      {
        resource: 'snapshot eu-west-1/orders-2026-11-23-03-24',
        detail: `copying, copy of arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:rds:orders-2026-11-23-03-24`,
      },
    ]);
    // What was sent: each page asked for the most it may, and each token was followed.
    expect(sent.ListClusters).toEqual([{ maxResults: 100 }, { maxResults: 100, nextToken: 'clusters-2' }]);
    expect(
      sent.ListServices?.filter((input) => input.cluster === clusterArn(100)).map((input) => input.nextToken),
    ).toEqual([undefined, 'services-2']);
    expect(sent.ListServices?.every((input) => input.maxResults === 100)).toBe(true);
    const described = ecs.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input.services ?? []);
    expect(described.every((batch) => batch.length <= 10)).toBe(true);
    expect(described.flat()).toHaveLength(105);
    const clusters = ecs.commandCalls(DescribeClustersCommand).map((c) => c.args[0].input.clusters ?? []);
    expect(clusters.map((batch) => batch.length)).toEqual([100, 1]);
    expect(status.schedules).toHaveLength(105);
    expect(status.schedules[0]).toEqual({
      resource: 'service c100/s0',
      detail: expect.stringMatching(
        /^office-hours \(on cluster c100\): desired (running|stopped), actual stopped \(desiredCount 0\); next (start|stop) \w{3}( \d{4}-\d{2}-\d{2})? \d{2}:\d{2} Europe\/Berlin$/,
      ),
    });
    expect(sent.DescribeAutoScalingGroups).toEqual([
      { MaxRecords: 100 },
      { MaxRecords: 100, NextToken: 'groups-2' },
    ]);
    expect(sent.DescribeInstances?.map((input) => [input.MaxResults, input.NextToken])).toEqual([
      [1000, undefined],
      [1000, 'instances-2'],
    ]);
    expect(sent.DescribeDBSnapshots?.map((input) => input.Marker)).toEqual([undefined, 'snapshots-2']);
  });

  it('shows the leases held now and the work carried over, from every page of the stage’s lease table', async () => {
    // Prepare: a Scan page ends at 1 MB; the held lease is on the second page.
    const now = Date.now();
    dynamo.on(ScanCommand).callsFake((input: { ExclusiveStartKey?: unknown }) =>
      record('Scan', input).ExclusiveStartKey
        ? {
            Items: [
              {
                scope: { S: `arn:aws:ecs:eu-central-1:${ACCOUNT}:cluster/stage` },
                holder: { S: 'ecs-scheduler run 2f8e6c1a (local:ops@laptop)' },
                acquiredAt: { N: String(now - 180_000) },
                expiresAt: { N: String(now + 360_000) },
              },
            ],
          }
        : {
            Items: [
              {
                scope: { S: `arn:aws:ecs:eu-central-1:${ACCOUNT}:cluster/old` },
                holder: { S: 'ecs-scheduler run 0000 (nightshift-stage-ecs-scheduler)' },
                acquiredAt: { N: String(now - 7_200_000) },
                expiresAt: { N: String(now - 3_600_000) },
              },
              {
                scope: { S: 'carryover#snapshot-tags#sweep' },
                arns: { L: [{ S: 'arn:a' }, { S: 'arn:b' }] },
                savedAt: { N: String(Date.parse('2026-11-23T05:45:00Z')) },
              },
            ],
            LastEvaluatedKey: { scope: { S: 'carryover#snapshot-tags#sweep' } },
          },
    );

    // Act
    const run = await cli(['status', '--stage', 'stage', '--copy-region', 'eu-west-1', '--json']);
    const text = await cli(['status', '--stage', 'stage', '--copy-region', 'eu-west-1']);
    const status = JSON.parse(run.out);

    // Assess
    expect(sent.Scan?.slice(0, 2)).toEqual([
      { TableName: 'nightshift-stage-leases' },
      {
        TableName: 'nightshift-stage-leases',
        ExclusiveStartKey: { scope: { S: 'carryover#snapshot-tags#sweep' } },
      },
    ]);
    expect(status.leases).toEqual([
      {
        resource: `arn:aws:ecs:eu-central-1:${ACCOUNT}:cluster/stage`,
        detail: expect.stringMatching(
          /^held by ecs-scheduler run 2f8e6c1a \(local:ops@laptop\) for 3m \(since .*Z, expires .*Z\)$/,
        ),
      },
    ]);
    expect(status.carriedOver).toEqual([
      {
        resource: 'snapshot-tags sweep',
        detail:
          '2 resource(s) left undone by the last run (2026-11-23T05:45:00Z); the next sweep starts with them',
      },
    ]);
    expect(text.out).toContain('Leases held now (1):');
    expect(text.out).toContain('Work carried over to the next run (1):');
  });

  it('shows copies in flight marked with nightshift:copy-source as well as the legacy nightshift:source-arn', async () => {
    // Prepare: a cluster copy made since the marker was renamed
    dynamo.on(ScanCommand).resolves({ Items: [] });
    const source = `arn:aws:rds:eu-central-1:${ACCOUNT}:cluster-snapshot:rds:ledger-2026-11-23-03-10`;
    rds.on(DescribeDBClusterSnapshotsCommand).resolves({
      DBClusterSnapshots: [
        {
          DBClusterSnapshotIdentifier: 'ledger-2026-11-23-03-10',
          DBClusterSnapshotArn: `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster-snapshot:ledger-2026-11-23-03-10`,
          Status: 'copying',
          TagList: [{ Key: 'nightshift:copy-source', Value: source }],
        } as DBClusterSnapshot,
      ],
    });

    // Act
    const status = JSON.parse((await cli(['status', '--copy-region', 'eu-west-1', '--json'])).out);

    // Assess: both markers, the legacy one on the second page of instance snapshots
    expect(status.copies).toEqual([
      {
        resource: 'cluster snapshot eu-west-1/ledger-2026-11-23-03-10',
        detail: `copying, copy of ${source}`,
      },
      {
        resource: 'snapshot eu-west-1/orders-2026-11-23-03-24',
        detail: `copying, copy of arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:rds:orders-2026-11-23-03-24`,
      },
    ]);
  });

  it('shows ssm-restart’s restart guard: restarts in progress, flap guards latched, cooldowns and the last hour’s restarts', async () => {
    // Prepare: restart records as functions/ssm-restart/guard.ts writes them, one with fields this
    // CLI does not know
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const instance = (id: string) => `arn:aws:ec2:eu-central-1:${ACCOUNT}:instance/${id}`;
    const record = (
      arn: string,
      acquiredAt: number,
      expiresAt: number,
      data: Record<string, string>,
      extra: Record<string, unknown> = {},
    ) => ({
      scope: { S: `restart#${arn}` },
      holder: { S: 'ssm-restart run 9a1b (nightshift-stage-ssm-restart)' },
      token: { S: 't' },
      acquiredAt: { N: String(acquiredAt) },
      expiresAt: { N: String(expiresAt) },
      version: { N: '3' },
      data: { M: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, { S: v }])) },
      ...extra,
    });
    dynamo.on(ScanCommand).resolves({
      Items: [
        // In progress: its run ends in 5 minutes; in its cooldown
        record(instance('i-0000000000000busy'), now - 60_000, now + 840_000, {
          what: 'unit:nginx.service',
          via: 'on-demand',
          runUntil: iso(now + 300_000),
        }),
        // Flap guard latched 20 minutes ago after three alarm restarts
        record(instance('i-000000000000flaps'), now - 1_500_000, now + 30 * 86_400_000, {
          what: 'container:web',
          via: 'alarm',
          runUntil: iso(now - 1_400_000),
          restarts: [now - 3_000_000, now - 2_200_000, now - 1_500_000].map(iso).join(' '),
          flapped: iso(now - 1_200_000),
          reason: 'a field this CLI does not know',
        }),
        // Restarted by an alarm 40 minutes ago: the cooldown is over, the restart still counts for the hour
        record(
          `arn:aws:ecs:eu-central-1:${ACCOUNT}:service/shop/web`,
          now - 2_400_000,
          now - 1_500_000,
          {
            what: 'ecs-service',
            via: 'alarm',
            runUntil: iso(now - 2_300_000),
            restarts: iso(now - 2_400_000),
          },
          { note: { S: 'extra attribute' } },
        ),
        // Two days old: nothing to say
        record(instance('i-00000000000000old'), now - 2 * 86_400_000, now - 2 * 86_400_000 + 900_000, {
          what: 'unit:nginx.service',
          via: 'alarm',
          restarts: iso(now - 2 * 86_400_000),
        }),
      ],
    });

    // Act
    const run = await cli(['status', '--stage', 'stage', '--copy-region', 'eu-west-1', '--json']);
    const text = await cli(['status', '--stage', 'stage', '--copy-region', 'eu-west-1']);
    const status = JSON.parse(run.out);

    // Assess
    const by = 'by ssm-restart run 9a1b (nightshift-stage-ssm-restart)';
    expect(status.restartGuard).toEqual([
      {
        resource: 'instance i-0000000000000busy',
        detail:
          `restart in progress (unit:nginx.service via on-demand, ${by}) until ${iso(now + 300_000)} at the latest; ` +
          `alarm restarts wait for its cooldown until ${iso(now + 840_000)}; ` +
          `last restart unit:nginx.service via on-demand at ${iso(now - 60_000)} ${by}`,
      },
      {
        resource: 'instance i-000000000000flaps',
        detail:
          `flap guard latched since ${iso(now - 1_200_000)}: more alarm restarts in an hour than RESTART_MAX_PER_HOUR, ` +
          'so alarms restart it no more until a person restarts it on demand (nightshift restart); ' +
          `3 alarm restart(s) in the last hour (${[now - 3_000_000, now - 2_200_000, now - 1_500_000].map(iso).join(', ')}); ` +
          `last restart container:web via alarm at ${iso(now - 1_500_000)} ${by}`,
      },
      {
        resource: 'service shop/web',
        detail:
          `1 alarm restart(s) in the last hour (${iso(now - 2_400_000)}); ` +
          `last restart ecs-service via alarm at ${iso(now - 2_400_000)} ${by}`,
      },
    ]);
    // A restart record is not a lease a run holds.
    expect(status.leases).toEqual([]);
    expect(text.out).toContain('Restart guard (ssm-restart) (3):');
  });

  it('says so when the stage has no lease table in the region, without failing', async () => {
    dynamo
      .on(ScanCommand)
      .rejects(
        Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }),
      );

    const run = await cli(['status', '--stage', 'qa', '--copy-region', 'eu-west-1', '--json']);
    const text = await cli([
      'status',
      '--stage',
      'qa',
      '--copy-region',
      'eu-west-1',
      '--region',
      'eu-west-3',
    ]);

    expect(run.code).toBe(0);
    const note =
      'leases: stage qa has no lease table nightshift-qa-leases in eu-central-1, so the leases held now, the work ' +
      'carried over and the restart guard are not known here. Is the stage deployed in this region? (--stage, --region, --service-name)';
    expect(JSON.parse(run.out)).toMatchObject({ notes: [note], leasesUnknown: true });
    expect(text.code).toBe(0);
    expect(text.out).toContain(`note: ${note}`);
    expect(text.out).toContain(
      'Leases held now: not known (the lease table could not be read: see the note below)',
    );
    expect(text.out).not.toContain('Leases held now: none');
  });
});
