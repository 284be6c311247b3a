/**
 * Ctrl-C on a `--local` run: the built `nightshift` bin in its own process against moto (behind the
 * test proxy, which holds the run mid-stop), sent SIGINT or SIGTERM while it holds the cluster's lease.
 * It must release its leases (not block the cluster for the lease's lifetime) and exit 130 or 143.
 * The lease a local run takes lasts as long as a deployed run's: the function's own timeout from
 * serverless.yml (300 s for ecs-scheduler) plus a minute, not Lambda's 900 s.
 */
import { spawn } from 'node:child_process';
import { GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DescribeClustersCommand } from '@aws-sdk/client-ecs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dynamoClient } from '#test/support/leases.ts';
import { seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { motoTestsEnabled, startMoto, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const TABLE = 'nightshift-dev-leases';

describe.runIf(motoTestsEnabled())('nightshift --local interrupted', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let cluster: string;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    aws = seedClients(moto.url);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    await seedEstate(aws);
    const described = await aws.ecs.send(new DescribeClustersCommand({ clusters: ['stage'] }));
    cluster = described.clusters?.[0]?.clusterArn ?? '';
  });

  /**
   * Starts `nightshift stop --cluster stage --local --yes` and resolves once it is stopping a service
   * (its UpdateService held at the proxy), with the process and a function that lets the call through.
   */
  const stopHeldMidRun = async () => {
    let reached!: () => void;
    const atUpdate = new Promise<void>((resolve) => (reached = resolve));
    let letGo!: () => void;
    const released = new Promise<void>((resolve) => (letGo = resolve));
    proxy.before('UpdateService', async () => {
      reached();
      await released;
    });
    const child = spawn(
      process.execPath,
      ['dist/cli/nightshift.mjs', '--stage', 'dev', 'stop', '--cluster', 'stage', '--local', '--yes'],
      {
        env: {
          ...process.env,
          AWS_ENDPOINT_URL: proxy.url,
          AWS_REGION: 'eu-central-1',
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await Promise.race([
      atUpdate,
      exited.then((e) => {
        throw new Error(`the CLI ended before stopping anything (${JSON.stringify(e)}): ${stderr}`);
      }),
    ]);
    return { child, exited, stderr: () => stderr, letGo };
  };

  const lease = async () =>
    (
      await dynamoClient(moto.url).send(
        new GetItemCommand({ TableName: TABLE, Key: { scope: { S: cluster } }, ConsistentRead: true }),
      )
    ).Item;

  it('releases the leases it holds on Ctrl-C and exits 130; they lasted the function’s own timeout', async () => {
    // Prepare: the stop holds the cluster's lease and is waiting on UpdateService
    const run = await stopHeldMidRun();
    try {
      const held = await lease();
      expect(held?.holder?.S).toMatch(/^ecs-scheduler run .* \(local:[^)]+\)$/);
      const lifetime = Number(held?.expiresAt?.N) - Number(held?.acquiredAt?.N);
      expect(lifetime).toBeGreaterThan(300_000 - 10_000);
      expect(lifetime).toBeLessThanOrEqual(360_000);

      // Act
      run.child.kill('SIGINT');
      const exit = await run.exited;

      // Assess
      expect(exit).toEqual({ code: 130, signal: null });
      expect(run.stderr()).toContain('nightshift: SIGINT: stopped; released the leases this local run held.');
      expect(await lease()).toBeUndefined();
      const items = await dynamoClient(moto.url).send(new ScanCommand({ TableName: TABLE }));
      expect(items.Items?.filter((i) => !i.scope?.S?.startsWith('carryover#'))).toEqual([]);
    } finally {
      run.letGo();
      proxy.before('UpdateService', undefined);
    }
  });

  it('releases them on SIGTERM too, and exits 143', async () => {
    const run = await stopHeldMidRun();
    try {
      expect(await lease()).toBeDefined();

      run.child.kill('SIGTERM');
      const exit = await run.exited;

      expect(exit).toEqual({ code: 143, signal: null });
      expect(await lease()).toBeUndefined();
    } finally {
      run.letGo();
      proxy.before('UpdateService', undefined);
    }
  });
});
