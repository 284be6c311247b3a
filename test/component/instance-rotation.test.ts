/**
 * What moto cannot show: instance refreshes (moto 5.2.1 answers DescribeInstanceRefreshes with a 500),
 * scaling activities in progress, and an instance stopped and started (its LaunchTime resets).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeInstanceRefreshesCommand,
  DescribeScalingActivitiesCommand,
  SetDesiredCapacityCommand,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient } from '@aws-sdk/client-ecs';
import { run, type Deps } from '#functions/instance-rotation/handler.ts';
import { runContext } from '#test/support/context.ts';

const NOW = new Date('2026-11-23T03:00:00Z');
const DAY = 86_400_000;
const ctx = runContext();
const autoscaling = mockClient(AutoScalingClient);
const ec2 = mockClient(EC2Client);
mockClient(ECSClient);

const deps = (): Deps => ({
  clients: { autoscaling: new AutoScalingClient({}), ec2: new EC2Client({}), ecs: new ECSClient({}) },
  config: { MAX_AGE: { text: '14d', ms: 14 * DAY }, REPLACEMENT_TIMEOUT_MINUTES: 60, DRY_RUN: false },
  now: () => NOW,
});

const GROUP: AutoScalingGroup = {
  AutoScalingGroupName: 'web',
  AutoScalingGroupARN:
    'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/web',
  MinSize: 1,
  MaxSize: 3,
  DesiredCapacity: 2,
  Tags: [{ Key: 'nightshift:rotate', Value: 'true' }],
  Instances: [
    { InstanceId: 'i-0000000a', LifecycleState: 'InService', HealthStatus: 'Healthy' },
    { InstanceId: 'i-0000000b', LifecycleState: 'InService', HealthStatus: 'Healthy' },
  ],
} as AutoScalingGroup;

describe('instance-rotation with simulated Auto Scaling', () => {
  beforeEach(() => {
    autoscaling.reset();
    ec2.reset();
    autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [GROUP] });
    autoscaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });
    autoscaling.on(DescribeInstanceRefreshesCommand).resolves({ InstanceRefreshes: [] });
    autoscaling.on(SetDesiredCapacityCommand).resolves({});
    // i-…a was launched 40 days ago but stopped and started yesterday: its primary interface says so.
    // i-…b has been running 20 days.
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
          ],
        },
      ],
    });
  });

  it('ages instances by their primary network interface, falling back to LaunchTime', async () => {
    const report = await run({ action: 'rotate', dryRun: true }, ctx, deps());

    expect(report.resources[0]?.detail).toBe(
      'launch a replacement for i-0000000a (40d old, max 14d): desired 2 → 3; ' +
        'AlarmNotification, ScheduledActions, AZRebalance suspended until it is done; 1 more due after it',
    );
  });

  it('leaves a group alone while an instance refresh is in progress', async () => {
    autoscaling
      .on(DescribeInstanceRefreshesCommand)
      .resolves({ InstanceRefreshes: [{ InstanceRefreshId: 'r-1', Status: 'InProgress' }] });

    const report = await run({ action: 'rotate' }, ctx, deps());

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

    const report = await run({ action: 'rotate' }, ctx, deps());

    expect(report.resources[0]).toMatchObject({ outcome: 'skipped' });
    expect(report.resources[0]?.detail).toBe(
      'could not tell whether an instance refresh is in progress (InternalFailure: boom)',
    );
    expect(autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
  });

  it('waits for scaling activities to finish before starting', async () => {
    autoscaling.on(DescribeScalingActivitiesCommand).resolves({
      Activities: [
        {
          Description: 'Terminating EC2 instance: i-0000000c',
          StatusCode: 'InProgress',
          ActivityId: '1',
          AutoScalingGroupName: 'web',
          Cause: '',
          StartTime: NOW,
        },
      ],
    });

    const report = await run({ action: 'rotate' }, ctx, deps());

    expect(report.resources[0]?.detail).toBe(
      'scaling activity in progress: Terminating EC2 instance: i-0000000c (InProgress)',
    );
  });
});
