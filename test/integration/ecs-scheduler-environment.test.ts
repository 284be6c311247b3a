/**
 * Start order in an environment (tag nightshift:environment): ecs-scheduler starts a service, and the
 * capacity under it, only once the databases of its environment are ready; until then the rows are
 * `waiting`, naming each database and its state, and a later run starts them. Against moto.
 *
 * moto's RDS state changes are instant (a started instance is `available` at once): the proxy reports a
 * database as `starting` where a test needs one, as RDS would for minutes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RDSClient } from '@aws-sdk/client-rds';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import type { LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { observe, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { createDatabase, snapshotSeedClients } from '#test/support/rds-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const NIGHT = new Date('2026-11-27T18:00:30Z');
const MORNING = new Date('2026-11-30T06:00:30Z');

const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));

describe.runIf(motoTestsEnabled())('ecs-scheduler start order in an environment (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let store: LeaseStore;

  const deps = (now: Date): Deps => ({
    clients: {
      ...viaProxy,
      rds: new RDSClient({
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
  /** The proxy reports shop-db as RDS would while it starts. */
  const starting = (on: boolean) =>
    proxy.rewrite(
      'DescribeDBInstances',
      on
        ? (body) =>
            body.replace(
              /(<DBInstanceIdentifier>shop-db<\/DBInstanceIdentifier>[\s\S]*?<DBInstanceStatus>)available(<\/DBInstanceStatus>)/,
              '$1starting$2',
            )
        : undefined,
    );

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
    starting(false);
    await moto.reset();
    store = await leaseTable(moto.url);
    await seedEstate(aws, [
      {
        name: 'shop',
        tags: { env: 'stage', 'nightshift:environment': 'shop' },
        group: { name: 'shop-nodes', min: 1, desired: 2, max: 4 },
        services: [
          { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
          { name: 'worker', desired: 2 },
        ],
      },
    ]);
    await createDatabase(snapshotSeedClients(moto.url), 'shop-db', { 'nightshift:environment': 'shop' });
    await createDatabase(snapshotSeedClients(moto.url), 'other-db', { 'nightshift:environment': 'blog' });
    proxy.requests.length = 0;
  });

  it('waits for the environment’s database, then starts the capacity and services exactly', async () => {
    // Prepare: parked in the evening; in the morning the database is still starting
    const before = await observe(aws, ['shop'], ['shop-nodes']);
    await runAt({ action: 'stop', clusters: ['shop'] }, NIGHT);
    starting(true);

    // Act
    const early = await runAt({ action: 'start', clusters: ['shop'] }, MORNING);
    const stillParked = await observe(aws, ['shop'], ['shop-nodes']);
    starting(false);
    const later = await runAt({ action: 'start', clusters: ['shop'] }, new Date('2026-11-30T06:10:00Z'));

    // Assess: waiting, naming the database and its state; nothing started; then everything back exactly
    expect(early.summary).toMatchObject({ waiting: 3, changed: 0, failed: 0 });
    expect(row(early, 'service/shop/web')?.detail).toMatch(
      /^waiting for shop-db: starting \(environment shop: databases start first\); nothing changed — a later run starts it/,
    );
    expect(row(early, 'shop-nodes')).toMatchObject({ outcome: 'waiting' });
    expect(stillParked.services['shop/web']?.desired).toBe(0);
    expect(stillParked.groups['shop-nodes']).toMatchObject({ min: 0, desired: 0, max: 0 });
    expect(later.summary).toMatchObject({ changed: 3, waiting: 0, failed: 0 });
    expect(await observe(aws, ['shop'], ['shop-nodes'])).toEqual(before);
  });

  it('fails only the environment rows when its databases cannot be read; a cluster in no environment starts', async () => {
    // Prepare: shop and a cluster in no environment parked; RDS refuses the read in the morning
    await seedEstate(aws, [
      { name: 'tools', tags: { env: 'stage' }, services: [{ name: 'api', desired: 1 }] },
    ]);
    await runAt({ action: 'stop', clusters: ['shop', 'tools'] }, NIGHT);
    proxy.stub('DescribeDBInstances', {
      status: 400,
      contentType: 'text/xml',
      body: '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed for the test</Message></Error><RequestId>stubbed</RequestId></ErrorResponse>',
    });

    // Act
    const morning = await runAt({ action: 'start', clusters: ['shop', 'tools'] }, MORNING);
    proxy.stub('DescribeDBInstances', undefined);
    const parked = await observe(aws, ['shop', 'tools'], ['shop-nodes']);

    // Assess: shop's rows failed, saying why; tools started; shop still parked
    expect(row(morning, 'service/shop/web')).toMatchObject({ outcome: 'failed' });
    expect(row(morning, 'service/shop/web')?.detail).toContain(
      'environment shop: the tier before it could not be read (AccessDenied: not allowed for the test)',
    );
    expect(row(morning, 'service/tools/api')).toMatchObject({ outcome: 'changed' });
    expect(parked.services['shop/web']?.desired).toBe(0);
    expect(parked.services['tools/api']?.desired).toBe(1);
  });

  it('starts at once with force, and ignores the databases of other environments', async () => {
    // Prepare
    const before = await observe(aws, ['shop'], ['shop-nodes']);
    await runAt({ action: 'stop', clusters: ['shop'] }, NIGHT);
    starting(true);

    // Act
    const forced = await runAt({ action: 'start', clusters: ['shop'], force: true }, MORNING);

    // Assess
    expect(forced.summary).toMatchObject({ changed: 3, waiting: 0 });
    expect(await observe(aws, ['shop'], ['shop-nodes'])).toEqual(before);
  });

  it('reads no database for a start outside any environment', async () => {
    // Prepare: a cluster without the tag
    await seedEstate(aws, [{ name: 'tools', services: [{ name: 'ci', desired: 1 }] }]);
    await runAt({ action: 'stop', clusters: ['tools'] }, NIGHT);
    proxy.requests.length = 0;

    // Act
    const start = await runAt({ action: 'start', clusters: ['tools'] }, MORNING);

    // Assess
    expect(start.summary).toMatchObject({ changed: 1 });
    expect(proxy.requests.filter((r) => r.operation.startsWith('DescribeDB'))).toHaveLength(0);
  });
});
