/**
 * Ctrl-C on a `--local` run: the built `nightshift` bin in its own process against moto (behind the
 * test proxy, which holds the run mid-stop), sent SIGINT or SIGTERM while it holds the cluster's lease.
 * It must keep its leases while a call it sent (UpdateService) may still land, release them once its
 * run returned (not block the cluster for the lease's lifetime), and exit 130 or 143; a second signal
 * releases them at once.
 * The lease a local run takes lasts as long as a deployed run's: the function's own timeout from
 * serverless.yml (300 s for ecs-scheduler) plus a minute, not Lambda's 900 s.
 */
import { spawn } from 'node:child_process';
import { GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DescribeClustersCommand, DescribeServicesCommand } from '@aws-sdk/client-ecs';
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
  const stopHeldMidRun = async (extra: string[] = []) => {
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
      [
        'dist/cli/nightshift.mjs',
        '--stage',
        'dev',
        'stop',
        '--cluster',
        'stage',
        '--local',
        '--yes',
        ...extra,
      ],
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
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await Promise.race([
      atUpdate,
      exited.then((e) => {
        throw new Error(`the CLI ended before stopping anything (${JSON.stringify(e)}): ${stderr}`);
      }),
    ]);
    return { child, exited, stderr: () => stderr, stdout: () => stdout, letGo };
  };

  const lease = async () =>
    (
      await dynamoClient(moto.url).send(
        new GetItemCommand({ TableName: TABLE, Key: { scope: { S: cluster } }, ConsistentRead: true }),
      )
    ).Item;

  /** Resolves once the CLI says it is waiting for the calls it sent, or rejects if it exits first. */
  const waiting = async (run: Awaited<ReturnType<typeof stopHeldMidRun>>) => {
    let said!: () => void;
    const saidIt = new Promise<void>((resolve) => (said = resolve));
    const check = () => {
      if (run.stderr().includes('keeps its leases until the calls it already sent have landed')) said();
    };
    run.child.stderr?.on('data', check);
    check();
    await Promise.race([
      saidIt,
      run.exited.then((e) => {
        throw new Error(
          `the CLI exited without waiting for its calls (${JSON.stringify(e)}): ${run.stderr()}`,
        );
      }),
    ]);
  };

  const service = async (name: string) =>
    (await aws.ecs.send(new DescribeServicesCommand({ cluster: 'stage', services: [name] }))).services?.[0]
      ?.desiredCount;

  it('on Ctrl-C keeps its leases while a sent UpdateService is in flight, releases them once it landed, and exits 130', async () => {
    // Prepare: the stop holds the cluster's lease and is waiting on UpdateService
    const run = await stopHeldMidRun();
    try {
      const held = await lease();
      expect(held?.holder?.S).toMatch(/^ecs-scheduler run .* \(local:[^)]+\)$/);
      const lifetime = Number(held?.expiresAt?.N) - Number(held?.acquiredAt?.N);
      expect(lifetime).toBeGreaterThan(300_000 - 10_000);
      expect(lifetime).toBeLessThanOrEqual(360_000);

      // Act: Ctrl-C while the UpdateService is held at the proxy
      run.child.kill('SIGINT');
      await waiting(run);

      // Assess: the mutation may still land, so no other run may take the cluster yet
      expect(await lease()).toEqual(held);
      expect(run.child.exitCode).toBeNull();

      // Act: the UpdateService lands
      run.letGo();
      const exit = await run.exited;

      // Assess
      expect(exit).toEqual({ code: 130, signal: null });
      expect(run.stderr()).toContain(
        'nightshift: SIGINT: stopped; the local run returned and released its leases; what it changed so far stays changed',
      );
      // The held UpdateService (web's or worker's, whichever came first) landed.
      expect([await service('web'), await service('worker')]).toContain(0);
      expect(await lease()).toBeUndefined();
      const items = await dynamoClient(moto.url).send(new ScanCommand({ TableName: TABLE }));
      expect(items.Items?.filter((i) => !i.scope?.S?.startsWith('carryover#'))).toEqual([]);
    } finally {
      run.letGo();
      proxy.before('UpdateService', undefined);
    }
  });

  it('does the same on SIGTERM, and exits 143 with the report on stdout under --json', async () => {
    const run = await stopHeldMidRun(['--json']);
    try {
      const held = await lease();
      expect(held).toBeDefined();

      run.child.kill('SIGTERM');
      await waiting(run);
      expect(await lease()).toEqual(held);
      run.letGo();
      const exit = await run.exited;

      expect(exit).toEqual({ code: 143, signal: null });
      expect(await lease()).toBeUndefined();
      // One document: the report of the run it let finish, with what it did not start undone.
      expect(JSON.parse(run.stdout())).toMatchObject({ action: 'stop', dryRun: false });
    } finally {
      run.letGo();
      proxy.before('UpdateService', undefined);
    }
  });

  it('releases the leases at once on a second signal, prints the error document under --json, and exits 130', async () => {
    const run = await stopHeldMidRun(['--json']);
    try {
      run.child.kill('SIGINT');
      await waiting(run);
      expect(await lease()).toBeDefined();

      // Act: a second Ctrl-C while the UpdateService is still held
      run.child.kill('SIGINT');
      const exit = await run.exited;

      // Assess
      expect(exit).toEqual({ code: 130, signal: null });
      expect(await lease()).toBeUndefined();
      expect(run.stderr()).toContain(
        'nightshift: SIGINT: stopped at once (second signal); released the leases this local run held, although a call it had sent may still land.',
      );
      expect(JSON.parse(run.stdout())).toMatchObject({ error: { type: 'Interrupted', exitCode: 130 } });
    } finally {
      run.letGo();
      proxy.before('UpdateService', undefined);
    }
  });
});
