import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  CreateOrUpdateTagsCommand,
  DescribeAutoScalingGroupsCommand,
  SetInstanceHealthCommand,
  SuspendProcessesCommand,
  UpdateAutoScalingGroupCommand,
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
import { parseCron } from '#shared/cron.ts';
import { parseEnv } from '#shared/env.ts';
import { groupLeaseScope, PARKED_TAG, rotationInFlight } from '#shared/group-tags.ts';
import { claimReason, type Claim, type LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { tagMapUpper } from '#shared/tags.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { leaseTable, runLeases, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

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
   * What ecs-scheduler does to park a group, with the same lease: claim the group, read it again, and
   * never park one with a rotation in flight (its side of item 11). Says what it did.
   */
  const parkLikeEcsScheduler = async (name: string): Promise<string> => {
    const leases = runLeases(store, 'ecs-scheduler run 7c1d (nightshift-test-ecs-scheduler)');
    const arn = (await group(name))?.AutoScalingGroupARN ?? '';
    const claim = await leases.take(groupLeaseScope(arn));
    try {
      if (!claim.ok) return claimReason(claim as Exclude<Claim, { ok: true }>, TEST_LEASE_TABLE, new Date());
      const g = await group(name);
      if (rotationInFlight(tagMapUpper(g?.Tags))) return 'not parked: a rotation is in flight';
      await asg.send(
        new CreateOrUpdateTagsCommand({
          Tags: [
            {
              ResourceId: name,
              ResourceType: 'auto-scaling-group',
              Key: PARKED_TAG,
              Value: `min=${g?.MinSize} desired=${g?.DesiredCapacity} max=${g?.MaxSize} at=2026-11-23T18:00:00Z`,
              PropagateAtLaunch: false,
            },
          ],
        }),
      );
      await asg.send(
        new UpdateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          MinSize: 0,
          DesiredCapacity: 0,
          MaxSize: 0,
        }),
      );
      return 'parked';
    } finally {
      await leases.releaseAll();
    }
  };

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

    it('does not start a rotation that cannot finish before the window ends', async () => {
      // Monday 2030-01-07 05:00 CET: the last run of the default window is 50 minutes away
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
      expect(parseCron(ALWAYS, 'UTC').minutes).toHaveLength(60);
    });
  });

  describe('ecs-scheduler and a rotation on one group, interleaved step by step (item 11)', () => {
    it('holds the group while a rotation step runs: ecs-scheduler cannot park it then, and will not park it after', async () => {
      // Prepare: ecs-scheduler tries to park the group while the rotation is about to raise desired
      let during = '';
      proxy.before('SetDesiredCapacity', async () => {
        during = await parkLikeEcsScheduler('web');
      });

      // Act
      const report = await rotate();
      proxy.before('SetDesiredCapacity', undefined);
      const after = await parkLikeEcsScheduler('web');

      // Assess: the lease kept ecs-scheduler out; the rotation went ahead on a group that is not parked
      expect(during).toMatch(
        /^another run holds the lease on it: instance-rotation run 5b2e \(nightshift-test-instance-rotation\), for 0m/,
      );
      expect(report.resources[0]?.outcome).toBe('changed');
      expect(after).toBe('not parked: a rotation is in flight');
      const g = await group('web');
      expect(g?.DesiredCapacity).toBe(4);
      expect(tagMapUpper(g?.Tags)[PARKED_TAG]).toBeUndefined();
    });

    it('reads the group again under its lease: a group parked just before is not rotated', async () => {
      // Prepare: a store whose calls go through the proxy, so the rotation's lease claim can be held
      const viaProxy = await leaseTable(proxy.url);
      let parked = '';
      proxy.before('PutItem', async () => {
        proxy.before('PutItem', undefined);
        parked = await parkLikeEcsScheduler('web');
      });
      const leases = runLeases(viaProxy, 'instance-rotation run 5b2e (nightshift-test-instance-rotation)');

      // Act
      const report = await run({ action: 'rotate' }, runContext({ leases }), deps());
      await leases.releaseAll();

      // Assess
      expect(parked).toBe('parked');
      expect(report.resources[0]).toMatchObject({
        outcome: 'skipped',
        detail: 'parked by ecs-scheduler (nightshift:stopped): a parked group is never rotated',
      });
      expect(mutations().filter((r) => r.operation !== 'UpdateAutoScalingGroup')).toEqual([]);
      expect((await group('web'))?.DesiredCapacity).toBe(0);
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
