import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler, run, type Deps } from '#functions/snapshot-tags/handler.ts';
import { SnapshotTagsConfig } from '#functions/snapshot-tags/config.ts';
import { parseSnapshotTagsInput } from '#events/snapshot-tags/schema.ts';
import { rdsClient } from '#shared/aws/rds.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { parseEnv } from '#shared/env.ts';
import type { Report } from '#shared/report.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import {
  automatedClusterSnapshotArn,
  automatedSnapshotArn,
  createCluster,
  createClusterSnapshot,
  createDatabase,
  createDbSnapshot,
  createEbsSnapshot,
  createVolume,
  deleteDatabase,
  deleteVolume,
  ebsSnapshotArn,
  ebsSnapshotEvent,
  ebsTags,
  manyTags,
  rdsSnapshotEvent,
  rdsTags,
  snapshotSeedClients,
  type SnapshotSeedClients,
  type Tags,
} from '#test/support/rds-estate.ts';

const invoke = (event: unknown) => handler(event, lambdaContext('snapshot-tags')) as Promise<Report>;
const withEnv = (env: Record<string, string>): Deps => ({
  clients: { rds: rdsClient(), ec2: ec2Client() },
  config: parseEnv(SnapshotTagsConfig, env),
});
const ctx = runContext();
const row = (report: Report, arn: string) => report.resources.find((r) => r.arn === arn);

const ORDERS = { team: 'shop', owner: 'ann', 'cost-center': '42' };
const BILLING = { team: 'billing', owner: 'bob' };
const DATA = { team: 'shop', Name: 'data' };
const LOGS = { team: 'ops' };
const COPY_OF = 'arn:aws:rds:eu-west-1:123456789012:snapshot:legacy-2026-11-20';

interface Estate {
  ordersAuto: string;
  ordersManual: string;
  billingAuto: string;
  billingManual: string;
  dataVolume: string;
  dataSnapshots: [string, string];
  logsVolume: string;
  logsSnapshot: string;
  orphanVolume: string;
  orphanSnapshot: string;
  legacyCopy: string;
}

/**
 * orders (a DB instance) and billing (a cluster), each with an automated and a manual snapshot; two
 * snapshots of the data volume, one of the logs volume, one of a deleted volume, and a nightshift copy
 * whose DB does not exist in this region.
 */
const seed = async (c: SnapshotSeedClients): Promise<Estate> => {
  await createDatabase(c, 'orders', ORDERS);
  const ordersAuto = await automatedSnapshotArn(c, 'orders');
  const ordersManual = await createDbSnapshot(c, 'orders', 'orders-before-migration', { team: 'orders-dba' });
  await createCluster(c, 'billing', BILLING);
  const billingAuto = await automatedClusterSnapshotArn(c, 'billing');
  const billingManual = await createClusterSnapshot(c, 'billing', 'billing-before-upgrade');
  const dataVolume = await createVolume(c, DATA);
  const dataSnapshots: [string, string] = [
    await createEbsSnapshot(c, dataVolume),
    await createEbsSnapshot(c, dataVolume),
  ];
  const logsVolume = await createVolume(c, LOGS);
  const logsSnapshot = await createEbsSnapshot(c, logsVolume);
  const orphanVolume = await createVolume(c, { team: 'gone' });
  const orphanSnapshot = await createEbsSnapshot(c, orphanVolume);
  await deleteVolume(c, orphanVolume);
  await createDatabase(c, 'legacy', { team: 'old' });
  const legacyCopy = await createDbSnapshot(c, 'legacy', 'legacy-copy', { 'nightshift:source-arn': COPY_OF });
  await deleteDatabase(c, 'legacy');
  return {
    ordersAuto,
    ordersManual,
    billingAuto,
    billingManual,
    dataVolume,
    dataSnapshots,
    logsVolume,
    logsSnapshot,
    orphanVolume,
    orphanSnapshot,
    legacyCopy,
  };
};

