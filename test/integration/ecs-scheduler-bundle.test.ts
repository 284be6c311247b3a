/**
 * The built ecs-scheduler bundle (dist/ecs-scheduler/index.mjs, as Lambda imports it) loads the RDS
 * client only on the path that gates a start on an environment's databases (the `databases` chunk), and
 * the EventBridge and Scheduler clients only when a stop warns about scheduled tasks (the
 * `scheduled-tasks` chunk): issue 12's lean bundles. Its reconciles still do both, with its own clients
 * (built on first use), against moto through the recording proxy: everything the proxy sees, the
 * bundle sent.
 *
 * moto's RDS state changes are instant: the proxy reports the database as `starting` where the test
 * needs one, as RDS would for minutes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeClustersCommand } from '@aws-sdk/client-ecs';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import type { Report } from '#shared/report.ts';
import { bundleGraph } from '#scripts/bundle-graph.ts';
import { dynamoCalls, dynamoInBundle, runAt, type Handler } from '#test/support/bundle-run.ts';
import { createGroup, observe, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';
import { createDatabase, snapshotSeedClients } from '#test/support/rds-estate.ts';

const ENTRY = resolve('dist', 'ecs-scheduler', 'index.mjs');
// office-hours (infra/schedules.yml, built into the bundle): 07:00–19:00 Europe/Berlin, Monday to Friday.
const NIGHT = '2026-11-27T18:00:30Z'; // Friday 19:00:30 in Berlin: the transition to stopped
const MORNING = '2026-11-30T06:00:30Z'; // Monday 07:00:30 in Berlin: the transition to running
const LATER = '2026-11-30T06:05:00Z'; // within the 15 minutes' grace of that transition

/** What the cold start of the built bundle parses: the entry and the chunks it imports statically. */
const coldStartText = () =>
  bundleGraph('dist', 'ecs-scheduler')
    .coldStart.files.map((f) => readFileSync(resolve('dist', f), 'utf8'))
    .join('\n');

describe('the built ecs-scheduler bundle leaves the rarer paths’ clients to chunks of their own', () => {
  it('loads RDS, EventBridge and Scheduler only on demand', () => {
    expect(existsSync(ENTRY), `${ENTRY} missing: run npm run build`).toBe(true);
    const graph = bundleGraph('dist', 'ecs-scheduler');
    const cold = coldStartText();

    // and the start gate and the override planner: a reconcile that finds everything as scheduled uses neither
    expect(graph.onDemand.map((c) => c.name)).toEqual(
      expect.arrayContaining(['databases', 'scheduled-tasks', 'environment', 'override']),
    );
    for (const operation of ['DescribeDBInstances', 'DescribeDBClusters', 'ListRules', 'ListSchedules'])
      expect(cold, `${operation} in the cold start`).not.toContain(operation);
    // The ECS and CloudWatch clients every reconcile uses stay in the cold start.
    expect(cold).toContain('DescribeServices');
    expect(cold).toContain('DescribeAlarms');
  });

  it('loads the DynamoDB client (leases, start records, carry-over) only on demand', () => {
    // A reconcile that finds everything as its schedule wants it claims and records nothing (below).
    const dynamo = dynamoInBundle('ecs-scheduler');
    expect(dynamo.coldStart, 'the DynamoDB client in the cold start').toEqual([]);
    expect(dynamo.chunks).not.toEqual([]);
  });
});

