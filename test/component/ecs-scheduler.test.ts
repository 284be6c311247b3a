/**
 * What moto cannot show: a call failing for one resource mid-run, a run resuming after it, and a
 * Lambda running out of time. AWS is simulated with aws-sdk-client-mock.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  DescribeCapacityProvidersCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  ECSClient,
  ListClustersCommand,
  ListServicesCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  AutoScalingClient,
  CreateOrUpdateTagsCommand,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';

const ecs = mockClient(ECSClient);
const scaling = mockClient(ApplicationAutoScalingClient);
const autoscaling = mockClient(AutoScalingClient);

const ACCOUNT = 'arn:aws:ecs:eu-central-1:123456789012';
const GROUP_ARN =
  'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1111:autoScalingGroupName/stage-nodes';
const serviceArn = (name: string) => `${ACCOUNT}:service/stage/${name}`;

const deps = (): Deps => ({
  clients: {
    ecs: new ECSClient({}),
    scaling: new ApplicationAutoScalingClient({}),
    autoscaling: new AutoScalingClient({}),
  },
  config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
  now: () => new Date('2026-11-23T18:00:00Z'),
});
const ctx = (hasTime: () => boolean = () => true) => runContext({ hasTime });

/** A stage cluster with `names.length` plain services at desiredCount 2 on one capacity group. */
const stageCluster = (names: string[], savedTags: Record<string, string> = {}) => {
  ecs.on(DescribeClustersCommand).resolves({
    clusters: [
      {
        clusterArn: `${ACCOUNT}:cluster/stage`,
        clusterName: 'stage',
        status: 'ACTIVE',
        tags: [{ key: 'env', value: 'stage' }],
        capacityProviders: ['stage-cp'],
      },
    ],
    failures: [],
  });
  ecs.on(ListClustersCommand).resolves({ clusterArns: [`${ACCOUNT}:cluster/stage`] });
  ecs.on(ListServicesCommand).resolves({ serviceArns: names.map(serviceArn) });
  ecs.on(DescribeServicesCommand).callsFake((input: { services: string[] }) => ({
    services: input.services.map((arn) => {
      const name = arn.split('/').pop() ?? '';
      const saved = savedTags[name];
      return {
        serviceArn: arn,
        serviceName: name,
        status: 'ACTIVE',
        schedulingStrategy: 'REPLICA',
        desiredCount: saved ? 0 : 2,
        tags: saved ? [{ key: 'nightshift:stopped', value: saved }] : [],
      };
    }),
  }));
  ecs.on(DescribeCapacityProvidersCommand).resolves({
    capacityProviders: [{ name: 'stage-cp', autoScalingGroupProvider: { autoScalingGroupArn: GROUP_ARN } }],
  });
  scaling.on(DescribeScalableTargetsCommand).resolves({ ScalableTargets: [] });
  autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'stage-nodes',
        AutoScalingGroupARN: GROUP_ARN,
        MinSize: 1,
        MaxSize: 3,
        DesiredCapacity: 2,
        Tags: [],
      } as never,
    ],
  });
};