describe.runIf(motoTestsEnabled())('snapshot-tags against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SnapshotSeedClients;
  let estate: Estate;

  /** Every snapshot's tags, to show a run changed nothing. */
  const observe = async (): Promise<Record<string, Tags>> => {
    const out: Record<string, Tags> = {};
    for (const arn of [estate.ordersAuto, estate.ordersManual, estate.billingAuto, estate.billingManual]) {
      out[arn] = await rdsTags(aws, arn);
    }
    for (const id of [...estate.dataSnapshots, estate.logsSnapshot, estate.orphanSnapshot]) {
      out[id] = await ebsTags(aws, id);
    }
    return out;
  };
  const mutations = () => proxy.delivered().filter((r) => !/^(Describe|List)/.test(r.operation));

  beforeAll(async () => {
    // moto answers DescribeSnapshots OwnerIds=self with the snapshots of its built-in public AMIs too;
    // AWS does not. Without them the region holds only what a test seeds.
    process.env.MOTO_EC2_LOAD_DEFAULT_AMIS = 'false';
    moto = await startMoto();
    delete process.env.MOTO_EC2_LOAD_DEFAULT_AMIS;
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    aws = snapshotSeedClients(moto.url);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    estate = await seed(aws);
    proxy.requests.length = 0;
  });

  it('tags a manual DB snapshot from its instance, keeping the keys it already has (RDS-EVENT-0042)', async () => {
    const report = await invoke(rdsSnapshotEvent('RDS-EVENT-0042', estate.ordersManual));

    expect(await rdsTags(aws, estate.ordersManual)).toEqual({
      team: 'orders-dba',
      owner: 'ann',
      'cost-center': '42',
    });
    expect(report).toMatchObject({ action: 'tag', dryRun: false });
    expect(report.resources).toEqual([
      {
        arn: estate.ordersManual,
        type: 'rds-snapshot',
        outcome: 'changed',
        detail: "added 2 tags from db orders: cost-center, owner; kept the snapshot's own value of: team",
      },
    ]);
    expect(mutations().map((r) => r.operation)).toEqual(['AddTagsToResource']);
  });

  it('tags an automated DB snapshot from its instance (RDS-EVENT-0091)', async () => {
    const report = await invoke(rdsSnapshotEvent('RDS-EVENT-0091', estate.ordersAuto));

    expect(await rdsTags(aws, estate.ordersAuto)).toEqual(ORDERS);
    expect(row(report, estate.ordersAuto)).toMatchObject({
      outcome: 'changed',
      detail: 'added 3 tags from db orders: cost-center, owner, team',
    });
  });

  it.each([
    { eventId: 'RDS-EVENT-0075', snapshot: 'billingManual' },
    { eventId: 'RDS-EVENT-0169', snapshot: 'billingAuto' },
  ] as const)('tags a cluster snapshot from its cluster ($eventId)', async ({ eventId, snapshot }) => {
    const arn = estate[snapshot];

    const report = await invoke(rdsSnapshotEvent(eventId, arn));

    expect(await rdsTags(aws, arn)).toEqual(BILLING);
    expect(report.resources).toEqual([
      {
        arn,
        type: 'rds-cluster-snapshot',
        outcome: 'changed',
        detail: 'added 2 tags from cluster billing: owner, team',
      },
    ]);
  });

  it('tags an EBS snapshot from its volume, reading ids past the ARN quirk of EBS notifications', async () => {
    const [snapshot] = estate.dataSnapshots;

    const report = await invoke(ebsSnapshotEvent(snapshot, estate.dataVolume, 'succeeded'));

    expect(await ebsTags(aws, snapshot)).toEqual(DATA);
    expect(await ebsTags(aws, estate.dataSnapshots[1])).toEqual({});
    expect(report.resources).toEqual([
      {
        arn: ebsSnapshotArn(snapshot),
        type: 'ebs-snapshot',
        outcome: 'changed',
        detail: `added 2 tags from volume ${estate.dataVolume}: Name, team`,
      },
    ]);
  });

  it('reports an EBS snapshot whose volume was deleted as skipped', async () => {
    const report = await invoke(ebsSnapshotEvent(estate.orphanSnapshot, estate.orphanVolume, 'succeeded'));

    expect(report.resources).toEqual([
      {
        arn: ebsSnapshotArn(estate.orphanSnapshot),
        type: 'ebs-snapshot',
        outcome: 'skipped',
        detail: `volume ${estate.orphanVolume} not found in this region (deleted, or the snapshot is a copy); no tags to copy`,
      },
    ]);
    expect(mutations()).toEqual([]);
  });

  it.each([
    { name: 'manual DB', eventId: 'RDS-EVENT-0042', snapshot: 'ordersManual' },
    { name: 'cluster', eventId: 'RDS-EVENT-0075', snapshot: 'billingManual' },
  ] as const)('changes nothing when the $name snapshot event is delivered again', async (c) => {
    const event = rdsSnapshotEvent(c.eventId, estate[c.snapshot]);
    await invoke(event);
    const once = await observe();
    proxy.requests.length = 0;

    const again = await invoke(event);

    expect(again.summary).toEqual({
      changed: 0,
      planned: 0,
      unchanged: 1,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(again.resources[0]?.detail).toMatch(/^already carries all \d tags of (db orders|cluster billing)/);
    expect(mutations()).toEqual([]);
    expect(await observe()).toEqual(once);
  });

  it('changes nothing when the EBS notification is delivered again', async () => {
    const event = ebsSnapshotEvent(estate.logsSnapshot, estate.logsVolume, 'succeeded');
    await invoke(event);
    proxy.requests.length = 0;

    const again = await invoke(event);

    expect(again.resources).toEqual([
      {
        arn: ebsSnapshotArn(estate.logsSnapshot),
        type: 'ebs-snapshot',
        outcome: 'unchanged',
        detail: `already carries the one tag of volume ${estate.logsVolume}`,
      },
    ]);
    expect(mutations()).toEqual([]);
  });

  it('backfills every snapshot of the region in a sweep, one CreateTags for snapshots of the same volume', async () => {
    const report = await invoke({ action: 'sweep' });

    expect(report.action).toBe('sweep');
    expect(await observe()).toEqual({
      [estate.ordersAuto]: ORDERS,
      [estate.ordersManual]: { ...ORDERS, team: 'orders-dba' },
      [estate.billingAuto]: BILLING,
      [estate.billingManual]: BILLING,
      [estate.dataSnapshots[0]]: DATA,
      [estate.dataSnapshots[1]]: DATA,
      [estate.logsSnapshot]: LOGS,
      [estate.orphanSnapshot]: {},
    });
    expect(row(report, estate.legacyCopy)).toMatchObject({
      type: 'rds-snapshot',
      outcome: 'skipped',
      detail: 'db legacy not found in this region (deleted, or the snapshot is a copy); no tags to copy',
    });
    expect(await rdsTags(aws, estate.legacyCopy)).toEqual({ 'nightshift:source-arn': COPY_OF });
    expect(row(report, ebsSnapshotArn(estate.orphanSnapshot))?.outcome).toBe('skipped');
    expect(report.summary).toMatchObject({ changed: 7, planned: 0, unchanged: 0, failed: 0 });
    expect(report.resources.length).toBe(report.summary.changed + report.summary.skipped);

    const createTags = mutations()
      .filter((r) => r.operation === 'CreateTags')
      .map((r) => {
        const params = new URLSearchParams(r.body);
        return [...params.entries()]
          .filter(([k]) => k.startsWith('ResourceId.'))
          .map(([, v]) => v)
          .sort();
      });
    expect(createTags.sort((a, b) => b.length - a.length)).toEqual([
      [...estate.dataSnapshots].sort(),
      [estate.logsSnapshot],
    ]);
    expect(mutations().filter((r) => r.operation === 'AddTagsToResource')).toHaveLength(4);
  });

  it('changes nothing on a second sweep', async () => {
    await invoke({ action: 'sweep' });
    const once = await observe();
    proxy.requests.length = 0;

    const again = await invoke({ action: 'sweep' });

    expect(again.summary).toMatchObject({ changed: 0, unchanged: 7, failed: 0 });
    expect(mutations()).toEqual([]);
    expect(await observe()).toEqual(once);
  });

  it('reads each kind of resource once in a sweep, and only the named snapshot and its source for an event', async () => {
    await invoke({ action: 'sweep' });
    const sweepReads = proxy
      .delivered()
      .filter((r) => /^(Describe|List)/.test(r.operation))
      .map((r) => r.operation)
      .sort();
    proxy.requests.length = 0;
    await invoke(rdsSnapshotEvent('RDS-EVENT-0042', estate.ordersManual));
    const eventReads = proxy.delivered().filter((r) => /^Describe/.test(r.operation));

    expect(sweepReads).toEqual([
      'DescribeDBClusterSnapshots',
      'DescribeDBClusters',
      'DescribeDBInstances',
      'DescribeDBSnapshots',
      'DescribeSnapshots',
      'DescribeVolumes',
    ]);
    expect(new URLSearchParams(eventReads[0]?.body).get('Filters.Filter.1.Name')).toBe('db-snapshot-id');
    expect(eventReads.map((r) => r.operation)).toEqual(['DescribeDBSnapshots', 'DescribeDBInstances']);
    expect(new URLSearchParams(eventReads[1]?.body).get('Filters.Filter.1.Values.Value.1')).toBe('orders');
  });

  it('never overwrites a key an EBS snapshot already has, even with another value', async () => {
    const snapshot = await createEbsSnapshot(aws, estate.dataVolume, { team: 'backup-team' });

    const report = await invoke(ebsSnapshotEvent(snapshot, estate.dataVolume, 'succeeded'));

    expect(await ebsTags(aws, snapshot)).toEqual({ team: 'backup-team', Name: 'data' });
    expect(report.resources[0]?.detail).toBe(
      `added 1 tag from volume ${estate.dataVolume}: Name; kept the snapshot's own value of: team`,
    );
  });

  it('does nothing for a failed EBS snapshot', async () => {
    const before = await observe();

    const report = await invoke(ebsSnapshotEvent(estate.logsSnapshot, estate.logsVolume, 'failed'));

    expect(report).toEqual({
      action: 'tag',
      dryRun: false,
      summary: { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 },
      resources: [],
    });
    expect(proxy.requests).toEqual([]);
    expect(await observe()).toEqual(before);
  });

  it.each([
    {
      name: 'another RDS event ID (RDS-EVENT-0090, snapshot creating)',
      event: (e: Estate) => rdsSnapshotEvent('RDS-EVENT-0090', e.ordersAuto),
    },
    {
      name: 'another EBS event (copySnapshot)',
      event: (e: Estate) => {
        const base = ebsSnapshotEvent(e.logsSnapshot, e.logsVolume, 'succeeded');
        return { ...base, detail: { ...base.detail, event: 'copySnapshot' } };
      },
    },
  ])('is a quiet no-op for $name', async ({ event }) => {
    const before = await observe();

    const report = await invoke(event(estate));

    expect(report).toMatchObject({ action: 'tag', resources: [] });
    expect(proxy.requests).toEqual([]);
    expect(await observe()).toEqual(before);
  });

  it('plans without changing anything in a dry run', async () => {
    const before = await observe();

    const report = await invoke({ action: 'sweep', dryRun: true });

    expect(report.dryRun).toBe(true);
    expect(report.summary).toMatchObject({ changed: 0, planned: 7, failed: 0 });
    expect(row(report, estate.ordersAuto)?.detail).toBe(
      'add 3 tags from db orders: cost-center, owner, team',
    );
    expect(mutations()).toEqual([]);
    expect(await observe()).toEqual(before);
  });

  it('makes every run a dry run when DRY_RUN=true, events included', async () => {
    const before = await observe();

    const event = parseSnapshotTagsInput(rdsSnapshotEvent('RDS-EVENT-0091', estate.ordersAuto));

    const report = await run(event, ctx, withEnv({ DRY_RUN: 'true' }));

    expect(report).toMatchObject({ dryRun: true, summary: { planned: 1, changed: 0 } });
    expect(mutations()).toEqual([]);
    expect(await observe()).toEqual(before);
  });

  it('copies only TAG_KEYS, never EXCLUDE_TAG_KEYS', async () => {
    const report = await run(
      { action: 'sweep' },
      ctx,
      withEnv({ TAG_KEYS: 'team, owner', EXCLUDE_TAG_KEYS: 'owner' }),
    );

    expect(await rdsTags(aws, estate.ordersAuto)).toEqual({ team: 'shop' });
    expect(await rdsTags(aws, estate.billingManual)).toEqual({ team: 'billing' });
    expect(await ebsTags(aws, estate.dataSnapshots[0])).toEqual({ team: 'shop' });
    expect(row(report, estate.ordersManual)).toMatchObject({
      outcome: 'unchanged',
      detail: "already carries the one tag of db orders; kept the snapshot's own value of: team",
    });
  });

  it('adds no more than the 50-tag limit allows, in key order, and reports the keys left out', async () => {
    // Prepare: a volume with 10 tags the snapshot lacks; the snapshot has 45 of its own
    const volume = await createVolume(aws, manyTags('source', 10));
    const snapshot = await createEbsSnapshot(aws, volume, manyTags('own', 45));
    await createDatabase(aws, 'crowded', manyTags('db', 4));
    // …and an RDS snapshot with 46: snapshot-tags fills it to 48, keeping two free for rds-snapshot-copy
    const rds = await createDbSnapshot(aws, 'crowded', 'crowded-manual', manyTags('own', 46));

    // Act
    const ebs = await invoke(ebsSnapshotEvent(snapshot, volume, 'succeeded'));
    const db = await invoke(rdsSnapshotEvent('RDS-EVENT-0042', rds));

    // Assess: moto enforces the limit on EC2, so CreateTags would have failed had it been exceeded
    const tags = await ebsTags(aws, snapshot);
    expect(Object.keys(tags)).toHaveLength(50);
    expect(
      Object.keys(tags)
        .filter((k) => k.startsWith('source-'))
        .sort(),
    ).toEqual(['source-00', 'source-01', 'source-02', 'source-03', 'source-04']);
    expect(ebs.resources[0]).toMatchObject({
      outcome: 'changed',
      detail: `added 5 tags from volume ${volume}: source-00, source-01, source-02, source-03, source-04; left out (50-tag limit): source-05, source-06, source-07, source-08, source-09`,
    });
    // moto does not enforce the limit on RDS: what was sent is what it stored
    expect(Object.keys(await rdsTags(aws, rds))).toHaveLength(48);
    expect(db.resources[0]?.detail).toBe(
      "added 2 tags from db crowded: db-00, db-01; left out (50-tag limit, 2 kept free for nightshift's copy marks): db-02, db-03",
    );

    // Act again: a full snapshot is skipped, saying what it lacks
    const full = await invoke(ebsSnapshotEvent(snapshot, volume, 'succeeded'));
    expect(full.resources[0]).toMatchObject({
      outcome: 'skipped',
      detail:
        'the snapshot already has 50 tags; left out (50-tag limit): source-05, source-06, source-07, source-08, source-09',
    });
  });

  it.each([
    { event: null, field: '(event)' },
    { event: 'sweep', field: '(event)' },
    { event: {}, field: '(event)' },
    { event: { action: 'tag' }, field: 'action' },
    { event: { action: 'sweep', dryRun: 'yes' }, field: 'dryRun' },
    { event: { action: 'sweep', force: true }, field: 'force' },
    { event: { 'detail-type': 'RDS DB Snapshot Event', source: 'aws.s3', detail: {} }, field: 'source' },
    {
      event: {
        'detail-type': 'RDS DB Instance Event',
        source: 'aws.rds',
        detail: { EventID: 'RDS-EVENT-0042' },
      },
      field: 'detail-type',
    },
    {
      event: { 'detail-type': 'RDS DB Snapshot Event', source: 'aws.rds', detail: {} },
      field: 'detail.EventID',
    },
    {
      event: rdsSnapshotEvent('RDS-EVENT-0042', 'arn:aws:rds:eu-central-1:123456789012:db:orders'),
      field: 'detail.SourceArn',
    },
    {
      event: { ...rdsSnapshotEvent('RDS-EVENT-0091', ''), detail: { EventID: 'RDS-EVENT-0091' } },
      field: 'detail.SourceArn',
    },
    {
      event: ebsSnapshotEvent('snap-; rm -rf /', 'vol-0123456789abcdef0', 'succeeded'),
      field: 'detail.snapshot_id',
    },
    {
      event: {
        'detail-type': 'EBS Snapshot Notification',
        source: 'aws.ec2',
        detail: { event: 'createSnapshot' },
      },
      field: 'detail.result',
    },
  ])('refuses $event before any AWS call, naming $field', async ({ event, field }) => {
    const error = await invoke(event).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ name: 'InputError', field });
    expect((error as Error).message).toContain(field === '(event)' ? 'invalid event' : field);
    expect(proxy.requests).toEqual([]);
  });
});
