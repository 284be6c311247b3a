/**
 * The built rds-scheduler bundle (dist/rds-scheduler/index.mjs, as Lambda imports it) loads the DynamoDB
 * client only when a run reads or writes the lease table: a lease, a start record, what it left undone.
 * A reconcile that finds every database as its schedule wants it (most of the 144 reconciles of a day)
 * sends nothing there; a stop takes its lease. Against moto through the recording proxy: everything the
 * proxy sees, the bundle sent.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { dynamoCalls, dynamoInBundle, runAt, type Handler } from '#test/support/bundle-run.ts';
import { leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';
import { createDatabase, snapshotSeedClients, type SnapshotSeedClients } from '#test/support/rds-estate.ts';

const ENTRY = resolve('dist', 'rds-scheduler', 'index.mjs');
// office-hours (infra/schedules.yml, built into the bundle): 07:00–19:00 Europe/Berlin, Monday to Friday.
const MIDDAY = '2026-11-30T10:00:00Z'; // Monday 11:00 in Berlin: running, as it should
const NIGHT = '2026-11-30T18:00:30Z'; // Monday 19:00:30 in Berlin: the transition to stopped

describe('the built rds-scheduler bundle', () => {
  it('loads the DynamoDB client only on demand', () => {
    expect(existsSync(ENTRY), `${ENTRY} missing: run npm run build`).toBe(true);
    const dynamo = dynamoInBundle('rds-scheduler');
    expect(dynamo.coldStart, 'the DynamoDB client in the cold start').toEqual([]);
    expect(dynamo.chunks).not.toEqual([]);
  });
});

describe.runIf(motoTestsEnabled())('the built rds-scheduler bundle against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SnapshotSeedClients;
  let handler: Handler;

  const reconcileAt = (iso: string) => runAt(handler, 'rds-scheduler', { action: 'reconcile' }, iso);
  const status = async () =>
    (await aws.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'shop-db' }))).DBInstances?.[0]
      ?.DBInstanceStatus;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    await leaseTable(moto.url);
    aws = snapshotSeedClients(moto.url);
    // moto stamps InstanceCreateTime with the real clock, which may fall just before this test's evening
    // (a database that new is in its grace period): made old, as a real stage database is
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    await createDatabase(aws, 'shop-db', { 'nightshift:schedule': 'office-hours' });
    expect(existsSync(ENTRY), `${ENTRY} missing: run npm run build`).toBe(true);
    handler = ((await import(pathToFileURL(ENTRY).href)) as { handler: Handler }).handler;
  });
  afterAll(async () => {
    delete process.env.LEASE_TABLE;
    await proxy?.close();
    moto?.stop();
  });

  it('sends nothing to the lease table in a reconcile that finds the database as its schedule wants it, and leases it for the stop', async () => {
    // Act: midday, then the evening transition
    proxy.requests.length = 0;
    const midday = await reconcileAt(MIDDAY);
    const middayDynamo = dynamoCalls(proxy);
    const middayStatus = await status();
    proxy.requests.length = 0;
    const night = await reconcileAt(NIGHT);

    // Assess: midday read RDS and changed nothing, without the lease table
    expect(midday.summary).toMatchObject({ changed: 0, failed: 0, undone: 0 });
    expect(middayStatus).toBe('available');
    expect(middayDynamo).toEqual([]);
    // the stop took the database's lease (the DynamoDB client, from its chunk) and stopped it
    expect(night.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(await status()).toBe('stopped');
    expect(dynamoCalls(proxy)).toEqual(expect.arrayContaining(['PutItem', 'DeleteItem']));
  });
});
