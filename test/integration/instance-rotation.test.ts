import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  CreateOrUpdateTagsCommand,
  DescribeAutoScalingGroupsCommand,
  EnterStandbyCommand,
  SetInstanceHealthCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateCapacityProviderCommand,
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeContainerInstancesCommand,
  ECSClient,
  PutClusterCapacityProvidersCommand,
  RegisterContainerInstanceCommand,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import { run as runEcsScheduler } from '#functions/ecs-scheduler/handler.ts';
import { handler, run, type Deps } from '#functions/instance-rotation/handler.ts';
import { applicationAutoScalingClient } from '#shared/aws/application-autoscaling.ts';
import { RotationConfig } from '#functions/instance-rotation/config.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { parseCron } from '#shared/cron.ts';
import { parseEnv } from '#shared/env.ts';
import { PARKED_TAG } from '#shared/group-tags.ts';
import type { BundledSchedules } from '#shared/parked.ts';
import { parseSchedules, type HolidayCalendars } from '#shared/schedules.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS, tagMapUpper } from '#shared/tags.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATED_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';

/** Every minute of every day: an open-ended window, for the tests that are not about windows. */
const ALWAYS = 'cron(* * * * ? *)';
/** A schedule whose only run is the UTC minute of `t`: a run at `t` is the last of its window. */
const lastRunAt = (t: Date) =>
  `cron(${t.getUTCMinutes()} ${t.getUTCHours()} ${t.getUTCDate()} ${t.getUTCMonth() + 1} ? ${t.getUTCFullYear()})`;
// moto 5.2.1 answers DescribeInstanceRefreshes with a 500 whatever the group: answer as AWS does for a
// group without refreshes. (The "refresh in progress" path is covered with client-mock.)
const NO_REFRESHES =
  '<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeInstanceRefreshesResult><InstanceRefreshes/></DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>';

