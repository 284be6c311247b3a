/**
 * `{"action": "reconcile"}` against moto: services and clusters opted in with the tag
 * nightshift:schedule=<name> are brought to their schedule's state at `now`, with the stop and start
 * logic of an explicit run (saved state, scaling, capacity groups, leases).
 *
 * moto leaves out DescribeServices' `createdAt` (AWS always sends it): the proxy adds it to every
 * service it answers, from `created` (an old date unless a test says otherwise).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TagResourceCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { startedScope } from '#functions/ecs-scheduler/started.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { parseSchedules, type Schedules } from '#shared/schedules.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import {
  createCluster,
  seedEstate,
  observe,
  seedClients,
  type ClusterSpec,
  type SeedClients,
} from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const SCHEDULE = 'nightshift:schedule';
const STOPPED = 'nightshift:stopped';

/** Schedules as infra/schedules.yml would define them (no holidays: these dates are working days). */
const SCHEDULES: Schedules = parseSchedules({
  schedules: {
    'office-hours': {
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
    },
    'office-hours-enforced': {
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
      enforced: true,
    },
    'always-on': { periods: [{ weekdays: 'mon-sun' }] },
  },
});

// Friday 27 November 2026; Berlin is UTC+1. 19:00 local = 18:00Z, Monday 07:00 local = 06:00Z.
const at = (iso: string) => new Date(iso);
const FRI_1900 = at('2026-11-27T18:00:30Z');
const MON_0700 = at('2026-11-30T06:00:30Z');
const OLD = at('2026-01-05T09:00:00Z');

const STAGE = (schedule: string | undefined = 'office-hours'): ClusterSpec => ({
  name: 'stage',
  tags: { env: 'stage', ...(schedule && { [SCHEDULE]: schedule }) },
  group: { name: 'stage-ecs-nodes', min: 1, desired: 2, max: 4 },
  services: [
    { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
    { name: 'worker', desired: 2 },
  ],
});

const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));