describe('ecs-scheduler with simulated AWS failures', () => {
  beforeEach(() => {
    ecs.reset();
    scaling.reset();
    autoscaling.reset();
  });

  it('stops the other services when one fails, and leaves their shared capacity running', async () => {
    // Prepare
    stageCluster(['a', 'b', 'c']);
    ecs.on(TagResourceCommand).resolves({});
    ecs.on(UpdateServiceCommand).resolves({});
    ecs
      .on(UpdateServiceCommand, { service: 'b' })
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));

    // Act
    const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

    // Assess
    expect(report.resources.map((r) => `${r.arn.split('/').pop()} ${r.outcome}`)).toEqual([
      'a changed',
      'b failed',
      'c changed',
      'stage-nodes skipped',
    ]);
    expect(report.resources[1]?.error).toBe(
      'set desiredCount (UpdateService) failed: ThrottlingException: Rate exceeded; done before it: save state (TagResource)',
    );
    expect(report.resources[3]?.detail).toBe(
      `capacity left running: ${serviceArn('b')} did not stop (failed); nothing changed`,
    );
    expect(autoscaling.commandCalls(UpdateAutoScalingGroupCommand)).toHaveLength(0);
    expect(autoscaling.commandCalls(CreateOrUpdateTagsCommand)).toHaveLength(0);
  });

  it('finishes an interrupted stop without saving the state again', async () => {
    // Prepare: b was saved (desired=2) but its UpdateService never happened; it still runs 2.
    stageCluster(['b']);
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        {
          serviceArn: serviceArn('b'),
          serviceName: 'b',
          status: 'ACTIVE',
          desiredCount: 2,
          tags: [{ key: 'nightshift:stopped', value: 'desired=2 at=2026-11-23T17:00:00Z' }],
        },
      ],
    });
    ecs.on(UpdateServiceCommand).resolves({});
    autoscaling.on(CreateOrUpdateTagsCommand).resolves({});
    autoscaling.on(UpdateAutoScalingGroupCommand).resolves({});

    // Act
    const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

    // Assess
    expect(ecs.commandCalls(TagResourceCommand)).toHaveLength(0);
    expect(ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toEqual({
      cluster: 'stage',
      service: 'b',
      desiredCount: 0,
    });
    expect(report.summary).toMatchObject({ changed: 2, failed: 0 });
    expect(autoscaling.commandCalls(UpdateAutoScalingGroupCommand)[0]?.args[0].input).toEqual({
      AutoScalingGroupName: 'stage-nodes',
      MinSize: 0,
      MaxSize: 0,
      DesiredCapacity: 0,
    });
  });

  it('keeps the saved state when a restore fails, so the next start can finish', async () => {
    stageCluster(['a'], { a: 'desired=2 min=1 max=4 suspended=none at=2026-11-23T17:00:00Z' });
    scaling.on(DescribeScalableTargetsCommand).resolves({
      ScalableTargets: [
        {
          ResourceId: 'service/stage/a',
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          MinCapacity: 0,
          MaxCapacity: 0,
          SuspendedState: {
            DynamicScalingInSuspended: true,
            DynamicScalingOutSuspended: true,
            ScheduledScalingSuspended: true,
          },
          CreationTime: new Date(),
          RoleARN:
            'arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService',
        },
      ],
    });
    scaling.on(RegisterScalableTargetCommand).resolves({});
    ecs
      .on(UpdateServiceCommand)
      .rejects(Object.assign(new Error('service is draining'), { name: 'InvalidParameterException' }));

    const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

    const row = report.resources.find((r) => r.type === 'ecs-service');
    expect(row).toMatchObject({ outcome: 'failed' });
    expect(row?.error).toMatch(
      /^set desiredCount \(UpdateService\) failed: InvalidParameterException: service is draining; done before it: restore scaling/,
    );
    expect(ecs.commandCalls(UntagResourceCommand)).toHaveLength(0);
    expect(scaling.commandCalls(RegisterScalableTargetCommand)[0]?.args[0].input).toMatchObject({
      ResourceId: 'service/stage/a',
      MinCapacity: 1,
      MaxCapacity: 4,
      SuspendedState: {
        DynamicScalingInSuspended: false,
        DynamicScalingOutSuspended: false,
        ScheduledScalingSuspended: false,
      },
    });
  });

  it('stops starting new work when the Lambda is about to time out, and reports what is left', async () => {
    stageCluster(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    ecs.on(TagResourceCommand).resolves({});
    ecs.on(UpdateServiceCommand).resolves({});
    let budget = 2;

    const report = await run(
      { action: 'stop', clusters: ['stage'] },
      ctx(() => budget-- > 0),
      deps(),
    );

    expect(report.summary).toEqual({
      changed: 2,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 6,
      failed: 0,
    });
    const notStarted = report.resources.filter((r) => r.outcome === 'undone');
    expect(notStarted).toHaveLength(6);
    expect(notStarted[0]?.detail).toMatch(
      /^not started: the Lambda was about to time out; the next run starts with it \(would have: desiredCount 2 → 0;/,
    );
    expect(ecs.commandCalls(UpdateServiceCommand)).toHaveLength(2);
    expect(autoscaling.commandCalls(UpdateAutoScalingGroupCommand)).toHaveLength(0);
  });

  it('reads services 10 at a time with their tags, and scalable targets 50 at a time', async () => {
    const names = Array.from({ length: 57 }, (_, i) => `svc-${i}`);
    stageCluster(names);

    await run({ action: 'stop', clusters: ['stage'], dryRun: true }, ctx(), deps());

    const describes = ecs.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input);
    expect(describes.map((d) => d.services?.length)).toEqual([10, 10, 10, 10, 10, 7]);
    expect(describes.every((d) => d.include?.includes('TAGS'))).toBe(true);
    const targets = scaling
      .commandCalls(DescribeScalableTargetsCommand)
      .map((c) => c.args[0].input.ResourceIds?.length);
    expect(targets).toEqual([50, 7]);
    expect(ecs.commandCalls(UpdateServiceCommand)).toHaveLength(0);
  });
});
