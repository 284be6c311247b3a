/**
 * What moto cannot show: instance refreshes (moto 5.2.1 answers DescribeInstanceRefreshes with a 500),
 * scaling activities (moto always answers none, on one page), pages past the first one of every read
 * (moto ignores ListContainerInstances' filter and never pages it), an instance stopped and started
 * (its LaunchTime resets), the deadline mid-read, and a call failing half-way through a roll-back.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AutoScalingClient,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeInstanceRefreshesCommand,
  DescribeScalingActivitiesCommand,
  ResumeProcessesCommand,
  SetDesiredCapacityCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  type Activity,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeContainerInstancesCommand,
  ECSClient,
  ListClustersCommand,
  ListContainerInstancesCommand,
  UpdateContainerInstancesStateCommand,
} from '@aws-sdk/client-ecs';
import { APPLY_RESERVE_MS, run, type Deps } from '#functions/instance-rotation/handler.ts';
import { RotationConfig } from '#functions/instance-rotation/config.ts';
import { parseEnv } from '#shared/env.ts';
import { RunLeases, type Lease, type LeaseStore } from '#shared/lease.ts';
import { runContext } from '#test/support/context.ts';

// Monday 2026-11-23 04:00 CET, inside the default window (weekdays 01:00-05:50 Europe/Berlin)
const NOW = new Date('2026-11-23T03:00:00Z');
// Monday 05:50 CET: the last run of the window
const LAST_RUN = new Date('2026-11-23T04:50:20Z');
const DAY = 86_400_000;
const ARN = 'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/web';
const autoscaling = mockClient(AutoScalingClient);
const ec2 = mockClient(EC2Client);
const ecs = mockClient(ECSClient);

/** The lease table, in memory: conditional writes as DynamoDB does them, for one process. */
const memoryLeases = (): LeaseStore => {
  const items = new Map<string, Lease>();
  return {
    table: 'nightshift-test-leases',
    read: async (scope) => items.get(scope),
    acquire: async (scope, owner, now, ttlMs) => {
      const held = items.get(scope);
      if (held && held.expiresAt > now && held.token !== owner.token) return { ok: false, heldBy: held };
      items.set(scope, {
        scope,
        ...owner,
        acquiredAt: now,
        expiresAt: new Date(now.getTime() + ttlMs),
        version: 1,
        data: {},
      });
      return { ok: true };
    },
    release: async (scope, owner) => {
      if (items.get(scope)?.token === owner.token) items.delete(scope);
    },
    compareAndSet: async () => false,
    remove: async (scope) => void items.delete(scope),
  };
};

let store: LeaseStore;
const leasesOf = (holder: string, now: Date) =>
  new RunLeases(
    store,
    { holder, token: holder },
    () => now,
    () => 900_000,
  );
/** The deployed function's timeout (serverless.yml): how long a run may go on changing things. */
const FUNCTION_TIMEOUT_MS = 120_000;
const ctxAt = (now: Date, extra: Parameters<typeof runContext>[0] = {}) =>
  runContext({
    leases: leasesOf('instance-rotation run', now),
    remainingMs: () => FUNCTION_TIMEOUT_MS,
    ...extra,
  });

const deps = (now = NOW, env: Record<string, string> = {}): Deps => ({
  clients: { autoscaling: new AutoScalingClient({}), ec2: new EC2Client({}), ecs: new ECSClient({}) },
  config: parseEnv(RotationConfig, env),
  now: () => now,
});

const GROUP: AutoScalingGroup = {
  AutoScalingGroupName: 'web',
  AutoScalingGroupARN: ARN,
  MinSize: 1,
  MaxSize: 3,
  DesiredCapacity: 2,
  Tags: [{ Key: 'nightshift:rotate', Value: 'true' }],
  Instances: [
    { InstanceId: 'i-0000000a', LifecycleState: 'InService', HealthStatus: 'Healthy' },
    { InstanceId: 'i-0000000b', LifecycleState: 'InService', HealthStatus: 'Healthy' },
  ],
} as AutoScalingGroup;

/** `web` with a rotation of i-0000000b in flight since `started`, desired raised to 3. */
const rotating = (started: string, extra: Partial<AutoScalingGroup> = {}): AutoScalingGroup =>
  ({
    ...GROUP,
    DesiredCapacity: 3,
    SuspendedProcesses: [{ ProcessName: 'AlarmNotification' }, { ProcessName: 'ScheduledActions' }],
    Tags: [
      { Key: 'nightshift:rotate', Value: 'true' },
      {
        Key: 'nightshift:rotation',
        Value: `desired=2 instance=i-0000000b phase=launching at=${started} started=${started} suspended=AlarmNotification+ScheduledActions`,
      },
    ],
    Instances: [
      ...(GROUP.Instances ?? []),
      { InstanceId: 'i-0000000d', LifecycleState: 'Pending', HealthStatus: 'Healthy' },
    ] as AutoScalingGroup['Instances'],
    ...extra,
  }) as AutoScalingGroup;

