/**
 * `nightshift stop|start --db / --db-cluster` in --local mode: the real rds-scheduler in-process against
 * moto; `--tag` alone still goes to ecs-scheduler.
 */
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

describe.runIf(motoTestsEnabled())('nightshift stop|start --db against moto', () => {
  let moto: Moto;
  let rds: RDSClient;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    rds = new RDSClient({
      endpoint: moto.url,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
  });
  afterAll(() => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'shop-db',
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        AllocatedStorage: 20,
        Tags: [{ Key: 'team', Value: 'shop' }],
      }),
    );
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: 'reports',
        Engine: 'aurora-postgresql',
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
      }),
    );
  });
  const states = async () => [
    (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'shop-db' }))).DBInstances?.[0]
      ?.DBInstanceStatus,
    (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'reports' }))).DBClusters?.[0]
      ?.Status,
  ];

  it('stops and starts a DB instance and a cluster through rds-scheduler', async () => {
    // Act
    const stop = await cli([
      'stop',
      '--db',
      'shop-db',
      '--db-cluster',
      'reports',
      '--local',
      '--yes',
      '--json',
    ]);
    const stopped = await states();
    const start = await cli([
      'start',
      '--db',
      'shop-db',
      '--db-cluster',
      'reports',
      '--force',
      '--local',
      '--yes',
      '--json',
    ]);

    // Assess
    expect(stop.code).toBe(0);
    expect(JSON.parse(stop.out)).toMatchObject({ action: 'stop', summary: { changed: 2 } });
    expect(stopped).toEqual(['stopped', 'stopped']);
    expect(start.code).toBe(0);
    expect(JSON.parse(start.out)).toMatchObject({ action: 'start', summary: { changed: 2 } });
    expect(await states()).toEqual(['available', 'available']);
  });

  it('narrows --db with --tag, refuses --db with --cluster, and sends --tag alone to ecs-scheduler', async () => {
    // Act
    const narrowed = await cli([
      'stop',
      '--db',
      'shop-db',
      '--tag',
      'team=other',
      '--local',
      '--yes',
      '--json',
    ]);
    const mixed = await cli(['stop', '--db', 'shop-db', '--cluster', 'stage', '--local', '--yes']);
    const ecsOnly = await cli(['stop', '--tag', 'team=shop', '--local', '--yes', '--dry-run']);

    // Assess
    expect(JSON.parse(narrowed.out).resources).toEqual([]);
    expect(mixed.code).not.toBe(0);
    expect(mixed.err).toContain('run them as two commands');
    expect(ecsOnly.out + ecsOnly.err).toContain('ecs-scheduler');
    expect(await states()).toEqual(['available', 'available']);
  });
});
