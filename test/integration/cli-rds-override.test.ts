/**
 * `nightshift wake|sleep --db / --db-cluster` and the databases in `nightshift status`, end to end in
 * --local mode: the real rds-scheduler in-process against moto (through a recording proxy), with the
 * stage's schedules (infra/schedules.yml). The clock is the real one, so assertions hold at any time of
 * day: the override decides while it lasts. moto stamps a database's creation time with the real clock,
 * which would keep every new database in the reconcile's grace period (SCHEDULE_GRACE_MINUTES): the proxy
 * dates them to January, as for databases that have run for months.
 */
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  ListTagsForResourceCommand,
  RDSClient,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import { desiredState } from '#shared/schedules.ts';
import { cli } from '#test/support/cli.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const OVERRIDE = 'nightshift:override';
const SCHEDULED = { 'nightshift:schedule': 'office-hours' };
const dbArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`;
const clusterArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:${id}`;
const toTags = (tags: Record<string, string> = {}) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

interface Row {
  resource: string;
  detail: string;
}

describe.runIf(motoTestsEnabled())(
  'nightshift wake|sleep --db and status with databases, --local against moto',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let rds: RDSClient;

    const createInstance = (id: string, tags: Record<string, string> = {}, cluster?: string) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: id,
          DBInstanceClass: cluster ? 'db.r6g.large' : 'db.t3.micro',
          Engine: cluster ? 'aurora-postgresql' : 'postgres',
          ...(cluster
            ? { DBClusterIdentifier: cluster }
            : { MasterUsername: 'nightshift', MasterUserPassword: 'not-a-secret-1', AllocatedStorage: 20 }),
          Tags: toTags(tags),
        }),
      );
    const createAurora = async (id: string, tags: Record<string, string> = {}, member = true) => {
      await rds.send(
        new CreateDBClusterCommand({
          DBClusterIdentifier: id,
          Engine: 'aurora-postgresql',
          MasterUsername: 'nightshift',
          MasterUserPassword: 'not-a-secret-1',
          Tags: toTags(tags),
        }),
      );
      if (member) await createInstance(`${id}-1`, {}, id);
    };
    const tagsOf = async (arn: string): Promise<Record<string, string>> =>
      Object.fromEntries(
        ((await rds.send(new ListTagsForResourceCommand({ ResourceName: arn }))).TagList ?? []).map((t) => [
          t.Key ?? '',
          t.Value ?? '',
        ]),
      );
    const states = async () => [
      (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'shop-db' }))).DBInstances?.[0]
        ?.DBInstanceStatus,
      (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'reports' }))).DBClusters?.[0]
        ?.Status,
    ];

    const january = (field: string) => (body: string) =>
      body.replace(
        new RegExp(`<${field}>[^<]*</${field}>`, 'g'),
        `<${field}>2026-01-05T08:00:00Z</${field}>`,
      );

    beforeAll(async () => {
      moto = await startMoto();
      proxy = await startProxy(moto.url);
      useEndpoint(proxy.url);
      rds = new RDSClient({
        endpoint: moto.url,
        region: REGION,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      proxy.rewrite('DescribeDBInstances', january('InstanceCreateTime'));
      proxy.rewrite('DescribeDBClusters', january('ClusterCreateTime'));
    }, 90_000);
    afterAll(async () => {
      await proxy?.close();
      moto?.stop();
    });
    beforeEach(async () => {
      await moto.reset();
      proxy.requests.length = 0;
    });

    it('wakes a parked instance and Aurora cluster for two hours, shows it in status, and cancels it', async () => {
      // Prepare: on office-hours, parked by hand
      await createInstance('shop-db', SCHEDULED);
      await createAurora('reports', SCHEDULED);
      expect(
        (await cli(['stop', '--db', 'shop-db', '--db-cluster', 'reports', '--local', '--yes'])).code,
      ).toBe(0);

      // Act
      const started = Date.now();
      const wake = await cli([
        'wake',
        '--db',
        'shop-db',
        '--db-cluster',
        'reports',
        '--for',
        '2h',
        '--reason',
        'demo for ACME; "urgent"',
        '--local',
        '--yes',
        '--json',
      ]);
      const status = await cli(['status', '--local']);
      const statusJson = JSON.parse((await cli(['status', '--local', '--json'])).out) as {
        databases: Row[];
        parked: Row[];
      };

      // Assess: recorded with the caller's identity (moto's STS user) and a clean reason; started at once
      expect(wake.code).toBe(0);
      expect(JSON.parse(wake.out)).toMatchObject({ action: 'wake', summary: { changed: 2, failed: 0 } });
      for (const arn of [dbArn('shop-db'), clusterArn('reports')]) {
        const tag = (await tagsOf(arn))[OVERRIDE] ?? '';
        expect(tag).toMatch(/^state=running until=\S+Z by=user\/moto why=demo for ACME urgent$/);
        const until = Date.parse(tag.match(/until=(\S+)/)?.[1] ?? '');
        expect(until - started).toBeGreaterThanOrEqual(2 * 3_600_000 - 1000);
        expect(until - started).toBeLessThan(2 * 3_600_000 + 60_000);
      }
      expect(await states()).toEqual(['available', 'available']);
      expect(status.out).toContain('On a schedule (databases) (2):');
      expect(statusJson.databases).toEqual([
        {
          resource: 'DB cluster reports',
          detail: expect.stringMatching(
            /^office-hours: desired running, actual available \(writer reports-1 available\); override by user\/moto \(why: demo for ACME urgent\) until \w{3} \d{2}:\d{2} Europe\/Berlin; next (start|stop) \w{3} \d{2}:\d{2} Europe\/Berlin$/,
          ),
        },
        {
          resource: 'DB instance shop-db',
          detail: expect.stringMatching(
            /^office-hours: desired running, actual available; override by user\/moto/,
          ),
        },
      ]);
      expect(statusJson.parked.filter((r) => r.resource.startsWith('DB '))).toEqual([]);

      // Act: cancel
      const cancel = await cli([
        'wake',
        '--cancel',
        '--db',
        'shop-db',
        '--db-cluster',
        'reports',
        '--local',
        '--yes',
        '--json',
      ]);

      // Assess: the tags are gone; the databases are where their schedule wants them now
      expect(cancel.code).toBe(0);
      expect(cancel.out).toContain('back to its schedule now');
      expect((await tagsOf(dbArn('shop-db')))[OVERRIDE]).toBeUndefined();
      expect((await tagsOf(clusterArn('reports')))[OVERRIDE]).toBeUndefined();
      const wanted = desiredState(bundledSchedules().get('office-hours')!, new Date());
      const state = wanted === 'stopped' ? 'stopped' : 'available';
      expect(await states()).toEqual([state, state]);
    });

    it('plans a sleep in a dry run, refuses --db with --cluster or --service, a cap overrun and a wake without an end, and never sleeps production', async () => {
      // Prepare
      await createInstance('shop-db', SCHEDULED);
      await createInstance('prod-db', { ...SCHEDULED, environment: 'production' });
      await createAurora('reports', SCHEDULED);

      // Act
      const dry = await cli(['sleep', '--db', 'shop-db', '--for', '1h', '--local', '--dry-run', '--json']);
      const mixed = await cli([
        'wake',
        '--db',
        'shop-db',
        '--cluster',
        'stage',
        '--for',
        '1h',
        '--local',
        '--yes',
      ]);
      const mixedService = await cli([
        'sleep',
        '--db-cluster',
        'reports',
        '--service',
        'web',
        '--local',
        '--yes',
      ]);
      const long = await cli(['wake', '--db', 'shop-db', '--for', '30h', '--local', '--yes']);
      const endless = await cli(['wake', '--db-cluster', 'reports', '--local', '--yes', '--json']);
      const prod = await cli([
        'sleep',
        '--db',
        'prod-db',
        '--db',
        'reports-1',
        '--for',
        '1h',
        '--local',
        '--yes',
        '--json',
      ]);

      // Assess: the dry run planned and changed nothing
      expect(dry.code).toBe(0);
      expect(JSON.parse(dry.out)).toMatchObject({
        action: 'sleep',
        dryRun: true,
        resources: [{ arn: dbArn('shop-db'), outcome: 'planned' }],
      });
      // Mixed flags are refused, naming the flag
      expect(mixed.code).toBe(2);
      expect(mixed.err).toContain(
        '--db and --db-cluster act on databases (rds-scheduler), --cluster, --service and --group on ECS',
      );
      expect(mixedService.code).toBe(2);
      expect(mixedService.err).toContain('run them as two commands');
      // The cap and a wake without an end, before anything is written
      expect(long.code).not.toBe(0);
      expect(long.err).toMatch(/at most 24 h \(OVERRIDE_MAX_HOURS/);
      expect(endless.code).toBe(2);
      expect(JSON.parse(endless.out).error.message).toMatch(
        /field "for": wake needs for \(3h\) or until \(22:00\)/,
      );
      // Production and a member named alone are skipped with the reason
      const skipped = JSON.parse(prod.out) as {
        resources: { arn: string; outcome: string; detail: string }[];
      };
      expect(skipped.resources).toEqual([
        expect.objectContaining({
          arn: dbArn('prod-db'),
          outcome: 'skipped',
          detail: expect.stringMatching(/never woken or slept/),
        }),
        expect.objectContaining({
          arn: dbArn('reports-1'),
          outcome: 'skipped',
          detail: expect.stringMatching(/^member of cluster reports/),
        }),
      ]);
      for (const arn of [dbArn('shop-db'), dbArn('prod-db'), clusterArn('reports')])
        expect((await tagsOf(arn))[OVERRIDE], arn).toBeUndefined();
      expect(proxy.requests.filter((r) => /^(AddTagsToResource|Stop|Start)/.test(r.operation))).toEqual([]);
      expect(await states()).toEqual(['available', 'available']);
    });

    it('shows every database past the first page of DescribeDBInstances and DescribeDBClusters (100 each), leaving out another stage’s', async () => {
      // Prepare: 102 instances and 101 clusters (no members); the last of each on a schedule or parked,
      // a day ago by the real clock (the CLI's): a fixed date would turn into AWS's 7-day start a week on
      const since = new Date(Date.now() - 24 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      for (let i = 0; i < 102; i += 1) await createInstance(`db-${String(i).padStart(3, '0')}`);
      for (let i = 0; i < 101; i += 1) await createAurora(`cl-${String(i).padStart(3, '0')}`, {}, false);
      await createInstance('zz-scheduled', SCHEDULED);
      await createInstance('zz-parked', { 'nightshift:stopped': `at=${since} by=nightshift` });
      await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: 'zz-parked' }));
      await createInstance('zz-other-stage', { ...SCHEDULED, 'nightshift:stage': 'prod' });
      await createInstance('zz-this-stage', { ...SCHEDULED, 'nightshift:stage': 'dev' });
      await createAurora('zz-reports', SCHEDULED, false);
      await createAurora('zz-parked-cluster', { 'nightshift:stopped': `at=${since} by=nightshift` }, false);
      // moto answers DescribeDBClusters in one page whatever MaxRecords says: the proxy pages it as RDS
      // does (at most MaxRecords, then a Marker for the rest). moto pages DescribeDBInstances itself.
      let second = false;
      proxy.before('DescribeDBClusters', async (request) => {
        second = request.body.includes('Marker=');
      });
      proxy.rewrite('DescribeDBClusters', (raw) => {
        const body = january('ClusterCreateTime')(raw);
        const clusters = body.match(/<DBCluster>[\s\S]*?<\/DBCluster>/g) ?? [];
        const page = second ? clusters.slice(100) : clusters.slice(0, 100);
        return body.replace(
          /<DBClusters>[\s\S]*<\/DBClusters>/,
          `<DBClusters>${page.join('')}</DBClusters>${second || clusters.length <= 100 ? '' : '<Marker>page-2</Marker>'}`,
        );
      });
      proxy.requests.length = 0;

      // Act
      const status = await cli(['status', '--local', '--json']);
      proxy.before('DescribeDBClusters', undefined);
      proxy.rewrite('DescribeDBClusters', january('ClusterCreateTime'));

      // Assess: every page read, 100 a call
      expect(status.code).toBe(0);
      const json = JSON.parse(status.out) as { databases: Row[]; parked: Row[]; notes: string[] };
      for (const op of ['DescribeDBInstances', 'DescribeDBClusters']) {
        const calls = proxy.requests
          .filter((r) => r.operation === op)
          .map((r) => new URLSearchParams(r.body));
        expect(calls.length, op).toBeGreaterThanOrEqual(2);
        expect(
          calls.every((p) => p.get('MaxRecords') === '100'),
          op,
        ).toBe(true);
        expect(
          calls.slice(1).every((p) => (p.get('Marker') ?? '') !== ''),
          op,
        ).toBe(true);
      }
      expect(json.databases.map((r) => r.resource)).toEqual([
        'DB cluster zz-reports',
        'DB instance zz-scheduled',
        'DB instance zz-this-stage',
      ]);
      expect(json.parked).toEqual([
        {
          resource: 'DB cluster zz-parked-cluster',
          detail: expect.stringMatching(
            new RegExp(
              `^stopped by nightshift since ${since} \\(.+ ago\\), but available again \\(someone started it, not AWS's 7-day start\\): stopped again only by an enforced schedule or a stop; under enforced: false it runs until the next transition$`,
            ),
          ),
        },
        {
          resource: 'DB instance zz-parked',
          detail: expect.stringMatching(
            new RegExp(
              `^stopped by nightshift since ${since} \\(.+ ago\\); now stopped; comes back with nightshift start --db zz-parked \\(or its schedule\\)$`,
            ),
          ),
        },
      ]);
    });
  },
);
