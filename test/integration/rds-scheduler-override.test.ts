/**
 * rds-scheduler's `wake` / `sleep` (overrides of a database's schedule) against moto, through a recording
 * proxy: the tag `nightshift:override` on the DB instance or Aurora cluster, the reconcile at once (AWS
 * state after each run), what the run sends, and the lease a wake and a reconcile share. moto's state
 * changes are instant and it accepts stops AWS refuses, so refusals are asserted on the requests too.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  ListTagsForResourceCommand,
  RDSClient,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { ECSClient } from '@aws-sdk/client-ecs';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { run, type Deps } from '#functions/rds-scheduler/handler.ts';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { runContext } from '#test/support/context.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const dbArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`;
const clusterArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:${id}`;
// Monday 30 November 2026, 20:00 in Berlin (UTC+1): office-hours (07:00-19:00 weekdays) wants stopped.
const EVENING = new Date('2026-11-30T19:00:00Z');
// Tuesday 1 December 2026, 08:30 in Berlin: office-hours wants running, next stop at 19:00 (18:00Z).
const MORNING = new Date('2026-12-01T07:30:00Z');
const OVERRIDE = 'nightshift:override';
const STOPPED = 'nightshift:stopped';
const SCHEDULED = { 'nightshift:schedule': 'office-hours' };
const toTags = (tags: Record<string, string> = {}) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
const rows = (report: Report) => report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`).sort();
const detailOf = (report: Report, id: string) =>
  report.resources.find((r) => r.arn.endsWith(`:${id}`))?.detail;

describe.runIf(motoTestsEnabled())('rds-scheduler wake and sleep against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let rds: RDSClient;
  let store: LeaseStore;
  let clock: Date;

  const clientConfig = () => ({
    endpoint: proxy.url,
    region: REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const deps = (env: Partial<Deps['config']> = {}): Deps => ({
    clients: { rds, ecs: new ECSClient(clientConfig()), autoscaling: new AutoScalingClient(clientConfig()) },
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false, SCHEDULE_GRACE_MINUTES: 15, ...env },
    now: () => clock,
    schedules: bundledSchedules,
  });
  const ctx = (holder = 'run A') => runContext({ leases: runLeases(store, holder, () => clock) });
  /** One run, its leases released when it ends, as withOps does. */
  const invoke = async (input: unknown, holder?: string, d = deps()) => {
    const c = ctx(holder);
    try {
      return await run(input as never, c, d);
    } finally {
      await c.leases.releaseAll();
    }
  };
  const sent = (op: string) => proxy.requests.filter((r) => r.operation === op);
  const sentFor = (op: string, id: string) => sent(op).filter((r) => r.body.includes(id));
  const status = async (id: string) =>
    (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]
      ?.DBInstanceStatus;
  const clusterStatus = async (id: string) =>
    (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0]?.Status;
  const tagsOf = async (arn: string): Promise<Record<string, string>> =>
    Object.fromEntries(
      ((await rds.send(new ListTagsForResourceCommand({ ResourceName: arn }))).TagList ?? []).map((t) => [
        t.Key ?? '',
        t.Value ?? '',
      ]),
    );
  const createInstance = (id: string, tags: Record<string, string> = {}) =>
    rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        AllocatedStorage: 20,
        Tags: toTags(tags),
      }),
    );
  const createAurora = async (id: string, tags: Record<string, string> = {}) => {
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: id,
        Engine: 'aurora-postgresql',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        Tags: toTags(tags),
      }),
    );
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: `${id}-1`,
        DBInstanceClass: 'db.r6g.large',
        Engine: 'aurora-postgresql',
        DBClusterIdentifier: id,
      }),
    );
  };
  /** Holds `operation` at the proxy until released: two runs interleaved step by step. */
  const hold = (operation: string) => {
    let release!: () => void;
    let reached!: () => void;
    const arrived = new Promise<void>((r) => (reached = r));
    const gate = new Promise<void>((r) => (release = r));
    proxy.before(operation, async () => {
      proxy.before(operation, undefined);
      reached();
      await gate;
    });
    return { arrived, release };
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    // moto stamps creation times with the real clock: pinned long before this test's fixed clock
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    useEndpoint(proxy.url);
    rds = new RDSClient(clientConfig());
  }, 90_000);
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    store = await leaseTable(moto.url);
    proxy.requests.length = 0;
    clock = EVENING;
  });

  it('wakes a stopped instance and an Aurora cluster at once, keeps them up while it lasts, and returns them to the schedule when it expires', async () => {
    // Prepare: both on office-hours, parked by the evening reconcile
    await createInstance('shop-db', SCHEDULED);
    await createAurora('reports', SCHEDULED);
    await invoke({ action: 'reconcile' });
    expect([await status('shop-db'), await clusterStatus('reports')]).toEqual(['stopped', 'stopped']);
    proxy.requests.length = 0;

    // Act: woken for 2 hours
    const wake = await invoke({
      action: 'wake',
      instances: ['shop-db'],
      clusters: ['reports'],
      for: '2h',
      reason: 'release test; "QA-42"',
      by: 'assumed-role/Dev/jane@example.com',
    });

    // Assess: the override on each, recorded before the start; started at once; the stopped tag gone
    expect(wake.action).toBe('wake');
    expect(rows(wake)).toEqual(['reports changed', 'shop-db changed']);
    const value =
      'state=running until=2026-11-30T21:00:00Z by=assumed-role/Dev/jane@example.com why=release test QA-42';
    expect(await tagsOf(dbArn('shop-db'))).toEqual({ ...SCHEDULED, [OVERRIDE]: value });
    expect(await tagsOf(clusterArn('reports'))).toEqual({ ...SCHEDULED, [OVERRIDE]: value });
    expect([await status('shop-db'), await clusterStatus('reports')]).toEqual(['available', 'available']);
    const ops = proxy.requests.filter((r) => r.body.includes('shop-db')).map((r) => r.operation);
    expect(ops.indexOf('AddTagsToResource')).toBeLessThan(ops.indexOf('StartDBInstance'));
    expect(sentFor('StartDBCluster', 'reports')).toHaveLength(1);
    expect(sentFor('StartDBInstance', 'reports-1')).toEqual([]);
    expect(detailOf(wake, 'shop-db')).toMatch(
      /^override: running until Mon 22:00 Europe\/Berlin \(2026-11-30T21:00:00Z\) by assumed-role\/Dev\/jane@example.com; then override by .* until Mon 22:00 Europe\/Berlin \(why: release test QA-42\), over office-hours: stopped since Mon 19:00/,
    );

    // Act: a reconcile while it lasts
    clock = new Date('2026-11-30T20:50:00Z');
    proxy.requests.length = 0;
    const during = await invoke({ action: 'reconcile' });

    // Act: an explicit stop meanwhile
    const stop = await invoke({ action: 'stop', instances: ['shop-db'] });

    // Assess: left running; the stop refused, as the next reconcile would undo it
    expect(rows(during)).toEqual(['reports unchanged', 'shop-db unchanged']);
    expect(rows(stop)).toEqual(['shop-db skipped']);
    expect(detailOf(stop, 'shop-db')).toMatch(
      /^an override keeps it running until 2026-11-30T21:00:00Z \(by assumed-role\/Dev\/jane@example.com, why: release test QA-42\): a stop would be undone by the next reconcile; use nightshift sleep/,
    );
    expect([...sent('StopDBInstance'), ...sent('StopDBCluster')]).toEqual([]);

    // Act: the first reconcile after it ended
    clock = new Date('2026-11-30T21:10:00Z');
    const after = await invoke({ action: 'reconcile' });

    // Assess: back to the schedule (stopped, even with enforced: false), then the override removed
    expect(rows(after)).toEqual(['reports changed', 'shop-db changed']);
    expect([await status('shop-db'), await clusterStatus('reports')]).toEqual(['stopped', 'stopped']);
    expect(await tagsOf(dbArn('shop-db'))).toEqual({
      ...SCHEDULED,
      [STOPPED]: 'at=2026-11-30T21:10:00Z by=nightshift',
    });
    expect((await tagsOf(clusterArn('reports')))[OVERRIDE]).toBeUndefined();
  });

  it('puts a running database to sleep until its schedule’s next transition, and a cancel brings it back at once', async () => {
    // Prepare
    clock = MORNING;
    await createInstance('shop-db', SCHEDULED);

    // Act: sleep without an end
    const sleep = await invoke({ action: 'sleep', instances: [dbArn('shop-db')], by: 'user/ops' });

    // Assess: until 19:00 Berlin (the next stop), stopped at once with nightshift's stopped tag
    expect(rows(sleep)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('stopped');
    expect(await tagsOf(dbArn('shop-db'))).toEqual({
      ...SCHEDULED,
      [OVERRIDE]: 'state=stopped until=2026-12-01T18:00:00Z by=user/ops',
      [STOPPED]: 'at=2026-12-01T07:30:00Z by=nightshift',
    });

    // Act: cancelled ten minutes later
    clock = new Date('2026-12-01T07:40:00Z');
    const cancel = await invoke({ action: 'wake', instances: ['shop-db'], cancel: true, by: 'user/jane' });

    // Assess: back on its schedule (running), both tags gone
    expect(rows(cancel)).toEqual(['shop-db changed']);
    expect(detailOf(cancel, 'shop-db')).toContain('back to its schedule now');
    expect(await status('shop-db')).toBe('available');
    expect(await tagsOf(dbArn('shop-db'))).toEqual(SCHEDULED);

    // Act: a cancel of an override set by hand on a database that follows no schedule
    await createInstance('adhoc-db', {
      [OVERRIDE]: 'state=running until=2026-12-01T09:00:00Z by=user/someone',
    });
    const adhoc = await invoke({ action: 'wake', instances: ['adhoc-db'], cancel: true, by: 'user/jane' });

    // Assess: removed at once
    expect(rows(adhoc)).toEqual(['adhoc-db changed']);
    expect(await tagsOf(dbArn('adhoc-db'))).toEqual({});

    // Act: a second cancel has nothing to do
    proxy.requests.length = 0;
    const again = await invoke({ action: 'sleep', instances: ['shop-db'], cancel: true, by: 'user/jane' });
    expect(rows(again)).toEqual(['shop-db unchanged']);
    expect(sent('AddTagsToResource')).toEqual([]);
  });

  it('refuses an override longer than the cap, naming it, before anything is written', async () => {
    // Prepare
    await createInstance('shop-db', SCHEDULED);
    await createAurora('reports', SCHEDULED);

    // Act
    const long = invoke({ action: 'wake', instances: ['shop-db'], for: '30h', by: 'user/ops' });
    // 22:00 in Berlin is two hours away: more than a cap of one hour, known only once the schedule is read
    const clock22 = invoke(
      { action: 'wake', clusters: ['reports'], until: '22:00', by: 'user/ops' },
      'run A',
      deps({ OVERRIDE_MAX_HOURS: 1 }),
    );

    // Assess
    await expect(long).rejects.toThrow(
      /for: refused: an override may last at most 24 h \(OVERRIDE_MAX_HOURS/,
    );
    await expect(clock22).rejects.toThrow(
      /until: refused: an override may last at most 1 h .*reports until Mon 22:00 Europe\/Berlin \(2 h\)/,
    );
    expect(sent('AddTagsToResource')).toEqual([]);
    expect(sent('StartDBCluster')).toEqual([]);
    expect((await tagsOf(clusterArn('reports')))[OVERRIDE]).toBeUndefined();
  });

  it('never overrides production, an Aurora member named alone, what AWS cannot stop, or a database on no schedule', async () => {
    // Prepare
    await createInstance('prod-db', { ...SCHEDULED, env: 'Prod' });
    await createAurora('reports', SCHEDULED);
    await createInstance('source-db', SCHEDULED);
    await rds.send(
      new CreateDBInstanceReadReplicaCommand({
        DBInstanceIdentifier: 'replica-db',
        SourceDBInstanceIdentifier: 'source-db',
        Tags: toTags(SCHEDULED),
      }),
    );
    await createInstance('adhoc-db');
    proxy.requests.length = 0;

    // Act
    const sleep = await invoke({
      action: 'sleep',
      instances: ['prod-db', 'reports-1', 'replica-db', 'adhoc-db', 'gone-db'],
      for: '1h',
      by: 'user/ops',
    });

    // Assess: nothing written or stopped
    expect(rows(sleep)).toEqual([
      'adhoc-db skipped',
      'gone-db failed',
      'prod-db skipped',
      'replica-db skipped',
      'reports-1 skipped',
    ]);
    expect(detailOf(sleep, 'prod-db')).toBe(
      'protected (env=Prod): production is never woken or slept by an override; nothing changed',
    );
    expect(detailOf(sleep, 'reports-1')).toMatch(
      /^member of cluster reports: the cluster carries the override/,
    );
    expect(detailOf(sleep, 'replica-db')).toMatch(/^read replica \(of source-db\)/);
    expect(detailOf(sleep, 'adhoc-db')).toMatch(/follows no schedule .* use nightshift stop --db/);
    expect(proxy.requests.map((r) => r.operation).filter((op) => !/^Describe/.test(op))).toEqual([]);
    expect(await status('prod-db')).toBe('available');
  });

  it('lets a wake and a reconcile of one database act one at a time: the one without the lease is undone, naming the holder', async () => {
    // Prepare: the evening reconcile (run A) is held at its stop call, holding the database's lease
    await createInstance('shop-db', SCHEDULED);
    const atStop = hold('StopDBInstance');
    const reconcile = invoke({ action: 'reconcile' }, 'run A');
    await atStop.arrived;

    // Act: a wake meanwhile (run B)
    const wake = await invoke(
      { action: 'wake', instances: ['shop-db'], for: '1h', by: 'user/jane' },
      'run B',
    );
    atStop.release();
    const reconciled = await reconcile;

    // Assess: the wake changed nothing and says who holds it; the reconcile stopped it
    expect(rows(wake)).toEqual(['shop-db undone']);
    expect(detailOf(wake, 'shop-db')).toContain('another run holds the lease on it: run A');
    expect(rows(reconciled)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('stopped');
    expect((await tagsOf(dbArn('shop-db')))[OVERRIDE]).toBeUndefined();

    // Act: the wake again, held right after its tag (run B), while a reconcile runs (run C)
    const atStart = hold('StartDBInstance');
    const again = invoke({ action: 'wake', instances: ['shop-db'], for: '1h', by: 'user/jane' }, 'run B');
    await atStart.arrived;
    const meanwhile = await invoke({ action: 'reconcile' }, 'run C');
    atStart.release();

    // Assess: the reconcile left it to the wake; the wake started it
    expect(rows(meanwhile)).toEqual(['shop-db undone']);
    expect(detailOf(meanwhile, 'shop-db')).toContain('another run holds the lease on it: run B');
    expect(rows(await again)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('available');
    expect(sent('StartDBInstance')).toHaveLength(1);
    expect(sent('StopDBInstance')).toHaveLength(1);
  });

  it('stops between the override and the start when the run runs out of time: undone, the override kept, and the next reconcile starts it', async () => {
    // Prepare: parked by the evening reconcile; the run has no time left once its tag is written
    await createInstance('shop-db', SCHEDULED);
    await invoke({ action: 'reconcile' });
    proxy.requests.length = 0;
    const c = runContext({
      leases: runLeases(store, 'run A', () => clock),
      hasTime: () => sent('AddTagsToResource').length === 0,
    });

    // Act
    const wake = await run({ action: 'wake', instances: ['shop-db'], for: '1h', by: 'user/jane' }, c, deps());
    await c.leases.releaseAll();

    // Assess: the override recorded, the start not sent, and the row says so
    expect(rows(wake)).toEqual(['shop-db undone']);
    expect(detailOf(wake, 'shop-db')).toMatch(/done before it: AddTagsToResource nightshift:override/);
    expect((await tagsOf(dbArn('shop-db')))[OVERRIDE]).toMatch(
      /^state=running until=2026-11-30T20:00:00Z by=user\/jane$/,
    );
    expect(sent('StartDBInstance')).toEqual([]);
    expect(await status('shop-db')).toBe('stopped');

    // Act: the next reconcile
    clock = new Date(EVENING.getTime() + 600_000);
    const next = await invoke({ action: 'reconcile' });

    // Assess: it obeys the override
    expect(rows(next)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('available');
  });

  it('confirms a dry run’s plan minutes later, and refuses an apply whose plan changed meanwhile', async () => {
    // Prepare
    await createInstance('shop-db', SCHEDULED);
    await createInstance('cache-db', SCHEDULED);
    await invoke({ action: 'reconcile' });
    proxy.requests.length = 0;
    const wake = { action: 'wake', instances: ['shop-db', 'cache-db'], for: '3h', by: 'user/jane' };

    // Act: dry run, then the apply two minutes later with its digest
    const dry = await invoke({ ...wake, dryRun: true });
    clock = new Date(EVENING.getTime() + 120_000);
    const apply = await invoke({ ...wake, planDigest: dry.planDigest });

    // Assess: `--for 3h` moved with the clock, the plan did not
    expect(rows(dry)).toEqual(['cache-db planned', 'shop-db planned']);
    expect(rows(apply)).toEqual(['cache-db changed', 'shop-db changed']);
    expect((await tagsOf(dbArn('shop-db')))[OVERRIDE]).toMatch(/until=2026-11-30T22:02:00Z/);

    // Act: a dry run, then someone starts cache-db by hand, then the apply
    const sleep = { action: 'sleep', instances: ['shop-db', 'cache-db'], for: '1h', by: 'user/jane' };
    const drySleep = await invoke({ ...sleep, dryRun: true });
    await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: 'cache-db' }));
    proxy.requests.length = 0;
    const refused = await invoke({ ...sleep, planDigest: drySleep.planDigest });

    // Assess: nothing written, nothing stopped
    expect(refused.resources.every((r) => r.outcome === 'skipped')).toBe(true);
    expect(refused.resources[0]?.detail).toMatch(/the plan changed since it was confirmed/);
    expect([...sent('AddTagsToResource'), ...sent('StopDBInstance')]).toEqual([]);
  });
});
