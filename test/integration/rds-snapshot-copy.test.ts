import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CopyDBSnapshotCommand,
  CreateDBClusterCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  ListTagsForResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { handler, run, type Deps } from '#functions/rds-snapshot-copy/handler.ts';
import { CopyConfig } from '#functions/rds-snapshot-copy/config.ts';
import { SERVICE } from '#functions/rds-snapshot-copy/metrics.ts';
import { parseCopyInput } from '#events/rds-snapshot-copy/schema.ts';
import { rdsClient } from '#shared/aws/rds.ts';
import { parseEnv } from '#shared/env.ts';
import { RunFailedError } from '#shared/errors.ts';
import { withOps } from '#shared/handler.ts';
import type { Report } from '#shared/report.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import { emulateCopySources } from '#test/support/rds-estate.ts';

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
const rows = (report: Report) => report.resources.map((r) => `${r.arn.split(':').pop()} ${r.outcome}`);
/** Rows with the region of their resource: the source's (marks) or the target's (copies, deletions). */
const placed = (report: Report) =>
  report.resources.map((r) => `${r.arn.split(':')[3]} ${r.arn.split(':').pop()} ${r.outcome}`);

describe.runIf(motoTestsEnabled())('rds-snapshot-copy against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let src: RDSClient;
  let dst: RDSClient;
  let clock: Date;
  let emulation: ReturnType<typeof emulateCopySources>;

  const deps = (env: Record<string, string> = {}): Deps => ({
    clientFor: (region) => rdsClient(region),
    config: parseEnv(CopyConfig, { AWS_REGION: SOURCE, TARGET_REGIONS: TARGET, ...env }),
    now: () => clock,
  });
  const copy = (input: unknown, env?: Record<string, string>) => run(input as never, ctx, deps(env));
  const tagsOf = async (client: RDSClient, arn: string) =>
    (await client.send(new ListTagsForResourceCommand({ ResourceName: arn }))).TagList ?? [];
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
  const ids = async (client = dst) =>
    (await copiesIn(client)).map((c) => c.id).filter((id) => !id?.startsWith('rds:'));

  const createDb = (
    client: RDSClient,
    id: string,
    tags: { Key: string; Value: string }[],
    encrypted = false,
  ) =>
    client.send(
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
  /** A database `orders` (tagged) with no automated snapshots: moto 5.2.1 cannot copy those by ARN. */
  const seedDatabase = async (id = 'orders', tags = [{ Key: 'team', Value: 'shop' }], encrypted = false) => {
    await createDb(src, id, tags, encrypted);
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
  const sent = (operation: string) =>
    proxy
      .delivered()
      .filter((r) => r.operation === operation)
      .map((r) => Object.fromEntries(new URLSearchParams(r.body)));

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
    // moto 5.2.1 leaves SourceDBSnapshotIdentifier / SourceDBClusterSnapshotArn out of copies: the proxy
    // adds them as AWS does (test/support/rds-estate.ts), for the copies that pass through it.
    emulation = emulateCopySources(proxy);
  });
  afterEach(() => emulation.stop());

  it('marks a new manual snapshot and copies it into the target region, where the copy inherits every tag', async () => {
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
        'copy orders-before-migration to eu-west-1 as orders-before-migration with its tags; first marks the source with nightshift:copy-source and nightshift:source-time, which the copy inherits (copy started)',
    });
    const ours = [
      { Key: 'purpose', Value: 'before-migration' },
      { Key: 'nightshift:copy-source', Value: arn },
      { Key: 'nightshift:source-time', Value: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
    ];
    expect(await tagsOf(src, arn)).toEqual(ours);
    expect(await copiesIn()).toEqual([
      { id: 'orders-before-migration', db: 'orders', kms: undefined, tags: ours },
    ]);
    // The role writes no tag in the destination region: the copy inherits them (CopyTags, no Tags).
    expect(sent('CopyDBSnapshot')).toEqual([
      expect.objectContaining({ CopyTags: 'true', SourceDBSnapshotIdentifier: arn }),
    ]);
    expect(Object.keys(sent('CopyDBSnapshot')[0] ?? {}).filter((k) => k.startsWith('Tags'))).toEqual([]);
    expect(sent('AddTagsToResource').map((r) => r.ResourceName)).toEqual([arn]);
  });

  it('counts a re-delivered event as done, not failed, and copies nothing twice', async () => {
    await seedDatabase();
    const arn = await snapshot('orders', 'orders-nightly');
    const event = sampleEvent('db-snapshot-manual-created.json', arn);
    await handler(event, lambdaContext('rds-snapshot-copy'));

    const again = await copy({ action: 'event', event });

    expect(again.summary).toEqual({
      changed: 0,
      planned: 0,
      unchanged: 1,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(again.resources[0]?.detail).toBe('already copied to eu-west-1 as orders-nightly (available)');
    expect(await ids()).toEqual(['orders-nightly']);
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
    const again = await copy({
      action: 'event',
      event: sampleEvent('cluster-snapshot-manual-created.json', arn),
    });

    expect(report.resources[0]).toMatchObject({ type: 'rds-cluster-snapshot', outcome: 'changed' });
    expect(again.resources[0]).toMatchObject({ outcome: 'unchanged' });
    expect(await copiesIn()).toEqual([
      {
        id: 'billing-before-upgrade',
        db: 'billing',
        kms: expect.anything(),
        tags: [
          { Key: 'owner', Value: 'finance' },
          { Key: 'nightshift:copy-source', Value: arn },
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
      summary: { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 },
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
    const attemptsWithout = proxy.requests.filter((r) => /^(Copy|AddTags)/.test(r.operation)).length;
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
    expect(sent('CopyDBSnapshot')).toEqual([
      expect.objectContaining({ KmsKeyId: keyArn, SourceDBSnapshotIdentifier: arn }),
    ]);
  });

  it('fails a run whose every row is "encrypted, no key" with a RunFailedError that carries the reason', async () => {
    // Prepare: withOps around the run, as deployed, with no TARGET_KMS_KEYS
    await seedDatabase('secure', [], true);
    await snapshot('secure', 'secure-a');
    await snapshot('secure', 'secure-b');
    const deployed = withOps(SERVICE, parseCopyInput, (input, c) => run(input, c, deps()));

    // Act
    const error = await deployed({ action: 'sweep' }, lambdaContext('rds-snapshot-copy')).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(RunFailedError);
    expect((error as Error).message).toBe(
      'all 2 resource(s) failed; first error: encrypted snapshot, and no KMS key is configured for eu-west-1 in TARGET_KMS_KEYS; nothing attempted',
    );
    expect(await copiesIn()).toEqual([]);
  });

  it('sweeps: copies what has no copy, never copies a real copy, copies a snapshot that only carries the tag, and respects SOURCE_TAGS', async () => {
    // Prepare: orders (team=shop) and scratch (team=lab) each with a snapshot; a copy another deployment
    // made from us-east-1 (RDS records its source); a snapshot that only carries a nightshift tag
    await seedDatabase('orders', [{ Key: 'team', Value: 'shop' }]);
    await seedDatabase('scratch', [{ Key: 'team', Value: 'lab' }]);
    await snapshot('orders', 'orders-a');
    await snapshot('scratch', 'scratch-a');
    await snapshot('orders', 'tagged', [
      { Key: 'nightshift:source-arn', Value: 'arn:aws:rds:us-east-1:123456789012:snapshot:x' },
    ]);
    const virginia = new RDSClient({
      region: 'us-east-1',
      endpoint: proxy.url,
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    });
    await createDb(virginia, 'orders', []);
    const remote =
      (
        await virginia.send(
          new CreateDBSnapshotCommand({ DBInstanceIdentifier: 'orders', DBSnapshotIdentifier: 'imported' }),
        )
      ).DBSnapshot?.DBSnapshotArn ?? '';
    await new RDSClient({
      region: SOURCE,
      endpoint: proxy.url,
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    }).send(
      new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: remote,
        TargetDBSnapshotIdentifier: 'imported',
        Tags: [{ Key: 'nightshift:source-arn', Value: remote }],
      }),
    );

    // Act
    const report = await copy({ action: 'sweep' }, { SOURCE_TAGS: 'team=shop' });
    const again = await copy({ action: 'sweep' }, { SOURCE_TAGS: 'team=shop' });

    // Assess: the snapshot that only carried the legacy tag is marked afresh with its own ARN, never
    // with nightshift:source-arn; once both are copied, the next sweep removes their marks
    expect(rows(report).sort()).toEqual(['orders-a changed', 'tagged changed']);
    expect(await ids()).toEqual(['orders-a', 'tagged']);
    expect(await tagsOf(dst, `arn:aws:rds:${TARGET}:123456789012:snapshot:tagged`)).toEqual([
      { Key: 'nightshift:copy-source', Value: `${ARN}:snapshot:tagged` },
      { Key: 'nightshift:source-time', Value: expect.stringMatching(/Z$/) },
    ]);
    expect(placed(again).sort()).toEqual([
      'eu-central-1 orders-a changed',
      'eu-central-1 tagged changed',
      'eu-west-1 orders-a unchanged',
      'eu-west-1 tagged unchanged',
    ]);
    expect(await tagsOf(src, `${ARN}:snapshot:tagged`)).toEqual([]);
    expect(await tagsOf(src, `${ARN}:snapshot:orders-a`)).toEqual([
      { Key: 'purpose', Value: 'before-migration' },
    ]);
  });

  it('prunes copies past RETENTION_DAYS but keeps the newest of each database, and never re-copies old sources', async () => {
    // Prepare: two snapshots of orders copied today; a snapshot in the target region nightshift did not make
    await seedDatabase();
    await snapshot('orders', 'orders-monday');
    await new Promise((r) => setTimeout(r, 1100));
    await snapshot('orders', 'orders-tuesday');
    await copy({ action: 'sweep' });
    await createDb(dst, 'reports', []);
    await dst.send(
      new CreateDBSnapshotCommand({ DBInstanceIdentifier: 'reports', DBSnapshotIdentifier: 'reports-keep' }),
    );

    // Act: ten days later
    clock = new Date(Date.now() + 10 * DAY);
    const sweep = await copy({ action: 'sweep' });
    const next = await copy({ action: 'sweep' });

    // Assess
    // orders-monday's source is past retention and not the newest: a sweep passes it by quietly; both
    // sources lose their marks (both are copied)
    expect(placed(sweep)).toEqual([
      'eu-west-1 orders-tuesday unchanged',
      'eu-central-1 orders-monday changed',
      'eu-central-1 orders-tuesday changed',
      'eu-west-1 orders-monday changed',
    ]);
    expect(sweep.resources[3]?.detail).toMatch(
      /^delete copy orders-monday in eu-west-1 \(of arn:aws:rds:eu-central-1:123456789012:snapshot:orders-monday, taken .*\): 10d old, past RETENTION_DAYS 7; newest copy orders-tuesday kept$/,
    );
    expect(await ids()).toEqual(['orders-tuesday', 'reports-keep']);
    expect(next.summary).toMatchObject({ changed: 0, failed: 0 });
  });

  it('never prunes an audit copy an operator made of a nightshift copy inside the DR region with its tags, and says why', async () => {
    // Prepare: monday and tuesday copied; an operator keeps monday's copy for an audit, copy-tags on
    await seedDatabase();
    await snapshot('orders', 'orders-monday');
    await new Promise((r) => setTimeout(r, 1100));
    await snapshot('orders', 'orders-tuesday');
    await copy({ action: 'sweep' });
    await dst.send(
      new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: 'orders-monday',
        TargetDBSnapshotIdentifier: 'orders-monday-audit',
        CopyTags: true,
      }),
    );
    expect(
      (await tagsOf(dst, `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-monday-audit`)).map(
        (t) => t.Key,
      ),
    ).toContain('nightshift:copy-source');

    // Act: ten days later
    clock = new Date(Date.now() + 10 * DAY);
    const sweep = await copy({ action: 'sweep' });

    // Assess
    expect(placed(sweep).filter((r) => r.startsWith(TARGET))).toEqual([
      'eu-west-1 orders-tuesday unchanged',
      'eu-west-1 orders-monday changed',
      'eu-west-1 orders-monday-audit skipped',
    ]);
    expect(sweep.resources.find((r) => r.arn.endsWith(':orders-monday-audit'))?.detail).toBe(
      'carries nightshift:copy-source but is not a copy this deployment made: RDS records no source for it (no SourceDBSnapshotIdentifier): it was not copied across Regions; never pruned',
    );
    expect(await ids()).toEqual(['orders-monday-audit', 'orders-tuesday']);
  });

  it('never prunes the snapshots of a database restored from a copy with CopyTagsToSnapshot', async () => {
    // Prepare: a DR test restored orders-monday's copy in eu-west-1; the database carries the copy's
    // tags and copies them onto every snapshot it takes
    await seedDatabase();
    await snapshot('orders', 'orders-monday');
    await copy({ action: 'sweep' });
    const copyTags = (await tagsOf(dst, `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-monday`)).map(
      ({ Key, Value }) => ({ Key: Key ?? '', Value: Value ?? '' }),
    );
    await dst.send(
      new RestoreDBInstanceFromDBSnapshotCommand({
        DBInstanceIdentifier: 'orders-drill',
        DBSnapshotIdentifier: 'orders-monday',
        CopyTagsToSnapshot: true,
        Tags: copyTags,
      }),
    );
    for (const id of ['orders-drill-1', 'orders-drill-2'])
      await dst.send(
        new CreateDBSnapshotCommand({ DBInstanceIdentifier: 'orders-drill', DBSnapshotIdentifier: id }),
      );
    expect(
      (await tagsOf(dst, `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-drill-1`)).map((t) => t.Key),
    ).toEqual(expect.arrayContaining(['nightshift:copy-source', 'nightshift:source-time']));

    // Act: ten days later
    clock = new Date(Date.now() + 10 * DAY);
    const sweep = await copy({ action: 'sweep' });

    // Assess: nothing changed in the DR region (the source only lost its marks)
    expect(placed(sweep).filter((r) => r.endsWith(' changed'))).toEqual([
      'eu-central-1 orders-monday changed',
    ]);
    // …including the automated snapshot RDS took of the restored database
    expect(rows(sweep).filter((r) => r.includes('drill'))).toEqual([
      expect.stringMatching(/^orders-drill-\d{4}(-\d\d){4} skipped$/),
      'orders-drill-1 skipped',
      'orders-drill-2 skipped',
    ]);
    expect(await ids()).toEqual(['orders-drill-1', 'orders-drill-2', 'orders-monday']);
  });

  it('plans without changing anything in a dry run, and applies only the plan that was confirmed', async () => {
    // Prepare
    await seedDatabase();
    const arn = await snapshot('orders', 'orders-a');

    // Act
    const dry = await copy({ action: 'sweep', dryRun: true });
    const untouched = await copiesIn();
    const sourceTags = await tagsOf(src, arn);
    const mutations = proxy
      .delivered()
      .filter((r) => /^(Copy|Delete|AddTags|RemoveTags)/.test(r.operation)).length;
    await snapshot('orders', 'orders-b');
    const stale = await copy({ action: 'sweep', planDigest: dry.planDigest });
    const afterStale = await copiesIn();
    const fresh = await copy({ action: 'sweep', dryRun: true });
    const applied = await copy({ action: 'sweep', planDigest: fresh.planDigest });

    // Assess
    expect(dry).toMatchObject({ dryRun: true, summary: { planned: 1, changed: 0 } });
    expect(dry.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(untouched).toEqual([]);
    expect(mutations).toBe(0);
    expect(sourceTags).toEqual([{ Key: 'purpose', Value: 'before-migration' }]);
    expect(stale.summary).toMatchObject({ changed: 0, skipped: 2 });
    expect(stale.resources[0]?.detail).toMatch(/^the plan changed since it was confirmed/);
    expect(afterStale).toEqual([]);
    expect(applied.summary).toMatchObject({ changed: 2 });
  });

  it('two sweeps at once copy each snapshot once, and the one that loses the race counts the copy as done', async () => {
    // Prepare: hold the first sweep's copy until the second sweep has made it
    await seedDatabase();
    await snapshot('orders', 'orders-a');
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    proxy.before('CopyDBSnapshot', async () => {
      if (!first) return;
      first = false;
      await held;
    });

    // Act
    const a = copy({ action: 'sweep' });
    await new Promise((r) => setTimeout(r, 300));
    const b = await copy({ action: 'sweep' });
    release();
    const aReport = await a;
    proxy.before('CopyDBSnapshot', undefined);

    // Assess
    expect(rows(b)).toEqual(['orders-a changed']);
    expect(rows(aReport)).toEqual(['orders-a unchanged']);
    expect(aReport.resources[0]?.detail).toBe('already copied to eu-west-1 as orders-a (available)');
    expect(await ids()).toEqual(['orders-a']);
  });

  /** What a person does in the console: copy a source into the DR region with "copy tags" on. */
  const personCopies = (sourceArn: string, targetId: string) =>
    new RDSClient({
      region: TARGET,
      endpoint: proxy.url,
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    }).send(
      new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: sourceArn,
        TargetDBSnapshotIdentifier: targetId,
        CopyTags: true,
      }),
    );
  /** Snapshots an earlier nightshift takes for its copies: anything carrying nightshift:source-arn. */
  const takenByEarlierVersions = async (client: RDSClient) =>
    (await copiesIn(client))
      .filter((c) => c.tags?.some((t) => t.Key === 'nightshift:source-arn'))
      .map((c) => c.id);

  it('marks sources and copies with nightshift:copy-source, which earlier versions never act on, and retires the legacy key', async () => {
    // Prepare: an earlier version marked orders-monday with nightshift:source-arn and copied it with its
    // tags; orders-tuesday is new. An older nightshift copying INTO eu-central-1 (another stage or region, a
    // rollback) deletes every snapshot there that carries nightshift:source-arn.
    await seedDatabase();
    const monday = await snapshot('orders', 'orders-monday', [
      { Key: 'nightshift:source-arn', Value: `${ARN}:snapshot:orders-monday` },
      { Key: 'nightshift:source-time', Value: '2026-11-01T03:00:00Z' },
    ]);
    await personCopies(monday, 'orders-monday');
    await new Promise((r) => setTimeout(r, 1100));
    await snapshot('orders', 'orders-tuesday');

    // Act
    const first = await copy({ action: 'sweep' });
    const afterFirst = await takenByEarlierVersions(src);
    const second = await copy({ action: 'sweep' });

    // Assess: no source ever carries the legacy key again, and the new copy does not carry it either
    expect(afterFirst).toEqual([]);
    expect(await takenByEarlierVersions(src)).toEqual([]);
    expect(placed(first)).toEqual([
      'eu-west-1 orders-tuesday changed',
      'eu-west-1 orders-monday unchanged',
      'eu-central-1 orders-monday changed',
    ]);
    expect(first.resources[2]?.detail).toBe(
      'remove nightshift:source-time, nightshift:source-arn from orders-monday: it has an available copy in every target region (eu-west-1); ' +
        "copies people make of it later are then never taken for nightshift's",
    );
    expect(
      (await tagsOf(dst, `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-tuesday`)).map((t) => t.Key),
    ).toEqual(['purpose', 'nightshift:copy-source', 'nightshift:source-time']);
    // The legacy copy is still recognised as nightshift's: the source it names is unmarked, it is not re-copied
    expect(await takenByEarlierVersions(dst)).toEqual(['orders-monday']);
    expect(placed(second).filter((r) => r.endsWith(' changed'))).toEqual([
      'eu-central-1 orders-tuesday changed',
    ]);
  });

  it("never adopts a person's later copy of a source: unmarked once copied, and the natural identifier taken while marked", async () => {
    // Prepare: monday copied by a sweep
    await seedDatabase();
    const monday = await snapshot('orders', 'orders-monday');
    await copy({ action: 'sweep' });

    // Act: while the source is marked, a person's copy under its natural identifier collides with ours
    const collided = await personCopies(monday, 'orders-monday').then(
      () => undefined,
      (e: unknown) => (e as Error).name,
    );
    // The next sweep removes the marks; the person copies it again for an audit, with its tags
    const unmarking = await copy({ action: 'sweep' });
    await personCopies(monday, 'orders-monday-audit');
    // Ten days later tuesday is the newest and copied, monday's copy is pruned, and the person copies
    // monday again under the identifier nightshift derives, now free
    await new Promise((r) => setTimeout(r, 1100));
    await snapshot('orders', 'orders-tuesday');
    clock = new Date(Date.now() + 10 * DAY);
    await copy({ action: 'sweep' });
    const pruning = await copy({ action: 'sweep' });
    await personCopies(monday, 'orders-monday');
    const later = await copy({ action: 'sweep' });

    // Assess
    expect(collided).toMatch(/AlreadyExists/);
    expect(placed(unmarking)).toEqual([
      'eu-west-1 orders-monday unchanged',
      'eu-central-1 orders-monday changed',
    ]);
    expect(await tagsOf(src, monday)).toEqual([{ Key: 'purpose', Value: 'before-migration' }]);
    expect(placed(pruning).filter((r) => r.startsWith(TARGET))).toEqual([
      'eu-west-1 orders-tuesday unchanged',
      'eu-west-1 orders-monday changed',
    ]);
    expect(placed(later).filter((r) => r.startsWith(TARGET))).toEqual(['eu-west-1 orders-tuesday unchanged']);
    expect(await ids()).toEqual(['orders-monday', 'orders-monday-audit', 'orders-tuesday']);
    expect(
      (await tagsOf(dst, `arn:aws:rds:${TARGET}:123456789012:snapshot:orders-monday`)).map((t) => t.Key),
    ).toEqual(['purpose']);
  });

  it.each([
    { event: { action: 'copy' }, field: 'snapshot' },
    { event: { action: 'copy', snapshot: 'orders-a' }, field: 'snapshot' },
    { event: { action: 'copy', snapshot: `${ARN}:snapshot:a`, regions: ['mars-1'] }, field: 'regions.0' },
    { event: { action: 'sweep', force: true }, field: 'force' },
    { event: { action: 'sweep', planDigest: 'abc' }, field: 'planDigest' },
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
      parseEnv(CopyConfig, {
        AWS_REGION: SOURCE,
        TARGET_KMS_KEYS: 'eu-west-1',
        TARGET_OPTION_GROUPS: 'tde',
        RETENTION_DAYS: '-1',
      }),
    ).toThrow(
      'invalid configuration: TARGET_REGIONS: required: a comma list of regions, e.g. eu-west-1,us-east-1; TARGET_KMS_KEYS: "eu-west-1" is not region=key; TARGET_OPTION_GROUPS: "tde" is not region=option group or source-option-group@region=option group; RETENTION_DAYS: expected a whole number of days, 0 or more',
    );
  });

  it('reads source-option-group@region=name pairs next to region=name, and refuses bad ones at cold start', () => {
    const parse = (groups: string) =>
      parseEnv(CopyConfig, { AWS_REGION: SOURCE, TARGET_REGIONS: TARGET, TARGET_OPTION_GROUPS: groups });

    expect(
      parse(
        'eu-west-1=any-dr, Oracle-EE-19-TDE@eu-west-1=oracle-tde-dr,sqlserver-se-tde@eu-west-1=mssql-tde-dr',
      ).TARGET_OPTION_GROUPS,
    ).toEqual({
      'eu-west-1': 'any-dr',
      'oracle-ee-19-tde@eu-west-1': 'oracle-tde-dr',
      'sqlserver-se-tde@eu-west-1': 'mssql-tde-dr',
    });
    expect(() => parse('oracle@eu-west=x')).toThrow(
      'TARGET_OPTION_GROUPS: "oracle@eu-west=x" is not region=option group or source-option-group@region=option group',
    );
    expect(() => parse('ora_cle@eu-west-1=x,eu-west-1=dr--1')).toThrow(
      'TARGET_OPTION_GROUPS: "ora_cle@eu-west-1=x" names an option group that is not 1-255 letters, digits or single hyphens starting with a letter; TARGET_OPTION_GROUPS: "eu-west-1=dr--1" names an option group',
    );
    expect(() => parse('oracle@eu-west-1=a,ORACLE@eu-west-1=b')).toThrow(
      'TARGET_OPTION_GROUPS: "ORACLE@eu-west-1=b" repeats oracle@eu-west-1 with another option group (a)',
    );
  });

  it('defaults RETENTION_DAYS to 7 and reads region=key and region=option-group pairs', () => {
    expect(
      parseEnv(CopyConfig, {
        AWS_REGION: SOURCE,
        TARGET_REGIONS: 'eu-west-1, us-east-1',
        TARGET_KMS_KEYS: 'eu-west-1=alias/backup,us-east-1=arn:aws:kms:us-east-1:123456789012:key/abc',
        TARGET_OPTION_GROUPS: 'eu-west-1=oracle-ee-19-tde',
      }),
    ).toMatchObject({
      TARGET_REGIONS: ['eu-west-1', 'us-east-1'],
      TARGET_KMS_KEYS: {
        'eu-west-1': 'alias/backup',
        'us-east-1': 'arn:aws:kms:us-east-1:123456789012:key/abc',
      },
      TARGET_OPTION_GROUPS: { 'eu-west-1': 'oracle-ee-19-tde' },
      RETENTION_DAYS: 7,
      SOURCE_TAGS: [],
      DRY_RUN: false,
    });
  });
});
