/**
 * Silence while parked, alarms on ClusterName alone (issue 10): silenced only when a read after the stop
 * finds every service of the cluster parked, and enabled again when a start brings back the first
 * service of it; one someone else disabled is never touched. Against moto.
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
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import { emulateAlarmActions } from '#test/support/alarm-actions.ts';

const ACCOUNT = '123456789012';
const NIGHT = new Date('2026-11-27T18:00:30Z');
const MORNING = new Date('2026-11-30T06:00:30Z');

describe.runIf(motoTestsEnabled())(
  'ecs-scheduler silences ClusterName alarms of a parked cluster (moto)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let aws: SeedClients;
    let viaProxy: SeedClients;
    let seed: CloudWatchClient;
    let store: LeaseStore;
    let actions: Map<string, boolean>;
    let sent: { disable: string[][]; enable: string[][] };

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
      ({ actions, sent } = emulateAlarmActions(proxy));
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
      await seedEstate(aws, [
        { name: 'other', tags: { env: 'stage' }, services: [{ name: 'api', desired: 1 }] },
      ]);
      await alarm('stage-cluster-cpu', { ClusterName: 'stage' });
      await alarm('stage-cluster-muted', { ClusterName: 'stage' }, false);
      await alarm('other-cluster-cpu', { ClusterName: 'other' });
    });

    const alarmRows = (report: Report) =>
      report.resources
        .filter((r) => r.type === 'cloudwatch-alarm')
        .map((r) => `${r.arn.split(':').pop()} ${r.outcome}`);
    const CLUSTER = `arn:aws:ecs:eu-central-1:${ACCOUNT}:cluster/stage`;

    it('silences the ClusterName alarms only once every service of the cluster is parked, wakes them with the first start', async () => {
      // Act: the first stop parks web only; worker still runs
      const first = await runAt({ action: 'stop', clusters: ['stage'], services: ['web'] }, NIGHT);

      // Assess: the cluster is not parked: its alarm is left alone
      expect(alarmRows(first)).not.toContain('stage-cluster-cpu changed');
      expect(sent.disable.flat()).not.toContain('stage-cluster-cpu');
      expect(await tagOf('stage-cluster-cpu')).toBeUndefined();

      // Act: the second stop parks worker: now every service of stage is at 0 (read after the stop)
      const second = await runAt({ action: 'stop', clusters: ['stage'], services: ['worker'] }, NIGHT);

      // Assess: tagged for the cluster, then disabled; the one muted by someone else and the other cluster's untouched
      expect(alarmRows(second)).toEqual(
        expect.arrayContaining(['stage-cluster-cpu changed', 'stage-cluster-muted unchanged']),
      );
      expect(sent.disable).toEqual([['stage-cluster-cpu']]);
      expect(await tagOf('stage-cluster-cpu')).toBe(`for=${CLUSTER} at=2026-11-27T18:00:30Z`);
      expect(await tagOf('stage-cluster-muted')).toBeUndefined();
      expect(await tagOf('other-cluster-cpu')).toBeUndefined();

      // Act: the morning start of one service of the cluster
      const start = await runAt({ action: 'start', clusters: ['stage'], services: ['web'] }, MORNING);

      // Assess: enabled again with the first service, the tag gone; the muted one stays muted
      expect(alarmRows(start)).toContain('stage-cluster-cpu changed');
      expect(sent.enable).toEqual([['stage-cluster-cpu']]);
      expect(actions.get('stage-cluster-cpu')).toBe(true);
      expect(actions.get('stage-cluster-muted')).toBe(false);
      expect(await tagOf('stage-cluster-cpu')).toBeUndefined();
      expect(start.summary.failed).toBe(0);
    });

    it('plans the ClusterName silence in a dry run of a stop of the whole cluster, and sends nothing', async () => {
      // Act
      const dry = await runAt({ action: 'stop', clusters: ['stage'], dryRun: true }, NIGHT);
      const some = await runAt(
        { action: 'stop', clusters: ['stage'], services: ['web'], dryRun: true },
        NIGHT,
      );

      // Assess
      expect(alarmRows(dry)).toContain('stage-cluster-cpu planned');
      expect(alarmRows(some)).not.toContain('stage-cluster-cpu planned');
      expect(sent.disable).toEqual([]);
      expect(await tagOf('stage-cluster-cpu')).toBeUndefined();
    });
  },
);