describe.runIf(motoTestsEnabled())('instance-rotation against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let asg: AutoScalingClient;
  let ecs: ECSClient;
  let store: LeaseStore;
  let seededAt: number;

  /**
   * By default a fake clock a minute after the seed, so instances seeded now are older than the
   * 1-minute max age and their replacements are not; runs that must tell the replacement apart use
   * the real clock (the replacement is launched after the rotation began, by moto's clock).
   */
  const deps = (env: Record<string, string> = {}, now = () => new Date(seededAt + 60_500)): Deps => ({
    clients: { autoscaling: autoScalingClient(), ec2: ec2Client(), ecs: ecsClient() },
    config: parseEnv(RotationConfig, {
      MAX_AGE: '1m',
      ROTATION_SCHEDULE: ALWAYS,
      SCHEDULE_TIMEZONE: 'UTC',
      ...env,
    }),
    now,
  });
  /** One run, as withOps makes it: its own leases, released when it ends. */
  const rotateWith = async (input: Record<string, unknown>, d: Deps, hasTime = () => true) => {
    const leases = runLeases(store, 'instance-rotation run 5b2e (nightshift-test-instance-rotation)', d.now);
    try {
      return await run({ action: 'rotate', ...input } as never, runContext({ leases, hasTime }), d);
    } finally {
      await leases.releaseAll();
    }
  };
  const rotate = (input: Record<string, unknown> = {}, env?: Record<string, string>) =>
    rotateWith(input, deps(env));
  const group = async (name: string) =>
    (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })))
      .AutoScalingGroups?.[0];
  const tagsOf = async (name: string) => tagMapUpper((await group(name))?.Tags);
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
  const mutations = () =>
    proxy
      .delivered()
      .filter((r) => r.service !== 'DynamoDB_20120810' && !/^Describe|^List/.test(r.operation));

  /**
   * ecs-scheduler itself (its `run`, against the same moto and lease table) stopping cluster `stage`,
   * whose capacity provider is the group `web` (created by `stageOnWeb`): it stops the cluster's
   * service and parks the group unless it may not. Says what it did to the group.
   */
  const stopWithEcsScheduler = async (): Promise<string> => {
    const leases = runLeases(store, 'ecs-scheduler run 7c1d (nightshift-test-ecs-scheduler)');
    try {
      const report = await runEcsScheduler({ action: 'stop', clusters: ['stage'] }, runContext({ leases }), {
        clients: {
          ecs: ecsClient(),
          scaling: applicationAutoScalingClient(),
          autoscaling: autoScalingClient(),
        },
        config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
        now: () => new Date(),
      });
      const row = report.resources.find((r) => r.type === 'autoscaling-group');
      return `${row?.outcome}: ${row?.detail}`;
    } finally {
      await leases.releaseAll();
    }
  };
  /** Cluster `stage` on the capacity provider of group `web`, running one service. */
  const stageOnWeb = async () => {
    const arn = (await group('web'))?.AutoScalingGroupARN ?? '';
    await ecs.send(new CreateClusterCommand({ clusterName: 'stage' }));
    await ecs.send(
      new CreateCapacityProviderCommand({
        name: 'stage-capacity',
        autoScalingGroupProvider: {
          autoScalingGroupArn: arn,
          managedScaling: { status: 'ENABLED', targetCapacity: 100 },
          managedTerminationProtection: 'DISABLED',
        },
      }),
    );
    await ecs.send(
      new PutClusterCapacityProvidersCommand({
        cluster: 'stage',
        capacityProviders: ['stage-capacity'],
        defaultCapacityProviderStrategy: [{ capacityProvider: 'stage-capacity', weight: 1 }],
      }),
    );
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'app',
        containerDefinitions: [{ name: 'app', image: 'nginx:1.27', memory: 128 }],
      }),
    );
    await ecs.send(
      new CreateServiceCommand({
        cluster: 'stage',
        serviceName: 'app',
        taskDefinition: 'app',
        desiredCount: 1,
      }),
    );
  };
  /** The instance a rotation in flight on `web` replaces, from its tag. */
  const rotatingIn = async (name: string) =>
    (await tagsOf(name))['nightshift:rotation']?.match(/instance=(i-\w+)/)?.[1] ?? '';
  const inService = async (name: string) =>
    ((await group(name))?.Instances ?? [])
      .filter((i) => i.LifecycleState === 'InService')
      .map((i) => i.InstanceId);

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
    proxy.pinTimes(undefined);
    store = await leaseTable(moto.url);
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
    proxy.before('PutItem', undefined);
    proxy.before('SetDesiredCapacity', undefined);
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
      /^desired=3 instance=i-\w+ phase=launching at=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) started=\1 suspended=AlarmNotification\+ScheduledActions\+AZRebalance$/,
    );
    expect(g?.SuspendedProcesses?.map((p) => p.ProcessName).sort()).toEqual([
      'AZRebalance',
      'AlarmNotification',
      'ScheduledActions',
    ]);
    expect(mutations().map((r) => r.operation)).toEqual([
      'CreateOrUpdateTags',
      'SuspendProcesses',
      'SetDesiredCapacity',
    ]);
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
    const mutatedGroups = mutations().map(
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

  it('gives up on a replacement that never comes: terminates it by id, then backs off instead of starting again (item 10)', async () => {
    // Prepare: the real clock, so the replacement is launched after the rotation began
    const original = (await group('web'))?.Instances?.map((i) => i.InstanceId) ?? [];
    const t0 = Date.now();
    const at = (minutes: number) => () => new Date(t0 + minutes * 60_000);
    await rotateWith({ maxAge: '0h' }, deps({}, at(0)));
    const g = await group('web');
    const rotating = tagMapUpper(g?.Tags)['nightshift:rotation']?.match(/instance=(i-\w+)/)?.[1];
    const replacement = g?.Instances?.find((i) => !original.includes(i.InstanceId))?.InstanceId ?? '';
    await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Unhealthy' }));
    const waiting = await rotateWith({ maxAge: '0h' }, deps({}, at(10)));
    proxy.requests.length = 0;

    // Act: an hour later, and the run after it
    const late = await rotateWith({ maxAge: '0h' }, deps({}, at(61)));
    const terminations = mutations().filter((r) => r.operation === 'TerminateInstanceInAutoScalingGroup');
    const next = await rotateWith({ maxAge: '0h' }, deps({}, at(71)));

    // Assess: the replacement, never the old instance nor one that was there before, is terminated
    // The run after the launch records the replacement, the only instance launched since it began
    expect(waiting.resources[0]).toMatchObject({
      outcome: 'changed',
      detail: `waiting for the replacement of ${rotating}: 3 of 4 in service; replacement ${replacement} recorded in nightshift:rotation`,
    });
    expect(late.resources[0]).toMatchObject({
      outcome: 'failed',
      detail: `rotation of ${rotating} abandoned: replacement ${replacement} (recorded in nightshift:rotation) terminated, desired 4 → 3; AlarmNotification, ScheduledActions, AZRebalance resumed`,
    });
    expect(late.resources[0]?.error).toMatch(
      /^the replacement for i-\w+ did not come into service within 60 min \(3 of 4 in service\); rotation abandoned: .*; no new rotation in this group before \S+ \(ABANDON_BACKOFF 24h, tag nightshift:rotation-abandoned\)$/,
    );
    expect(terminations.map((r) => Object.fromEntries(new URLSearchParams(r.body)))).toMatchObject([
      { InstanceId: replacement, ShouldDecrementDesiredCapacity: 'true' },
    ]);
    const after = await group('web');
    expect(after?.DesiredCapacity).toBe(3);
    expect(after?.Instances?.map((i) => i.InstanceId).sort()).toEqual([...original].sort());
    expect(after?.SuspendedProcesses).toEqual([]);
    const tags = tagMapUpper(after?.Tags);
    expect(tags['nightshift:rotation']).toBeUndefined();
    expect(tags['nightshift:rotation-abandoned']).toMatch(new RegExp(`^at=\\S+ instance=${rotating}$`));
    expect(next.resources[0]).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(
        new RegExp(`^a rotation of ${rotating} was abandoned at \\S+: no new rotation before`),
      ),
    });
  });

  describe('the window (item 2)', () => {
    it('rolls back, at the last run of its window, a rotation whose replacement is not in service', async () => {
      // Prepare: a rotation started by the previous run, its replacement unhealthy
      const original = (await group('web'))?.Instances?.map((i) => i.InstanceId) ?? [];
      const t0 = new Date();
      await rotateWith(
        { maxAge: '0h' },
        deps({}, () => t0),
      );
      const replacement = (await group('web'))?.Instances?.find(
        (i) => !original.includes(i.InstanceId),
      )?.InstanceId;
      await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Unhealthy' }));
      proxy.requests.length = 0;

      // Act: a run that is the last of its window
      const last = new Date(t0.getTime() + 1000);
      const report = await rotateWith(
        { maxAge: '0h' },
        deps({ ROTATION_SCHEDULE: lastRunAt(t0) }, () => last),
      );

      // Assess: nothing left suspended, desired back, the replacement gone, the old instances kept
      expect(report.resources[0]).toMatchObject({
        outcome: 'changed',
        detail: expect.stringMatching(
          new RegExp(
            `^rotation of i-\\w+ rolled back \\(i-\\w+ stays\\): replacement ${replacement} \\(the only instance launched since the rotation began\\) terminated, desired 4 → 3; AlarmNotification, ScheduledActions, AZRebalance resumed — this is the last run of its window`,
          ),
        ),
      });
      const after = await group('web');
      expect(after?.SuspendedProcesses).toEqual([]);
      expect(after?.DesiredCapacity).toBe(3);
      expect(after?.Instances?.map((i) => i.InstanceId).sort()).toEqual([...original].sort());
      expect(tagMapUpper(after?.Tags)['nightshift:rotation']).toBeUndefined();
      expect(mutations().map((r) => r.operation)).toEqual([
        'TerminateInstanceInAutoScalingGroup',
        'ResumeProcesses',
        'DeleteTags',
      ]);
    });

    /** moto launches instances at the real clock's time: made old for a test on a fixed 2030 clock. */
    const launchedLongAgo = () =>
      proxy.pinTimes({ launchTime: CREATED_LONG_AGO, attachTime: CREATED_LONG_AGO });

    it('does not start a rotation that cannot finish before the window ends', async () => {
      // Monday 2030-01-07 05:00 CET: the last run of the default window is 50 minutes away
      launchedLongAgo();
      const report = await rotateWith(
        {},
        deps(
          { ROTATION_SCHEDULE: 'cron(0/10 1-5 ? * MON-FRI *)', SCHEDULE_TIMEZONE: 'Europe/Berlin' },
          () => new Date('2030-01-07T04:00:30Z'),
        ),
      );

      expect(report.resources[0]).toMatchObject({
        outcome: 'skipped',
        detail: expect.stringMatching(
          /^i-\w+ is due, but too little of the window is left: its last run is Mon 2030-01-07 05:50 Europe\/Berlin, in 49m/,
        ),
      });
      expect(mutations()).toEqual([]);
      expect((await group('web'))?.SuspendedProcesses).toEqual([]);
    });

    it('starts nothing on demand outside the window', async () => {
      launchedLongAgo();
      const report = await rotateWith(
        {},
        deps(
          { ROTATION_SCHEDULE: 'cron(0/10 1-5 ? * MON-FRI *)', SCHEDULE_TIMEZONE: 'Europe/Berlin' },
          () => new Date('2030-01-07T11:00:00Z'),
        ),
      );

      expect(report.resources[0]?.detail).toMatch(
        /^i-\w+ is due, but no rotation starts: outside the rotation window/,
      );
      expect(mutations()).toEqual([]);
    });

    it('refuses a schedule it cannot evaluate at cold start, naming the variable', () => {
      expect(() =>
        parseEnv(RotationConfig, {
          ROTATION_SCHEDULE: 'rate(10 minutes)',
          SCHEDULE_TIMEZONE: 'Europe/Paris',
        }),
      ).toThrow(
        /^invalid configuration: ROTATION_SCHEDULE: "rate\(10 minutes\)" is not a cron\(\.\.\.\) expression/,
      );
      // An expression AWS may accept but whose runs cannot be told for sure fails the configuration too
      expect(() =>
        parseEnv(RotationConfig, { ROTATION_SCHEDULE: 'cron(0/10 1-5 L-2 * ? *)', SCHEDULE_TIMEZONE: 'UTC' }),
      ).toThrow(
        /^invalid configuration: ROTATION_SCHEDULE: day-of-month: "L-2" \(days before the last day of the month\)/,
      );
      expect(parseCron(ALWAYS, 'UTC').minutes).toHaveLength(60);
    });
  });

  describe('what a roll-back terminates (review risks 1 to 3, M5)', () => {
    /** A rotation started now (the real clock, as moto's), its replacement launched and found. */
    const started = async () => {
      const original = ((await group('web'))?.Instances ?? []).map((i) => i.InstanceId ?? '');
      const t0 = new Date();
      await rotateWith(
        { maxAge: '0h' },
        deps({}, () => t0),
      );
      const rotating = await rotatingIn('web');
      const replacement =
        (await group('web'))?.Instances?.find((i) => !original.includes(i.InstanceId ?? ''))?.InstanceId ??
        '';
      const at = (ms: number, env: Record<string, string> = {}) =>
        deps(env, () => new Date(t0.getTime() + ms));
      return { original, t0, rotating, replacement, at };
    };
    const terminations = () =>
      mutations()
        .filter((r) => r.operation === 'TerminateInstanceInAutoScalingGroup')
        .map((r) => Object.fromEntries(new URLSearchParams(r.body)));

    it('rolls back the replacement it recorded, never the instance the group launched to replace an unhealthy one', async () => {
      // Prepare: the replacement never becomes healthy; a run of the window records it
      const { original, t0, rotating, replacement, at } = await started();
      await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Unhealthy' }));
      const waiting = await rotateWith({ maxAge: '0h' }, at(1000));
      // The group replaces an instance that was there before (ReplaceUnhealthy: moto launches one
      // when an instance is terminated without a decrement)
      const unhealthy = original.find((id) => id !== rotating) ?? '';
      await asg.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: unhealthy,
          ShouldDecrementDesiredCapacity: false,
        }),
      );
      const relaunched =
        (await group('web'))?.Instances?.find((i) => ![...original, replacement].includes(i.InstanceId ?? ''))
          ?.InstanceId ?? '';
      proxy.requests.length = 0;

      // Act: the last run of the window
      const report = await rotateWith({ maxAge: '0h' }, at(2000, { ROTATION_SCHEDULE: lastRunAt(t0) }));

      // Assess: the recorded replacement alone was terminated, by id; the group picked no victim
      expect(report.resources[0]).toMatchObject({
        outcome: 'changed',
        detail: expect.stringContaining(
          `replacement ${replacement} (recorded in nightshift:rotation) terminated, desired 4 → 3`,
        ),
      });
      expect(terminations()).toMatchObject([
        { InstanceId: replacement, ShouldDecrementDesiredCapacity: 'true' },
      ]);
      expect(mutations().map((r) => r.operation)).not.toContain('SetDesiredCapacity');
      const after = await group('web');
      expect(after?.DesiredCapacity).toBe(3);
      expect(after?.Instances?.map((i) => i.InstanceId).sort()).toEqual(
        [...original.filter((id) => id !== unhealthy), relaunched].sort(),
      );
      expect(after?.SuspendedProcesses).toEqual([]);
      expect(tagMapUpper(after?.Tags)['nightshift:rotation']).toBeUndefined();
      expect(waiting.resources[0]?.detail).toBe(
        `waiting for the replacement of ${rotating}: 3 of 4 in service; replacement ${replacement} recorded in nightshift:rotation`,
      );
    });

    it('never terminates an old instance in Standby with a decrement, which would make the group take one in service out', async () => {
      // Prepare: a run records the replacement while it is not healthy yet; then it is, and someone puts
      // the old instance in Standby without a decrement: the group launches another instance for it
      const { rotating, replacement, at } = await started();
      await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Unhealthy' }));
      await rotateWith({ maxAge: '0h' }, at(1000));
      await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Healthy' }));
      await asg.send(
        new EnterStandbyCommand({
          AutoScalingGroupName: 'web',
          InstanceIds: [rotating],
          ShouldDecrementDesiredCapacity: false,
        }),
      );
      const before = await inService('web');
      proxy.requests.length = 0;

      // Act: a run inside the window, then the window's last run
      const waiting = await rotateWith({ maxAge: '0h' }, at(2000));
      const afterWaiting = await inService('web');
      const last = await rotateWith({ maxAge: '0h' }, at(3000, { ROTATION_SCHEDULE: lastRunAt(new Date()) }));

      // Assess: nothing in service was taken out; the roll-back removed the recorded replacement only
      expect(before).toHaveLength(4);
      expect(afterWaiting.sort()).toEqual([...before].sort());
      expect(waiting.resources[0]).toMatchObject({
        outcome: 'unchanged',
        detail: expect.stringMatching(
          new RegExp(`^waiting before terminating ${rotating}: ${rotating} is Standby`),
        ),
      });
      expect(last.resources[0]?.detail).toContain(
        `replacement ${replacement} (recorded in nightshift:rotation) terminated`,
      );
      expect(terminations()).toMatchObject([
        { InstanceId: replacement, ShouldDecrementDesiredCapacity: 'true' },
      ]);
      const g = await group('web');
      expect(g?.DesiredCapacity).toBe(3);
      expect((await inService('web')).sort()).toEqual(before.filter((id) => id !== replacement).sort());
      expect(g?.Instances?.find((i) => i.InstanceId === rotating)?.LifecycleState).toBe('Standby');
    });

    it('drains a replacement that carries ECS tasks before terminating it, in a later run, with nothing left suspended (M5)', async () => {
      // Prepare: the replacement joined cluster stage and runs tasks, but never became healthy
      const { t0, replacement, at } = await started();
      await asg.send(new SetInstanceHealthCommand({ InstanceId: replacement, HealthStatus: 'Unhealthy' }));
      await ecs.send(new CreateClusterCommand({ clusterName: 'stage' }));
      const registered = await ecs.send(
        new RegisterContainerInstanceCommand({
          cluster: 'stage',
          instanceIdentityDocument: JSON.stringify({
            region: 'eu-central-1',
            instanceId: replacement,
            availabilityZone: 'eu-central-1a',
            instanceType: 't3.small',
            accountId: '123456789012',
            imageId: 'ami-12c6146b',
            privateIp: '10.0.0.11',
          }),
        }),
      );
      const containerInstance = registered.containerInstance?.containerInstanceArn ?? '';
      // moto runs no tasks: the proxy reports the ones the replacement carries
      let tasks = 2;
      proxy.rewrite('DescribeContainerInstances', (body) => {
        const out = JSON.parse(body) as { containerInstances?: { runningTasksCount?: number }[] };
        for (const c of out.containerInstances ?? []) c.runningTasksCount = tasks;
        return JSON.stringify(out);
      });
      const schedule = { ROTATION_SCHEDULE: lastRunAt(t0) };
      const status = async () =>
        (
          await ecs.send(
            new DescribeContainerInstancesCommand({
              cluster: 'stage',
              containerInstances: [containerInstance],
            }),
          )
        ).containerInstances?.[0]?.status;
      proxy.requests.length = 0;

      try {
        // Act: the last run of the window; then two runs outside any window (on demand, or the schedule
        // disabled)
        const last = await rotateWith({ maxAge: '0h' }, at(1000, schedule));
        const afterLast = await group('web');
        const drainedAtLast = await status();
        const terminatedAtLast = terminations();
        const draining = await rotateWith({ maxAge: '0h' }, at(30 * 60_000, schedule));
        tasks = 0;
        const done = await rotateWith({ maxAge: '0h' }, at(40 * 60_000, schedule));

        // Assess: DRAINING and the processes resumed at once; terminated only once its tasks were gone
        expect(last.resources[0]).toMatchObject({
          outcome: 'changed',
          detail: expect.stringContaining(
            `replacement ${replacement} (the only instance launched since the rotation began) set to DRAINING, 2 ECS task(s) on it`,
          ),
        });
        expect(drainedAtLast).toBe('DRAINING');
        expect(terminatedAtLast).toEqual([]);
        expect(afterLast?.SuspendedProcesses).toEqual([]);
        expect(afterLast?.DesiredCapacity).toBe(4);
        expect(tagMapUpper(afterLast?.Tags)['nightshift:rotation']).toMatch(
          new RegExp(`phase=rolling-back at=\\S+ started=\\S+ suspended=none replacement=${replacement}$`),
        );
        expect(draining.resources[0]).toMatchObject({
          outcome: 'unchanged',
          detail: expect.stringMatching(
            /waiting for replacement i-\w+ to drain before it is terminated \(2 ECS task\(s\) still on it\)$/,
          ),
        });
        expect(done.resources[0]).toMatchObject({ outcome: 'changed' });
        expect(terminations()).toMatchObject([
          { InstanceId: replacement, ShouldDecrementDesiredCapacity: 'true' },
        ]);
        const after = await group('web');
        expect(after?.DesiredCapacity).toBe(3);
        expect(after?.Instances?.some((i) => i.InstanceId === replacement)).toBe(false);
        expect(tagMapUpper(after?.Tags)['nightshift:rotation']).toBeUndefined();
      } finally {
        proxy.rewrite('DescribeContainerInstances', undefined);
      }
    });
  });

  describe('ecs-scheduler and a rotation on one group, interleaved step by step (item 11)', () => {
    // ecs-scheduler's own run, not a copy of it: breaking the rotation check in either function fails these
    beforeEach(async () => {
      await stageOnWeb();
      proxy.requests.length = 0;
    });
    const rotationCalls = () =>
      mutations().filter(
        (r) =>
          [
            'SetDesiredCapacity',
            'SuspendProcesses',
            'ResumeProcesses',
            'TerminateInstanceInAutoScalingGroup',
          ].includes(r.operation) ||
          (r.operation === 'CreateOrUpdateTags' && r.body.includes('nightshift%3Arotation')),
      );

    it('holds the group while a rotation step runs: ecs-scheduler cannot park it then, and will not park it after', async () => {
      // Prepare: ecs-scheduler stops the cluster while the rotation is about to raise desired
      let during = '';
      proxy.before('SetDesiredCapacity', async () => {
        during = await stopWithEcsScheduler();
      });

      // Act
      const report = await rotate();
      proxy.before('SetDesiredCapacity', undefined);
      const after = await stopWithEcsScheduler();

      // Assess: the lease kept ecs-scheduler out; the rotation went ahead on a group that is not parked
      expect(during).toMatch(
        /^undone: another run holds the lease on it: instance-rotation run 5b2e \(nightshift-test-instance-rotation\), for 0m/,
      );
      expect(report.resources[0]?.outcome).toBe('changed');
      expect(after).toMatch(
        /^skipped: rotation in flight \(tag nightshift:rotation=desired=3 instance=i-\w+ phase=launching /,
      );
      const g = await group('web');
      expect(g?.DesiredCapacity).toBe(4);
      expect(g?.MinSize).toBe(2);
      expect(tagMapUpper(g?.Tags)[PARKED_TAG]).toBeUndefined();
    });

    it('reads the group again under its lease: a group parked just before is not rotated', async () => {
      // Prepare: a store whose calls go through the proxy, so the rotation's lease claim can be held
      const viaProxy = await leaseTable(proxy.url);
      let parked = '';
      proxy.before('PutItem', async () => {
        proxy.before('PutItem', undefined);
        parked = await stopWithEcsScheduler();
      });
      const leases = runLeases(viaProxy, 'instance-rotation run 5b2e (nightshift-test-instance-rotation)');

      // Act
      const report = await run({ action: 'rotate' }, runContext({ leases }), deps());
      await leases.releaseAll();

      // Assess
      expect(parked).toMatch(/^changed: /);
      expect(report.resources[0]).toMatchObject({
        outcome: 'skipped',
        detail:
          'parked by ecs-scheduler (nightshift:stopped): a parked group is never rotated; to rotate it now, wak' +
          'e the ECS cluster whose capacity it is (`nightshift wake --cluster <cluster> --for 1h`), or the grou' +
          'p if it follows a schedule itself (`nightshift wake --group web --for 1h`), then `nightshift rotate --group web`',
      });
      expect(rotationCalls()).toEqual([]);
      const g = await group('web');
      expect(g?.DesiredCapacity).toBe(0);
      expect(tagMapUpper(g?.Tags)[PARKED_TAG]).toMatch(/^min=2 desired=3 max=4 /);
    });

    it('rolls back, without touching its size, a rotation in flight on a group parked meanwhile', async () => {
      // Prepare: a rotation in flight; then the group is parked anyway (by an older ecs-scheduler, or by hand)
      await rotate();
      await asg.send(
        new CreateOrUpdateTagsCommand({
          Tags: [
            {
              ResourceId: 'web',
              ResourceType: 'auto-scaling-group',
              Key: PARKED_TAG,
              Value: 'min=2 desired=3 max=4 at=2026-11-23T18:00:00Z',
              PropagateAtLaunch: false,
            },
          ],
        }),
      );
      await asg.send(
        new UpdateAutoScalingGroupCommand({
          AutoScalingGroupName: 'web',
          MinSize: 0,
          DesiredCapacity: 0,
          MaxSize: 0,
        }),
      );
      proxy.requests.length = 0;

      // Act
      const report = await rotate();

      // Assess
      expect(report.resources[0]).toMatchObject({
        outcome: 'changed',
        detail: expect.stringMatching(
          /^rotation of i-\w+ (rolled back|ended).*the group was parked by ecs-scheduler/,
        ),
      });
      expect(mutations().map((r) => r.operation)).toEqual(['ResumeProcesses', 'DeleteTags']);
      const g = await group('web');
      expect(g?.SuspendedProcesses).toEqual([]);
      expect(g?.DesiredCapacity).toBe(0);
      expect(await tagsOf('web')).toEqual({
        'nightshift:rotate': 'true',
        [PARKED_TAG]: 'min=2 desired=3 max=4 at=2026-11-23T18:00:00Z',
      });
    });
  });

  describe('scale and the deadline (items 12 and the pagination audit)', () => {
    beforeEach(async () => {
      for (let i = 0; i < 120; i++) {
        await createGroup(
          `batch-${String(i).padStart(3, '0')}`,
          { min: 0, desired: 0, max: 1 },
          { 'nightshift:rotate': 'true' },
        );
      }
      proxy.requests.length = 0;
    });

    it('lists 121 opted-in groups over two pages of 100', async () => {
      const report = await rotate({ dryRun: true });

      expect(report.resources).toHaveLength(121);
      const listing = proxy.requests.filter((r) => r.operation === 'DescribeAutoScalingGroups');
      expect(listing.map((r) => new URLSearchParams(r.body).get('MaxRecords'))).toEqual(['100', '100']);
    });

    it('stops at the deadline between two pages of groups, reporting the run undone and changing nothing', async () => {
      let pages = 0;
      proxy.before('DescribeAutoScalingGroups', async () => {
        pages += 1;
      });

      const report = await rotateWith({}, deps(), () => pages < 1);
      proxy.before('DescribeAutoScalingGroups', undefined);

      expect(pages).toBe(1);
      expect(report.resources).toEqual([
        {
          arn: '',
          type: 'run',
          outcome: 'undone',
          detail: 'the Lambda was about to time out while reading Auto Scaling groups; nothing changed',
        },
      ]);
      expect(mutations()).toEqual([]);
    });
  });

  describe('groups on a schedule that wants them stopped (issue 10)', () => {
    const noHolidays: HolidayCalendars = { check: () => undefined, holidays: () => new Map() };
    /** `stopped` is stopped every day of the year but 29 February; `running` runs every day. */
    const schedules = (calendars = noHolidays): BundledSchedules => ({
      schedules: parseSchedules(
        {
          schedules: {
            stopped: { periods: [{ monthdays: ['29'], months: ['feb'] }], holidays: { calendar: 'DE-BE' } },
            running: { periods: [{ weekdays: ['mon-sun'] }] },
          },
        },
        { calendars },
      ),
    });
    const withSchedules = (bundled: BundledSchedules): Deps => ({ ...deps(), schedules: () => bundled });
    const tagWeb = (tags: Record<string, string>) =>
      asg.send(
        new CreateOrUpdateTagsCommand({
          Tags: Object.entries(tags).map(([Key, Value]) => ({
            ResourceId: 'web',
            ResourceType: 'auto-scaling-group',
            Key,
            Value,
            PropagateAtLaunch: false,
          })),
        }),
      );

    it('starts no rotation in a group whose own schedule wants it stopped, before the reconcile parked it', async () => {
      // Prepare
      await tagWeb({ 'nightshift:schedule': 'stopped' });
      proxy.requests.length = 0;

      // Act
      const report = await rotateWith({}, withSchedules(schedules()));

      // Assess
      expect(report.resources).toHaveLength(1);
      expect(report.resources[0]?.outcome).toBe('skipped');
      expect(report.resources[0]?.detail).toMatch(
        /^to be parked: stopped: stopped .*nightshift parks it at its next reconcile: a group nightshift parks is not rotated; to rotate it now, `nightshift wake --group web --for 1h` first, then `nightshift rotate --group web`$/,
      );
      expect(mutations()).toEqual([]);
      expect((await group('web'))?.DesiredCapacity).toBe(3);
    });

    it('rotates such a group while a wake override keeps it running', async () => {
      // Prepare
      const until = new Date(seededAt + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await tagWeb({
        'nightshift:schedule': 'stopped',
        'nightshift:override': `state=running until=${until} by=user/jane why=patch day`,
      });
      proxy.requests.length = 0;

      // Act
      const report = await rotateWith({}, withSchedules(schedules()));

      // Assess
      expect(report.resources[0]?.outcome).toBe('changed');
      expect(report.resources[0]?.detail).toMatch(
        /^launch a replacement for i-\w+ .*; kept running by override on it by user\/jane until /,
      );
      expect((await group('web'))?.DesiredCapacity).toBe(4);
    });

    it('rotates as usual when the schedule cannot be evaluated, and says so', async () => {
      // Prepare: the bundle carries no holidays for this year (shared/holiday-table.ts throws)
      await tagWeb({ 'nightshift:schedule': 'stopped' });
      const broken = schedules({
        check: () => undefined,
        holidays: (code, year) => {
          throw new Error(`holidays of ${code} in ${year} are not in this bundle`);
        },
      });

      // Act
      const report = await rotateWith({}, withSchedules(broken));

      // Assess
      expect(report.resources[0]?.outcome).toBe('changed');
      expect(report.resources[0]?.detail).toContain(
        'its schedule (nightshift:schedule=stopped on it) could not be evaluated (holidays of DE-BE in',
      );
      expect((await group('web'))?.DesiredCapacity).toBe(4);
    });
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
