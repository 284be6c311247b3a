/**
 * Silence while parked, through ecs-scheduler: a stop disables the actions of the CloudWatch alarms about
 * the services and groups it parked (tagging them nightshift:silenced first), a start enables exactly
 * those again; an alarm someone else disabled is never touched. Against moto.
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
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { sdkConfig } from '#shared/aws/config.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import { emulateAlarmActions, type AlarmActions } from '#test/support/alarm-actions.ts';

const ACCOUNT = '123456789012';
const JSON10 = 'application/x-amz-json-1.0';
const NIGHT = new Date('2026-11-27T18:00:30Z');
const MORNING = new Date('2026-11-30T06:00:30Z');

describe.runIf(motoTestsEnabled())('ecs-scheduler silences alarms while parked (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let seed: CloudWatchClient;
  let store: LeaseStore;
  let actions: Map<string, boolean>;
  let sent: { disable: string[][]; enable: string[][] };
  let answerAlarmActions: AlarmActions['answer'];

  const deps = (now: Date): Deps => ({
    clients: {
      ...viaProxy,
      cloudwatch: new CloudWatchClient({
        ...sdkConfig(),
        endpoint: proxy.url,
        region: 'eu-central-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      }),
    },
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
    now: () => now,
  });
  const runAt = async (event: Parameters<typeof run>[0], now: Date) => {
    const leases = runLeases(store, 'ecs-scheduler', () => now);
    try {
      return await run(event, runContext({ leases }), deps(now));
    } finally {
      await leases.releaseAll();
    }
  };
  const alarm = async (name: string, dimensions: Record<string, string>, enabled = true) => {
    await seed.send(
      new PutMetricAlarmCommand({
        AlarmName: name,
        Namespace: 'AWS/ECS',
        MetricName: 'CPUUtilization',
        Statistic: 'Average',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 90,
        ComparisonOperator: 'GreaterThanThreshold',
        ActionsEnabled: enabled,
        AlarmActions: [`arn:aws:sns:eu-central-1:${ACCOUNT}:pager`],
        Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
      }),
    );
    actions.set(name, enabled);
  };
  const tagOf = async (name: string) =>
    (
      await seed.send(
        new ListTagsForResourceCommand({
          ResourceARN: `arn:aws:cloudwatch:eu-central-1:${ACCOUNT}:alarm:${name}`,
        }),
      )
    ).Tags?.find((t) => t.Key === 'nightshift:silenced')?.Value;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(moto.url);
    aws = seedClients(moto.url);
    viaProxy = seedClients(proxy.url);
    seed = new CloudWatchClient({ ...sdkConfig(), endpoint: moto.url });
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    store = await leaseTable(moto.url);
    ({ actions, sent, answer: answerAlarmActions } = emulateAlarmActions(proxy));
    await seedEstate(aws, [
      {
        name: 'stage',
        tags: { env: 'stage' },
        services: [
          { name: 'web', desired: 3 },
          { name: 'worker', desired: 2 },
        ],
      },
    ]);
    await alarm('stage-web-cpu', { ClusterName: 'stage', ServiceName: 'web' });
    await alarm('stage-worker-cpu-muted', { ClusterName: 'stage', ServiceName: 'worker' }, false);
    await alarm('other-api-cpu', { ClusterName: 'other', ServiceName: 'api' });
  });

  it('disables the alarms about what a stop parked, and enables exactly those at the start', async () => {
    // Act: the evening stop
    const stop = await runAt({ action: 'stop', clusters: ['stage'] }, NIGHT);

    // Assess: tagged, then disabled; the muted alarm and the other cluster's untouched
    expect(sent.disable).toEqual([['stage-web-cpu']]);
    expect(await tagOf('stage-web-cpu')).toBe(
      `for=arn:aws:ecs:eu-central-1:${ACCOUNT}:service/stage/web at=2026-11-27T18:00:30Z`,
    );
    expect(await tagOf('stage-worker-cpu-muted')).toBeUndefined();
    expect(
      stop.resources
        .filter((r) => r.type === 'cloudwatch-alarm')
        .map((r) => [r.arn.split(':').pop(), r.outcome]),
    ).toEqual(
      expect.arrayContaining([
        ['stage-web-cpu', 'changed'],
        ['stage-worker-cpu-muted', 'unchanged'],
      ]),
    );

    // Act: the morning start
    const start = await runAt({ action: 'start', clusters: ['stage'] }, MORNING);

    // Assess: enabled again, the tag gone; the one muted by someone else stays muted
    expect(sent.enable).toEqual([['stage-web-cpu']]);
    expect(actions.get('stage-web-cpu')).toBe(true);
    expect(actions.get('stage-worker-cpu-muted')).toBe(false);
    expect(await tagOf('stage-web-cpu')).toBeUndefined();
    expect(start.summary.failed).toBe(0);
  });

  it('sweeps, in a reconcile, an alarm still silenced for a service that runs again; never one someone else muted', async () => {
    // Prepare: parked at night; in the morning the start runs but CloudWatch refuses to enable the alarm
    await runAt({ action: 'stop', clusters: ['stage'] }, NIGHT);
    proxy.stub('EnableAlarmActions', {
      status: 400,
      contentType: JSON10,
      body: JSON.stringify({ __type: 'InvalidParameterValue', message: 'refused for the test' }),
    });
    const start = await runAt({ action: 'start', clusters: ['stage'] }, MORNING);
    expect(start.resources.find((r) => r.arn.endsWith(':stage-web-cpu'))?.outcome).toBe('failed');
    answerAlarmActions('EnableAlarmActions');
    sent.enable.length = 0;

    // Act: the next reconcile (nothing of stage is on a schedule: the sweep alone acts)
    const sweep = await runAt({ action: 'reconcile' }, new Date(MORNING.getTime() + 10 * 60_000));

    // Assess
    expect(sent.enable).toEqual([['stage-web-cpu']]);
    expect(actions.get('stage-web-cpu')).toBe(true);
    expect(await tagOf('stage-web-cpu')).toBeUndefined();
    expect(actions.get('stage-worker-cpu-muted')).toBe(false);
    expect(
      sweep.resources
        .filter((r) => r.type === 'cloudwatch-alarm')
        .map((r) => [r.arn.split(':').pop(), r.outcome]),
    ).toEqual([['stage-web-cpu', 'changed']]);
  });

  it('plans the silence in a dry run and sends nothing that changes an alarm', async () => {
    // Act
    const dry = await runAt({ action: 'stop', clusters: ['stage'], dryRun: true }, NIGHT);

    // Assess
    expect(dry.resources.find((r) => r.arn.endsWith(':alarm:stage-web-cpu'))).toMatchObject({
      outcome: 'planned',
    });
    expect(sent.disable).toEqual([]);
    expect(await tagOf('stage-web-cpu')).toBeUndefined();
  });
});
