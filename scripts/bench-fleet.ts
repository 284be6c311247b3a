/**
 * `npm run bench:fleet`: a fleet run against a paced local AWS. 20 targets (10 accounts × 2 regions) of
 * 50 ECS services each, in moto behind a proxy that adds 50 ms to every call and throttles with a token
 * bucket per account, region and API, as AWS throttles. Prints the wall time of one target alone, of the
 * fleet (stop, then start), what 20 targets one after another would take, and the calls per service.
 *
 * The throttle is a model, not AWS's published numbers (ECS publishes none per action): reads (Describe*,
 * List*) a bucket of 50 refilled at 20 a second, changes a bucket of 10 refilled at 10 a second.
 */
import type { Context } from 'aws-lambda';
import { runFleetLocal } from '#shared/fleet/local.ts';
import type { Target } from '#shared/fleet/target.ts';
import type { Report } from '#shared/report.ts';
import { seedClients, seedEstate, type ClusterSpec } from '#test/support/ecs-estate.ts';
import { accountCredentials } from '#test/support/fleet-estate.ts';
import { dynamoClient, leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { startMoto, useEndpoint } from '#test/support/moto.ts';
import { startProxy, type RecordedRequest } from '#test/support/proxy.ts';
import { stsGate } from '#test/support/sts-gate.ts';

const ACCOUNTS = Array.from({ length: 10 }, (_, i) => `1000000000${String(i + 10)}`);
const REGIONS = ['eu-central-1', 'eu-west-1'];
const SERVICES = 50;
const LATENCY_MS = 50;
const EXTERNAL_ID = 'bench-external-id';
const READ = { capacity: 50, refillPerSecond: 20 };
const WRITE = { capacity: 10, refillPerSecond: 10 };

const estate: ClusterSpec[] = [
  {
    name: 'stage',
    services: Array.from({ length: SERVICES }, (_, i) => ({ name: `svc-${i}`, desired: 2 })),
  },
];

const context = (): Context =>
  ({
    functionName: 'ecs-scheduler',
    invokedFunctionArn: 'local:ecs-scheduler',
    awsRequestId: `bench-${Math.random().toString(16).slice(2)}`,
    getRemainingTimeInMillis: () => 900_000,
  }) as unknown as Context;

// Quiet: the handler's logger and metrics read these when its module loads (imported below).
Object.assign(process.env, {
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_DEV: 'false',
});
const { handler } = await import('#functions/ecs-scheduler/handler.ts');

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const main = async () => {
  const moto = await startMoto();
  const proxy = await startProxy(moto.url);
  try {
    useEndpoint(proxy.url);
    await leaseTable(moto.url);
    const gate = stsGate(
      proxy,
      ACCOUNTS.map((account) => ({ account, stage: 'bench', externalId: EXTERNAL_ID })),
    );
    process.stdout.write(`seeding ${ACCOUNTS.length * REGIONS.length * SERVICES} services in moto… `);
    for (const account of ACCOUNTS) {
      const credentials = await accountCredentials(moto.url, account);
      for (const region of REGIONS) await seedEstate(seedClients(moto.url, region, credentials), estate);
    }
    console.log('done');
    Object.assign(process.env, {
      LEASE_TABLE: TEST_LEASE_TABLE,
      NIGHTSHIFT_STAGE: 'bench',
      SPOKE_EXTERNAL_ID: EXTERNAL_ID,
      ALLOWED_ACCOUNTS: ACCOUNTS.join(','),
    });
    proxy.setPace({
      latencyMs: LATENCY_MS,
      bucketOf: (r: RecordedRequest) =>
        r.service === 'ecs'
          ? {
              key: `${gate.accountOf(r)}#${r.region}#${r.operation}`,
              ...(/^(Describe|List)/.test(r.operation) ? READ : WRITE),
            }
          : undefined,
    });
    const worker = (event: Record<string, unknown>) => handler(event, context()) as Promise<Report>;
    const ecsCalls = () => proxy.requests.filter((r) => r.service === 'ecs').length;
    const targets: Target[] = ACCOUNTS.flatMap((account) => REGIONS.map((region) => ({ account, region })));

    // One target alone: a spare account and region would differ in nothing, so the first target's
    // stop and start are measured, then the fleet runs over all of them.
    const alone = targets[0]!;
    let t = performance.now();
    await worker({ action: 'stop', clusters: ['stage'], target: alone });
    const aloneStop = performance.now() - t;
    t = performance.now();
    await worker({ action: 'start', clusters: ['stage'], target: alone });
    const aloneStart = performance.now() - t;

    const fleet = async (action: 'stop' | 'start') => {
      const before = ecsCalls();
      const throttledBefore = proxy.requests.filter((r) => r.fault === 'throttle').length;
      const started = performance.now();
      const doc = await runFleetLocal({
        fn: 'ecs-scheduler',
        run: `bench-${action}-${Date.now()}`,
        event: { action, clusters: ['stage'] },
        targets,
        maxConcurrency: 50,
        dryRun: false,
        worker,
        dynamo: dynamoClient(moto.url),
        table: TEST_LEASE_TABLE,
      });
      const wall = performance.now() - started;
      const failed = doc.targets.filter((x) => x.status !== 'succeeded');
      const changed = doc.targets.reduce((sum, x) => sum + (x.summary?.changed ?? 0), 0);
      return {
        wall,
        changed,
        failed: failed.length,
        calls: ecsCalls() - before,
        throttled: proxy.requests.filter((r) => r.fault === 'throttle').length - throttledBefore,
      };
    };
    const stop = await fleet('stop');
    const start = await fleet('start');
    const services = targets.length * SERVICES;
    console.log(
      [
        `nightshift bench:fleet — ${targets.length} targets (${ACCOUNTS.length} accounts × ${REGIONS.length} regions) × ${SERVICES} services, ${LATENCY_MS} ms per call, token bucket per account+region+API (reads ${READ.capacity}/${READ.refillPerSecond} per s, changes ${WRITE.capacity}/${WRITE.refillPerSecond} per s), maxConcurrency 50, node ${process.version}`,
        `one target alone: stop ${seconds(aloneStop)}, start ${seconds(aloneStart)}`,
        `fleet stop:  ${seconds(stop.wall)} wall (${(stop.wall / aloneStop).toFixed(2)}× one target; one after another ≈ ${seconds(aloneStop * targets.length)}), ${stop.changed} services changed, ${stop.failed} targets not succeeded, ${(stop.calls / services).toFixed(2)} ECS calls per service (${stop.throttled} throttled)`,
        `fleet start: ${seconds(start.wall)} wall (${(start.wall / aloneStart).toFixed(2)}× one target; one after another ≈ ${seconds(aloneStart * targets.length)}), ${start.changed} services changed, ${start.failed} targets not succeeded, ${(start.calls / services).toFixed(2)} ECS calls per service (${start.throttled} throttled)`,
      ].join('\n'),
    );
    if (stop.failed > 0 || start.failed > 0) process.exitCode = 1;
  } finally {
    await proxy.close();
    moto.stop();
  }
};

await main();
