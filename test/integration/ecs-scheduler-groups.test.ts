/**
 * Auto Scaling groups that are not ECS capacity providers, stopped and started on their own by
 * ecs-scheduler (`"groups": [names]`), against moto: parked at 0/0/0 with their sizes saved on the
 * group, restored exactly; capacity providers, protected groups, warm pools and scale-in protection
 * skipped with the reason; leases; dry runs.
 *
 * moto 5.2.1 answers DescribeCapacityProviders without names (AWS: every capacity provider of the
 * account, 10 a page) with a 500: the proxy answers it with the providers a test made, as AWS would.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CreateOrUpdateTagsCommand,
  DescribeAutoScalingGroupsCommand,
  SetInstanceProtectionCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeCapacityProvidersCommand } from '@aws-sdk/client-ecs';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { groupLeaseScope } from '#shared/group-tags.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { parseSchedules } from '#shared/schedules.ts';
import { runContext } from '#test/support/context.ts';
import { createGroup, seedEstate, seedClients, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';

const PARKED = 'nightshift:stopped';
const NOW = new Date('2026-11-27T18:00:30Z');

const row = (report: Report, name: string) =>
  report.resources.find((r) => r.arn.endsWith(`/${name}`) || r.arn === name);

describe.runIf(motoTestsEnabled())('ecs-scheduler standalone Auto Scaling groups (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let store: LeaseStore;

  const deps = (now: Date): Deps => ({
    clients: viaProxy,
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
    now: () => now,
    schedules: () =>
      parseSchedules({
        schedules: {
          'office-hours': {
            timezone: 'Europe/Berlin',
            periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
          },
        },
      }),
  });
  const runAt = async (event: Parameters<typeof run>[0], now = NOW) => {
    const leases = runLeases(store, 'ecs-scheduler', () => now);
    try {
      return await run(event, runContext({ leases }), deps(now));
    } finally {
      await leases.releaseAll();
    }
  };
  const size = async (name: string) => {
    const out = await aws.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }),
    );
    const g = out.AutoScalingGroups?.[0];
    return {
      min: g?.MinSize,
      desired: g?.DesiredCapacity,
      max: g?.MaxSize,
      tag: g?.Tags?.find((t) => t.Key === PARKED)?.Value,
    };
  };
  const mutations = () =>
    proxy
      .delivered()
      .filter((r) => !/^(Describe|List)/.test(r.operation) && !r.service.startsWith('DynamoDB'));

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(moto.url);
    aws = seedClients(moto.url);
    viaProxy = seedClients(proxy.url);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  /** Answers DescribeCapacityProviders without names with these providers, read from moto by name. */
  const listProviders = async (names: string[]) => {
    const known = names.length
      ? (await aws.ecs.send(new DescribeCapacityProvidersCommand({ capacityProviders: names })))
          .capacityProviders
      : [];
    proxy.stub('DescribeCapacityProviders', (request) =>
      request.body.includes('capacityProviders')
        ? undefined
        : {
            contentType: 'application/x-amz-json-1.1',
            body: JSON.stringify({
              capacityProviders: (known ?? []).map((p) => ({
                name: p.name,
                capacityProviderArn: p.capacityProviderArn,
                autoScalingGroupProvider: {
                  autoScalingGroupArn: p.autoScalingGroupProvider?.autoScalingGroupArn,
                },
              })),
            }),
          },
    );
  };

  beforeEach(async () => {
    proxy.rewrite('DescribeAutoScalingGroups', undefined);
    proxy.pinTimes(undefined);
    await listProviders([]);
    await moto.reset();
    await seedEstate(aws, []);
    store = await leaseTable(moto.url);
    proxy.requests.length = 0;
  });

  it('parks a group at 0/0/0 with its sizes saved on it, and restores them exactly', async () => {
    // Prepare
    await createGroup(aws, { name: 'batch-workers', min: 1, desired: 2, max: 4 });

    // Act
    const stop = await runAt({ action: 'stop', groups: ['batch-workers'] });
    const parked = await size('batch-workers');
    const again = await runAt({ action: 'stop', groups: ['batch-workers'] });
    const start = await runAt(
      { action: 'start', groups: ['batch-workers'] },
      new Date('2026-11-30T06:00:30Z'),
    );

    // Assess
    expect(stop.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(parked).toEqual({
      min: 0,
      desired: 0,
      max: 0,
      tag: 'min=1 desired=2 max=4 at=2026-11-27T18:00:30Z',
    });
    expect(row(again, 'batch-workers')).toMatchObject({ outcome: 'unchanged' });
    expect(start.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(await size('batch-workers')).toEqual({ min: 1, desired: 2, max: 4, tag: undefined });
  });

  it('skips a capacity provider, a protected group and a missing one, changing nothing', async () => {
    // Prepare: the cluster's capacity group, a production group
    await seedEstate(aws, [
      {
        name: 'stage',
        group: { name: 'stage-ecs-nodes', min: 1, desired: 2, max: 4 },
        services: [{ name: 'web', desired: 1 }],
      },
    ]);
    await createGroup(aws, { name: 'prod-workers', min: 1, desired: 1, max: 2, tags: { env: 'prod' } });
    await listProviders(['stage-capacity']);
    proxy.requests.length = 0;

    // Act
    const stop = await runAt({ action: 'stop', groups: ['stage-ecs-nodes', 'prod-workers', 'nope'] });

    // Assess
    expect(row(stop, 'stage-ecs-nodes')).toMatchObject({ outcome: 'skipped' });
    expect(row(stop, 'stage-ecs-nodes')?.detail).toMatch(
      /^capacity provider stage-capacity of an ECS cluster: .* stop the cluster instead$/,
    );
    expect(row(stop, 'prod-workers')).toMatchObject({
      outcome: 'skipped',
      detail: 'protected by tag env=prod on the group',
    });
    expect(row(stop, 'nope')).toMatchObject({
      outcome: 'failed',
      detail: 'Auto Scaling group not found; nothing done for it',
    });
    expect(mutations()).toHaveLength(0);
    expect(await size('stage-ecs-nodes')).toMatchObject({ min: 1, desired: 2, max: 4 });
  });

  it('does not park a group with instances protected from scale-in, or one with a warm pool', async () => {
    // Prepare
    await createGroup(aws, { name: 'protected-workers', min: 1, desired: 1, max: 2 });
    await createGroup(aws, { name: 'warm-workers', min: 1, desired: 1, max: 2 });
    const out = await aws.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['protected-workers'] }),
    );
    const instance = out.AutoScalingGroups?.[0]?.Instances?.[0]?.InstanceId ?? '';
    await aws.autoscaling.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: 'protected-workers',
        InstanceIds: [instance],
        ProtectedFromScaleIn: true,
      }),
    );
    // moto 5.2.1 does not answer WarmPoolConfiguration in DescribeAutoScalingGroups: added as AWS sends it.
    proxy.rewrite('DescribeAutoScalingGroups', (body) =>
      body.replace(
        /(<AutoScalingGroupName>warm-workers<\/AutoScalingGroupName>)/,
        '$1<WarmPoolConfiguration><MinSize>1</MinSize><PoolState>Stopped</PoolState><Status></Status></WarmPoolConfiguration>',
      ),
    );
    proxy.requests.length = 0;

    // Act
    const stop = await runAt({ action: 'stop', groups: ['protected-workers', 'warm-workers'] });

    // Assess
    expect(row(stop, 'protected-workers')).toMatchObject({ outcome: 'skipped' });
    expect(row(stop, 'protected-workers')?.detail).toMatch(
      new RegExp(
        `^instances protected from scale-in \\(${instance}\\): at desired 0 they would keep running`,
      ),
    );
    expect(row(stop, 'warm-workers')).toMatchObject({ outcome: 'skipped' });
    expect(row(stop, 'warm-workers')?.detail).toMatch(/^has a warm pool: /);
    expect(mutations()).toHaveLength(0);
  });

  it('leaves a group another run holds undone, and plans without changing anything in a dry run', async () => {
    // Prepare
    const arn = await createGroup(aws, { name: 'batch-workers', min: 1, desired: 2, max: 4 });
    const other = runLeases(store, 'instance-rotation run 1', () => NOW);
    await other.take(groupLeaseScope(arn));
    proxy.requests.length = 0;

    // Act
    const held = await runAt({ action: 'stop', groups: ['batch-workers'] });
    const dry = await runAt({ action: 'stop', groups: ['batch-workers'], dryRun: true });

    // Assess
    expect(row(held, 'batch-workers')).toMatchObject({ outcome: 'undone' });
    expect(row(held, 'batch-workers')?.detail).toMatch(/instance-rotation run 1/);
    expect(row(dry, 'batch-workers')).toMatchObject({ outcome: 'planned' });
    expect(dry.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(mutations()).toHaveLength(0);
    expect(await size('batch-workers')).toMatchObject({ min: 1, desired: 2, max: 4, tag: undefined });
    await other.releaseAll();
  });

  it('reconciles a group tagged nightshift:schedule on its own: parked at 19:00 local, back exactly at 07:00', async () => {
    // Prepare: a standalone group on office-hours, and a capacity group someone tagged too
    await createGroup(aws, {
      name: 'batch-workers',
      min: 1,
      desired: 2,
      max: 4,
      tags: { 'nightshift:schedule': 'office-hours' },
    });
    await seedEstate(aws, [
      {
        name: 'stage',
        group: {
          name: 'stage-ecs-nodes',
          min: 1,
          desired: 2,
          max: 4,
          tags: { 'nightshift:schedule': 'office-hours' },
        },
        services: [{ name: 'web', desired: 1 }],
      },
    ]);
    await listProviders(['stage-capacity']);
    // moto stamps CreatedTime with the real clock, days after this test's Friday: made old, as in a real estate.
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);

    // Act
    const evening = await runAt({ action: 'reconcile' }, NOW);
    const parked = await size('batch-workers');
    const night = await runAt({ action: 'reconcile' }, new Date('2026-11-27T22:00:00Z'));
    const morning = await runAt({ action: 'reconcile' }, new Date('2026-11-30T06:00:30Z'));

    // Assess
    expect(row(evening, 'batch-workers')).toMatchObject({ outcome: 'changed' });
    expect(row(evening, 'batch-workers')?.detail).toMatch(
      /^office-hours: stopped since Fri 19:00 Europe\/Berlin .*: min 1→0, desired 2→0, max 4→0/,
    );
    expect(parked).toMatchObject({ min: 0, desired: 0, max: 0 });
    expect(row(evening, 'stage-ecs-nodes')).toMatchObject({ outcome: 'skipped' });
    expect(row(evening, 'stage-ecs-nodes')?.detail).toMatch(
      /^capacity provider stage-capacity of an ECS cluster: it follows its cluster's services/,
    );
    expect(await size('stage-ecs-nodes')).toMatchObject({ min: 1, desired: 2, max: 4 });
    expect(night.summary).toMatchObject({ changed: 0, failed: 0 });
    expect(row(morning, 'batch-workers')).toMatchObject({ outcome: 'changed' });
    expect(await size('batch-workers')).toEqual({ min: 1, desired: 2, max: 4, tag: undefined });
  });

  it('an override on a group wins until it ends; then the group goes back to its schedule and the tag goes', async () => {
    // Prepare: parked at 19:00; someone woke it until 21:00 local (the tag as nightshift wake writes it)
    await createGroup(aws, {
      name: 'batch-workers',
      min: 1,
      desired: 2,
      max: 4,
      tags: { 'nightshift:schedule': 'office-hours' },
    });
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    await runAt({ action: 'reconcile' }, NOW);
    await aws.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          {
            ResourceId: 'batch-workers',
            ResourceType: 'auto-scaling-group',
            Key: 'nightshift:override',
            Value: 'state=running until=2026-11-27T20:00:00Z by=user/jane',
            PropagateAtLaunch: false,
          },
        ],
      }),
    );

    // Act
    const woken = await runAt({ action: 'reconcile' }, new Date('2026-11-27T19:00:00Z'));
    const up = await size('batch-workers');
    const after = await runAt({ action: 'reconcile' }, new Date('2026-11-27T20:00:00Z'));

    // Assess
    expect(row(woken, 'batch-workers')?.detail).toMatch(
      /^override by user\/jane until Fri 21:00 Europe\/Berlin/,
    );
    expect(up).toMatchObject({ min: 1, desired: 2, max: 4 });
    expect(after.summary).toMatchObject({ failed: 0 });
    expect(await size('batch-workers')).toMatchObject({ min: 0, desired: 0, max: 0 });
    const tags = await aws.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['batch-workers'] }),
    );
    expect(tags.AutoScalingGroups?.[0]?.Tags?.some((t) => t.Key === 'nightshift:override')).toBe(false);
  });
});