describe.runIf(motoTestsEnabled())('the built ecs-scheduler bundle against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let handler: Handler;

  const reconcileAt = (iso: string) => runAt(handler, 'ecs-scheduler', { action: 'reconcile' }, iso);
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
  const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));
  const sent = (operation: string) => proxy.requests.filter((r) => r.operation === operation);

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    // The bundle's clients honour AWS_ENDPOINT_URL: all it sends goes through the proxy.
    useEndpoint(proxy.url);
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    await leaseTable(moto.url);
    aws = seedClients(moto.url);
    await seedEstate(aws, [
      {
        name: 'shop',
        tags: { env: 'stage', 'nightshift:schedule': 'office-hours', 'nightshift:environment': 'shop' },
        services: [
          { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
          { name: 'worker', desired: 2 },
        ],
      },
    ]);
    await createDatabase(snapshotSeedClients(moto.url), 'shop-db', { 'nightshift:environment': 'shop' });
    const cluster = (await aws.ecs.send(new DescribeClustersCommand({ clusters: ['shop'] }))).clusters?.[0];
    const events = new EventBridgeClient({
      endpoint: moto.url,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await events.send(
      new PutRuleCommand({ Name: 'shop-nightly-report', ScheduleExpression: 'cron(0 22 * * ? *)' }),
    );
    await events.send(
      new PutTargetsCommand({
        Rule: 'shop-nightly-report',
        Targets: [
          {
            Id: 'report',
            Arn: cluster?.clusterArn,
            RoleArn: 'arn:aws:iam::123456789012:role/events-ecs',
            EcsParameters: {
              TaskDefinitionArn: 'arn:aws:ecs:eu-central-1:123456789012:task-definition/report:1',
            },
          },
        ],
      }),
    );
    expect(existsSync(ENTRY), `${ENTRY} missing: run npm run build`).toBe(true);
    handler = ((await import(pathToFileURL(ENTRY).href)) as { handler: Handler }).handler;
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });

  it('parks the environment at night warning about its scheduled task, and in the morning starts it only once its database is available', async () => {
    // Prepare
    const before = await observe(aws, ['shop'], []);

    // Act: the evening transition, then the morning's, while shop-db still starts, then once it is available
    proxy.requests.length = 0;
    const night = await reconcileAt(NIGHT);
    const nightDynamo = dynamoCalls(proxy);
    const parked = await observe(aws, ['shop'], []);
    starting(true);
    proxy.requests.length = 0;
    const early = await reconcileAt(MORNING);
    const stillParked = await observe(aws, ['shop'], []);
    const gateReads = sent('DescribeDBInstances').length;
    starting(false);
    const later = await reconcileAt(LATER);

    // Assess: the stop parked both services and named the rule (EventBridge, from its chunk)
    expect(night.summary).toMatchObject({ changed: 2, failed: 0 });
    expect(parked.services['shop/web']?.desired).toBe(0);
    expect(row(night, 'rule/shop-nightly-report')).toMatchObject({
      type: 'eventbridge-rule',
      outcome: 'skipped',
    });
    expect(row(night, 'rule/shop-nightly-report')?.detail).toMatch(
      /^scheduled task shop-nightly-report targets cluster shop, parked by this stop/,
    );
    // The start waited for the database (RDS, from its chunk), naming it; nothing started
    expect(gateReads).toBeGreaterThan(0);
    expect(early.summary).toMatchObject({ waiting: 2, changed: 0, failed: 0 });
    expect(row(early, 'service/shop/web')?.detail).toMatch(
      /^waiting for shop-db: starting \(environment shop: databases start first\)/,
    );
    expect(stillParked.services['shop/web']?.desired).toBe(0);
    // Once available, everything came back exactly
    expect(later.summary).toMatchObject({ changed: 2, waiting: 0, failed: 0 });
    expect(await observe(aws, ['shop'], [])).toEqual(before);
    // The stop leased the cluster in the lease table (the DynamoDB client, from its chunk)
    expect(nightDynamo).toEqual(expect.arrayContaining(['PutItem', 'DeleteItem']));
  });

  // After the test above: shop runs, as office-hours wants it on a Monday at 11:00 in Berlin, and so
  // does a standalone group on office-hours (its start record is read only when the schedule wants it
  // stopped: a running group nightshift did not stop needs none).
  it('sends nothing to the lease table in a reconcile that finds everything as its schedule wants it', async () => {
    // Prepare: moto 5.2.1 answers DescribeCapacityProviders without names with a 500 (AWS: every
    // capacity provider of the account, 10 a page): the proxy answers that call with none
    proxy.stub('DescribeCapacityProviders', (request) =>
      request.body.includes('capacityProviders')
        ? undefined
        : { contentType: 'application/x-amz-json-1.1', body: JSON.stringify({ capacityProviders: [] }) },
    );
    // moto stamps CreatedTime with the real clock, which may be after this test's Monday: made old, or
    // the group would be in its grace period
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);
    await createGroup(aws, {
      name: 'batch-workers',
      min: 0,
      max: 4,
      desired: 2,
      tags: { 'nightshift:schedule': 'office-hours' },
    });
    const before = await observe(aws, ['shop'], ['batch-workers']);
    proxy.requests.length = 0;

    // Act
    const report = await reconcileAt('2026-11-30T10:00:00Z');

    // Assess: nothing changed, nothing claimed or recorded, so the DynamoDB chunk was not needed
    expect(report.summary).toMatchObject({ changed: 0, failed: 0, undone: 0 });
    expect(row(report, 'service/shop/web')?.outcome).toBe('unchanged');
    expect(row(report, 'autoScalingGroupName/batch-workers')).toMatchObject({ outcome: 'unchanged' });
    expect(await observe(aws, ['shop'], ['batch-workers'])).toEqual(before);
    expect(proxy.requests.map((r) => r.service)).toContain('ecs');
    expect(dynamoCalls(proxy)).toEqual([]);
  });
});
