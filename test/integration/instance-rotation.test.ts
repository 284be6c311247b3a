import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  DescribeAutoScalingGroupsCommand,
  SetInstanceHealthCommand,
  SuspendProcessesCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateClusterCommand,
  DescribeContainerInstancesCommand,
  ECSClient,
  RegisterContainerInstanceCommand,
} from '@aws-sdk/client-ecs';
import { handler, run, type Deps } from '#functions/instance-rotation/handler.ts';
import { RotationConfig } from '#functions/instance-rotation/config.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { parseEnv } from '#shared/env.ts';
import type { Report } from '#shared/report.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const ctx = runContext();
// moto 5.2.1 answers DescribeInstanceRefreshes with a 500 whatever the group: answer as AWS does for a
// group without refreshes. (The "refresh in progress" path is covered with client-mock.)
const NO_REFRESHES =
  '<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeInstanceRefreshesResult><InstanceRefreshes/></DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>';

describe.runIf(motoTestsEnabled())('instance-rotation against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let asg: AutoScalingClient;
  let ecs: ECSClient;
  let seededAt: number;

  /** Instances seeded now are older than 1 minute a minute from now; their replacements are not. */
  const deps = (env: Record<string, string> = {}): Deps => ({
    clients: { autoscaling: autoScalingClient(), ec2: ec2Client(), ecs: ecsClient() },
    config: parseEnv(RotationConfig, { MAX_AGE: '1m', ...env }),
    now: () => new Date(seededAt + 60_500),
  });
  const rotate = (input: Record<string, unknown> = {}, env?: Record<string, string>) =>
    run({ action: 'rotate', ...input }, ctx, deps(env));
  const group = async (name: string) =>
    (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })))
      .AutoScalingGroups?.[0];
  const createGroup = async (
    name: string,
    size: { min: number; desired: number; max: number },
    tags: Record<string, string>,
  ) =>
    asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: name,
        LaunchConfigurationName: 'node',
        MinSize: size.min,
        MaxSize: size.max,
        DesiredCapacity: size.desired,
        AvailabilityZones: ['eu-central-1a'],
        Tags: Object.entries(tags).map(([Key, Value]) => ({
          Key,
          Value,
          PropagateAtLaunch: false,
          ResourceId: name,
          ResourceType: 'auto-scaling-group',
        })),
      }),
    );

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    proxy.stub('DescribeInstanceRefreshes', { contentType: 'text/xml', body: NO_REFRESHES });
    useEndpoint(proxy.url);
    const config = {
      endpoint: moto.url,
      region: 'eu-central-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    };
    asg = new AutoScalingClient(config);
    ecs = new ECSClient(config);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    await asg.send(
      new CreateLaunchConfigurationCommand({
        LaunchConfigurationName: 'node',
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.small',
      }),
    );
    await createGroup('web', { min: 2, desired: 3, max: 4 }, { 'nightshift:rotate': 'true' });
    seededAt = Date.now();
    // Replacements launch at least a second later, so they are younger than the 1-minute max age.
    await new Promise((r) => setTimeout(r, 1600));
    proxy.requests.length = 0;
  });

  it('rotates a 3-instance group over several runs, never below desired, and restores desired', async () => {
    // Prepare
    const original = (await group('web'))?.Instances?.map((i) => i.InstanceId) ?? [];
    const reports: Report[] = [];
    const sizes: { desired?: number; inService: number }[] = [];

    // Act: one step per scheduled run, as every 10 minutes
    for (let runIndex = 0; runIndex < 7; runIndex++) {
      reports.push(await rotate());
      const g = await group('web');
      sizes.push({
        desired: g?.DesiredCapacity,
        inService: g?.Instances?.filter((i) => i.LifecycleState === 'InService').length ?? 0,
      });
    }

    // Assess
    const after = await group('web');
    expect(reports.map((r) => r.resources[0]?.detail.split(' ')[0])).toEqual([
      'launch',
      'terminate',
      'launch',
      'terminate',
      'launch',
      'terminate',
      'no',
    ]);
    expect(reports[0]?.resources[0]?.detail).toMatch(
      /^launch a replacement for i-\w+ \(1m old, max 1m\): desired 3 → 4; AlarmNotification, ScheduledActions, AZRebalance suspended until it is done; 2 more due after it$/,
    );
    expect(sizes.map((s) => s.desired)).toEqual([4, 3, 4, 3, 4, 3, 3]);
    expect(sizes.every((s) => s.inService >= 3)).toBe(true);
    expect(after?.DesiredCapacity).toBe(3);
    expect(after?.Instances?.map((i) => i.InstanceId).filter((id) => original.includes(id))).toEqual([]);
    expect(after?.Tags?.map((t) => t.Key)).toEqual(['nightshift:rotate']);
    expect(after?.SuspendedProcesses).toEqual([]);
  });

  it('saves the original desired on the group before raising it', async () => {
    await rotate();

    const g = await group('web');
    const saved = g?.Tags?.find((t) => t.Key === 'nightshift:rotation')?.Value;
    expect(saved).toMatch(
      /^desired=3 instance=i-\w+ phase=launching at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ suspended=AlarmNotification\+ScheduledActions\+AZRebalance$/,
    );
    expect(g?.SuspendedProcesses?.map((p) => p.ProcessName).sort()).toEqual([
      'AZRebalance',
      'AlarmNotification',
      'ScheduledActions',
    ]);
    const mutations = proxy
      .delivered()
      .map((r) => r.operation)
      .filter((op) => !/^Describe|^List/.test(op));
    expect(mutations).toEqual(['CreateOrUpdateTags', 'SuspendProcesses', 'SetDesiredCapacity']);
  });

  it('leaves opted-out, suspended and no-headroom groups untouched, saying why', async () => {
    await createGroup('plain', { min: 1, desired: 1, max: 2 }, {});
    await createGroup('full', { min: 1, desired: 2, max: 2 }, { 'nightshift:rotate': 'true' });
    await createGroup('paused', { min: 1, desired: 1, max: 3 }, { 'nightshift:rotate': '1m' });
    await asg.send(
      new SuspendProcessesCommand({ AutoScalingGroupName: 'paused', ScalingProcesses: ['Launch'] }),
    );
    proxy.requests.length = 0;

    const scheduled = await rotate({ groups: undefined });
    const named = await rotate({ groups: ['plain', 'full', 'paused'], maxAge: '0h' });

    expect(scheduled.resources.map((r) => r.arn.split('/').pop())).toEqual(['web', 'full', 'paused']);
    expect(named.resources.map((r) => [r.arn.split('/').pop(), r.outcome, r.detail])).toEqual([
      ['plain', 'skipped', 'not opted in: the group has no nightshift:rotate tag'],
      [
        'full',
        'skipped',
        'no headroom: desired 2 = max 2, and capacity never drops below desired; raise max by one to rotate',
      ],
      ['paused', 'skipped', 'processes suspended: Launch'],
    ]);
    for (const name of ['plain', 'full', 'paused']) {
      expect((await group(name))?.Tags?.some((t) => t.Key === 'nightshift:rotation')).toBe(false);
    }
    const mutatedGroups = proxy
      .delivered()
      .filter((r) => !/^Describe|^List/.test(r.operation))
      .map(
        (r) =>
          new URLSearchParams(r.body).get('AutoScalingGroupName') ??
          new URLSearchParams(r.body).get('Tags.member.1.ResourceId'),
      );
    expect(mutatedGroups.every((name) => name === 'web')).toBe(true);
  });

  it('drains an ECS container instance before terminating it', async () => {
    // Prepare: the oldest instance is registered in an ECS cluster
    await rotate();
    const g = await group('web');
    const rotating =
      g?.Tags?.find((t) => t.Key === 'nightshift:rotation')?.Value?.match(/instance=(i-\w+)/)?.[1] ?? '';
    await ecs.send(new CreateClusterCommand({ clusterName: 'stage' }));
    const registered = await ecs.send(
      new RegisterContainerInstanceCommand({
        cluster: 'stage',
        instanceIdentityDocument: JSON.stringify({
          region: 'eu-central-1',
          instanceId: rotating,
          availabilityZone: 'eu-central-1a',
          instanceType: 't3.small',
          accountId: '123456789012',
          imageId: 'ami-12c6146b',
          privateIp: '10.0.0.10',
        }),
      }),
    );

    // Act
    const drain = await rotate();
    const terminate = await rotate();

    // Assess
    expect(drain.resources[0]?.detail).toBe(
      `replacement in service (4 of 4); ECS container instance on ${rotating} set to DRAINING before it is terminated`,
    );
    const state = await ecs.send(
      new DescribeContainerInstancesCommand({
        cluster: 'stage',
        containerInstances: [registered.containerInstance?.containerInstanceArn ?? ''],
      }),
    );
    expect(state.containerInstances?.[0]?.status).toBe('DRAINING');
    expect(terminate.resources[0]?.detail).toMatch(
      new RegExp(`^terminate ${rotating} now that its replacement is in service`),
    );
    expect((await group('web'))?.Instances?.some((i) => i.InstanceId === rotating)).toBe(false);
  });

  it('restores the saved desired and reports failure when a replacement never comes', async () => {
    // Prepare: the replacement launches but never turns healthy
    const original = (await group('web'))?.Instances?.map((i) => i.InstanceId) ?? [];
    await rotate();
    const g = await group('web');
    const rotating = g?.Tags?.find((t) => t.Key === 'nightshift:rotation')?.Value?.match(
      /instance=(i-\w+)/,
    )?.[1];
    const replacement = g?.Instances?.find((i) => !original.includes(i.InstanceId))?.InstanceId;
    await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Unhealthy' }));
    const waiting = await rotate();

    // Act: an hour later
    const late = await run({ action: 'rotate' }, ctx, {
      ...deps(),
      now: () => new Date(seededAt + 60_500 + 61 * 60_000),
    });

    // Assess
    expect(waiting.resources[0]?.detail).toBe(
      `waiting for the replacement of ${rotating}: 3 of 4 in service`,
    );
    expect(late.resources[0]).toMatchObject({ outcome: 'failed', detail: 'desired 4 → 3' });
    expect(late.resources[0]?.error).toMatch(
      /did not come into service within 60 min \(3 of 4 in service\); rotation abandoned, desired restored to 3$/,
    );
    const after = await group('web');
    expect(after?.DesiredCapacity).toBe(3);
    expect(after?.Tags?.some((t) => t.Key === 'nightshift:rotation')).toBe(false);
  });

  it('plans without changing anything in a dry run', async () => {
    const report = await rotate({ dryRun: true });

    expect(report).toMatchObject({ dryRun: true, summary: { planned: 1, changed: 0 } });
    expect((await group('web'))?.DesiredCapacity).toBe(3);
    expect(proxy.delivered().filter((r) => !/^Describe|^List/.test(r.operation))).toEqual([]);
  });

  it.each([
    { event: { action: 'rotate', maxAge: '14 days' }, field: 'maxAge' },
    { event: { action: 'rotate', maxAge: '-1d' }, field: 'maxAge' },
    { event: { action: 'rotate', maxAge: 14 }, field: 'maxAge' },
    { event: { action: 'rotate', groups: [] }, field: 'groups' },
    { event: { action: 'rotate', groups: ['a:b'] }, field: 'groups.0' },
    { event: { action: 'rotate', force: true }, field: 'force' },
    { event: { action: 'restart' }, field: 'action' },
  ])('refuses $event before any AWS call, naming $field', async ({ event, field }) => {
    const error = await handler(event, lambdaContext('instance-rotation')).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ name: 'InputError', field });
    expect(proxy.requests).toEqual([]);
  });
});
