import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AddTagsToResourceCommand,
  CreateDBClusterCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { handler, run, type Deps } from '#functions/rds-snapshot-copy/handler.ts';
import { CopyConfig } from '#functions/rds-snapshot-copy/config.ts';
import { rdsClient } from '#shared/aws/rds.ts';
import { parseEnv } from '#shared/env.ts';
import type { Report } from '#shared/report.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const SOURCE = 'eu-central-1';
const TARGET = 'eu-west-1';
const ARN = `arn:aws:rds:${SOURCE}:123456789012`;
const DAY = 86_400_000;
const ctx = runContext();

const sampleEvent = (file: string, sourceArn: string) => {
  const event = JSON.parse(readFileSync(`events/aws.rds/samples/${file}`, 'utf8'));
  event.detail.SourceArn = sourceArn;
  event.resources = [sourceArn];
  return event;
};

describe.runIf(motoTestsEnabled())('rds-snapshot-copy against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let src: RDSClient;
  let dst: RDSClient;
  let clock: Date;

  const deps = (env: Record<string, string> = {}): Deps => ({
    clientFor: (region) => rdsClient(region),
    config: parseEnv(CopyConfig, { AWS_REGION: SOURCE, TARGET_REGIONS: TARGET, ...env }),
    now: () => clock,
  });
  const copy = (input: unknown, env?: Record<string, string>) => run(input as never, ctx, deps(env));
  const copiesIn = async (client = dst) => {
    const instances = (await client.send(new DescribeDBSnapshotsCommand({}))).DBSnapshots ?? [];
    const clusters = (await client.send(new DescribeDBClusterSnapshotsCommand({}))).DBClusterSnapshots ?? [];
    return [
      ...instances.map((s) => ({
        id: s.DBSnapshotIdentifier,
        kms: s.KmsKeyId,
        tags: s.TagList,
        db: s.DBInstanceIdentifier,
      })),
      ...clusters.map((s) => ({
        id: s.DBClusterSnapshotIdentifier,
        kms: s.KmsKeyId,
        tags: s.TagList,
        db: s.DBClusterIdentifier,
      })),
    ].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  };

  /** A database `orders` (tagged) with no automated snapshots: moto 5.2.1 cannot copy those by ARN. */
  const seedDatabase = async (id = 'orders', tags = [{ Key: 'team', Value: 'shop' }], encrypted = false) => {
    await src.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'app',
        MasterUserPassword: 'correct-horse-battery',
        AllocatedStorage: 20,
        Tags: tags,
        StorageEncrypted: encrypted,
        ...(encrypted && { KmsKeyId: 'alias/aws/rds' }),
      }),
    );
    const automated =
      (await src.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'automated' }))).DBSnapshots ?? [];
    for (const s of automated)
      await src.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: s.DBSnapshotIdentifier }));
  };
  const snapshot = async (db: string, id: string, tags = [{ Key: 'purpose', Value: 'before-migration' }]) =>
    (
      await src.send(
        new CreateDBSnapshotCommand({ DBInstanceIdentifier: db, DBSnapshotIdentifier: id, Tags: tags }),
      )
    ).DBSnapshot?.DBSnapshotArn ?? '';

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url, SOURCE);
    process.env.TARGET_REGIONS = TARGET;
    const config = {
      endpoint: moto.url,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    src = new RDSClient({ ...config, region: SOURCE });
    dst = new RDSClient({ ...config, region: TARGET });
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    clock = new Date();
    proxy.requests.length = 0;
  });

  it('copies a new manual snapshot into the target region with its tags and the source ARN', async () => {
    // Prepare
    await seedDatabase();
    const arn = await snapshot('orders', 'orders-before-migration');

    // Act
    const report = await copy({
      action: 'event',
      event: sampleEvent('db-snapshot-manual-created.json', arn),
    });

    // Assess
    expect(report.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(report.resources[0]).toMatchObject({
      arn: `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-before-migration`,
      type: 'rds-snapshot',
      outcome: 'changed',
      detail:
        'copy orders-before-migration to eu-west-1 as orders-before-migration with 3 tags (copy started)',
    });
    expect(await copiesIn()).toEqual([
      {
        id: 'orders-before-migration',
        db: 'orders',
        kms: undefined,
        tags: [
          { Key: 'purpose', Value: 'before-migration' },
          { Key: 'nightshift:source-arn', Value: arn },
          {
            Key: 'nightshift:source-time',
            Value: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
          },
        ],
      },
    ]);
  });

  it('counts a re-delivered event as done, not failed, and copies nothing twice', async () => {
    await seedDatabase();
    const arn = await snapshot('orders', 'orders-nightly');
    const event = sampleEvent('db-snapshot-manual-created.json', arn);
    await handler(event, lambdaContext('rds-snapshot-copy'));

    const again = await copy({ action: 'event', event });

    expect(again.summary).toEqual({ changed: 0, planned: 0, unchanged: 1, skipped: 0, undone: 0, failed: 0 });
    expect(again.resources[0]?.detail).toBe('already copied to eu-west-1 as orders-nightly (available)');
    expect((await copiesIn()).map((c) => c.id)).toEqual(['orders-nightly']);
  });

  it('copies a cluster snapshot from its event', async () => {
    await src.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: 'billing',
        Engine: 'aurora-postgresql',
        MasterUsername: 'app',
        MasterUserPassword: 'correct-horse-battery',
      }),
    );
    const arn =
      (
        await src.send(
          new CreateDBClusterSnapshotCommand({
            DBClusterIdentifier: 'billing',
            DBClusterSnapshotIdentifier: 'billing-before-upgrade',
            Tags: [{ Key: 'owner', Value: 'finance' }],
          }),
        )
      ).DBClusterSnapshot?.DBClusterSnapshotArn ?? '';

    const report = await copy({
      action: 'event',
      event: sampleEvent('cluster-snapshot-manual-created.json', arn),
    });

    expect(report.resources[0]).toMatchObject({ type: 'rds-cluster-snapshot', outcome: 'changed' });
    expect(await copiesIn()).toEqual([
      {
        id: 'billing-before-upgrade',
        db: 'billing',
        kms: expect.anything(),
        tags: [
          { Key: 'owner', Value: 'finance' },
          { Key: 'nightshift:source-arn', Value: arn },
          { Key: 'nightshift:source-time', Value: expect.stringMatching(/Z$/) },
        ],
      },
    ]);
  });

  it('ignores RDS events other than "snapshot created", quietly and without a call', async () => {
    const report = await copy({
      action: 'event',
      event: JSON.parse(readFileSync('events/aws.rds/samples/db-snapshot-creating.json', 'utf8')),
    });

    expect(report).toEqual({
      action: 'copy',
      dryRun: false,
      summary: { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, failed: 0 },
      resources: [],
    });
    expect(proxy.requests).toEqual([]);
  });

  it('copies an encrypted snapshot only with the key configured for the region, naming KMS otherwise', async () => {
    // Prepare
    await seedDatabase('secure', [], true);
    const arn = await snapshot('secure', 'secure-nightly');
    const kms = new KMSClient({
      region: TARGET,
      endpoint: moto.url,
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    });
    const keyArn =
      (await kms.send(new CreateKeyCommand({ Description: 'nightshift copies' }))).KeyMetadata?.Arn ?? '';

    // Act
    const without = await copy({ action: 'copy', snapshot: arn });
    const afterWithout = await copiesIn();
    const attemptsWithout = proxy.requests.filter((r) => r.operation === 'CopyDBSnapshot').length;
    const withKey = await copy({ action: 'copy', snapshot: arn }, { TARGET_KMS_KEYS: `${TARGET}=${keyArn}` });

    // Assess
    expect(without.resources[0]).toMatchObject({
      outcome: 'failed',
      detail:
        'encrypted snapshot, and no KMS key is configured for eu-west-1 in TARGET_KMS_KEYS; nothing attempted',
    });
    expect(afterWithout).toEqual([]);
    expect(attemptsWithout).toBe(0);
    expect(withKey.resources[0]).toMatchObject({ outcome: 'changed' });
    expect(withKey.resources[0]?.detail).toContain(`encrypted with KMS key ${keyArn}`);
    expect(await copiesIn()).toMatchObject([{ id: 'secure-nightly', kms: keyArn }]);
    const sent = new URLSearchParams(proxy.delivered().find((r) => r.operation === 'CopyDBSnapshot')?.body);
    expect(sent.get('KmsKeyId')).toBe(keyArn);
    expect(sent.get('SourceDBSnapshotIdentifier')).toBe(arn);
  });

  it('sweeps: copies what has no copy, never copies a copy, and respects SOURCE_TAGS', async () => {
    // Prepare: orders (team=shop) and scratch (team=lab) each with a snapshot; a copy from elsewhere in the source region
    await seedDatabase('orders', [{ Key: 'team', Value: 'shop' }]);
    await seedDatabase('scratch', [{ Key: 'team', Value: 'lab' }]);
    await snapshot('orders', 'orders-a');
    await snapshot('scratch', 'scratch-a');
    await snapshot('orders', 'imported', [
      { Key: 'nightshift:source-arn', Value: 'arn:aws:rds:us-east-1:123456789012:snapshot:x' },
    ]);

    // Act
    const report = await copy({ action: 'sweep' }, { SOURCE_TAGS: 'team=shop' });
    const again = await copy({ action: 'sweep' }, { SOURCE_TAGS: 'team=shop' });

    // Assess
    expect(report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`)).toEqual([
      'orders-a changed',
    ]);
    expect((await copiesIn()).map((c) => c.id)).toEqual(['orders-a']);
    expect(again.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`)).toEqual([
      'orders-a unchanged',
    ]);
  });

  it('prunes copies past RETENTION_DAYS but keeps the newest of each database, and never re-copies old sources', async () => {
    // Prepare: two snapshots of orders copied today; a snapshot in the target region nightshift did not make
    await seedDatabase();
    await snapshot('orders', 'orders-monday');
    await new Promise((r) => setTimeout(r, 1100));
    await snapshot('orders', 'orders-tuesday');
    await copy({ action: 'sweep' });
    await dst.send(
      new AddTagsToResourceCommand({
        ResourceName: `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-monday`,
        Tags: [{ Key: 'note', Value: 'copied' }],
      }),
    );
    const foreign = new RDSClient({
      region: TARGET,
      endpoint: moto.url,
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    });
    await foreign.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'reports',
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'app',
        MasterUserPassword: 'correct-horse-battery',
        AllocatedStorage: 20,
      }),
    );
    await foreign.send(
      new CreateDBSnapshotCommand({ DBInstanceIdentifier: 'reports', DBSnapshotIdentifier: 'reports-keep' }),
    );

    // Act: ten days later
    clock = new Date(Date.now() + 10 * DAY);
    const sweep = await copy({ action: 'sweep' });
    const next = await copy({ action: 'sweep' });

    // Assess
    // orders-monday's source is past retention and not the newest: a sweep passes it by quietly
    expect(sweep.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`)).toEqual([
      'orders-tuesday unchanged',
      'orders-monday changed',
    ]);
    expect(sweep.resources[1]?.detail).toMatch(
      /^delete copy orders-monday in eu-west-1 \(of arn:aws:rds:eu-central-1:123456789012:snapshot:orders-monday, taken .*\): 10 days old, past RETENTION_DAYS 7; newest copy orders-tuesday kept$/,
    );
    expect((await copiesIn()).map((c) => c.id).filter((id) => !id?.startsWith('rds:'))).toEqual([
      'orders-tuesday',
      'reports-keep',
    ]);
    expect(next.summary).toMatchObject({ changed: 0, failed: 0 });
  });

  it('plans without changing anything in a dry run', async () => {
    await seedDatabase();
    await snapshot('orders', 'orders-a');

    const report = await copy({ action: 'sweep', dryRun: true });

    expect(report).toMatchObject({ dryRun: true, summary: { planned: 1, changed: 0 } });
    expect(await copiesIn()).toEqual([]);
    expect(proxy.delivered().filter((r) => /^(Copy|Delete)/.test(r.operation))).toEqual([]);
  });

  it.each([
    { event: { action: 'copy' }, field: 'snapshot' },
    { event: { action: 'copy', snapshot: 'orders-a' }, field: 'snapshot' },
    { event: { action: 'copy', snapshot: `${ARN}:snapshot:a`, regions: ['mars-1'] }, field: 'regions.0' },
    { event: { action: 'sweep', force: true }, field: 'force' },
    { event: { action: 'prune' }, field: 'action' },
    {
      event: {
        'detail-type': 'RDS DB Snapshot Event',
        source: 'aws.rds',
        detail: { EventID: 'RDS-EVENT-0042' },
      },
      field: 'detail.SourceArn',
    },
  ])('refuses $event before any AWS call, naming $field', async ({ event, field }) => {
    const error = await handler(event, lambdaContext('rds-snapshot-copy')).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ name: 'InputError', field });
    expect(proxy.requests).toEqual([]);
  });
});

describe('rds-snapshot-copy configuration', () => {
  it('names every bad variable at once', () => {
    expect(() =>
      parseEnv(CopyConfig, { AWS_REGION: SOURCE, TARGET_KMS_KEYS: 'eu-west-1', RETENTION_DAYS: '-1' }),
    ).toThrow(
      'invalid configuration: TARGET_REGIONS: required: a comma list of regions, e.g. eu-west-1,us-east-1; TARGET_KMS_KEYS: "eu-west-1" is not region=key; RETENTION_DAYS: expected a whole number of days, 0 or more',
    );
  });

  it('defaults RETENTION_DAYS to 7 and reads region=key pairs', () => {
    expect(
      parseEnv(CopyConfig, {
        AWS_REGION: SOURCE,
        TARGET_REGIONS: 'eu-west-1, us-east-1',
        TARGET_KMS_KEYS: 'eu-west-1=alias/backup,us-east-1=arn:aws:kms:us-east-1:123456789012:key/abc',
      }),
    ).toMatchObject({
      TARGET_REGIONS: ['eu-west-1', 'us-east-1'],
      TARGET_KMS_KEYS: {
        'eu-west-1': 'alias/backup',
        'us-east-1': 'arn:aws:kms:us-east-1:123456789012:key/abc',
      },
      RETENTION_DAYS: 7,
      SOURCE_TAGS: [],
      DRY_RUN: false,
    });
  });
});

export type { Report };
