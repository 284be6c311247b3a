/**
 * rds-scheduler against moto, through a recording proxy: AWS state after each run (moto) and the
 * requests sent. moto's RDS state changes are instant and it accepts stops AWS refuses (a read replica,
 * a cluster member, SQL Server Multi-AZ, …), so every refusal is asserted on the requests: none is sent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AddTagsToResourceCommand,
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  CreateGlobalClusterCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  ListTagsForResourceCommand,
  RDSClient,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  ECSClient,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
} from '@aws-sdk/client-auto-scaling';
import { readFileSync } from 'node:fs';
import { run, type Deps } from '#functions/rds-scheduler/handler.ts';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import type { Report } from '#shared/report.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';
import type { LeaseStore } from '#shared/lease.ts';

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const dbArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`;
const clusterArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:${id}`;
// Monday 30 November 2026, 20:00 in Berlin (UTC+1): office-hours wants stopped since 19:00.
const EVENING = new Date('2026-11-30T19:00:00Z');
const MORNING = new Date('2026-12-01T07:30:00Z');
const STOPPED = 'nightshift:stopped';
const toTags = (tags: Record<string, string> = {}) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
const rows = (report: Report) => report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`).sort();

describe.runIf(motoTestsEnabled())('rds-scheduler against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let rds: RDSClient;
  let ecs: ECSClient;
  let store: LeaseStore;
  let clock: Date;

  const deps = (env: Partial<Deps['config']> = {}): Deps => ({
    clients: { rds, ecs, autoscaling: new AutoScalingClient(clientConfig()) },
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false, SCHEDULE_GRACE_MINUTES: 15, ...env },
    now: () => clock,
    schedules: bundledSchedules,
  });
  const clientConfig = () => ({
    endpoint: proxy.url,
    region: REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const ctx = (holder = 'run A') => runContext({ leases: runLeases(store, holder, () => clock) });
  const invoke = (input: unknown, holder?: string, d = deps()) => run(input as never, ctx(holder), d);
  const sent = (op: string) => proxy.requests.filter((r) => r.operation === op);
  const sentFor = (op: string, id: string) => sent(op).filter((r) => r.body.includes(id));
  const status = async (id: string) =>
    (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]
      ?.DBInstanceStatus;
  const clusterStatus = async (id: string) =>
    (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0]?.Status;
  const tagsOf = async (arn: string) =>
    Object.fromEntries(
      ((await rds.send(new ListTagsForResourceCommand({ ResourceName: arn }))).TagList ?? []).map((t) => [
        t.Key,
        t.Value,
      ]),
    );
  const createInstance = (
    id: string,
    tags: Record<string, string> = {},
    extra: Record<string, unknown> = {},
  ) =>
    rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        AllocatedStorage: 20,
        Tags: toTags(tags),
        ...extra,
      }),
    );
  const createAurora = async (
    id: string,
    tags: Record<string, string> = {},
    extra: Record<string, unknown> = {},
  ) => {
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: id,
        Engine: 'aurora-postgresql',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        Tags: toTags(tags),
        ...extra,
      }),
    );
    // Aurora Serverless v1 has no instances.
    if (extra.EngineMode === 'serverless') return;
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: `${id}-1`,
        DBInstanceClass: 'db.r6g.large',
        Engine: 'aurora-postgresql',
        DBClusterIdentifier: id,
      }),
    );
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    // moto stamps creation times with the real clock: pinned long before this test's fixed clock
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    useEndpoint(proxy.url);
    rds = new RDSClient(clientConfig());
    ecs = new ECSClient(clientConfig());
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

  const refusal = (code: string, message: string) => ({
    status: 400,
    contentType: 'text/xml',
    body: `<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>stubbed</RequestId></ErrorResponse>`,
  });
  const sample = (file: string, arn: string) => {
    const event = JSON.parse(readFileSync(`events/aws.rds/samples/${file}`, 'utf8'));
    event.detail.SourceArn = arn;
    event.detail.SourceIdentifier = arn.split(':').pop();
    event.resources = [arn];
    event.region = REGION;
    event.account = ACCOUNT;
    return event;
  };

  it('stops an instance and an Aurora cluster (tag first, never its members) and starts exactly those again', async () => {
    // Prepare
    await createInstance('shop-db', { team: 'shop' });
    await createAurora('reports', { team: 'reports' });

    // Act: stop
    const stop = await invoke({ action: 'stop', instances: ['shop-db'], clusters: [clusterArn('reports')] });

    // Assess: both stopped, tagged before the stop call, the member instance never called
    expect(rows(stop)).toEqual(['reports changed', 'shop-db changed']);
    expect([await status('shop-db'), await clusterStatus('reports')]).toEqual(['stopped', 'stopped']);
    expect(await tagsOf(dbArn('shop-db'))).toEqual({
      team: 'shop',
      [STOPPED]: 'at=2026-11-30T19:00:00Z by=nightshift',
    });
    expect(await tagsOf(clusterArn('reports'))).toEqual({
      team: 'reports',
      [STOPPED]: 'at=2026-11-30T19:00:00Z by=nightshift',
    });
    const ops = proxy.requests.map((r) => r.operation);
    expect(ops.indexOf('StopDBInstance')).toBeGreaterThan(ops.indexOf('AddTagsToResource'));
    expect(sentFor('StopDBInstance', 'reports-1')).toEqual([]);
    expect(sentFor('StopDBCluster', 'reports')).toHaveLength(1);

    // Act: a second stop changes nothing
    proxy.requests.length = 0;
    const again = await invoke({ action: 'stop', instances: ['shop-db'], clusters: ['reports'] });
    expect(rows(again)).toEqual(['reports unchanged', 'shop-db unchanged']);
    expect([...sent('AddTagsToResource'), ...sent('StopDBInstance'), ...sent('StopDBCluster')]).toEqual([]);

    // Act: start
    clock = MORNING;
    const start = await invoke({ action: 'start', instances: ['shop-db'], clusters: ['reports'] });

    // Assess: running again, the tag gone, every other tag as it was
    expect(rows(start)).toEqual(['reports changed', 'shop-db changed']);
    expect([await status('shop-db'), await clusterStatus('reports')]).toEqual(['available', 'available']);
    expect(await tagsOf(dbArn('shop-db'))).toEqual({ team: 'shop' });
    expect(await tagsOf(clusterArn('reports'))).toEqual({ team: 'reports' });
    expect(sentFor('StartDBInstance', 'reports-1')).toEqual([]);
  });

  it('leaves a database someone else stopped as it is: a stop does not tag it, a start never starts it', async () => {
    // Prepare
    await createInstance('legacy-db');
    await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: 'legacy-db' }));
    proxy.requests.length = 0;

    // Act
    const stop = await invoke({ action: 'stop', instances: ['legacy-db'] });
    const start = await invoke({ action: 'start', instances: ['legacy-db'] });

    // Assess
    expect(rows(stop)).toEqual(['legacy-db unchanged']);
    expect(stop.resources[0]?.detail).toContain('not by nightshift');
    expect(rows(start)).toEqual(['legacy-db unchanged']);
    expect([...sent('AddTagsToResource'), ...sent('StartDBInstance')]).toEqual([]);
    expect(await status('legacy-db')).toBe('stopped');
    expect(await tagsOf(dbArn('legacy-db'))).toEqual({});
  });

  it('skips, with the reason and no request, what AWS cannot stop and what is protected', async () => {
    // Prepare: everything moto would wrongly let us stop
    await createInstance('prod-db', { Environment: 'Production' });
    await createInstance('source-db');
    await rds.send(
      new CreateDBInstanceReadReplicaCommand({
        DBInstanceIdentifier: 'replica-db',
        SourceDBInstanceIdentifier: 'source-db',
      }),
    );
    await createInstance(
      'mssql-db',
      {},
      {
        Engine: 'sqlserver-se',
        LicenseModel: 'license-included',
        MultiAZ: true,
        DBInstanceClass: 'db.m5.large',
      },
    );
    await createAurora('reports');
    await createAurora('legacy-serverless', {}, { Engine: 'aurora-mysql', EngineMode: 'serverless' });
    await createAurora(
      'pausing',
      {},
      { ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 4 } },
    );
    await rds.send(
      new CreateGlobalClusterCommand({ GlobalClusterIdentifier: 'world', Engine: 'aurora-postgresql' }),
    );
    await createAurora('worldwide', {}, { GlobalClusterIdentifier: 'world' });
    // …and a cluster whose own tags say nothing, but whose writer instance is tagged production
    await createAurora('ledger');
    await rds.send(
      new AddTagsToResourceCommand({
        ResourceName: dbArn('ledger-1'),
        Tags: [{ Key: 'env', Value: 'prod' }],
      }),
    );
    proxy.requests.length = 0;

    // Act
    const report = await invoke({
      action: 'stop',
      instances: ['prod-db', 'source-db', 'replica-db', 'mssql-db', 'reports-1'],
      clusters: ['legacy-serverless', 'pausing', 'worldwide', 'ledger'],
    });

    // Assess
    const reason = (id: string) => report.resources.find((r) => r.arn.endsWith(`:${id}`));
    expect(rows(report)).toEqual([
      'ledger skipped',
      'legacy-serverless skipped',
      'mssql-db skipped',
      'pausing skipped',
      'prod-db skipped',
      'replica-db skipped',
      'reports-1 skipped',
      'source-db skipped',
      'worldwide skipped',
    ]);
    expect(reason('prod-db')?.detail).toMatch(/^protected \(Environment=Production\)/);
    expect(reason('ledger')?.detail).toMatch(/^protected \(env=prod on its instance ledger-1\)/);
    expect(reason('replica-db')?.detail).toMatch(/^read replica \(of source-db\)/);
    expect(reason('source-db')?.detail).toMatch(/^has read replicas \(replica-db\)/);
    expect(reason('mssql-db')?.detail).toMatch(/^SQL Server Multi-AZ/);
    expect(reason('reports-1')?.detail).toMatch(/^member of cluster reports/);
    expect(reason('legacy-serverless')?.detail).toMatch(/^Serverless v1/);
    expect(reason('pausing')?.detail).toContain('pause by themselves (min capacity 0)');
    expect(reason('worldwide')?.detail).toMatch(/^member of global database world/);
    for (const op of ['AddTagsToResource', 'StopDBInstance', 'StopDBCluster'])
      expect(sent(op), op).toEqual([]);
  });

  it('reports a stop AWS refuses during a backup with AWS error as undone, and the next run stops it', async () => {
    // Prepare: RDS refuses the stop while a backup runs (moto never does: stubbed with AWS's error)
    await createInstance('shop-db');
    proxy.stub(
      'StopDBInstance',
      refusal('InvalidDBInstanceState', 'Instance shop-db is not in available state.'),
    );

    // Act
    const first = await invoke({ action: 'stop', instances: ['shop-db'] });

    // Assess: undone with AWS's words; the tag written before the call is removed again (it was not
    // stopped), so no run takes it for one someone started after nightshift stopped it
    expect(rows(first)).toEqual(['shop-db undone']);
    expect(first.resources[0]?.detail).toContain('Instance shop-db is not in available state.');
    expect(first.resources[0]?.detail).toContain('the next run tries again');
    expect(first.resources[0]?.detail).toContain(`${STOPPED} removed again (not stopped)`);
    expect(await status('shop-db')).toBe('available');
    expect((await tagsOf(dbArn('shop-db')))[STOPPED]).toBeUndefined();
    expect(sent('RemoveTagsFromResource')).toHaveLength(1);

    // Act: the next run, the backup over
    proxy.stub('StopDBInstance', undefined);
    clock = new Date(EVENING.getTime() + 10 * 60_000);
    const second = await invoke({ action: 'stop', instances: ['shop-db'] });

    // Assess
    expect(rows(second)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('stopped');
    expect((await tagsOf(dbArn('shop-db')))[STOPPED]).toBe('at=2026-11-30T19:10:00Z by=nightshift');
  });

  it('reconciles an instance and a cluster to their schedule, in local time, and respects a stop on demand', async () => {
    // Prepare
    await createInstance('shop-db', { 'nightshift:schedule': 'office-hours' });
    await createAurora('reports', { 'nightshift:schedule': 'office-hours' });
    await createInstance('unscheduled-db');

    // Act: Monday 20:00 in Berlin
    const evening = await invoke({ action: 'reconcile' });

    // Assess
    expect(rows(evening)).toEqual(['reports changed', 'shop-db changed']);
    expect(evening.resources[0]?.detail).toMatch(/^office-hours: stopped since Mon 19:00 Europe\/Berlin/);
    expect([await status('shop-db'), await clusterStatus('reports'), await status('unscheduled-db')]).toEqual(
      ['stopped', 'stopped', 'available'],
    );

    // Act: Tuesday 08:30 in Berlin
    clock = MORNING;
    const morning = await invoke({ action: 'reconcile' });

    // Assess
    expect(rows(morning)).toEqual(['reports changed', 'shop-db changed']);
    expect([await status('shop-db'), await clusterStatus('reports')]).toEqual(['available', 'available']);
    expect(await tagsOf(dbArn('shop-db'))).toEqual({ 'nightshift:schedule': 'office-hours' });
    expect((await store.read(`started#rds-scheduler#${dbArn('shop-db')}`))?.data.at).toBe(
      MORNING.toISOString(),
    );

    // Act: someone stops it on demand at 10:00, a reconcile follows at 10:10
    clock = new Date('2026-12-01T09:00:00Z');
    await invoke({ action: 'stop', instances: ['shop-db'] });
    clock = new Date('2026-12-01T09:10:00Z');
    proxy.requests.length = 0;
    const later = await invoke({ action: 'reconcile' });

    // Assess: enforced false acts on transitions only
    expect(rows(later)).toEqual(['reports unchanged', 'shop-db unchanged']);
    expect(later.resources.find((r) => r.arn.endsWith('shop-db'))?.detail).toContain(
      'stopped on demand at Tue 10:00',
    );
    expect(sent('StartDBInstance')).toEqual([]);
  });

  it('stops again a database AWS started after 7 days: from reconcile, whatever enforced says', async () => {
    // Prepare: stopped by the evening reconcile, then running again (AWS's 7-day start, emulated)
    await createInstance('shop-db', { 'nightshift:schedule': 'office-hours' });
    await invoke({ action: 'reconcile' });
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    // A week later, the same weekday evening: office-hours (enforced: false) still wants it stopped.
    clock = new Date(EVENING.getTime() + 7 * 24 * 3_600_000 + 40 * 60_000);
    proxy.requests.length = 0;

    // Act
    const report = await invoke({ action: 'reconcile' });

    // Assess
    expect(rows(report)).toEqual(['shop-db changed']);
    expect(report.resources[0]?.detail).toContain('AWS starts a database stopped for 7 days');
    expect(sentFor('StopDBInstance', 'shop-db')).toHaveLength(1);
    expect(await status('shop-db')).toBe('stopped');
    expect((await tagsOf(dbArn('shop-db')))[STOPPED]).toBe('at=2026-12-07T19:40:00Z by=nightshift');
  });

  it("leaves a database someone started after nightshift stopped it to them under enforced: false (not AWS's 7-day start)", async () => {
    // Prepare: stopped by the evening reconcile, started from the console an hour later
    await createInstance('shop-db', { 'nightshift:schedule': 'office-hours' });
    await invoke({ action: 'reconcile' });
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    clock = new Date(EVENING.getTime() + 60 * 60_000);
    proxy.requests.length = 0;

    // Act: the next reconcile, and RDS-EVENT-0088 for that start
    const report = await invoke({ action: 'reconcile' });
    const event = await invoke(sample('db-instance-started-0088.json', dbArn('shop-db')));

    // Assess: left running, said why; nothing stopped
    expect(rows(report)).toEqual(['shop-db unchanged']);
    expect(report.resources[0]?.detail).toContain("someone started it since (not AWS's 7-day start)");
    expect(rows(event)).toEqual(['shop-db unchanged']);
    expect(sent('StopDBInstance')).toEqual([]);
    expect(await status('shop-db')).toBe('available');
  });

  it('on the RDS event, leaves running a database stopped on demand that someone started, and removes its tag', async () => {
    // Prepare: stopped on demand (no schedule), started from the console an hour later
    await createInstance('shop-db');
    await invoke({ action: 'stop', instances: ['shop-db'] });
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    clock = new Date(EVENING.getTime() + 60 * 60_000);
    proxy.requests.length = 0;

    // Act
    const report = await invoke(sample('db-instance-started-0088.json', dbArn('shop-db')));

    // Assess
    expect(rows(report)).toEqual(['shop-db changed']);
    expect(report.resources[0]?.detail).toContain('started by someone since nightshift stopped it');
    expect(sent('StopDBInstance')).toEqual([]);
    expect(await status('shop-db')).toBe('available');
    expect((await tagsOf(dbArn('shop-db')))[STOPPED]).toBeUndefined();
  });

  it("takes RDS-EVENT-0154 at its word: the started event that follows stops the database again, whatever the tag's age", async () => {
    // Prepare: stopped on demand; six days later (the tag younger than 7 days) RDS says it started it itself
    await createInstance('shop-db');
    await invoke({ action: 'stop', instances: ['shop-db'] });
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    clock = new Date(EVENING.getTime() + 6 * 24 * 3_600_000);
    proxy.rewrite('DescribeDBInstances', (body) =>
      body.replace(
        /(<DBInstanceIdentifier>shop-db<\/DBInstanceIdentifier>[\s\S]*?<DBInstanceStatus>)available/,
        '$1starting',
      ),
    );
    const starting = await invoke(sample('db-instance-auto-started-0154.json', dbArn('shop-db')));
    proxy.rewrite('DescribeDBInstances', undefined);
    clock = new Date(clock.getTime() + 10 * 60_000);

    // Act: RDS-EVENT-0088, the start done
    const started = await invoke(sample('db-instance-started-0088.json', dbArn('shop-db')));

    // Assess: waiting while starting, then stopped again
    expect(rows(starting)).toEqual(['shop-db waiting']);
    expect(rows(started)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('stopped');
  });

  it('never starts a database whose nightshift:stopped is older than the database (copied from a snapshot)', async () => {
    // Prepare: a database restored from a snapshot of one nightshift had stopped carries its tag
    await createInstance('restored-db', { [STOPPED]: 'at=2025-06-01T19:00:00Z by=nightshift' });
    await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: 'restored-db' }));
    proxy.requests.length = 0;

    // Act
    const report = await invoke({ action: 'start', instances: ['restored-db'] });

    // Assess
    expect(rows(report)).toEqual(['restored-db unchanged']);
    expect(report.resources[0]?.detail).toContain('older than the database');
    expect(sent('StartDBInstance')).toEqual([]);
    expect(await status('restored-db')).toBe('stopped');
  });

  it("sets a re-stop's tag back to what it was when AWS refuses the stop, so the next run still knows it", async () => {
    // Prepare: stopped, then started by AWS a week later; the re-stop is refused (a backup)
    await createInstance('shop-db');
    await invoke({ action: 'stop', instances: ['shop-db'] });
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    clock = new Date(EVENING.getTime() + 7 * 24 * 3_600_000 + 5 * 60_000);
    proxy.stub(
      'StopDBInstance',
      refusal('InvalidDBInstanceState', 'Instance shop-db is not in available state.'),
    );

    // Act
    const refused = await invoke(sample('db-instance-started-0088.json', dbArn('shop-db')));
    proxy.stub('StopDBInstance', undefined);
    clock = new Date(clock.getTime() + 10 * 60_000);
    const again = await invoke({ action: 'stop', instances: ['shop-db'] });

    // Assess
    expect(rows(refused)).toEqual(['shop-db undone']);
    expect(refused.resources[0]?.detail).toContain(
      `${STOPPED} set back to "at=2026-11-30T19:00:00Z by=nightshift"`,
    );
    expect(rows(again)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('stopped');
  });

  it('stops again at once, on the RDS event, an instance and a cluster nightshift stopped; waits while starting', async () => {
    // Prepare: stopped on demand (no schedule), then started by AWS after 7 days
    await createInstance('shop-db');
    await createAurora('reports');
    await createInstance('other-db');
    await invoke({ action: 'stop', instances: ['shop-db'], clusters: ['reports'] });
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    clock = new Date(EVENING.getTime() + 7 * 24 * 3_600_000 + 5 * 60_000);
    proxy.requests.length = 0;

    // Act: RDS-EVENT-0154 arrives while the instance is still starting (moto's changes are instant:
    // the status is rewritten to what RDS reports then)
    proxy.rewrite('DescribeDBInstances', (body) =>
      body.replace(
        /(<DBInstanceIdentifier>shop-db<\/DBInstanceIdentifier>[\s\S]*?<DBInstanceStatus>)available/,
        '$1starting',
      ),
    );
    const starting = await invoke(sample('db-instance-auto-started-0154.json', dbArn('shop-db')));
    proxy.rewrite('DescribeDBInstances', undefined);

    // Assess: waiting, nothing sent
    expect(rows(starting)).toEqual(['shop-db waiting']);
    expect(starting.resources[0]?.detail).toContain('waiting for shop-db: starting');
    expect(sent('StopDBInstance')).toEqual([]);

    // Act: RDS-EVENT-0088 (started)
    const started = await invoke(sample('db-instance-started-0088.json', dbArn('shop-db')));
    // …and a cluster's RDS-EVENT-0151, and an event for a database nightshift never stopped
    const { StartDBClusterCommand } = await import('@aws-sdk/client-rds');
    await rds.send(new StartDBClusterCommand({ DBClusterIdentifier: 'reports' }));
    const cluster = await invoke(sample('cluster-started-0151.json', clusterArn('reports')));
    const other = await invoke(sample('db-instance-started-0088.json', dbArn('other-db')));

    // Assess
    expect(rows(started)).toEqual(['shop-db changed']);
    expect(rows(cluster)).toEqual(['reports changed']);
    expect(rows(other)).toEqual(['other-db unchanged']);
    expect([await status('shop-db'), await clusterStatus('reports'), await status('other-db')]).toEqual([
      'stopped',
      'stopped',
      'available',
    ]);
    expect(sentFor('StopDBInstance', 'other-db')).toEqual([]);
  });

  it('lets one of two runs at once act on a database: the other is undone, naming the holder', async () => {
    // Prepare: run A is held at its stop call
    await createInstance('shop-db');
    let release!: () => void;
    let reached!: () => void;
    const atStop = new Promise<void>((r) => (reached = r));
    const gate = new Promise<void>((r) => (release = r));
    proxy.before('StopDBInstance', async () => {
      reached();
      await gate;
    });

    // Act
    const a = invoke({ action: 'stop', instances: ['shop-db'] }, 'run A');
    await atStop;
    const b = await invoke({ action: 'stop', instances: ['shop-db'] }, 'run B');
    proxy.before('StopDBInstance', undefined);
    release();

    // Assess
    expect(rows(b)).toEqual(['shop-db undone']);
    expect(b.resources[0]?.detail).toContain('another run holds the lease on it: run A');
    expect(rows(await a)).toEqual(['shop-db changed']);
    expect(sent('StopDBInstance')).toHaveLength(1);
    expect(sent('AddTagsToResource')).toHaveLength(1);
  });

  it('follows every page of DescribeDBInstances (100 at most) and stops all 120 databases', async () => {
    // Prepare
    for (let i = 0; i < 120; i += 1)
      await createInstance(`db-${String(i).padStart(3, '0')}`, { team: 'load' });
    proxy.requests.length = 0;

    // Act
    const report = await invoke({ action: 'stop', tags: { team: 'load' } });

    // Assess
    expect(report.summary.changed).toBe(120);
    const pages = sent('DescribeDBInstances');
    expect(pages.every((p) => p.body.includes('MaxRecords=100'))).toBe(true);
    expect(pages.some((p) => p.body.includes('Marker='))).toBe(true);
    expect(sent('StopDBInstance')).toHaveLength(120);
  }, 120_000);

  it('follows every page of DescribeDBClusters too, and stops all 105 clusters', async () => {
    // Prepare
    for (let i = 0; i < 105; i += 1)
      await rds.send(
        new CreateDBClusterCommand({
          DBClusterIdentifier: `c-${String(i).padStart(3, '0')}`,
          Engine: 'aurora-postgresql',
          MasterUsername: 'nightshift',
          MasterUserPassword: 'not-a-secret-1',
          Tags: toTags({ team: 'load' }),
        }),
      );
    // moto answers DescribeDBClusters in one page whatever MaxRecords says: the proxy pages it as RDS
    // does (at most MaxRecords, then a Marker for the rest).
    let second = false;
    proxy.before('DescribeDBClusters', async (request) => {
      second = request.body.includes('Marker=');
    });
    proxy.rewrite('DescribeDBClusters', (body) => {
      const clusters = body.match(/<DBCluster>[\s\S]*?<\/DBCluster>/g) ?? [];
      if (clusters.length <= 100 && !second) return body;
      const page = second ? clusters.slice(100) : clusters.slice(0, 100);
      return body.replace(
        /<DBClusters>[\s\S]*<\/DBClusters>/,
        `<DBClusters>${page.join('')}</DBClusters>${second ? '' : '<Marker>page-2</Marker>'}`,
      );
    });
    proxy.requests.length = 0;

    // Act
    const report = await invoke({ action: 'stop', tags: { team: 'load' } });
    proxy.before('DescribeDBClusters', undefined);
    proxy.rewrite('DescribeDBClusters', undefined);

    // Assess
    expect(report.summary.changed).toBe(105);
    const pages = sent('DescribeDBClusters');
    expect(pages.every((p) => p.body.includes('MaxRecords=100'))).toBe(true);
    expect(pages.some((p) => p.body.includes('Marker=page-2'))).toBe(true);
    expect(sent('StopDBCluster')).toHaveLength(105);
  }, 120_000);

  it('stops reading at the deadline and changes nothing from half a picture', async () => {
    // Prepare: 101 instances, two pages; no time left after the first
    for (let i = 0; i < 101; i += 1)
      await createInstance(`db-${String(i).padStart(3, '0')}`, { team: 'load' });
    proxy.requests.length = 0;

    // Act
    const outcome = run(
      { action: 'stop', tags: { team: 'load' } },
      runContext({ hasTime: () => false, leases: runLeases(store, 'run A') }),
      deps(),
    );

    // Assess
    await expect(outcome).rejects.toThrow(OutOfTimeError);
    expect(sent('DescribeDBInstances')).toHaveLength(1);
    expect([...sent('AddTagsToResource'), ...sent('StopDBInstance')]).toEqual([]);
  }, 120_000);

  it('fails only the stops of environment databases when ECS cannot be read; every other database is stopped', async () => {
    // Prepare: ECS refuses the read (a role without ecs:ListClusters, or throttling past its retries)
    await createInstance('shop-db', { 'nightshift:environment': 'shop' });
    await createInstance('tools-db');
    proxy.stub('ListClusters', {
      status: 400,
      contentType: 'application/x-amz-json-1.1',
      body: JSON.stringify({ __type: 'AccessDeniedException', message: 'not allowed for the test' }),
    });

    // Act
    const report = await invoke({ action: 'stop', instances: ['shop-db', 'tools-db'] });
    proxy.stub('ListClusters', undefined);

    // Assess
    expect(rows(report)).toEqual(['shop-db failed', 'tools-db changed']);
    expect(report.resources.find((r) => r.arn.endsWith(':shop-db'))?.detail).toContain(
      'its services and groups could not be read (AccessDeniedException: not allowed for the test)',
    );
    expect(sentFor('StopDBInstance', 'shop-db')).toEqual([]);
    expect([await status('shop-db'), await status('tools-db')]).toEqual(['available', 'stopped']);
  });

  it('waits to stop a database until every service of its environment rests, then stops it; force skips the wait', async () => {
    // Prepare: an environment shop with a database and a running service (the cluster carries the tag)
    await createInstance('shop-db', { 'nightshift:environment': 'shop' });
    await createInstance('lab-db', { 'nightshift:environment': 'lab' });
    const { RegisterTaskDefinitionCommand } = await import('@aws-sdk/client-ecs');
    await ecs.send(
      new CreateClusterCommand({
        clusterName: 'shop',
        tags: [{ key: 'nightshift:environment', value: 'shop' }],
      }),
    );
    await ecs.send(
      new CreateClusterCommand({
        clusterName: 'lab',
        tags: [{ key: 'nightshift:environment', value: 'lab' }],
      }),
    );
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'web',
        containerDefinitions: [{ name: 'web', image: 'nginx', memory: 128 }],
      }),
    );
    for (const cluster of ['shop', 'lab'])
      await ecs.send(
        new CreateServiceCommand({ cluster, serviceName: 'web', taskDefinition: 'web', desiredCount: 1 }),
      );
    // …and an Auto Scaling group of each environment: shop's already parked at 0/0/0, lab's running
    const autoscaling = new AutoScalingClient(clientConfig());
    await autoscaling.send(
      new CreateLaunchConfigurationCommand({
        LaunchConfigurationName: 'lc',
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.micro',
      }),
    );
    for (const [name, env, size] of [
      ['shop-nodes', 'shop', 0],
      ['lab-nodes', 'lab', 1],
    ] as const)
      await autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          LaunchConfigurationName: 'lc',
          MinSize: size,
          MaxSize: size,
          DesiredCapacity: size,
          AvailabilityZones: ['eu-central-1a'],
          Tags: [{ Key: 'nightshift:environment', Value: env, PropagateAtLaunch: false }],
        }),
      );

    // Act
    const first = await invoke({ action: 'stop', instances: ['shop-db'] });

    // Assess: waiting, naming the service (not the parked group); force stops at once
    expect(rows(first)).toEqual(['shop-db waiting']);
    expect(first.resources[0]?.detail).toContain('waiting for shop/web: desiredCount 1');
    expect(first.resources[0]?.detail).not.toContain('shop-nodes');
    const lab = await invoke({ action: 'stop', instances: ['lab-db'], dryRun: true });
    expect(lab.resources[0]?.detail).toContain('lab-nodes: min/desired/max 1/1/1');
    const forced = await invoke({ action: 'stop', instances: ['lab-db'], force: true });
    expect(sentFor('StopDBInstance', 'shop-db')).toEqual([]);
    expect(rows(forced)).toEqual(['lab-db changed']);

    // Act: the services are parked, a later run
    await ecs.send(new UpdateServiceCommand({ cluster: 'shop', service: 'web', desiredCount: 0 }));
    const later = await invoke({ action: 'stop', instances: ['shop-db'] });

    // Assess
    expect(rows(later)).toEqual(['shop-db changed']);
    expect(await status('shop-db')).toBe('stopped');
    expect(sent('UpdateService').length).toBe(1); // ours only: the function never changes a service
  });
});
