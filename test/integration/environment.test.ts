/**
 * An environment (tag nightshift:environment) on a schedule, end to end against moto: a database (a DB
 * instance, or an Aurora cluster), a standalone Auto Scaling group and two ECS services, tagged with
 * `nightshift:schedule=office-hours` from the bundled schedules file (infra/schedules.yml: 07:00–19:00
 * Europe/Berlin, Monday to Friday). Both functions' reconciles run at successive `now` values across the
 * evening stop and the morning start, in both orders within one tick (as their EventBridge schedules
 * may fire): the services and the group park first and the database waits for them; in the morning the
 * database starts first and the services wait for it. No run sleeps: a later run does what waited.
 *
 * moto differs from AWS where the order depends on it; the proxy answers as AWS does (answerAsAws in
 * test/support/environment-estate.ts): moto's databases start instantly, so the proxy reports one as
 * `starting` for the runs a test says; moto's tasks stop at once, so it reports tasks still draining
 * where a test says; creation times are made old (no grace period); DescribeCapacityProviders without
 * names (a 500 in moto) is answered as AWS would.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run as runEcs, type Deps as EcsDeps } from '#functions/ecs-scheduler/handler.ts';
import { bundledSchedules as ecsSchedules } from '#functions/ecs-scheduler/schedules.ts';
import { run as runRds, type Deps as RdsDeps } from '#functions/rds-scheduler/handler.ts';
import { bundledSchedules as rdsSchedules } from '#functions/rds-scheduler/schedules.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import {
  answerAsAws,
  environmentClients,
  observeEnvironment,
  REPORTS,
  seedEnvironment,
  SHOP,
  STOPPED,
  type AwsAnswers,
  type EnvironmentClients,
  type EnvironmentSpec,
  type ObservedEnvironment,
} from '#test/support/environment-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

// Tuesday 1 December 2026, 19:00:30 in Berlin (UTC+1): office-hours has wanted everything stopped for 30 s.
const EVENING = new Date('2026-12-01T18:00:30Z');
// Wednesday 2 December 2026, 07:00:30 in Berlin: office-hours wants everything running.
const MORNING = new Date('2026-12-02T06:00:30Z');
const plus = (t: Date, minutes: number) => new Date(t.getTime() + minutes * 60_000);

/** The environment `blog`: its own schedule (stage-nights: stops at 20:00 UTC on weekdays, no start). */
const BLOG: EnvironmentSpec = {
  environment: 'blog',
  schedule: 'stage-nights',
  database: { kind: 'instance', id: 'blog-db' },
  group: { name: 'blog-jobs', min: 1, desired: 1, max: 2 },
  cluster: 'blog',
  services: [
    { name: 'site', desired: 2 },
    { name: 'feeds', desired: 1 },
  ],
};

const row = (report: Report, suffix: string) => {
  const found = report.resources.filter((r) => r.arn.endsWith(suffix));
  if (found.length !== 1) throw new Error(`${found.length} rows end with ${suffix} in ${report.action}`);
  return found[0]!;
};
const dbRow = (report: Report, spec: EnvironmentSpec) => row(report, `:${spec.database.id}`);
const serviceRow = (report: Report, spec: EnvironmentSpec, service: string) =>
  row(report, `service/${spec.cluster}/${service}`);
const groupRow = (report: Report, spec: EnvironmentSpec) => row(report, `/${spec.group.name}`);

/** What an environment's runs sent that changes something, in the order the proxy received it. */
interface Change {
  op: 'stop-db' | 'start-db' | 'service' | 'group';
  name: string;
  /** UpdateService desiredCount; UpdateAutoScalingGroup desired capacity (and min, max). */
  size?: number;
  sizes?: string;
}