describe.runIf(motoTestsEnabled())('ecs-scheduler reconcile (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let store: LeaseStore;
  /** Each service's createdAt as the proxy answers it, by name; OLD for the others. */
  let created: Record<string, Date>;

  const deps = (now: Date, schedules = SCHEDULES): Deps => ({
    clients: viaProxy,
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
    now: () => now,
    schedules: () => schedules,
  });
  /** One run as withOps runs it: with this stage's leases, released when it ends. */
  const runAt = async (event: Parameters<typeof run>[0], now: Date, holder = 'ecs-scheduler reconcile') => {
    const leases = runLeases(store, holder, () => now);
    try {
      return await run(event, runContext({ leases }), deps(now));
    } finally {
      await leases.releaseAll();
    }
  };
  const reconcile = (now: Date) => runAt({ action: 'reconcile' }, now);
  const observeStage = () => observe(aws, ['stage'], ['stage-ecs-nodes']);
  const mutationsOf = (arnPart: string) =>
    proxy
      .delivered()
      .filter((r) => !/^(Describe|List)/.test(r.operation) && !r.service.startsWith('DynamoDB'))
      .filter((r) => r.body.includes(arnPart));

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
    proxy.before('TagResource', undefined);
    proxy.stub('ListServices', undefined);
    await moto.reset();
    store = await leaseTable(moto.url);
    created = {};
    // moto has no createdAt on services; AWS always answers it (epoch seconds in the JSON protocol).
    proxy.rewrite('DescribeServices', (body) => {
      const out = JSON.parse(body) as { services?: { serviceName?: string; createdAt?: number }[] };
      for (const s of out.services ?? []) {
        s.createdAt = (created[s.serviceName ?? ''] ?? OLD).getTime() / 1000;
      }
      return JSON.stringify(out);
    });
    proxy.requests.length = 0;
  });

  it('parks a cluster at 19:00 local and restores it exactly at 07:00, saying which schedule decided', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    await createCluster(aws, { name: 'other', services: [{ name: 'api', desired: 2 }] });
    const before = await observeStage();

    // Act
    const stop = await reconcile(FRI_1900);
    const stopped = await observeStage();

    // Assess: parked with the exact logic of a stop; the untagged cluster untouched
    expect(stop.action).toBe('reconcile');
    expect(stop.summary).toMatchObject({ changed: 3, failed: 0, undone: 0 });
    expect(stopped.services['stage/web']).toMatchObject({
      desired: 0,
      scaling: { min: 0, max: 0, suspended: [true, true, true] },
      tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-27T18:00:30Z' },
    });
    expect(stopped.services['stage/worker']).toMatchObject({ desired: 0 });
    expect(stopped.groups['stage-ecs-nodes']).toMatchObject({ min: 0, desired: 0, max: 0 });
    expect(row(stop, 'service/stage/web')?.detail).toMatch(
      /^office-hours: stopped since Fri 19:00 Europe\/Berlin \(period 1 ended at 19:00\); next start Mon 07:00 \(tag on cluster stage\): desiredCount 3 → 0/,
    );
    expect(row(stop, 'stage-ecs-nodes')?.detail).toMatch(/^reconcile stop for schedule office-hours: /);
    expect(row(stop, 'service/other/api')).toBeUndefined();
    expect((await observe(aws, ['other'], [])).services['other/api']?.desired).toBe(2);

    // Act: the next runs of the night change nothing
    const again = await reconcile(at('2026-11-27T18:10:00Z'));
    expect(again.summary).toMatchObject({ changed: 0, failed: 0 });
    expect(row(again, 'service/stage/web')?.detail).toMatch(
      /nightshift stopped it at Fri 19:00, since the transition: left as it is until Mon 07:00/,
    );

    // Act: Monday morning
    const start = await reconcile(MON_0700);

    // Assess: exactly as before, saved state gone
    expect(start.summary).toMatchObject({ changed: 3, failed: 0 });
    expect(await observeStage()).toEqual(before);
    expect(row(start, 'service/stage/web')?.detail).toMatch(
      /^office-hours: running since Mon 07:00 Europe\/Berlin \(period 1\); next stop Mon 19:00 \(tag on cluster stage\): desiredCount 0 → 3/,
    );
  });

  it('shows a dry run with its planDigest, refuses an apply whose plan changed, applies the confirmed one', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    const before = await observeStage();

    // Act
    const dry = await runAt({ action: 'reconcile', dryRun: true }, FRI_1900);
    const other = await runAt(
      { action: 'reconcile', planDigest: 'f'.repeat(64) },
      at('2026-11-27T18:03:00Z'),
    );

    // Assess: nothing changed by either
    expect(dry.summary).toMatchObject({ planned: 3, changed: 0 });
    expect(dry.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(other.summary.changed).toBe(0);
    expect(await observeStage()).toEqual(before);

    // Act: the confirmed plan, minutes later
    const apply = await runAt(
      { action: 'reconcile', planDigest: dry.planDigest! },
      at('2026-11-27T18:04:00Z'),
    );

    // Assess
    expect(apply.summary).toMatchObject({ changed: 3, failed: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(0);
  });

  it('catches up a missed stop at the next reconcile', async () => {
    // Prepare: no run at 19:00 (a failed invocation); the next one comes at 21:40 local
    await seedEstate(aws, [STAGE()]);

    // Act
    const late = await reconcile(at('2026-11-27T20:40:00Z'));

    // Assess
    expect(late.summary).toMatchObject({ changed: 3, failed: 0 });
    const parked = await observeStage();
    expect(parked.services['stage/web']?.desired).toBe(0);
    expect(parked.groups['stage-ecs-nodes']).toMatchObject({ min: 0, desired: 0, max: 0 });
  });

  it('leaves a service started after the stop alone until the next transition, unless the schedule is enforced', async () => {
    // Prepare: parked at 19:00; at 22:00 a person starts web with nightshift, and worker by hand
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    const started = await runAt(
      { action: 'start', clusters: ['stage'], services: ['web'] },
      at('2026-11-27T21:00:00Z'),
      'nightshift start by a person',
    );
    expect(row(started, 'service/stage/web')?.outcome).toBe('changed');
    expect((await store.read(startedScope(row(started, 'service/stage/web')!.arn)))?.data.at).toBe(
      '2026-11-27T21:00:00.000Z',
    );
    await aws.ecs.send(new UpdateServiceCommand({ cluster: 'stage', service: 'worker', desiredCount: 2 }));

    // Act
    const night = await reconcile(at('2026-11-27T21:10:00Z'));

    // Assess: both left running, each row says why
    expect(night.summary).toMatchObject({ changed: 0, failed: 0 });
    const up = await observeStage();
    expect(up.services['stage/web']).toMatchObject({ desired: 3, scaling: { min: 2, max: 6 } });
    expect(up.services['stage/worker']?.desired).toBe(2);
    expect(row(night, 'service/stage/web')?.detail).toMatch(
      /started on demand at Fri 22:00, after the transition: left as it is until Mon 07:00 \(enforced: false/,
    );
    expect(row(night, 'service/stage/worker')?.detail).toMatch(
      /nightshift stopped it at Fri 19:00, since the transition: left as it is until Mon 07:00/,
    );

    // Act: the same cluster on an enforced schedule with the same periods
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: row(night, 'service/stage/web')!.arn.replace(/service\/stage\/web$/, 'cluster/stage'),
        tags: [{ key: SCHEDULE, value: 'office-hours-enforced' }],
      }),
    );
    const enforced = await reconcile(at('2026-11-27T21:20:00Z'));

    // Assess: both parked again, web's saved state is its real one
    expect(enforced.summary).toMatchObject({ failed: 0 });
    const parked = await observeStage();
    expect(parked.services['stage/web']).toMatchObject({
      desired: 0,
      scaling: { min: 0, max: 0 },
      tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-27T21:20:00Z' },
    });
    expect(parked.services['stage/worker']?.desired).toBe(0);
  });

  it('leaves a service created inside the grace period alone and says until when', async () => {
    // Prepare: web was created 5 minutes before the 19:00 run
    await seedEstate(aws, [STAGE()]);
    created.web = at('2026-11-27T17:55:30Z');

    // Act
    const report = await reconcile(FRI_1900);

    // Assess: web untouched, worker parked, the group kept for web
    const seen = await observeStage();
    expect(seen.services['stage/web']).toMatchObject({ desired: 3, scaling: { min: 2, max: 6 } });
    expect(seen.services['stage/web']?.tags[STOPPED]).toBeUndefined();
    expect(row(report, 'service/stage/web')).toMatchObject({ outcome: 'skipped' });
    expect(row(report, 'service/stage/web')?.detail).toMatch(
      /created at Fri 18:55, less than 15 min ago \(SCHEDULE_GRACE_MINUTES\): left alone until Fri 19:10 Europe\/Berlin$/,
    );
    expect(mutationsOf('stage/web')).toEqual([]);
    expect(seen.services['stage/worker']?.desired).toBe(0);
    expect(seen.groups['stage-ecs-nodes']).toMatchObject({ min: 1, desired: 2, max: 4 });
  });

  it('fails the row of an unknown schedule name without touching the service', async () => {
    // Prepare
    await seedEstate(aws, [
      {
        name: 'stage',
        services: [
          { name: 'web', desired: 3, tags: { [SCHEDULE]: 'ofice-hours' } },
          { name: 'worker', desired: 2, tags: { [SCHEDULE]: 'office-hours' } },
        ],
      },
    ]);

    // Act
    const report = await reconcile(FRI_1900);

    // Assess
    expect(row(report, 'service/stage/web')).toMatchObject({ outcome: 'failed' });
    expect(row(report, 'service/stage/web')?.detail).toMatch(
      /^schedule "ofice-hours" \(tag nightshift:schedule on the service\) is not defined in infra\/schedules.yml \(known: office-hours, office-hours-enforced, always-on\); nothing changed/,
    );
    expect(mutationsOf('stage/web')).toEqual([]);
    const seen = await observeStage();
    expect(seen.services['stage/web']).toEqual({ desired: 3, tags: { [SCHEDULE]: 'ofice-hours' } });
    expect(seen.services['stage/worker']?.desired).toBe(0);
  });

  it("follows a service's own tag over its cluster's, and its cluster's when it has none", async () => {
    // Prepare: the cluster is on office hours; search is always on; a service tagged in an untagged cluster
    await seedEstate(aws, [
      {
        ...STAGE(),
        services: [...STAGE().services, { name: 'search', desired: 1, tags: { [SCHEDULE]: 'always-on' } }],
      },
    ]);
    await createCluster(aws, {
      name: 'tools',
      services: [
        { name: 'ci', desired: 2, tags: { [SCHEDULE]: 'office-hours' } },
        { name: 'wiki', desired: 1 },
      ],
    });

    // Act
    const report = await reconcile(FRI_1900);

    // Assess
    const stage = await observeStage();
    expect(stage.services['stage/web']?.desired).toBe(0);
    expect(stage.services['stage/worker']?.desired).toBe(0);
    expect(stage.services['stage/search']?.desired).toBe(1);
    expect(row(report, 'service/stage/search')?.detail).toMatch(/^always-on: running/);
    // search still runs on the group
    expect(stage.groups['stage-ecs-nodes']).toMatchObject({ min: 1, desired: 2, max: 4 });
    const tools = await observe(aws, ['tools'], []);
    expect(tools.services['tools/ci']?.desired).toBe(0);
    expect(tools.services['tools/wiki']?.desired).toBe(1);
    expect(row(report, 'service/tools/wiki')).toBeUndefined();
  });

  it('two reconciles at once: the second leaves the held cluster undone, the state stays exact', async () => {
    // Prepare: the first reconcile is held at its first TagResource (the first write of a stop, after
    // it took its leases) while a second one runs
    await seedEstate(aws, [STAGE()]);
    let second: Report | undefined;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived = false;
    proxy.before('TagResource', async () => {
      if (arrived) return;
      arrived = true;
      second = await runAt({ action: 'reconcile' }, at('2026-11-27T18:01:00Z'), 'second reconcile');
      release();
      await released;
    });

    // Act
    const first = await runAt({ action: 'reconcile' }, FRI_1900, 'first reconcile');

    // Assess: the second one changed nothing and says who holds the cluster
    expect(second?.summary).toMatchObject({ changed: 0, failed: 0 });
    expect(second?.summary.undone).toBeGreaterThan(0);
    expect(second?.resources.find((r) => r.outcome === 'undone')?.detail).toMatch(/first reconcile/);
    expect(first.summary).toMatchObject({ changed: 3, failed: 0 });
    const parked = await observeStage();
    expect(parked.services['stage/web']).toMatchObject({
      desired: 0,
      tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-27T18:00:30Z' },
    });
    expect(parked.groups['stage-ecs-nodes']?.tags[STOPPED]).toBe(
      'min=1 desired=2 max=4 at=2026-11-27T18:00:30Z',
    );
  });

  it('reconciles more than one page of services (120 in one cluster) and restores them exactly', async () => {
    // Prepare
    await seedEstate(aws, [
      {
        name: 'stage',
        tags: { [SCHEDULE]: 'office-hours' },
        services: Array.from({ length: 120 }, (_, i) => ({ name: `svc-${i}`, desired: (i % 3) + 1 })),
      },
    ]);
    const before = await observeStage();

    // Act
    const stop = await reconcile(FRI_1900);
    const parked = await observeStage();
    const start = await reconcile(MON_0700);

    // Assess
    expect(stop.summary).toMatchObject({ changed: 120, failed: 0, undone: 0 });
    expect(Object.values(parked.services).every((s) => s.desired === 0)).toBe(true);
    expect(start.summary).toMatchObject({ changed: 120, failed: 0, undone: 0 });
    expect(await observeStage()).toEqual(before);
  });

  it('carries on with every other cluster when one is deleted while the reconcile reads it', async () => {
    // Prepare: an ephemeral cluster torn down between ListClusters and ListServices
    await seedEstate(aws, [STAGE()]);
    await createCluster(aws, { name: 'pr-123', tags: { [SCHEDULE]: 'office-hours' }, services: [] });
    // moto still lists services of a deleted cluster; ECS answers ClusterNotFoundException.
    proxy.stub('ListServices', (request) =>
      request.body.includes('pr-123')
        ? {
            status: 400,
            contentType: 'application/x-amz-json-1.1',
            body: JSON.stringify({ __type: 'ClusterNotFoundException', message: 'Cluster not found.' }),
          }
        : undefined,
    );

    // Act
    const report = await reconcile(FRI_1900);

    // Assess: ECS answered ClusterNotFoundException for it; the stage cluster was parked all the same
    expect(report.summary).toMatchObject({ changed: 3, failed: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(0);
  });
});