const activity = (i: number, status: string, start: Date): Activity =>
  ({
    ActivityId: `a-${i}`,
    AutoScalingGroupName: 'web',
    Description: `activity ${i}`,
    Cause: '',
    StartTime: start,
    StatusCode: status,
  }) as Activity;

const mutations = () =>
  autoscaling.calls().filter((c) => !/^Describe/.test((c.args[0] as object).constructor.name));

describe('instance-rotation with simulated AWS', () => {
  beforeEach(() => {
    store = memoryLeases();
    autoscaling.reset();
    ec2.reset();
    ecs.reset();
    autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [GROUP] });
    autoscaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });
    autoscaling.on(DescribeInstanceRefreshesCommand).resolves({ InstanceRefreshes: [] });
    ecs.on(ListClustersCommand).resolves({ clusterArns: [] });
    // i-…a was launched 40 days ago but stopped and started yesterday: its primary interface says so.
    // i-…b has been running 20 days. i-…d was launched at 05:35 CET.
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: 'i-0000000a',
              LaunchTime: new Date(NOW.getTime() - DAY),
              NetworkInterfaces: [
                { Attachment: { DeviceIndex: 0, AttachTime: new Date(NOW.getTime() - 40 * DAY) } },
              ],
            },
            { InstanceId: 'i-0000000b', LaunchTime: new Date(NOW.getTime() - 20 * DAY) },
            { InstanceId: 'i-0000000d', LaunchTime: new Date('2026-11-23T04:36:00Z') },
          ],
        },
      ],
    });
  });

  it('ages instances by their primary network interface, falling back to LaunchTime', async () => {
    const report = await run({ action: 'rotate', dryRun: true }, runContext(), deps());

    expect(report.resources[0]?.detail).toBe(
      'launch a replacement for i-0000000a (40d old, max 14d): desired 2 → 3; ' +
        'AlarmNotification, ScheduledActions, AZRebalance suspended until it is done; 1 more due after it',
    );
  });

  it('leaves a group alone while an instance refresh is in progress', async () => {
    autoscaling
      .on(DescribeInstanceRefreshesCommand)
      .resolves({ InstanceRefreshes: [{ InstanceRefreshId: 'r-1', Status: 'InProgress' }] });

    const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

    expect(report.resources[0]).toMatchObject({
      outcome: 'skipped',
      detail: 'instance refresh r-1 is InProgress',
    });
    expect(autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
  });

  it('treats not knowing about instance refreshes as unstable, not as none', async () => {
    autoscaling
      .on(DescribeInstanceRefreshesCommand)
      .rejects(Object.assign(new Error('boom'), { name: 'InternalFailure' }));

    const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

    expect(report.resources[0]).toMatchObject({ outcome: 'skipped' });
    expect(report.resources[0]?.detail).toBe(
      'could not tell whether an instance refresh is in progress (InternalFailure: boom)',
    );
    expect(autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
  });

  it('waits for scaling activities to finish before starting', async () => {
    autoscaling.on(DescribeScalingActivitiesCommand).resolves({
      Activities: [
        { ...activity(1, 'InProgress', NOW), Description: 'Terminating EC2 instance: i-0000000c' },
      ],
    });

    const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

    expect(report.resources[0]?.detail).toBe(
      'scaling activity in progress: Terminating EC2 instance: i-0000000c (InProgress)',
    );
  });

  describe('reads past the first page', () => {
    it('lists opted-in groups 100 a page, by tag key, following NextToken', async () => {
      const other = {
        ...GROUP,
        AutoScalingGroupName: 'api',
        AutoScalingGroupARN: ARN.replace('/web', '/api'),
      };
      autoscaling
        .on(DescribeAutoScalingGroupsCommand)
        .resolves({ AutoScalingGroups: [GROUP], NextToken: 'page-2' })
        .on(DescribeAutoScalingGroupsCommand, { NextToken: 'page-2' })
        .resolves({ AutoScalingGroups: [other] });

      const report = await run({ action: 'rotate', dryRun: true }, runContext(), deps());

      expect(report.resources.map((r) => r.arn)).toEqual([ARN, other.AutoScalingGroupARN]);
      expect(autoscaling.commandCalls(DescribeAutoScalingGroupsCommand)[0]?.args[0].input).toMatchObject({
        Filters: [{ Name: 'tag-key', Values: ['nightshift:rotate', 'nightshift:rotation'] }],
        MaxRecords: 100,
      });
    });

    it('names at most 50 groups a call', async () => {
      const names = Array.from({ length: 60 }, (_, i) => `g${i}`);

      await run({ action: 'rotate', groups: names, dryRun: true }, runContext(), deps());

      expect(
        autoscaling
          .commandCalls(DescribeAutoScalingGroupsCommand)
          .map((c) => c.args[0].input.AutoScalingGroupNames?.length),
      ).toEqual([50, 10]);
    });

    it('finds an activity in progress on the second page of scaling activities (100 a page)', async () => {
      // 100 finished activities of the last hour (a group relaunching failed instances), then one in progress
      const recent = Array.from({ length: 100 }, (_, i) =>
        activity(i, 'Failed', new Date(NOW.getTime() - i * 30_000)),
      );
      autoscaling
        .on(DescribeScalingActivitiesCommand)
        .resolves({ Activities: recent, NextToken: 'page-2' })
        .on(DescribeScalingActivitiesCommand, { NextToken: 'page-2' })
        .resolves({
          Activities: [
            {
              ...activity(100, 'WaitingForELBConnectionDraining', new Date(NOW.getTime() - 3_600_000)),
              Description: 'Terminating EC2 instance: i-0000000c',
            },
          ],
        });

      const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

      expect(report.resources[0]).toMatchObject({
        outcome: 'skipped',
        detail:
          'scaling activity in progress: Terminating EC2 instance: i-0000000c (WaitingForELBConnectionDraining)',
      });
      expect(
        autoscaling.commandCalls(DescribeScalingActivitiesCommand).map((c) => c.args[0].input.MaxRecords),
      ).toEqual([100, 100]);
      expect(autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
    });

    it('stops reading activities older than 48 hours, which can no longer be in progress', async () => {
      const old = Array.from({ length: 100 }, (_, i) =>
        activity(i, 'Successful', new Date(NOW.getTime() - 3 * DAY - i * 60_000)),
      );
      autoscaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: old, NextToken: 'more' });

      const report = await run({ action: 'rotate', dryRun: true }, runContext(), deps());

      expect(autoscaling.commandCalls(DescribeScalingActivitiesCommand)).toHaveLength(1);
      expect(report.resources[0]?.outcome).toBe('planned');
    });

    it('reads the age of instances from the second page of EC2 DescribeInstances', async () => {
      ec2
        .on(DescribeInstancesCommand)
        .resolves({
          Reservations: [
            { Instances: [{ InstanceId: 'i-0000000a', LaunchTime: new Date(NOW.getTime() - DAY) }] },
          ],
          NextToken: 'page-2',
        })
        .on(DescribeInstancesCommand, { NextToken: 'page-2' })
        .resolves({
          Reservations: [
            { Instances: [{ InstanceId: 'i-0000000b', LaunchTime: new Date(NOW.getTime() - 30 * DAY) }] },
          ],
        });

      const report = await run({ action: 'rotate', dryRun: true }, runContext(), deps());

      expect(report.resources[0]?.detail).toMatch(/^launch a replacement for i-0000000b \(30d old/);
      expect(ec2.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.MaxResults).toBe(1000);
    });

    it('finds the container instance in the second page of clusters and of container instances, described 100 at a time', async () => {
      const group = rotating('2026-11-23T02:00:00Z', {
        Instances: [
          ...(GROUP.Instances ?? []),
          { InstanceId: 'i-0000000d', LifecycleState: 'InService', HealthStatus: 'Healthy' },
        ] as AutoScalingGroup['Instances'],
      });
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [group] });
      const cluster = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
      const arns = Array.from(
        { length: 150 },
        (_, i) => `${cluster.replace(':cluster/', ':container-instance/')}/ci-${i}`,
      );
      ecs
        .on(ListClustersCommand)
        .resolves({ clusterArns: ['arn:aws:ecs:eu-central-1:123456789012:cluster/other'], nextToken: 'c2' })
        .on(ListClustersCommand, { nextToken: 'c2' })
        .resolves({ clusterArns: [cluster] })
        .on(ListContainerInstancesCommand)
        .resolves({ containerInstanceArns: [] })
        .on(ListContainerInstancesCommand, { cluster })
        .resolves({ containerInstanceArns: arns.slice(0, 100), nextToken: 'ci2' })
        .on(ListContainerInstancesCommand, { cluster, nextToken: 'ci2' })
        .resolves({ containerInstanceArns: arns.slice(100) })
        .on(DescribeContainerInstancesCommand)
        .callsFake((input: { containerInstances: string[] }) => ({
          containerInstances: input.containerInstances.map((arn) => ({
            containerInstanceArn: arn,
            ec2InstanceId: arn.endsWith('/ci-149') ? 'i-0000000b' : `i-${arn.split('-').pop()}`,
            status: 'ACTIVE',
            runningTasksCount: 2,
            pendingTasksCount: 0,
          })),
        }));
      ecs.on(UpdateContainerInstancesStateCommand).resolves({});
      autoscaling.on(CreateOrUpdateTagsCommand).resolves({});

      const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

      expect(report.resources[0]?.detail).toBe(
        'replacement in service (3 of 3); ECS container instance on i-0000000b set to DRAINING before it is terminated',
      );
      expect(ecs.commandCalls(UpdateContainerInstancesStateCommand)[0]?.args[0].input).toEqual({
        cluster,
        containerInstances: [arns[149]],
        status: 'DRAINING',
      });
      expect(ecs.commandCalls(ListContainerInstancesCommand)[1]?.args[0].input).toMatchObject({
        cluster,
        // The instance being rotated, and the one launched since the rotation began (its replacement)
        filter: "ec2InstanceId in ['i-0000000b', 'i-0000000d']",
        maxResults: 100,
      });
      expect(
        ecs
          .commandCalls(DescribeContainerInstancesCommand)
          .map((c) => c.args[0].input.containerInstances?.length),
      ).toEqual([100, 50]);
    });
  });

  describe('the deadline during reads (item 12)', () => {
    it('reports the run undone when the deadline comes while groups are listed, and changes nothing', async () => {
      autoscaling
        .on(DescribeAutoScalingGroupsCommand)
        .resolves({ AutoScalingGroups: [rotating('2026-11-23T04:00:00Z')], NextToken: 'p2' });

      const report = await run(
        { action: 'rotate' },
        ctxAt(LAST_RUN, { hasTime: () => false }),
        deps(LAST_RUN),
      );

      expect(report.resources).toEqual([
        {
          arn: '',
          type: 'run',
          outcome: 'undone',
          detail: expect.stringMatching(
            /^the Lambda was about to time out while reading Auto Scaling groups; nothing changed; rotations in flight stay as they are, with their processes suspended, outside the window \(this is the last run of its window/,
          ),
        },
      ]);
      expect(mutations()).toEqual([]);
    });

    it('reports a group undone, with what stays suspended, when the deadline comes while reading it', async () => {
      let time = true;
      autoscaling
        .on(DescribeAutoScalingGroupsCommand)
        .resolves({ AutoScalingGroups: [rotating('2026-11-23T04:00:00Z')] });
      autoscaling.on(DescribeScalingActivitiesCommand).callsFake(() => {
        time = false;
        return { Activities: [activity(1, 'Successful', LAST_RUN)], NextToken: 'more' };
      });

      const report = await run(
        { action: 'rotate' },
        ctxAt(LAST_RUN, { hasTime: () => time }),
        deps(LAST_RUN),
      );

      expect(report.resources).toEqual([
        {
          arn: ARN,
          type: 'autoscaling-group',
          outcome: 'undone',
          detail:
            'not read: the Lambda was about to time out while reading scaling activities of web; nothing changed — the next run starts with it; ' +
            'the rotation in flight stays as it is, with AlarmNotification, ScheduledActions suspended, outside its window ' +
            '(this is the last run of its window (Mon 2026-11-23 01:00 Europe/Berlin to Mon 2026-11-23 05:50 Europe/Berlin); ' +
            'the next run is Tue 2026-11-24 01:00 Europe/Berlin, 19h 9m away): run `nightshift rotate` for the group to finish or roll it back',
        },
      ]);
      expect(mutations()).toEqual([]);
    });

    it('starts with the groups the previous run left undone', async () => {
      const api = { ...GROUP, AutoScalingGroupName: 'api', AutoScalingGroupARN: ARN.replace('/web', '/api') };
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [GROUP, api] });
      let time = true;
      autoscaling.on(CreateOrUpdateTagsCommand).callsFake(() => {
        time = false;
        return {};
      });

      const report = await run(
        { action: 'rotate' },
        ctxAt(NOW, { hasTime: () => time, carried: { rotate: [api.AutoScalingGroupARN as string] } }),
        deps(),
      );

      expect(report.resources.map((r) => [r.arn.split('/').pop(), r.outcome])).toEqual([
        ['web', 'undone'],
        ['api', 'changed'],
      ]);
    });
  });

  describe('carried-over groups are read first (M3)', () => {
    const named = (n: number): AutoScalingGroup =>
      ({
        ...GROUP,
        AutoScalingGroupName: `g${n}`,
        AutoScalingGroupARN: ARN.replace('/web', `/g${n}`),
        Instances: [
          {
            InstanceId: `i-${String(n).padStart(8, '0')}a`,
            LifecycleState: 'InService',
            HealthStatus: 'Healthy',
          },
        ],
        DesiredCapacity: 1,
      }) as AutoScalingGroup;

    it('reads g5 and g6, carried over, first when the deadline allows only part of the reads', async () => {
      const groups = [1, 2, 3, 4, 5, 6].map(named);
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: groups });
      // The deadline comes while the third group's activities are read: the rest are not started
      let time = true;
      let reads = 0;
      autoscaling.on(DescribeScalingActivitiesCommand).callsFake(() => {
        reads += 1;
        if (reads === 3) time = false;
        return { Activities: [] };
      });
      const carried = [groups[4], groups[5]].map((g) => g?.AutoScalingGroupARN as string);

      const report = await run(
        { action: 'rotate', dryRun: true },
        runContext({ hasTime: () => time, carried: { rotate: carried } }),
        deps(),
      );

      const read = autoscaling
        .commandCalls(DescribeScalingActivitiesCommand)
        .map((c) => c.args[0].input.AutoScalingGroupName);
      expect(read).toEqual(['g5', 'g6', 'g1']);
      expect(
        report.resources.filter((r) => r.outcome === 'undone').map((r) => r.arn.split('/').pop()),
      ).toEqual(['g2', 'g3', 'g4']);
      // The report keeps the order AWS lists the groups in, the unread ones after them
      expect(report.resources.map((r) => r.arn.split('/').pop())).toEqual([
        'g1',
        'g5',
        'g6',
        'g2',
        'g3',
        'g4',
      ]);
    });

    it('stops reading APPLY_RESERVE_MS before the deadline and applies what it read, carried-over groups first', async () => {
      const groups = [1, 2, 3, 4, 5, 6].map(named);
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: groups });
      autoscaling.on(CreateOrUpdateTagsCommand).resolves({});
      autoscaling.on(SuspendProcessesCommand).resolves({});
      autoscaling.on(SetDesiredCapacityCommand).resolves({});
      // 60 s left until the third group's activities are read, then 25 s: inside the reserve kept for
      // applying, but well before the Lambda's own deadline (hasTime stays true throughout)
      let left = 60_000;
      let reads = 0;
      autoscaling.on(DescribeScalingActivitiesCommand).callsFake(() => {
        reads += 1;
        if (reads === 3) left = APPLY_RESERVE_MS - 5_000;
        return { Activities: [] };
      });
      const carried = [groups[4], groups[5]].map((g) => g?.AutoScalingGroupARN as string);

      const report = await run(
        { action: 'rotate', maxAge: '0h' },
        ctxAt(NOW, { remainingMs: () => left, carried: { rotate: carried } }),
        deps(),
      );

      expect(report.resources.map((r) => [r.arn.split('/').pop(), r.outcome])).toEqual([
        ['g1', 'changed'],
        ['g5', 'changed'],
        ['g6', 'changed'],
        ['g2', 'undone'],
        ['g3', 'undone'],
        ['g4', 'undone'],
      ]);
      expect(
        autoscaling.commandCalls(SetDesiredCapacityCommand).map((c) => c.args[0].input.AutoScalingGroupName),
      ).toEqual(['g5', 'g6', 'g1']);
    });

    it('reads the groups with a rotation in flight before those with none', async () => {
      const inFlight = {
        ...named(3),
        DesiredCapacity: 2,
        Tags: [
          { Key: 'nightshift:rotate', Value: 'true' },
          {
            Key: 'nightshift:rotation',
            Value:
              'desired=1 instance=i-00000003a phase=launching at=2026-11-23T02:50:00Z started=2026-11-23T02:50:00Z suspended=none',
          },
        ],
      } as AutoScalingGroup;
      autoscaling
        .on(DescribeAutoScalingGroupsCommand)
        .resolves({ AutoScalingGroups: [named(1), named(2), inFlight, named(4)] });
      let time = true;
      autoscaling.on(DescribeScalingActivitiesCommand).callsFake(() => {
        time = false;
        return { Activities: [] };
      });

      const report = await run(
        { action: 'rotate', dryRun: true },
        runContext({ hasTime: () => time }),
        deps(),
      );

      expect(
        autoscaling
          .commandCalls(DescribeScalingActivitiesCommand)
          .map((c) => c.args[0].input.AutoScalingGroupName),
      ).toEqual(['g3']);
      expect(report.resources.find((r) => r.arn.endsWith('/g3'))?.outcome).not.toBe('undone');
    });

    it('settles the container instances of carried-over groups first when the deadline cuts the ECS lookup', async () => {
      // 25 groups: their next instances to rotate are looked up 20 at a time; the deadline comes
      // after the first batch
      const groups = Array.from({ length: 25 }, (_, i) => named(i + 1));
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: groups });
      const cluster = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
      let time = true;
      ecs
        .on(ListClustersCommand)
        .resolves({ clusterArns: [cluster] })
        .on(ListContainerInstancesCommand)
        .resolves({ containerInstanceArns: [] })
        .on(DescribeContainerInstancesCommand)
        .resolves({ containerInstances: [] });
      ecs.on(ListContainerInstancesCommand).callsFake(() => {
        time = false;
        return { containerInstanceArns: [] };
      });
      const carried = [groups[23], groups[24]].map((g) => g?.AutoScalingGroupARN as string);

      const report = await run(
        { action: 'rotate', dryRun: true },
        runContext({ hasTime: () => time, carried: { rotate: carried } }),
        deps(),
      );

      expect(ecs.commandCalls(ListContainerInstancesCommand)[0]?.args[0].input.filter).toMatch(
        /^ec2InstanceId in \['i-00000024a', 'i-00000025a', 'i-00000001a', .*'i-00000018a'\]$/,
      );
      const undone = report.resources
        .filter((r) => r.outcome === 'undone')
        .map((r) => r.arn.split('/').pop());
      expect(undone).toEqual(['g19', 'g20', 'g21', 'g22', 'g23']);
      expect(report.resources.find((r) => r.arn.endsWith('/g24'))?.outcome).toBe('unchanged');
      expect(report.resources.find((r) => r.arn.endsWith('/g25'))?.outcome).toBe('unchanged');
    });
  });

  describe('the last run of the window (item 2)', () => {
    beforeEach(() => {
      autoscaling
        .on(DescribeAutoScalingGroupsCommand)
        .resolves({ AutoScalingGroups: [rotating('2026-11-23T04:35:00Z')] });
      autoscaling.on(TerminateInstanceInAutoScalingGroupCommand).resolves({});
      autoscaling.on(ResumeProcessesCommand).resolves({});
      autoscaling.on(DeleteTagsCommand).resolves({});
    });

    it('terminates the replacement by id, decrementing desired, then resumes what it suspended and clears its state', async () => {
      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(mutations().map((c) => [(c.args[0] as object).constructor.name, c.args[0].input])).toEqual([
        [
          'TerminateInstanceInAutoScalingGroupCommand',
          { InstanceId: 'i-0000000d', ShouldDecrementDesiredCapacity: true },
        ],
        [
          'ResumeProcessesCommand',
          { AutoScalingGroupName: 'web', ScalingProcesses: ['AlarmNotification', 'ScheduledActions'] },
        ],
        [
          'DeleteTagsCommand',
          { Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'nightshift:rotation' }] },
        ],
      ]);
      expect(autoscaling.commandCalls(SuspendProcessesCommand)).toHaveLength(0);
    });

    it('fails the row, saying processes stay suspended, when resuming them fails at the last run', async () => {
      autoscaling
        .on(ResumeProcessesCommand)
        .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));

      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        error:
          'resume scaling processes (ResumeProcesses) failed: Throttling: Rate exceeded; done before it: terminate the replacement (TerminateInstanceInAutoScalingGroup); ' +
          'AlarmNotification, ScheduledActions stay suspended outside the window until a run ends the rotation: run `nightshift rotate --group web`, or resume them by hand',
      });
      expect(autoscaling.commandCalls(DeleteTagsCommand)).toHaveLength(0);
    });

    it('resumes the processes anyway when an earlier roll-back call fails at the last run, keeping the state for the next run', async () => {
      autoscaling
        .on(TerminateInstanceInAutoScalingGroupCommand)
        .rejects(Object.assign(new Error('instance is in Pending state'), { name: 'ValidationError' }));

      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        error:
          'terminate the replacement (TerminateInstanceInAutoScalingGroup) failed: ValidationError: instance is in Pending state; nothing was changed; ' +
          'AlarmNotification, ScheduledActions resumed anyway, so nothing stays suspended outside the window; ' +
          "the rotation's state is kept for the next run to finish undoing it (or run `nightshift rotate --group web`)",
      });
      expect(autoscaling.commandCalls(ResumeProcessesCommand)[0]?.args[0].input).toEqual({
        AutoScalingGroupName: 'web',
        ScalingProcesses: ['AlarmNotification', 'ScheduledActions'],
      });
      expect(autoscaling.commandCalls(DeleteTagsCommand)).toHaveLength(0);
    });

    it('fails the row when another run holds the lease at the last run, since the rotation cannot be ended', async () => {
      await leasesOf('ecs-scheduler run 7c1d (nightshift-dev-ecs-scheduler)', LAST_RUN).take(ARN);

      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        detail: expect.stringMatching(
          /^another run holds the lease on it: ecs-scheduler run 7c1d \(nightshift-dev-ecs-scheduler\), for 0m .*; the rotation in flight stays as it is, with AlarmNotification, ScheduledActions suspended, outside its window/,
        ),
      });
      expect(mutations()).toEqual([]);
    });

    it('reports a group whose lease another run holds at the last run undone when its rotation has nothing suspended any more', async () => {
      // A roll-back draining its replacement: its processes were resumed already
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [
          rotating('2026-11-23T04:35:00Z', {
            SuspendedProcesses: [],
            Tags: [
              { Key: 'nightshift:rotate', Value: 'true' },
              {
                Key: 'nightshift:rotation',
                Value:
                  'desired=2 instance=i-0000000b phase=rolling-back at=2026-11-23T04:40:00Z started=2026-11-23T04:35:00Z suspended=none replacement=i-0000000d',
              },
            ],
          }),
        ],
      });
      await leasesOf('ecs-scheduler run 7c1d (nightshift-dev-ecs-scheduler)', LAST_RUN).take(ARN);

      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({
        outcome: 'undone',
        detail: expect.stringMatching(
          /^another run holds the lease on it: ecs-scheduler run 7c1d [^;]*; nothing changed — run again once it is done$/,
        ),
      });
      expect(mutations()).toEqual([]);
    });

    it('reports a group whose lease another run holds inside the window undone, changing nothing', async () => {
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [GROUP] });
      await leasesOf('ecs-scheduler run 7c1d (nightshift-dev-ecs-scheduler)', NOW).take(ARN);

      const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

      // Its work is still to do: undone, so it is carried over and the undone alarm counts it
      expect(report.resources[0]).toMatchObject({
        outcome: 'undone',
        detail: expect.stringMatching(/^another run holds the lease on it: ecs-scheduler run 7c1d/),
      });
      expect(report.summary).toMatchObject({ undone: 1, skipped: 0 });
      expect(mutations()).toEqual([]);
      // The lease is taken before the state is read, and the group read again under it
      expect(autoscaling.commandCalls(DescribeScalingActivitiesCommand)).toHaveLength(0);
    });

    it('fails a group whose lease cannot be taken because the lease table cannot be used, changing nothing', async () => {
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [GROUP] });
      store = {
        ...memoryLeases(),
        acquire: async () => ({
          ok: false,
          error: 'ResourceNotFoundException: Requested resource not found',
        }),
      };

      const report = await run({ action: 'rotate' }, ctxAt(NOW), deps());

      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        detail:
          'could not take a lease in nightshift-test-leases (ResourceNotFoundException: Requested resource not found); ' +
          'nothing changed: without a lease another run could act on it at the same time',
      });
      expect(mutations()).toEqual([]);
    });
  });

  describe('telling the replacement apart (review risks 1 and 2)', () => {
    // The rotation of i-…b began at 05:35 CET; its replacement i-…d never became healthy; meanwhile
    // i-…a failed its health check and the group replaced it with i-…e (ReplaceUnhealthy)
    const STARTED = '2026-11-23T04:35:00Z';
    const activities: Activity[] = [
      {
        ...activity(3, 'Successful', new Date('2026-11-23T04:45:10Z')),
        Description: 'Launching a new EC2 instance: i-0000000e',
        Cause:
          'At 2026-11-23T04:45:02Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 2 to 3.',
      },
      {
        ...activity(2, 'Successful', new Date('2026-11-23T04:44:30Z')),
        Description: 'Terminating EC2 instance: i-0000000a',
        Cause:
          'At 2026-11-23T04:44:28Z an instance was taken out of service in response to an EC2 instance status checks failure.',
      },
      {
        ...activity(1, 'Successful', new Date('2026-11-23T04:35:20Z')),
        Description: 'Launching a new EC2 instance: i-0000000d',
        Cause:
          'At 2026-11-23T04:35:12Z a user request explicitly set group desired capacity changing the desired capacity from 2 to 3.  ' +
          'At 2026-11-23T04:35:18Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 2 to 3.',
      },
    ];
    const group = rotating(STARTED, {
      Instances: [
        { InstanceId: 'i-0000000b', LifecycleState: 'InService', HealthStatus: 'Healthy' },
        { InstanceId: 'i-0000000d', LifecycleState: 'InService', HealthStatus: 'Unhealthy' },
        { InstanceId: 'i-0000000e', LifecycleState: 'InService', HealthStatus: 'Healthy' },
      ] as AutoScalingGroup['Instances'],
    });

    beforeEach(() => {
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [group] });
      autoscaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: activities });
      ec2.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              { InstanceId: 'i-0000000b', LaunchTime: new Date(NOW.getTime() - 20 * DAY) },
              { InstanceId: 'i-0000000d', LaunchTime: new Date('2026-11-23T04:35:18Z') },
              { InstanceId: 'i-0000000e', LaunchTime: new Date('2026-11-23T04:45:02Z') },
            ],
          },
        ],
      });
      for (const command of [
        TerminateInstanceInAutoScalingGroupCommand,
        ResumeProcessesCommand,
        DeleteTagsCommand,
        CreateOrUpdateTagsCommand,
        SetDesiredCapacityCommand,
      ] as const)
        autoscaling.on(command as never).resolves({});
    });

    it('records the replacement its launch activity names, at a run inside the window', async () => {
      const before = new Date('2026-11-23T04:46:00Z');

      const report = await run({ action: 'rotate' }, ctxAt(before), deps(before));

      expect(report.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(mutations().map((c) => c.args[0].input)).toEqual([
        {
          Tags: [
            {
              ResourceId: 'web',
              ResourceType: 'auto-scaling-group',
              Key: 'nightshift:rotation',
              Value: `desired=2 instance=i-0000000b phase=launching at=${STARTED} started=${STARTED} suspended=AlarmNotification+ScheduledActions replacement=i-0000000d`,
              PropagateAtLaunch: false,
            },
          ],
        },
      ]);
    });

    it('closes the window at an on-demand run that may still hold the group when the last run starts', async () => {
      // 05:49:00 Berlin, on demand: the window's last run (05:50) starts before this run's deadline
      // (120 s), and would find the group held and end nothing. This run closes the window itself.
      const late = new Date('2026-11-23T04:49:00Z');

      const report = await run({ action: 'rotate' }, ctxAt(late), deps(late));

      expect(report.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(mutations().map((c) => (c.args[0] as object).constructor.name)).toEqual([
        'TerminateInstanceInAutoScalingGroupCommand',
        'ResumeProcessesCommand',
        'DeleteTagsCommand',
      ]);
      expect(mutations()[0]!.args[0].input).toEqual({
        InstanceId: 'i-0000000d',
        ShouldDecrementDesiredCapacity: true,
      });
    });

    it('keeps the window open at a run that ends before the last run starts', async () => {
      const earlier = new Date('2026-11-23T04:47:30Z');

      await run({ action: 'rotate' }, ctxAt(earlier), deps(earlier));

      expect(mutations().map((c) => (c.args[0] as object).constructor.name)).toEqual([
        'CreateOrUpdateTagsCommand',
      ]);
      expect(autoscaling.commandCalls(ResumeProcessesCommand)).toHaveLength(0);
    });

    it('terminates at the last run the instance our SetDesiredCapacity launched, never the one that replaced an unhealthy instance', async () => {
      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(mutations().map((c) => [(c.args[0] as object).constructor.name, c.args[0].input])).toEqual([
        [
          'TerminateInstanceInAutoScalingGroupCommand',
          { InstanceId: 'i-0000000d', ShouldDecrementDesiredCapacity: true },
        ],
        [
          'ResumeProcessesCommand',
          { AutoScalingGroupName: 'web', ScalingProcesses: ['AlarmNotification', 'ScheduledActions'] },
        ],
        [
          'DeleteTagsCommand',
          { Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'nightshift:rotation' }] },
        ],
      ]);
      expect(autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
    });

    it('lets the group pick no victim when its activities cannot tell: resumes, keeps the state, fails the row', async () => {
      // Our launch's activity is not listed (say it was beyond what could be read)
      autoscaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: activities.slice(0, 2) });

      const report = await run({ action: 'rotate' }, ctxAt(LAST_RUN), deps(LAST_RUN));

      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        error: expect.stringMatching(
          /^cannot tell which instance is the replacement of i-0000000b: 2 instances launched since the rotation began are in the group \(i-0000000d, i-0000000e\); the group took out i-0000000a since the rotation began/,
        ),
      });
      expect(mutations().map((c) => (c.args[0] as object).constructor.name)).toEqual([
        'ResumeProcessesCommand',
        'CreateOrUpdateTagsCommand',
      ]);
      expect(autoscaling.commandCalls(CreateOrUpdateTagsCommand)[0]?.args[0].input.Tags?.[0]?.Value).toBe(
        `desired=2 instance=i-0000000b phase=launching at=${STARTED} started=${STARTED} suspended=none`,
      );
    });
  });

  describe('the plan digest', () => {
    it('returns the digest of a dry run, applies the same plan, and refuses a plan that changed', async () => {
      autoscaling.on(CreateOrUpdateTagsCommand).resolves({});
      autoscaling.on(SuspendProcessesCommand).resolves({});
      autoscaling.on(SetDesiredCapacityCommand).resolves({});
      const dry = await run({ action: 'rotate', dryRun: true }, runContext(), deps());

      // The person confirms three minutes later, while the group was changed in between
      autoscaling
        .on(DescribeAutoScalingGroupsCommand)
        .resolves({ AutoScalingGroups: [{ ...GROUP, DesiredCapacity: 1, MinSize: 1 }] });
      const later = new Date(NOW.getTime() + 3 * 60_000);
      const refused = await run({ action: 'rotate', planDigest: dry.planDigest }, ctxAt(later), deps(later));
      autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [GROUP] });
      const applied = await run({ action: 'rotate', planDigest: dry.planDigest }, ctxAt(later), deps(later));

      expect(dry.planDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(refused.resources[0]).toMatchObject({
        outcome: 'skipped',
        detail: expect.stringMatching(/^the plan changed since it was confirmed/),
      });
      expect(applied.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(1);
    });
  });
});
