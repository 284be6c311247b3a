/**
 * Silence while parked, through rds-scheduler: a stop disables the actions of the CloudWatch alarms about
 * the DB instances and clusters it parked (tagging them nightshift:silenced first), a start enables
 * exactly those again; an alarm someone else disabled, and the alarms of a database someone else
 * stopped, are never touched. Against moto.
 *
 * moto 5.2.1 answers DisableAlarmActions and EnableAlarmActions with a 500: the proxy answers them as
 * CloudWatch does (200, empty body), records the names sent, and writes each alarm's ActionsEnabled into
 * moto's DescribeAlarms answers.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CloudWatchClient,
  ListTagsForResourceCommand,
  PutMetricAlarmCommand,
} from '@aws-sdk/client-cloudwatch';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  RDSClient,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { ECSClient } from '@aws-sdk/client-ecs';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { run, type Deps } from '#functions/rds-scheduler/handler.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';
import { emulateAlarmActions, type AlarmActions } from '#test/support/alarm-actions.ts';

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const JSON10 = 'application/x-amz-json-1.0';
const NIGHT = new Date('2026-11-30T19:00:30Z');
const MORNING = new Date('2026-12-01T07:30:30Z');
const dbArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`;
const clusterArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:${id}`;
const alarmRowsOf = (report: Report) =>
  report.resources
    .filter((r) => r.type === 'cloudwatch-alarm')
    .map((r) => `${r.arn.split(':').pop()} ${r.outcome}`)
    .sort();

describe.runIf(motoTestsEnabled())('rds-scheduler silences alarms while parked (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let rds: RDSClient;
  let seed: CloudWatchClient;
  let store: LeaseStore;
  let actions: Map<string, boolean>;
  let sent: { disable: string[][]; enable: string[][] };
  let answerAlarmActions: AlarmActions['answer'];

  const clientConfig = () => ({
    endpoint: proxy.url,
    region: REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const deps = (now: Date): Deps => ({
    clients: {
      rds,
      ecs: new ECSClient(clientConfig()),
      autoscaling: new AutoScalingClient(clientConfig()),
      cloudwatch: new CloudWatchClient(clientConfig()),
    },
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
    now: () => now,
  });
  const runAt = async (event: unknown, now: Date) => {
    const leases = runLeases(store, 'rds-scheduler', () => now);
    try {
      return await run(event as never, runContext({ leases }), deps(now));
    } finally {
      await leases.releaseAll();
    }
  };
  const alarm = async (name: string, dimensions: Record<string, string>, enabled = true) => {
    await seed.send(
      new PutMetricAlarmCommand({
        AlarmName: name,
        Namespace: 'AWS/RDS',
        MetricName: 'CPUUtilization',
        Statistic: 'Average',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 90,
        ComparisonOperator: 'GreaterThanThreshold',
        ActionsEnabled: enabled,
        AlarmActions: [`arn:aws:sns:${REGION}:${ACCOUNT}:pager`],
        Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
      }),
    );
    actions.set(name, enabled);
  };
  const tagOf = async (name: string) =>
    (
      await seed.send(
        new ListTagsForResourceCommand({
          ResourceARN: `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${name}`,
        }),
      )
    ).Tags?.find((t) => t.Key === 'nightshift:silenced')?.Value;
  const createInstance = (id: string) =>
    rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        AllocatedStorage: 20,
      }),
    );

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    // moto stamps creation times with the real clock: pinned long before this test's fixed clock
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    useEndpoint(proxy.url);
    rds = new RDSClient(clientConfig());
    seed = new CloudWatchClient({ ...clientConfig(), endpoint: moto.url });
  }, 90_000);
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    store = await leaseTable(moto.url);
    ({ actions, sent, answer: answerAlarmActions } = emulateAlarmActions(proxy));
    await createInstance('shop-db');
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: 'reports',
        Engine: 'aurora-postgresql',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
      }),
    );
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'reports-1',
        DBInstanceClass: 'db.r6g.large',
        Engine: 'aurora-postgresql',
        DBClusterIdentifier: 'reports',
      }),
    );
    await alarm('shop-db-cpu', { DBInstanceIdentifier: 'shop-db' });
    await alarm('shop-db-cpu-muted', { DBInstanceIdentifier: 'shop-db' }, false);
    await alarm('reports-cpu', { DBClusterIdentifier: 'reports' });
    await alarm('other-db-cpu', { DBInstanceIdentifier: 'other-db' });
    proxy.requests.length = 0;
  });

  it('disables the alarms about the instance and cluster a stop parked, and enables exactly those at the start', async () => {
    // Prepare: an alarm on the Aurora writer instance too (it is parked with its cluster)
    await alarm('reports-1-cpu', { DBInstanceIdentifier: 'reports-1' });

    // Act: the evening stop
    const stop = await runAt({ action: 'stop', instances: ['shop-db'], clusters: ['reports'] }, NIGHT);

    // Assess: tagged, then disabled; the muted alarm and the other database's untouched
    expect(sent.disable.flat().sort()).toEqual(['reports-1-cpu', 'reports-cpu', 'shop-db-cpu']);
    expect(await tagOf('shop-db-cpu')).toBe(`for=${dbArn('shop-db')} at=2026-11-30T19:00:30Z`);
    expect(await tagOf('reports-cpu')).toBe(`for=${clusterArn('reports')} at=2026-11-30T19:00:30Z`);
    expect(await tagOf('reports-1-cpu')).toBe(`for=${dbArn('reports-1')} at=2026-11-30T19:00:30Z`);
    expect(await tagOf('shop-db-cpu-muted')).toBeUndefined();
    expect(await tagOf('other-db-cpu')).toBeUndefined();
    expect(alarmRowsOf(stop)).toEqual([
      'reports-1-cpu changed',
      'reports-cpu changed',
      'shop-db-cpu changed',
      'shop-db-cpu-muted unchanged',
    ]);
    expect(stop.summary.failed).toBe(0);

    // Act: the morning start
    const start = await runAt({ action: 'start', instances: ['shop-db'], clusters: ['reports'] }, MORNING);

    // Assess: enabled again, tags gone; the one muted by someone else stays muted
    expect(sent.enable.flat().sort()).toEqual(['reports-1-cpu', 'reports-cpu', 'shop-db-cpu']);
    expect(await tagOf('reports-1-cpu')).toBeUndefined();
    expect(actions.get('shop-db-cpu')).toBe(true);
    expect(actions.get('reports-cpu')).toBe(true);
    expect(actions.get('shop-db-cpu-muted')).toBe(false);
    expect(await tagOf('shop-db-cpu')).toBeUndefined();
    expect(await tagOf('reports-cpu')).toBeUndefined();
    expect(alarmRowsOf(start)).toEqual(
      expect.arrayContaining(['reports-cpu changed', 'shop-db-cpu changed']),
    );
    expect(start.summary.failed).toBe(0);
  });

  it('silences a database nightshift already stopped, and never the alarms of one someone else stopped', async () => {
    // Prepare: shop-db stopped by nightshift (an alarm created since), other-db stopped by hand
    await runAt({ action: 'stop', instances: ['shop-db'] }, NIGHT);
    await alarm('shop-db-latency', { DBInstanceIdentifier: 'shop-db' });
    await createInstance('other-db');
    await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: 'other-db' }));
    sent.disable.length = 0;

    // Act: a second stop finds both stopped
    const again = await runAt({ action: 'stop', instances: ['shop-db', 'other-db'] }, NIGHT);

    // Assess: both unchanged; the new alarm about shop-db silenced, other-db's alarm left alone
    expect(again.resources.filter((r) => r.type !== 'cloudwatch-alarm').map((r) => r.outcome)).toEqual([
      'unchanged',
      'unchanged',
    ]);
    expect(sent.disable).toEqual([['shop-db-latency']]);
    expect(await tagOf('other-db-cpu')).toBeUndefined();
    expect(actions.get('other-db-cpu')).toBe(true);

    // Act: a start never starts other-db, nor enables its alarm
    await runAt({ action: 'start', instances: ['shop-db', 'other-db'] }, MORNING);
    expect(sent.enable.flat().sort()).toEqual(['shop-db-cpu', 'shop-db-latency']);
  });

  it('sweeps, in a reconcile, the alarms still silenced for a database that runs again; never one still parked', async () => {
    // Prepare: shop-db and night-db stopped at night; in the morning shop-db is started but CloudWatch
    // refuses to enable its alarm (the tag stays); night-db stays stopped
    await createInstance('night-db');
    await alarm('night-db-cpu', { DBInstanceIdentifier: 'night-db' });
    await runAt({ action: 'stop', instances: ['shop-db', 'night-db'] }, NIGHT);
    proxy.stub('EnableAlarmActions', {
      status: 400,
      contentType: JSON10,
      body: JSON.stringify({ __type: 'InvalidParameterValue', message: 'refused for the test' }),
    });
    const start = await runAt({ action: 'start', instances: ['shop-db'] }, MORNING);
    expect(alarmRowsOf(start)).toEqual(['shop-db-cpu failed', 'shop-db-cpu-muted unchanged']);
    answerAlarmActions('EnableAlarmActions');
    sent.enable.length = 0;

    // Act: the next scheduled reconcile, ten minutes later
    const sweep = await runAt({ action: 'reconcile' }, new Date(MORNING.getTime() + 10 * 60_000));

    // Assess: shop-db's alarm enabled and untagged; night-db's (still parked) and the one muted by
    // someone else left disabled, and not reported
    expect(alarmRowsOf(sweep)).toEqual(['shop-db-cpu changed']);
    expect(sweep.resources.find((r) => r.arn.endsWith(':shop-db-cpu'))?.detail).toContain(
      'still silenced although its resource runs',
    );
    expect(sent.enable).toEqual([['shop-db-cpu']]);
    expect(await tagOf('shop-db-cpu')).toBeUndefined();
    expect(actions.get('night-db-cpu')).toBe(false);
    expect(await tagOf('night-db-cpu')).toBe(`for=${dbArn('night-db')} at=2026-11-30T19:00:30Z`);
    expect(actions.get('shop-db-cpu-muted')).toBe(false);
  });

  it('leaves to the run in flight a silence younger than half an hour (a stop that our read saw before it)', async () => {
    // Prepare: shop-db stopped and its alarm silenced at 19:00:30; our reconcile read it as running
    // (emulated: the stop is undone in moto but the silence stays)
    await runAt({ action: 'stop', instances: ['shop-db'] }, NIGHT);
    const { StartDBInstanceCommand } = await import('@aws-sdk/client-rds');
    await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
    sent.enable.length = 0;

    // Act: a reconcile 20 minutes later, then one 40 minutes later
    const early = await runAt({ action: 'reconcile' }, new Date(NIGHT.getTime() + 20 * 60_000));
    const late = await runAt({ action: 'reconcile' }, new Date(NIGHT.getTime() + 40 * 60_000));

    // Assess
    expect(alarmRowsOf(early)).toEqual([]);
    expect(alarmRowsOf(late)).toEqual(['shop-db-cpu changed']);
    expect(sent.enable).toEqual([['shop-db-cpu']]);
  });

  it('plans the silence in a dry run and sends nothing that changes an alarm', async () => {
    // Act
    const dry = await runAt({ action: 'stop', instances: ['shop-db'], dryRun: true }, NIGHT);

    // Assess
    expect(alarmRowsOf(dry)).toContain('shop-db-cpu planned');
    expect(sent.disable).toEqual([]);
    expect(await tagOf('shop-db-cpu')).toBeUndefined();
    expect(proxy.requests.filter((r) => r.operation === 'TagResource')).toEqual([]);
  });
});
