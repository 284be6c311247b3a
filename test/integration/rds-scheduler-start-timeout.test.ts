/**
 * rds-scheduler's start timeout (ENVIRONMENT_START_TIMEOUT_MINUTES, default 30): a database nightshift
 * started (its start record in the lease table) that is still not ready is `waiting` until the timeout
 * after the start, then `failed` (paged), naming how long and its state. Against moto; moto's state
 * changes are instant, so the proxy reports what RDS reports while a database starts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  RDSClient,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { ECSClient } from '@aws-sdk/client-ecs';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { run, type Deps } from '#functions/rds-scheduler/handler.ts';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';

const REGION = 'eu-central-1';
// Monday 30 November 2026, 20:00 in Berlin: office-hours wants stopped; Tuesday 08:30: running.
const EVENING = new Date('2026-11-30T19:00:00Z');
const MORNING = new Date('2026-12-01T07:30:00Z');
const later = (minutes: number) => new Date(MORNING.getTime() + minutes * 60_000);
const row = (report: Report, id: string) => report.resources.find((r) => r.arn.endsWith(`:${id}`));

describe.runIf(motoTestsEnabled())(
  'rds-scheduler: a database that does not come up after its start (moto)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let rds: RDSClient;
    let store: LeaseStore;

    const clientConfig = () => ({
      endpoint: proxy.url,
      region: REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const deps = (now: Date, env: Partial<Deps['config']> = {}): Deps => ({
      clients: {
        rds,
        ecs: new ECSClient(clientConfig()),
        autoscaling: new AutoScalingClient(clientConfig()),
      },
      config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false, SCHEDULE_GRACE_MINUTES: 15, ...env },
      now: () => now,
      schedules: bundledSchedules,
    });
    const runAt = async (event: unknown, now: Date, env: Partial<Deps['config']> = {}) => {
      const leases = runLeases(store, 'rds-scheduler', () => now);
      try {
        return await run(event as never, runContext({ leases }), deps(now, env));
      } finally {
        await leases.releaseAll();
      }
    };
    /** RDS reports `status` for this instance (moto's are instant). */
    const reportInstance = (id: string, status: string) =>
      proxy.rewrite('DescribeDBInstances', (body) =>
        body.replace(
          new RegExp(
            `(<DBInstanceIdentifier>${id}</DBInstanceIdentifier>[\\s\\S]*?<DBInstanceStatus>)available`,
          ),
          `$1${status}`,
        ),
      );
    const starts = () => proxy.requests.filter((r) => /^(Start|Stop)DB/.test(r.operation));

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
      proxy.rewrite('DescribeDBInstances', undefined);
      await rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: 'shop-db',
          DBInstanceClass: 'db.t3.micro',
          Engine: 'postgres',
          MasterUsername: 'nightshift',
          MasterUserPassword: 'not-a-secret-1',
          AllocatedStorage: 20,
          Tags: [{ Key: 'nightshift:schedule', Value: 'office-hours' }],
        }),
      );
    });

    it('waits for an instance a reconcile started, then fails it after 30 minutes, naming how long and its state', async () => {
      // Prepare: stopped in the evening, started by the morning reconcile (its start record at 07:30)
      await runAt({ action: 'reconcile' }, EVENING);
      const woken = await runAt({ action: 'reconcile' }, MORNING);
      expect(row(woken, 'shop-db')?.outcome).toBe('changed');
      reportInstance('shop-db', 'starting');
      proxy.requests.length = 0;

      // Act: 10 minutes after the start, still starting
      const early = await runAt({ action: 'reconcile' }, later(10));

      // Assess: waiting, naming the database, its state and since when
      expect(row(early, 'shop-db')).toMatchObject({ outcome: 'waiting' });
      expect(row(early, 'shop-db')?.detail).toContain(
        'waiting for shop-db: starting since 2026-12-01T07:30:00Z',
      );
      expect(early.summary.failed).toBe(0);

      // Act: 31 minutes after the start
      const late = await runAt({ action: 'reconcile' }, later(31));

      // Assess: failed (paged), how long and the state; nothing sent to RDS
      expect(row(late, 'shop-db')).toMatchObject({ outcome: 'failed' });
      expect(row(late, 'shop-db')?.detail).toContain(
        'not ready 31 min after nightshift started it (at 2026-12-01T07:30:00Z): starting',
      );
      expect(row(late, 'shop-db')?.detail).toContain('ENVIRONMENT_START_TIMEOUT_MINUTES (30)');
      expect(starts()).toEqual([]);

      // Act: an explicit start says the same; a longer timeout still waits
      expect(
        row(await runAt({ action: 'start', instances: ['shop-db'] }, later(31)), 'shop-db')?.outcome,
      ).toBe('failed');
      const patient = await runAt({ action: 'reconcile' }, later(31), {
        ENVIRONMENT_START_TIMEOUT_MINUTES: 45,
      });
      expect(row(patient, 'shop-db')?.outcome).toBe('waiting');

      // Act: once available, nothing is said any more
      proxy.rewrite('DescribeDBInstances', undefined);
      const up = await runAt({ action: 'reconcile' }, later(40));
      expect(row(up, 'shop-db')?.outcome).toBe('unchanged');
    });

    it('fails an Aurora cluster whose writer is not available after the timeout, though the cluster is', async () => {
      // Prepare: a cluster stopped and started by nightshift on demand
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
      await runAt({ action: 'stop', clusters: ['reports'] }, EVENING);
      await runAt({ action: 'start', clusters: ['reports'] }, MORNING);
      reportInstance('reports-1', 'starting');

      // Act
      const early = await runAt({ action: 'start', clusters: ['reports'] }, later(5));
      const late = await runAt({ action: 'start', clusters: ['reports'] }, later(35));

      // Assess
      expect(row(early, 'reports')).toMatchObject({ outcome: 'waiting' });
      expect(row(early, 'reports')?.detail).toContain(
        'waiting for reports: cluster available, writer starting since',
      );
      expect(row(late, 'reports')).toMatchObject({ outcome: 'failed' });
      expect(row(late, 'reports')?.detail).toContain('not ready 35 min after nightshift started it');
    });

    it('never blames a start for a backup hours later: a database backing-up in the evening waits to stop, no failure', async () => {
      // Prepare: started by the morning reconcile at 07:30, came up; the nightly backup runs at 19:00
      await runAt({ action: 'reconcile' }, EVENING);
      await runAt({ action: 'reconcile' }, MORNING);
      reportInstance('shop-db', 'backing-up');

      // Act: the evening reconcile, 11.5 hours after the start
      const report = await runAt({ action: 'reconcile' }, new Date('2026-12-01T19:00:00Z'));

      // Assess: waits to stop it, no page
      expect(row(report, 'shop-db')).toMatchObject({ outcome: 'waiting' });
      expect(row(report, 'shop-db')?.detail).toContain('waiting for shop-db: backing-up');
      expect(report.summary.failed).toBe(0);
    });

    it('never blames a start nightshift did not make: a database started by hand that is slow stays unchanged', async () => {
      // Prepare: stopped and started by hand, no start record
      await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
      await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: 'shop-db' }));
      reportInstance('shop-db', 'starting');

      // Act
      const report = await runAt({ action: 'start', instances: ['shop-db'] }, later(120));

      // Assess
      expect(row(report, 'shop-db')?.outcome).toBe('unchanged');
      expect(report.summary.failed).toBe(0);
    });
  },
);
