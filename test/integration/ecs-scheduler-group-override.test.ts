/**
 * Overrides on standalone Auto Scaling groups (issue 10): `wake` / `sleep` take `"groups": [names]` as
 * stop and start do; the override tag is written on the group (CreateOrUpdateTags, not propagated to
 * its instances), then the group is reconciled at once; `cancel` returns it to its schedule and the
 * reconcile removes the tag (DeleteTags). The same refusals as for services: the cap, production, a plan
 * that changed since its dry run. Against moto.
 *
 * moto 5.2.1 answers DescribeCapacityProviders without names (AWS: every capacity provider of the
 * account, 10 a page) with a 500: the proxy answers it with none. moto stamps CreatedTime with the real
 * clock, days after this test's Friday: the proxy makes it old, as in a real estate (grace period).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CreateOrUpdateTagsCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { parseSchedules } from '#shared/schedules.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { createGroup, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';

const OVERRIDE = 'nightshift:override';
const PARKED = 'nightshift:stopped';
const EVENING = new Date('2026-11-27T18:00:30Z'); // Fri 19:00:30 Berlin: office-hours stops
const LATER = new Date('2026-11-27T19:00:00Z'); // Fri 20:00 Berlin

const rowOf = (report: Report, name: string) => report.resources.find((r) => r.arn.endsWith(`/${name}`));

describe.runIf(motoTestsEnabled())('ecs-scheduler overrides on standalone groups (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let store: LeaseStore;

  const deps = (now: Date): Deps => ({
    clients: viaProxy,
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false, OVERRIDE_MAX_HOURS: 24 },
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
  const runAt = async (event: Parameters<typeof run>[0], now: Date) => {
    const leases = runLeases(store, 'ecs-scheduler', () => now);
    try {
      return await run(event, runContext({ leases }), deps(now));
    } finally {
      await leases.releaseAll();
    }
  };
  const group = async (name: string) => {
    const out = await aws.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }),
    );
    const g = out.AutoScalingGroups?.[0];
    const tag = (key: string) => g?.Tags?.find((t) => t.Key === key);
    return {
      size: `${g?.MinSize}/${g?.DesiredCapacity}/${g?.MaxSize}`,
      override: tag(OVERRIDE)?.Value,
      overridePropagates: tag(OVERRIDE)?.PropagateAtLaunch,
      parked: tag(PARKED)?.Value,
    };
  };
  const sent = (operation: string) => proxy.delivered().filter((r) => r.operation === operation);

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
  beforeEach(async () => {
    proxy.stub('DescribeCapacityProviders', (request) =>
      request.body.includes('capacityProviders')
        ? undefined
        : { contentType: 'application/x-amz-json-1.1', body: JSON.stringify({ capacityProviders: [] }) },
    );
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    await moto.reset();
    await seedEstate(aws, []);
    store = await leaseTable(moto.url);
    await createGroup(aws, {
      name: 'batch-workers',
      min: 1,
      desired: 2,
      max: 4,
      tags: { 'nightshift:schedule': 'office-hours' },
    });
    // Parked by the evening reconcile
    const evening = await runAt({ action: 'reconcile' }, EVENING);
    expect(rowOf(evening, 'batch-workers')).toMatchObject({ outcome: 'changed' });
    proxy.requests.length = 0;
  });

  it('wake writes the override on the group and restores it at once; cancel parks it again and removes the tag', async () => {
    // Act: wake for 2 hours
    const woken = await runAt(
      { action: 'wake', groups: ['batch-workers'], for: '2h', by: 'user/jane', reason: 'load test' },
      LATER,
    );
    const up = await group('batch-workers');
    const held = await runAt({ action: 'reconcile' }, new Date('2026-11-27T19:30:00Z'));
    const stillUp = await group('batch-workers');
    const cancelled = await runAt(
      { action: 'wake', groups: ['batch-workers'], cancel: true, by: 'user/jane' },
      new Date('2026-11-27T19:40:00Z'),
    );

    // Assess: the tag on the group, not propagated to instances; the group back exactly, at once
    expect(woken.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(rowOf(woken, 'batch-workers')?.detail).toMatch(
      /^override: running until Fri 22:00 Europe\/Berlin \(2026-11-27T21:00:00Z\) by user\/jane; .*min 0→1, desired 0→2, max 0→4/,
    );
    expect(up).toEqual({
      size: '1/2/4',
      override: 'state=running until=2026-11-27T21:00:00Z by=user/jane why=load test',
      overridePropagates: false,
      parked: undefined,
    });
    // The next reconcile obeys the override on the group
    expect(rowOf(held, 'batch-workers')).toMatchObject({ outcome: 'unchanged' });
    expect(stillUp.size).toBe('1/2/4');
    // Cancel: back to its schedule (stopped) at once, then the tag removed with DeleteTags
    expect(cancelled.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(await group('batch-workers')).toMatchObject({ size: '0/0/0', override: undefined });
    expect((await group('batch-workers')).parked).toMatch(/^min=1 desired=2 max=4 at=/);
    expect(sent('DeleteTags').some((r) => r.body.includes('nightshift%3Aoverride'))).toBe(true);
  });

  it('sleep parks a running group at once and holds it against the schedule', async () => {
    // Prepare: Monday morning, the reconcile brought it back
    const monday = new Date('2026-11-30T06:00:30Z');
    await runAt({ action: 'reconcile' }, monday);
    expect((await group('batch-workers')).size).toBe('1/2/4');

    // Act
    const slept = await runAt(
      { action: 'sleep', groups: ['batch-workers'], for: '1h', by: 'user/jane' },
      new Date('2026-11-30T07:00:00Z'),
    );
    const reconciled = await runAt({ action: 'reconcile' }, new Date('2026-11-30T07:30:00Z'));

    // Assess
    expect(slept.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(rowOf(reconciled, 'batch-workers')).toMatchObject({ outcome: 'unchanged' });
    expect(await group('batch-workers')).toMatchObject({
      size: '0/0/0',
      override: 'state=stopped until=2026-11-30T08:00:00Z by=user/jane',
    });
  });

  it('refuses as for services: the cap, production, and a plan that changed since its dry run', async () => {
    // Prepare: a production group on the same schedule
    await createGroup(aws, {
      name: 'prod-workers',
      min: 1,
      desired: 1,
      max: 2,
      tags: { 'nightshift:schedule': 'office-hours', env: 'prod' },
    });
    proxy.requests.length = 0;

    // Act + Assess: longer than the cap (OVERRIDE_MAX_HOURS 24): refused before anything is written
    await expect(
      runAt(
        { action: 'wake', groups: ['batch-workers'], until: '2026-11-29T12:00:00+01:00', by: 'user/jane' },
        LATER,
      ),
    ).rejects.toThrow(/an override may last at most 24 h/);
    expect(sent('CreateOrUpdateTags')).toHaveLength(0);

    // Production: skipped, nothing written
    const prod = await runAt({ action: 'wake', groups: ['prod-workers'], for: '1h', by: 'user/jane' }, LATER);
    expect(rowOf(prod, 'prod-workers')).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(
        /^protected by tag env=prod on the group: production is never woken or slept/,
      ),
    });
    expect(sent('CreateOrUpdateTags')).toHaveLength(0);

    // A plan that changed since its dry run: the saved size was edited in between
    const dry = await runAt(
      { action: 'wake', groups: ['batch-workers'], until: '22:00', by: 'user/jane', dryRun: true },
      LATER,
    );
    expect(rowOf(dry, 'batch-workers')).toMatchObject({ outcome: 'planned' });
    await aws.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          {
            ResourceId: 'batch-workers',
            ResourceType: 'auto-scaling-group',
            Key: PARKED,
            Value: 'min=1 desired=3 max=4 at=2026-11-27T18:00:30Z',
            PropagateAtLaunch: false,
          },
        ],
      }),
    );
    proxy.requests.length = 0;
    const apply = await runAt(
      {
        action: 'wake',
        groups: ['batch-workers'],
        until: '22:00',
        by: 'user/jane',
        planDigest: dry.planDigest!,
      },
      LATER,
    );
    expect(apply.resources.every((r) => r.outcome === 'skipped')).toBe(true);
    expect(apply.resources[0]?.detail).toMatch(/^the plan changed since it was confirmed/);
    expect(sent('CreateOrUpdateTags')).toHaveLength(0);
    expect((await group('batch-workers')).size).toBe('0/0/0');
  });
});