describe.runIf(motoTestsEnabled())(
  'an environment on a schedule: database, group and services (moto)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let aws: EnvironmentClients;
    let viaProxy: EnvironmentClients;
    let store: LeaseStore;
    let answers: AwsAnswers;

    const ecsDeps = (now: Date): EcsDeps => ({
      clients: viaProxy,
      config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
      now: () => now,
      schedules: ecsSchedules,
    });
    const rdsDeps = (now: Date): RdsDeps => ({
      clients: { rds: viaProxy.rds, ecs: viaProxy.ecs, autoscaling: viaProxy.autoscaling },
      config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
      now: () => now,
      schedules: rdsSchedules,
    });
    /** One ecs-scheduler run as withOps runs it: its leases in the stage's table, released at the end. */
    const ecs = async (event: Parameters<typeof runEcs>[0], now: Date) => {
      const leases = runLeases(store, 'ecs-scheduler', () => now);
      try {
        return await runEcs(event, runContext({ leases }), ecsDeps(now));
      } finally {
        await leases.releaseAll();
      }
    };
    const rds = async (event: Parameters<typeof runRds>[0], now: Date) => {
      const leases = runLeases(store, 'rds-scheduler', () => now);
      try {
        return await runRds(event, runContext({ leases }), rdsDeps(now));
      } finally {
        await leases.releaseAll();
      }
    };
    const reconcile = { action: 'reconcile' } as const;

    /** RDS reports the database (and an Aurora cluster's writer) in `status` until `settled()`. */
    const reportDatabase = (spec: EnvironmentSpec, status: string) => {
      answers.databaseStatus.set(spec.database.id, status);
      if (spec.database.kind === 'cluster') answers.databaseStatus.set(`${spec.database.id}-1`, status);
    };
    const settled = () => {
      answers.databaseStatus.clear();
      answers.draining.clear();
    };

    const changes = (spec: EnvironmentSpec): Change[] =>
      proxy.delivered().flatMap((r): Change[] => {
        if (/^(Stop|Start)DB(Instance|Cluster)$/.test(r.operation)) {
          const params = new URLSearchParams(r.body);
          const id = params.get('DBInstanceIdentifier') ?? params.get('DBClusterIdentifier');
          return id === spec.database.id
            ? [{ op: r.operation.startsWith('Stop') ? 'stop-db' : 'start-db', name: id }]
            : [];
        }
        if (r.operation === 'UpdateService') {
          const body = JSON.parse(r.body) as { cluster?: string; service?: string; desiredCount?: number };
          if (body.cluster !== spec.cluster && !body.cluster?.endsWith(`/${spec.cluster}`)) return [];
          if (body.desiredCount === undefined) return [];
          return [{ op: 'service', name: String(body.service).split('/').pop()!, size: body.desiredCount }];
        }
        if (r.operation === 'UpdateAutoScalingGroup') {
          const params = new URLSearchParams(r.body);
          if (params.get('AutoScalingGroupName') !== spec.group.name) return [];
          return [
            {
              op: 'group',
              name: spec.group.name,
              size: Number(params.get('DesiredCapacity') ?? params.get('MaxSize') ?? -1),
              sizes: `${params.get('MinSize')}/${params.get('DesiredCapacity')}/${params.get('MaxSize')}`,
            },
          ];
        }
        return [];
      });
    const sorted = (list: string[]) => [...list].sort();
    const indexOf = (list: Change[], match: (c: Change) => boolean) => list.findIndex(match);
    const lastIndexOf = (list: Change[], match: (c: Change) => boolean) =>
      list.reduce((last, c, i) => (match(c) ? i : last), -1);

    beforeAll(async () => {
      moto = await startMoto();
      proxy = await startProxy(moto.url);
      useEndpoint(moto.url);
      aws = environmentClients(moto.url);
      viaProxy = environmentClients(proxy.url);
    }, 90_000);
    afterAll(async () => {
      await proxy?.close();
      moto?.stop();
    });
    beforeEach(async () => {
      await moto.reset();
      store = await leaseTable(moto.url);
      answers = { databaseStatus: new Map(), draining: new Map() };
      await answerAsAws(proxy, aws, answers);
      proxy.requests.length = 0;
    });

    /** The evening: everything of `spec` parked, the database last; returns the reports in run order. */
    /**
     * The evening: ecs-scheduler parks the services and the group, rds-scheduler waits in one run (in the
     * order given) and stops the database in the next, 5 minutes later.
     */
    const evening = async (
      spec: EnvironmentSpec,
      order: 'ecs first' | 'rds first',
    ): Promise<{ ecs: Report; rdsWaits: Report; parked: ObservedEnvironment; rdsStops: Report }> => {
      let parks: Report;
      let rdsWaits: Report;
      if (order === 'ecs first') {
        parks = await ecs(reconcile, EVENING);
        // ECS drains the first service's tasks after desiredCount 0 (moto stops them at once).
        answers.draining.set(`${spec.cluster}/${spec.services[0]!.name}`, 1);
        rdsWaits = await rds(reconcile, EVENING);
      } else {
        rdsWaits = await rds(reconcile, EVENING);
        parks = await ecs(reconcile, EVENING);
      }
      const parked = await observeEnvironment(aws, spec);
      settled();
      const rdsStops = await rds(reconcile, plus(EVENING, 5));
      return { ecs: parks, rdsWaits, parked, rdsStops };
    };

    describe.each([
      ['a DB instance', SHOP],
      ['an Aurora cluster', REPORTS],
    ])('with %s', (_, spec) => {
      it.each(['ecs first', 'rds first'] as const)(
        'parks the services and the group first, the database last; starts the database first, the services last (%s in the same tick)',
        async (order) => {
          // Prepare
          await seedEnvironment(aws, spec);
          const before = await observeEnvironment(aws, spec);
          const [first, second] = spec.services.map((s) => s.name) as [string, string];

          // Act: the evening
          const night = await evening(spec, order);
          const { parked } = night;

          // Assess: services and group parked by ecs-scheduler, their state saved on them
          expect(night.ecs.summary).toMatchObject({ changed: 3, failed: 0, waiting: 0 });
          const { min, desired, max } = spec.group;
          expect(groupRow(night.ecs, spec).detail).toMatch(
            new RegExp(
              `^office-hours: stopped since Tue 19:00 Europe/Berlin .*: min ${min}→0, desired ${desired}→0, max ${max}→0`,
            ),
          );
          expect(parked.services[`${spec.cluster}/${first}`]).toMatchObject({
            desired: 0,
            tags: { [STOPPED]: expect.stringMatching(/^desired=\d+ min=\d+ max=\d+ suspended=none at=/) },
          });
          expect(parked.services[`${spec.cluster}/${second}`]).toMatchObject({
            desired: 0,
            tags: { [STOPPED]: expect.stringMatching(/^desired=\d+ /) },
          });
          expect(parked.group).toMatchObject({
            min: 0,
            desired: 0,
            max: 0,
            tags: { [STOPPED]: expect.any(String) },
          });
          // …the database waited while a service still asked for or ran tasks, naming what it waited for
          expect(parked.database.status).toBe('available');
          const waited = dbRow(night.rdsWaits, spec);
          expect(waited.outcome).toBe('waiting');
          expect(waited.detail).toContain(
            `environment ${spec.environment} (nightshift:environment): waiting for`,
          );
          if (order === 'ecs first') {
            expect(waited.detail).toContain(
              `${spec.cluster}/${first}: desiredCount 0, 1 task(s) running or pending`,
            );
            expect(waited.detail).not.toContain(spec.group.name);
          } else {
            for (const s of spec.services)
              expect(waited.detail).toContain(`${spec.cluster}/${s.name}: desiredCount ${s.desired}`);
            expect(waited.detail).toContain(
              `${spec.group.name}: min/desired/max ${spec.group.min}/${spec.group.desired}/${spec.group.max}`,
            );
          }
          expect(night.rdsWaits.summary).toMatchObject({ waiting: 1, changed: 0, failed: 0 });
          // …and stopped by the next run, once everything of its environment rests
          expect(dbRow(night.rdsStops, spec).outcome).toBe('changed');
          const stopped = await observeEnvironment(aws, spec);
          expect(stopped.database.status).toBe('stopped');
          expect(stopped.database.tags[STOPPED]).toMatch(/^at=2026-12-01T18:05:30(\.000)?Z by=nightshift$/);
          // Order, from what reached AWS: the stop of the database after every service and the group parked
          const stopOrder = changes(spec);
          const stopDb = indexOf(stopOrder, (c) => c.op === 'stop-db');
          expect(stopOrder.filter((c) => c.op === 'stop-db')).toHaveLength(1);
          expect(stopDb).toBeGreaterThan(lastIndexOf(stopOrder, (c) => c.op === 'service' && c.size === 0));
          expect(stopDb).toBeGreaterThan(
            lastIndexOf(stopOrder, (c) => c.op === 'group' && c.sizes === '0/0/0'),
          );
          expect(stopOrder.filter((c) => c.op === 'group').map((c) => c.sizes)).toEqual(['0/0/0']);
          expect(
            sorted(stopOrder.filter((c) => c.op === 'service').map((c) => `${c.name}=${c.size}`)),
          ).toEqual(sorted(spec.services.map((s) => `${s.name}=0`)));

          // Act: the morning
          proxy.requests.length = 0;
          let early: Report;
          let rdsStart: Report;
          let early2: Report | undefined;
          if (order === 'ecs first') {
            early = await ecs(reconcile, MORNING);
            rdsStart = await rds(reconcile, MORNING);
            reportDatabase(spec, 'starting');
            early2 = await ecs(reconcile, plus(MORNING, 2));
          } else {
            rdsStart = await rds(reconcile, MORNING);
            reportDatabase(spec, 'starting');
            early = await ecs(reconcile, MORNING);
          }
          const waitingState = await observeEnvironment(aws, spec);
          settled();
          const groupUp = await ecs(reconcile, plus(MORNING, 5));
          const start = await ecs(reconcile, plus(MORNING, 10));

          // Assess: the database started first; the services waited for it, naming it and its state
          expect(dbRow(rdsStart, spec).outcome).toBe('changed');
          const blocker = order === 'ecs first' ? 'stopped' : 'starting';
          for (const s of spec.services) {
            expect(serviceRow(early, spec, s.name).outcome).toBe('waiting');
            expect(serviceRow(early, spec, s.name).detail).toMatch(
              new RegExp(
                `^waiting for ${spec.database.id}: ${blocker} \\(environment ${spec.environment}: databases start first\\)`,
              ),
            );
          }
          if (early2) {
            for (const s of spec.services)
              expect(serviceRow(early2, spec, s.name).detail).toMatch(
                new RegExp(`^waiting for ${spec.database.id}: starting \\(environment ${spec.environment}`),
              );
          }
          for (const s of spec.services)
            expect(waitingState.services[`${spec.cluster}/${s.name}`]).toMatchObject({
              desired: 0,
              tags: { [STOPPED]: expect.any(String) },
            });
          // The database before the group: the group waited for it too, parked
          expect(groupRow(early, spec)).toMatchObject({ outcome: 'waiting' });
          expect(groupRow(early, spec).detail).toMatch(
            new RegExp(
              `^waiting for ${spec.database.id}: ${blocker} \\(environment ${spec.environment}: databases start first\\)`,
            ),
          );
          expect(waitingState.group).toMatchObject({ min: 0, desired: 0, max: 0 });
          // The group before the services: the run that restores the group leaves them waiting for it
          expect(groupRow(groupUp, spec).outcome).toBe('changed');
          for (const s of spec.services) {
            expect(serviceRow(groupUp, spec, s.name).outcome).toBe('waiting');
            expect(serviceRow(groupUp, spec, s.name).detail).toContain(`waiting for ${spec.group.name}`);
          }
          // …and started by a later run, once the database is available
          expect(start.summary).toMatchObject({ waiting: 0, failed: 0 });
          for (const s of spec.services) expect(serviceRow(start, spec, s.name).outcome).toBe('changed');
          // Everything exactly as before: desired counts, scaling, group sizes, the database, no saved tags
          expect(await observeEnvironment(aws, spec)).toEqual(before);
          // Order, from what reached AWS: the database's start before any service or the group scaled up
          const startOrder = changes(spec);
          const startDb = indexOf(startOrder, (c) => c.op === 'start-db');
          expect(startDb).toBeGreaterThanOrEqual(0);
          expect(startOrder.filter((c) => c.op === 'start-db')).toHaveLength(1);
          const groupBack = indexOf(startOrder, (c) => c.op === 'group');
          const firstUp = indexOf(startOrder, (c) => c.op === 'service' && (c.size ?? 0) > 0);
          expect(groupBack).toBeGreaterThan(startDb);
          expect(firstUp).toBeGreaterThan(groupBack);
          expect(
            sorted(startOrder.filter((c) => c.op === 'service').map((c) => `${c.name}=${c.size}`)),
          ).toEqual(sorted(spec.services.map((s) => `${s.name}=${s.desired}`)));
        },
      );
    });

    it('keeps a standalone group of the environment parked while its database is not ready (reconcile and explicit start)', async () => {
      // Prepare: parked in the evening; the database still stopped in the morning
      await seedEnvironment(aws, SHOP);
      await evening(SHOP, 'ecs first');

      // Act
      const early = await ecs(reconcile, MORNING);
      const explicit = await ecs({ action: 'start', groups: ['shop-batch'] }, plus(MORNING, 1));

      // Assess
      expect(groupRow(early, SHOP)).toMatchObject({ outcome: 'waiting' });
      expect(groupRow(early, SHOP).detail).toMatch(
        /^waiting for shop-db: stopped \(environment shop: databases start first\)/,
      );
      expect(groupRow(explicit, SHOP)).toMatchObject({ outcome: 'waiting' });
      expect((await observeEnvironment(aws, SHOP)).group).toMatchObject({ min: 0, desired: 0, max: 0 });
    });

    it('fails a database still starting after ENVIRONMENT_START_TIMEOUT_MINUTES; its services keep waiting, force starts them', async () => {
      // Prepare: parked in the evening, the database started by the morning reconcile and stuck starting
      await seedEnvironment(aws, SHOP);
      const before = await observeEnvironment(aws, SHOP);
      await evening(SHOP, 'ecs first');
      expect(dbRow(await rds(reconcile, MORNING), SHOP).outcome).toBe('changed');
      reportDatabase(SHOP, 'starting');

      // Act: 10 minutes later, then 31 (the default timeout is 30)
      const rdsEarly = await rds(reconcile, plus(MORNING, 10));
      const ecsEarly = await ecs(reconcile, plus(MORNING, 10));
      const rdsLate = await rds(reconcile, plus(MORNING, 31));
      const ecsLate = await ecs(reconcile, plus(MORNING, 31));
      const explicit = await ecs(
        { action: 'start', clusters: ['shop'], groups: ['shop-batch'] },
        plus(MORNING, 32),
      );
      const stillParked = await observeEnvironment(aws, SHOP);

      // Assess: waiting, then failed (paged), naming the timeout and the state
      expect(dbRow(rdsEarly, SHOP)).toMatchObject({ outcome: 'waiting' });
      expect(dbRow(rdsEarly, SHOP).detail).toContain(
        'waiting for shop-db: starting since 2026-12-02T06:00:30',
      );
      for (const s of SHOP.services) expect(serviceRow(ecsEarly, SHOP, s.name).outcome).toBe('waiting');
      expect(dbRow(rdsLate, SHOP)).toMatchObject({ outcome: 'failed' });
      expect(dbRow(rdsLate, SHOP).detail).toContain('not ready 31 min after nightshift started it');
      expect(dbRow(rdsLate, SHOP).detail).toContain('ENVIRONMENT_START_TIMEOUT_MINUTES (30)');
      expect(rdsLate.summary).toMatchObject({ failed: 1, changed: 0 });
      // …the services behind it still wait (a reconcile and an explicit start alike), nothing changed
      for (const report of [ecsLate, explicit]) {
        expect(report.summary.failed).toBe(0);
        for (const s of SHOP.services)
          expect(serviceRow(report, SHOP, s.name).detail).toMatch(
            /^waiting for shop-db: starting \(environment shop/,
          );
      }
      expect(stillParked.services['shop/web']?.desired).toBe(0);
      expect(changes(SHOP).filter((c) => c.op === 'service' && (c.size ?? 0) > 0)).toEqual([]);

      // Act: someone who knows the database is usable forces the start
      const forced = await ecs(
        { action: 'start', clusters: ['shop'], groups: ['shop-batch'], force: true },
        plus(MORNING, 33),
      );

      // Assess: started at once, exactly as before (the database is available in moto all along)
      expect(forced.summary).toMatchObject({ waiting: 0, failed: 0 });
      for (const s of SHOP.services) expect(serviceRow(forced, SHOP, s.name).outcome).toBe('changed');
      expect(await observeEnvironment(aws, SHOP)).toEqual(before);
    });

    it('keeps environments apart: one environment waiting never blocks another on its own schedule', async () => {
      // Prepare: shop on office-hours, blog on stage-nights (stops at 20:00 UTC, no start)
      await seedEnvironment(aws, SHOP);
      await seedEnvironment(aws, BLOG);
      const blogBefore = await observeEnvironment(aws, BLOG);
      const night = new Date('2026-12-01T20:00:30Z');

      // Act: the evening; shop's web still drains its tasks when rds-scheduler runs
      const parked = await ecs(reconcile, night);
      answers.draining.set('shop/web', 2);
      const stops = await rds(reconcile, night);

      // Assess: both parked by ecs-scheduler; shop's database waits, blog's stops in the same run
      expect(parked.summary).toMatchObject({ changed: 6, failed: 0 });
      expect(dbRow(stops, SHOP)).toMatchObject({ outcome: 'waiting' });
      expect(dbRow(stops, SHOP).detail).toContain('waiting for shop/web: desiredCount 0, 2 task(s) running');
      expect(dbRow(stops, SHOP).detail).not.toContain('blog');
      expect(dbRow(stops, BLOG)).toMatchObject({ outcome: 'changed' });
      expect(dbRow(stops, BLOG).detail).toMatch(/^stage-nights: /);
      expect((await observeEnvironment(aws, BLOG)).database.status).toBe('stopped');
      expect((await observeEnvironment(aws, SHOP)).database.status).toBe('available');

      // Act: the morning; shop's database starts (slowly), blog is started on demand meanwhile
      answers.draining.clear();
      await rds(reconcile, plus(night, 5));
      const shopDb = await rds(reconcile, MORNING);
      reportDatabase(SHOP, 'starting');
      const blogDb = await rds({ action: 'start', instances: ['blog-db'] }, plus(MORNING, 1));
      const blogGroup = await ecs(
        { action: 'start', clusters: ['blog'], groups: ['blog-jobs'] },
        plus(MORNING, 2),
      );
      const blog = await ecs({ action: 'start', clusters: ['blog'] }, plus(MORNING, 3));
      const shop = await ecs(reconcile, plus(MORNING, 3));

      // Assess: blog is not held by shop's starting database; shop waits for its own
      expect(dbRow(shopDb, SHOP).outcome).toBe('changed');
      expect(dbRow(blogDb, BLOG).outcome).toBe('changed');
      // blog's group first (its services wait for it in that run), then its services
      expect(blogGroup.summary).toMatchObject({ changed: 1, waiting: 2, failed: 0 });
      expect(blog.summary).toMatchObject({ changed: 2, waiting: 0, failed: 0 });
      expect(await observeEnvironment(aws, BLOG)).toEqual(blogBefore);
      for (const s of SHOP.services) expect(serviceRow(shop, SHOP, s.name).outcome).toBe('waiting');
      expect(serviceRow(shop, SHOP, 'web').detail).toMatch(
        /^waiting for shop-db: starting \(environment shop:/,
      );
      expect(serviceRow(shop, SHOP, 'web').detail).not.toContain('blog');
    });
  },
);
