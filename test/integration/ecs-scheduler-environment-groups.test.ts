/**
 * Start order in an environment, second tier (issue 10): the ECS services of an environment wait for its
 * standalone Auto Scaling groups (tag nightshift:environment, not capacity providers) to be in service at
 * desired. Within one run the groups start and the services are `waiting`, naming each group and its
 * state; a later run starts them. After ENVIRONMENT_START_TIMEOUT_MINUTES the laggard group's row is
 * `failed` and the services still wait; `force` skips the gate. Against moto.
 *
 * moto launches a group's instances `InService` at once: the proxy reports one as `Pending` where a test
 * needs a group short of desired, as AWS does while an instance boots. moto 5.2.1 answers
 * DescribeCapacityProviders without names (AWS: every capacity provider, 10 a page) with a 500: the proxy
 * answers it with none (these clusters run on Fargate).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CreateOrUpdateTagsCommand } from '@aws-sdk/client-auto-scaling';
import { RDSClient } from '@aws-sdk/client-rds';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { parseSchedules } from '#shared/schedules.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { createGroup, observe, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { createDatabase, snapshotSeedClients } from '#test/support/rds-estate.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const ENV = 'nightshift:environment';
const NIGHT = new Date('2026-11-27T18:00:30Z'); // Fri 19:00:30 Berlin
const MORNING = new Date('2026-11-30T06:00:30Z'); // Mon 07:00:30 Berlin
const minutesAfter = (d: Date, m: number) => new Date(d.getTime() + m * 60_000);

const row = (report: Report, suffix: string) => report.resources.filter((r) => r.arn.endsWith(suffix));
const one = (report: Report, suffix: string) => {
  const rows = row(report, suffix);
  expect(rows).toHaveLength(1);
  return rows[0]!;
};

describe.runIf(motoTestsEnabled())(
  'ecs-scheduler: services wait for the groups of their environment (moto)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let aws: SeedClients;
    let viaProxy: SeedClients;
    let store: LeaseStore;

    const deps = (now: Date): Deps => ({
      clients: {
        ...viaProxy,
        rds: new RDSClient({
          endpoint: proxy.url,
          region: 'eu-central-1',
          credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        }),
      },
      config: {
        PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS,
        DRY_RUN: false,
        ENVIRONMENT_START_TIMEOUT_MINUTES: 30,
      },
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
    /**
     * The proxy reports one instance of shop-asg as booting (`Pending`), as AWS does for minutes. Always:
     * moto stamps CreatedTime with the real clock, days after this test's Friday: made old, as in a real
     * estate (a reconcile's grace period).
     */
    const booting = (on: boolean) =>
      proxy.rewrite('DescribeAutoScalingGroups', (body) => {
        const old = body.replace(
          /<CreatedTime>[^<]*<\/CreatedTime>/g,
          '<CreatedTime>2026-01-05T09:00:00Z</CreatedTime>',
        );
        return on
          ? old.replace(
              /(<AutoScalingGroupName>shop-asg<\/AutoScalingGroupName>[\s\S]*?<LifecycleState>)InService(<\/LifecycleState>)/,
              '$1Pending$2',
            )
          : old;
      });
    const state = () => observe(aws, ['shop'], ['shop-asg']);

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
      booting(false);
      proxy.stub('DescribeCapacityProviders', (request) =>
        request.body.includes('capacityProviders')
          ? undefined
          : { contentType: 'application/x-amz-json-1.1', body: JSON.stringify({ capacityProviders: [] }) },
      );
      await moto.reset();
      store = await leaseTable(moto.url);
      await seedEstate(aws, [
        {
          name: 'shop',
          tags: { env: 'stage', [ENV]: 'shop' },
          services: [
            { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
            { name: 'worker', desired: 2 },
          ],
        },
      ]);
      await createGroup(aws, { name: 'shop-asg', min: 1, desired: 2, max: 3, tags: { [ENV]: 'shop' } });
      proxy.requests.length = 0;
    });

    const everything = { action: 'stop' as const, clusters: ['shop'], groups: ['shop-asg'] };
    const wake = { ...everything, action: 'start' as const };

    it('starts the group first, keeps the services waiting while it is short of desired, then starts them', async () => {
      // Prepare: all parked for the night
      const before = await state();
      const stop = await runAt(everything, NIGHT);
      expect(stop.summary).toMatchObject({ changed: 3, failed: 0 });

      // Act: run 1 starts the group; run 2 finds it 1 of 2 in service; run 3 finds it ready
      const run1 = await runAt(wake, MORNING);
      const afterRun1 = await state();
      booting(true);
      const run2 = await runAt(wake, minutesAfter(MORNING, 5));
      const afterRun2 = await state();
      booting(false);
      const run3 = await runAt(wake, minutesAfter(MORNING, 10));

      // Assess: run 1 restored the group exactly and changed no service, naming the group
      expect(one(run1, '/shop-asg')).toMatchObject({ outcome: 'changed' });
      for (const s of ['service/shop/web', 'service/shop/worker']) {
        expect(one(run1, s)).toMatchObject({
          outcome: 'waiting',
          detail:
            'waiting for shop-asg: started by this run, 0 of 2 in service (environment shop: Auto Scaling groups start first); ' +
            'nothing changed — a later run starts it (--force starts it now)',
        });
      }
      expect(afterRun1.groups['shop-asg']).toEqual(before.groups['shop-asg']);
      expect(afterRun1.services['shop/web']?.desired).toBe(0);
      expect(afterRun1.services['shop/worker']?.desired).toBe(0);
      // Run 2: still short of desired, still waiting, nothing changed
      expect(run2.summary).toMatchObject({ waiting: 3, changed: 0, failed: 0 });
      expect(one(run2, '/shop-asg').detail).toMatch(/started by nightshift 5 min ago; failed after 30 min/);
      expect(one(run2, 'service/shop/web').detail).toMatch(
        /^waiting for shop-asg: 1 of 2 in service \(environment shop/,
      );
      expect(afterRun2.services['shop/web']?.desired).toBe(0);
      // Run 3: the services back exactly
      expect(run3.summary).toMatchObject({ changed: 2, waiting: 0, failed: 0 });
      expect(await state()).toEqual(before);
      // The gate read every group tagged with the environment, 100 a page
      const reads = proxy.requests.filter(
        (r) => r.operation === 'DescribeAutoScalingGroups' && r.body.includes('tag-key'),
      );
      expect(reads.length).toBeGreaterThan(0);
      expect(reads.every((r) => r.body.includes('MaxRecords=100'))).toBe(true);
    });

    it('fails the laggard group after ENVIRONMENT_START_TIMEOUT_MINUTES while the services keep waiting', async () => {
      // Prepare: parked, then the group started at 07:00 and one instance never boots
      await runAt(everything, NIGHT);
      await runAt(wake, MORNING);
      booting(true);

      // Act: before the timeout, after it (with the group named, and without)
      const early = await runAt(wake, minutesAfter(MORNING, 20));
      const late = await runAt(wake, minutesAfter(MORNING, 31));
      const clusterOnly = await runAt({ action: 'start', clusters: ['shop'] }, minutesAfter(MORNING, 32));

      // Assess
      expect(one(early, '/shop-asg')).toMatchObject({ outcome: 'waiting' });
      expect(one(early, '/shop-asg').detail).toMatch(
        /waiting for shop-asg: 1 of 2 in service since 2026-11-30T06:00:30Z \(started by nightshift 20 min ago; failed after 30 min, ENVIRONMENT_START_TIMEOUT_MINUTES\)$/,
      );
      expect(one(late, '/shop-asg')).toMatchObject({ outcome: 'failed' });
      expect(one(late, '/shop-asg').detail).toMatch(
        /not in service at desired 31 min after nightshift started it \(at 2026-11-30T06:00:30Z\): 1 of 2 in service — more than ENVIRONMENT_START_TIMEOUT_MINUTES \(30\); the services of environment shop keep waiting/,
      );
      expect(one(late, 'service/shop/web')).toMatchObject({ outcome: 'waiting' });
      expect(one(clusterOnly, '/shop-asg')).toMatchObject({ outcome: 'failed' });
      expect(clusterOnly.summary).toMatchObject({ waiting: 2, failed: 1, changed: 0 });
      expect((await state()).services['shop/web']?.desired).toBe(0);
    });

    it('starts everything in one run with force', async () => {
      // Prepare
      const before = await state();
      await runAt(everything, NIGHT);

      // Act
      const forced = await runAt({ ...wake, force: true }, MORNING);

      // Assess
      expect(forced.summary).toMatchObject({ changed: 3, waiting: 0, failed: 0 });
      expect(await state()).toEqual(before);
    });

    it('a reconcile starts the group at the transition and the services at the next run', async () => {
      // Prepare: the cluster and the group follow office-hours; the evening reconcile parks them all
      for (const name of ['shop-asg']) {
        await aws.autoscaling.send(
          new CreateOrUpdateTagsCommand({
            Tags: [
              {
                ResourceId: name,
                ResourceType: 'auto-scaling-group',
                Key: 'nightshift:schedule',
                Value: 'office-hours',
                PropagateAtLaunch: false,
              },
            ],
          }),
        );
      }
      await seedEstate(aws, [
        {
          name: 'tools',
          tags: { env: 'stage', 'nightshift:schedule': 'office-hours', [ENV]: 'shop' },
          services: [{ name: 'ci', desired: 1 }],
        },
      ]);
      const before = await observe(aws, ['tools'], ['shop-asg']);
      const night = await runAt({ action: 'reconcile' }, NIGHT);
      expect(night.summary).toMatchObject({ changed: 2, failed: 0 });

      // Act
      const first = await runAt({ action: 'reconcile' }, MORNING);
      const second = await runAt({ action: 'reconcile' }, minutesAfter(MORNING, 10));

      // Assess
      expect(one(first, '/shop-asg')).toMatchObject({ outcome: 'changed' });
      expect(one(first, 'service/tools/ci')).toMatchObject({ outcome: 'waiting' });
      expect(one(first, 'service/tools/ci').detail).toMatch(
        /waiting for shop-asg: started by this run, 0 of 2 in service/,
      );
      expect(one(second, 'service/tools/ci')).toMatchObject({ outcome: 'changed' });
      expect(await observe(aws, ['tools'], ['shop-asg'])).toEqual(before);
    });

    it('reads every page of the environment’s groups: a laggard past the first 100 still holds the services', async () => {
      // Prepare: 100 more groups of the environment, at rest (ready), created before the parked shop-asg
      await runAt(everything, NIGHT);
      for (let i = 0; i < 100; i += 1) {
        await createGroup(aws, {
          name: `shop-pool-${String(i).padStart(3, '0')}`,
          min: 0,
          desired: 0,
          max: 1,
          tags: { [ENV]: 'shop' },
        });
      }
      // shop-asg started on its own, one of its instances still booting
      await runAt({ action: 'start', groups: ['shop-asg'] }, MORNING);
      booting(true);
      proxy.requests.length = 0;

      // Act: a start of the services, while shop-asg is short of desired
      const start = await runAt({ action: 'start', clusters: ['shop'] }, minutesAfter(MORNING, 1));
      booting(false);

      // Assess
      const reads = proxy.requests.filter(
        (r) => r.operation === 'DescribeAutoScalingGroups' && r.body.includes('tag-key'),
      );
      expect(reads).toHaveLength(2);
      expect(one(start, 'service/shop/web')).toMatchObject({
        outcome: 'waiting',
        detail: expect.stringMatching(/^waiting for shop-asg: 1 of 2 in service/),
      });
      expect((await state()).services['shop/web']?.desired).toBe(0);
    });

    it('the group waits for the environment’s database, and the services for both', async () => {
      // Prepare: parked; in the morning the database is still starting (moto's are available at once:
      // the proxy reports it as RDS does for minutes)
      await createDatabase(snapshotSeedClients(moto.url), 'shop-db', { [ENV]: 'shop' });
      await runAt(everything, NIGHT);
      proxy.rewrite('DescribeDBInstances', (body) =>
        body.replace(
          /(<DBInstanceIdentifier>shop-db<\/DBInstanceIdentifier>[\s\S]*?<DBInstanceStatus>)available(<\/DBInstanceStatus>)/,
          '$1starting$2',
        ),
      );

      // Act
      const early = await runAt(wake, MORNING);
      const afterEarly = await state();
      proxy.rewrite('DescribeDBInstances', undefined);
      const later = await runAt(wake, minutesAfter(MORNING, 10));

      // Assess: nothing started while the database starts; then the group, the services still waiting
      expect(one(early, '/shop-asg')).toMatchObject({
        outcome: 'waiting',
        detail: expect.stringMatching(
          /^waiting for shop-db: starting \(environment shop: databases start first\)/,
        ),
      });
      expect(one(early, 'service/shop/web')).toMatchObject({
        outcome: 'waiting',
        detail: expect.stringMatching(
          /^waiting for shop-db: starting \(environment shop: databases start first\)/,
        ),
      });
      expect(afterEarly.groups['shop-asg']).toMatchObject({ min: 0, desired: 0, max: 0 });
      expect(one(later, '/shop-asg')).toMatchObject({ outcome: 'changed' });
      expect(one(later, 'service/shop/web')).toMatchObject({ outcome: 'waiting' });
    });
  },
);
