/**
 * Overrides (`nightshift wake|sleep`, `{"action": "wake" | "sleep"}`) against moto: the tag
 * nightshift:override on a cluster or service, the reconcile at once, expiry, cancel, the cap and
 * protection, and a wake racing a reconcile.
 *
 * moto leaves out DescribeServices' `createdAt` (AWS always sends it): the proxy adds an old one.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import { startedScope } from '#functions/ecs-scheduler/started.ts';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { parseSchedules, type Schedules } from '#shared/schedules.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { InputError } from '#shared/errors.ts';
import { runContext } from '#test/support/context.ts';
import {
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
const OVERRIDE = 'nightshift:override';
const STOPPED = 'nightshift:stopped';

const SCHEDULES: Schedules = parseSchedules({
  schedules: {
    'office-hours': {
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
    },
  },
});

// Friday 27 November 2026; Berlin is UTC+1: 19:00 local = 18:00Z.
const at = (iso: string) => new Date(iso);
const FRI_1900 = at('2026-11-27T18:00:30Z');
const FRI_2000 = at('2026-11-27T19:00:00Z');
const FRI_1000 = at('2026-11-27T09:00:00Z');
const OLD = at('2026-01-05T09:00:00Z');
const JANE = 'assumed-role/Dev/jane@example.com';

const STAGE = (tags: Record<string, string> = { env: 'stage', [SCHEDULE]: 'office-hours' }): ClusterSpec => ({
  name: 'stage',
  tags,
  group: { name: 'stage-ecs-nodes', min: 1, desired: 2, max: 4 },
  services: [
    { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
    { name: 'worker', desired: 2 },
  ],
});

const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));

describe.runIf(motoTestsEnabled())('ecs-scheduler overrides (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let store: LeaseStore;
  let maxHours: string | undefined;

  const deps = (now: Date): Deps => ({
    clients: viaProxy,
    config: {
      PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS,
      DRY_RUN: false,
      ...(maxHours !== undefined && { OVERRIDE_MAX_HOURS: Number(maxHours) }),
    },
    now: () => now,
    schedules: () => SCHEDULES,
  });
  const runAt = async (
    event: Parameters<typeof run>[0],
    now: Date,
    holder = 'ecs-scheduler',
    leaseStore: LeaseStore = store,
  ) => {
    const leases = runLeases(leaseStore, holder, () => now);
    try {
      return await run(event, runContext({ leases }), deps(now));
    } finally {
      await leases.releaseAll();
    }
  };
  const reconcile = (now: Date) => runAt({ action: 'reconcile' }, now);
  const observeStage = () => observe(aws, ['stage'], ['stage-ecs-nodes']);
  const clusterTags = async () => {
    const arn = `arn:aws:ecs:eu-central-1:123456789012:cluster/stage`;
    const out = await aws.ecs.send(new ListTagsForResourceCommand({ resourceArn: arn }));
    return Object.fromEntries((out.tags ?? []).map((t) => [t.key, t.value]));
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
  beforeEach(async () => {
    proxy.before('ListTagsForResource', undefined);
    proxy.stub('UpdateService', undefined);
    maxHours = undefined;
    await moto.reset();
    store = await leaseTable(moto.url);
    proxy.rewrite('DescribeServices', (body) => {
      const out = JSON.parse(body) as { services?: { createdAt?: number }[] };
      for (const s of out.services ?? []) s.createdAt = OLD.getTime() / 1000;
      return JSON.stringify(out);
    });
    proxy.requests.length = 0;
  });

  it('wakes a parked cluster for 3 hours, keeps it up past the evening reconciles, and parks it again when the override expires', async () => {
    // Prepare: parked by the 19:00 reconcile
    await seedEstate(aws, [STAGE()]);
    const before = await observeStage();
    await reconcile(FRI_1900);
    expect((await observeStage()).services['stage/web']?.desired).toBe(0);

    // Act: at 20:00 local, jane wakes the cluster for 3 hours
    const wake = await runAt(
      { action: 'wake', clusters: ['stage'], for: '3h', by: JANE, reason: 'release test (QA #42)' },
      FRI_2000,
    );

    // Assess: the tag on the cluster, in tag-safe characters; everything back exactly, at once
    expect(wake.action).toBe('wake');
    expect(wake.summary).toMatchObject({ failed: 0, undone: 0 });
    expect((await clusterTags())[OVERRIDE]).toBe(
      `state=running until=2026-11-27T22:00:00Z by=${JANE} why=release test QA 42`,
    );
    expect(row(wake, 'cluster/stage')).toMatchObject({ outcome: 'changed' });
    expect(row(wake, 'cluster/stage')?.detail).toMatch(/^override: running until Fri 23:00 Europe\/Berlin/);
    expect(row(wake, 'service/stage/web')?.detail).toMatch(
      /^override by assumed-role\/Dev\/jane@example.com until Fri 23:00 Europe\/Berlin \(why: release test QA 42\), over office-hours: stopped/,
    );
    expect(await observeStage()).toEqual(before);

    // Act: the reconciles while the override lasts leave it up (it wins over the schedule)
    const during = await reconcile(at('2026-11-27T21:50:00Z'));
    expect(during.summary).toMatchObject({ changed: 0, failed: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(3);

    // Act: the first reconcile after 23:00 local
    const after = await reconcile(at('2026-11-27T22:00:00Z'));

    // Assess: back to its schedule (stopped), then the tag removed
    expect(after.summary).toMatchObject({ failed: 0, undone: 0 });
    const parked = await observeStage();
    expect(parked.services['stage/web']).toMatchObject({ desired: 0 });
    expect(parked.groups['stage-ecs-nodes']).toMatchObject({ min: 0, desired: 0, max: 0 });
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
    expect(row(after, 'cluster/stage')).toMatchObject({ outcome: 'changed' });
    expect(row(after, 'service/stage/web')?.detail).toMatch(
      /override by .* ended at Fri 23:00 Europe\/Berlin/,
    );
  });

  it('sleeps one service during office hours and brings it back exactly when the override expires', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    const before = await observeStage();

    // Act
    const sleep = await runAt(
      { action: 'sleep', clusters: ['stage'], services: ['web'], until: '12:00', by: JANE },
      FRI_1000,
    );

    // Assess: only web parked; the tag on the service, not the cluster
    expect(sleep.summary).toMatchObject({ failed: 0 });
    const slept = await observeStage();
    expect(slept.services['stage/web']).toMatchObject({
      desired: 0,
      tags: { [OVERRIDE]: `state=stopped until=2026-11-27T11:00:00Z by=${JANE}` },
    });
    expect(slept.services['stage/worker']).toMatchObject({ desired: 2 });
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();

    // Act: a reconcile while it sleeps changes nothing; the one after 12:00 local restores it
    expect((await reconcile(at('2026-11-27T10:30:00Z'))).summary.changed).toBe(0);
    const back = await reconcile(at('2026-11-27T11:00:00Z'));

    // Assess
    expect(back.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(await observeStage()).toEqual(before);
  });

  it('keeps an expired override while its service cannot be put back on schedule, and removes it once it can', async () => {
    // Prepare: woken until 23:00 local
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    await runAt({ action: 'wake', clusters: ['stage'], until: '23:00', by: JANE }, FRI_2000);
    proxy.stub('UpdateService', {
      status: 400,
      contentType: 'application/x-amz-json-1.1',
      body: JSON.stringify({ __type: 'ServerException', message: 'Service unavailable' }),
    });

    // Act: the stop after expiry fails
    const failed = await reconcile(at('2026-11-27T22:10:00Z'));

    // Assess: the override stays (the next run returns to the schedule at once too)
    expect(failed.summary.failed).toBeGreaterThan(0);
    expect((await clusterTags())[OVERRIDE]).toMatch(/^state=running until=2026-11-27T22:00:00Z/);
    expect(row(failed, 'cluster/stage')).toMatchObject({ outcome: 'skipped' });
    expect(row(failed, 'cluster/stage')?.detail).toMatch(/kept until its services are back on schedule/);

    // Act: AWS answers again
    proxy.stub('UpdateService', undefined);
    const retried = await reconcile(at('2026-11-27T22:20:00Z'));

    // Assess
    expect(retried.summary).toMatchObject({ failed: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(0);
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
  });

  it('cancels a wake: the cluster goes back to its schedule at once and the tag goes', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    await runAt({ action: 'wake', clusters: ['stage'], for: '2h', by: JANE }, FRI_2000);

    // Act
    const cancel = await runAt(
      { action: 'wake', clusters: ['stage'], cancel: true, by: 'assumed-role/Ops/sam' },
      at('2026-11-27T19:30:00Z'),
    );

    // Assess
    expect(cancel.summary).toMatchObject({ failed: 0, undone: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(0);
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
  });

  it('refuses an override longer than the cap before any AWS call, and one that ends past it naming the cap', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    proxy.requests.length = 0;

    // Act + Assess: --for beyond the default 24 h: refused before any call
    await expect(
      runAt({ action: 'wake', clusters: ['stage'], for: '25h', by: JANE }, FRI_2000),
    ).rejects.toThrow(/for: refused: an override may last at most 24 h \(OVERRIDE_MAX_HOURS/);
    expect(proxy.requests.filter((r) => !r.service.startsWith('DynamoDB'))).toHaveLength(0);

    // Act + Assess: --until 23:00 (3 h away) with a 2 h cap: refused, nothing written
    maxHours = '2';
    const refused = runAt({ action: 'wake', clusters: ['stage'], until: '23:00', by: JANE }, FRI_2000);
    await expect(refused).rejects.toBeInstanceOf(InputError);
    await expect(refused).rejects.toThrow(/at most 2 h .*stage until Fri 23:00 Europe\/Berlin \(3 h\)/);
    expect(mutations()).toHaveLength(0);
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
  });

  it('never overrides production, nor a cluster that follows no schedule', async () => {
    // Prepare
    await seedEstate(aws, [
      STAGE({ env: 'production', [SCHEDULE]: 'office-hours' }),
      { name: 'adhoc', tags: { env: 'dev' }, services: [{ name: 'api', desired: 1 }] },
    ]);

    // Act
    const prod = await runAt({ action: 'sleep', clusters: ['stage'], for: '1h', by: JANE }, FRI_1000);
    const adhoc = await runAt({ action: 'sleep', clusters: ['adhoc'], for: '1h', by: JANE }, FRI_1000);

    // Assess: skipped with the reason, nothing written or stopped
    expect(row(prod, 'cluster/stage')).toMatchObject({ outcome: 'skipped' });
    expect(row(prod, 'cluster/stage')?.detail).toMatch(
      /protected by tag env=production .* never woken or slept/,
    );
    expect(row(adhoc, 'cluster/adhoc')).toMatchObject({ outcome: 'skipped' });
    expect(row(adhoc, 'cluster/adhoc')?.detail).toMatch(/follows no schedule .* use nightshift stop/);
    expect(mutations()).toHaveLength(0);
  });

  it('plans a wake in a dry run with a digest that still matches the apply minutes later', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    proxy.requests.length = 0;

    // Act
    const dry = await runAt(
      { action: 'wake', clusters: ['stage'], for: '3h', by: JANE, dryRun: true },
      FRI_2000,
    );

    // Assess: nothing written; the start planned
    expect(mutations()).toHaveLength(0);
    expect(dry.summary.planned).toBeGreaterThanOrEqual(3);
    expect(row(dry, 'service/stage/web')).toMatchObject({ outcome: 'planned' });

    // Act: the apply, two minutes later (the override then ends two minutes later too)
    const apply = await runAt(
      { action: 'wake', clusters: ['stage'], for: '3h', by: JANE, planDigest: dry.planDigest! },
      at('2026-11-27T19:02:00Z'),
    );

    // Assess
    expect(apply.summary).toMatchObject({ failed: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(3);
    expect((await clusterTags())[OVERRIDE]).toMatch(/until=2026-11-27T22:02:00Z/);
  });

  it('a wake that finds a reconcile holding the cluster writes nothing and says who holds it', async () => {
    // Prepare: a reconcile holds the cluster's lease (it is parking it)
    await seedEstate(aws, [STAGE()]);
    const holder = runLeases(store, 'ecs-scheduler reconcile (other run)', () => FRI_1900);
    await holder.take('arn:aws:ecs:eu-central-1:123456789012:cluster/stage');

    // Act
    const wake = await runAt({ action: 'wake', clusters: ['stage'], for: '1h', by: JANE }, FRI_1900);

    // Assess
    expect(row(wake, 'cluster/stage')).toMatchObject({ outcome: 'undone' });
    expect(row(wake, 'cluster/stage')?.detail).toMatch(/other run/);
    expect(mutations()).toHaveLength(0);
    await holder.releaseAll();
  });

  it('leaves a newer override in place when an expired one is removed (the tag is read again first)', async () => {
    // Prepare: an expired override on the service, the service already parked by its schedule
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    const web = 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web';
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: web,
        tags: [{ key: OVERRIDE, value: `state=stopped until=2026-11-27T18:30:00Z by=${JANE}` }],
      }),
    );
    // A person writes a new override by hand between the reconcile's read and its removal.
    const newer = `state=running until=2026-11-27T23:00:00Z by=assumed-role/Ops/sam`;
    proxy.before('ListTagsForResource', async () => {
      proxy.before('ListTagsForResource', undefined);
      await aws.ecs.send(
        new TagResourceCommand({ resourceArn: web, tags: [{ key: OVERRIDE, value: newer }] }),
      );
    });

    // Act
    const report = await reconcile(FRI_2000);

    // Assess: the newer one kept, and said so
    expect((await observeStage()).services['stage/web']?.tags[OVERRIDE]).toBe(newer);
    expect(row(report, 'service/stage/web')?.detail).toMatch(/a new override was set meanwhile/);
    expect(proxy.delivered().filter((r) => r.operation === 'UntagResource')).toHaveLength(0);
    // Unchanged otherwise: still parked with its saved state
    expect((await observeStage()).services['stage/web']?.tags[STOPPED]).toBeDefined();
  });

  it('a woken cluster whose override tag was removed by hand still goes back to its schedule when the wake ends', async () => {
    // Prepare: woken at 20:00 local until 23:00 local; then an IaC apply removes the tag
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    await runAt({ action: 'wake', clusters: ['stage'], for: '3h', by: JANE }, FRI_2000);
    await aws.ecs.send(
      new UntagResourceCommand({
        resourceArn: 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage',
        tagKeys: [OVERRIDE],
      }),
    );

    // Act: while the wake lasts, and after it
    const during = await reconcile(at('2026-11-27T21:30:00Z'));
    const upDuring = (await observeStage()).services['stage/web']?.desired;
    const after = await reconcile(at('2026-11-27T22:10:00Z'));

    // Assess: up while it lasted (the start record carries its end), stopped once it ended
    expect(during.summary.changed).toBe(0);
    expect(upDuring).toBe(3);
    expect(after.summary).toMatchObject({ failed: 0 });
    expect((await observeStage()).services['stage/web']?.desired).toBe(0);
    const record = await store.read(startedScope('arn:aws:ecs:eu-central-1:123456789012:service/stage/web'));
    expect(record?.data).toMatchObject({ at: FRI_2000.toISOString(), until: '2026-11-27T22:00:00.000Z' });
  });

  it('records a start before it runs, and says on the row when the record cannot be written', async () => {
    // Prepare: parked; the lease table refuses the start records (throttled past every retry)
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    const failing: LeaseStore = Object.assign(Object.create(store) as LeaseStore, {
      compareAndSet: (next: Parameters<LeaseStore['compareAndSet']>[0], version: number | undefined) =>
        next.scope.startsWith('started#')
          ? Promise.reject(
              Object.assign(new Error('Throughput exceeds the current capacity'), {
                name: 'ThrottlingException',
              }),
            )
          : store.compareAndSet(next, version),
    });

    // Act: an explicit start at 22:00 local
    const start = await runAt(
      { action: 'start', clusters: ['stage'] },
      at('2026-11-27T21:00:00Z'),
      'ecs-scheduler',
      failing,
    );

    // Assess: started, and the row says a reconcile may stop it again
    expect((await observeStage()).services['stage/web']?.desired).toBe(3);
    expect(row(start, 'service/stage/web')?.detail).toMatch(
      /its start record could not be written to the lease table \(Throughput exceeds the current capacity\): a reconcile may stop it again/,
    );

    // Act: a start whose UpdateService fails still leaves its record (written first; harmless, the saved state wins)
    await reconcile(at('2026-11-27T21:05:00Z'));
    await runAt({ action: 'stop', clusters: ['stage'] }, at('2026-11-27T21:10:00Z'));
    proxy.stub('UpdateService', {
      status: 400,
      contentType: 'application/x-amz-json-1.1',
      body: JSON.stringify({ __type: 'ServerException', message: 'Service unavailable' }),
    });
    await runAt({ action: 'start', clusters: ['stage'] }, at('2026-11-27T21:20:00Z'));
    const record = await store.read(
      startedScope('arn:aws:ecs:eu-central-1:123456789012:service/stage/worker'),
    );
    expect(record?.data.at).toBe('2026-11-27T21:20:00.000Z');
  });

  it('does not obey an override that lasts longer than the cap (written by hand), and says so', async () => {
    // Prepare
    await seedEstate(aws, [
      STAGE({
        env: 'stage',
        [SCHEDULE]: 'office-hours',
        [OVERRIDE]: 'state=running until=2099-01-01T00:00:00Z by=anyone',
      }),
    ]);
    await reconcile(FRI_1000);
    proxy.requests.length = 0;

    // Act
    const report = await reconcile(FRI_1900);

    // Assess: failed rows naming the cap; nothing changed
    expect(row(report, 'service/stage/web')).toMatchObject({ outcome: 'failed' });
    expect(row(report, 'service/stage/web')?.detail).toMatch(
      /lasts longer than the cap of 24 h \(OVERRIDE_MAX_HOURS\): not obeyed/,
    );
    expect(mutations()).toHaveLength(0);
  });

  it('refuses an explicit stop of a cluster an override keeps running, saying how to do it so it holds', async () => {
    // Prepare: woken at 20:00 local for 3 hours
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    await runAt({ action: 'wake', clusters: ['stage'], for: '3h', by: JANE, reason: 'demo' }, FRI_2000);
    proxy.requests.length = 0;

    // Act
    const stop = await runAt({ action: 'stop', clusters: ['stage'] }, at('2026-11-27T19:30:00Z'));

    // Assess: nothing stopped, the reason names the override and the way out
    expect(row(stop, 'service/stage/web')).toMatchObject({ outcome: 'skipped' });
    expect(row(stop, 'service/stage/web')?.detail).toMatch(
      /an override on cluster stage keeps it running until 2026-11-27T22:00:00Z \(by assumed-role\/Dev\/jane@example.com, why: demo\): the next reconcile would undo this stop; nothing changed — use nightshift sleep/,
    );
    expect((await observeStage()).services['stage/web']?.desired).toBe(3);
    expect(mutations()).toHaveLength(0);
  });

  it('a service started by hand while parked is left running at the next start transition, its stale saved state removed', async () => {
    // Prepare: parked Friday 19:00; someone starts worker by hand at 1 task over the weekend
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);
    await aws.ecs.send(new UpdateServiceCommand({ cluster: 'stage', service: 'worker', desiredCount: 1 }));

    // Act: Monday 07:00 local, and the next run
    const monday = await reconcile(at('2026-11-30T06:00:30Z'));
    const next = await reconcile(at('2026-11-30T06:10:00Z'));

    // Assess: worker keeps what the person chose, nothing fails, web started as saved
    expect(row(monday, 'service/stage/worker')).toMatchObject({ outcome: 'changed' });
    expect(row(monday, 'service/stage/worker')?.detail).toMatch(
      /started by hand since nightshift stopped it \(now desiredCount 1; saved at 2026-11-27T18:00:30Z: desiredCount 2\)/,
    );
    const after = await observeStage();
    expect(after.services['stage/worker']).toMatchObject({ desired: 1 });
    expect(after.services['stage/worker']?.tags[STOPPED]).toBeUndefined();
    expect(after.services['stage/web']).toMatchObject({ desired: 3 });
    expect(monday.summary.failed).toBe(0);
    expect(next.summary).toMatchObject({ failed: 0, changed: 0 });
  });

  it('refuses an apply whose --until 22:00 became tomorrow’s 22:00 since the dry run', async () => {
    // Prepare
    await seedEstate(aws, [STAGE()]);
    await reconcile(FRI_1900);

    // Act: planned at 21:59 local, confirmed at 22:01 local
    const dry = await runAt(
      { action: 'wake', clusters: ['stage'], until: '22:00', by: JANE, dryRun: true },
      at('2026-11-27T20:59:00Z'),
    );
    const apply = await runAt(
      { action: 'wake', clusters: ['stage'], until: '22:00', by: JANE, planDigest: dry.planDigest! },
      at('2026-11-27T21:01:00Z'),
    );

    // Assess: the plan said until tonight; nothing written
    expect(row(dry, 'cluster/stage')?.detail).toMatch(/until Fri 22:00 Europe\/Berlin/);
    expect(apply.summary.changed).toBe(0);
    expect(JSON.stringify(apply.resources)).toMatch(/the plan changed since it was confirmed/);
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
  });
});
