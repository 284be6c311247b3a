/**
 * A stop and a start on the same services at once, interleaved step by step against moto: the proxy
 * holds one run's call (`before`) while the other runs. With a shared lease table the loser is skipped;
 * without one in common (two stages in one account, each with its own table) the saved-state rules
 * alone keep the state a stop saved.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { dynamoLeaseStore, type LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import {
  createCluster,
  observe,
  observeSample,
  seedClients,
  seedEstate,
  type SeedClients,
} from '#test/support/ecs-estate.ts';
import { dynamoClient, leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const T0 = new Date('2026-11-23T18:00:00Z');
const minutes = (m: number) => new Date(T0.getTime() + m * 60_000);
const STOPPED = 'nightshift:stopped';
const HOOKED = [
  'TagResource',
  'RegisterScalableTarget',
  'UpdateService',
  'DescribeServices',
  'UntagResource',
];

const deps = (clients: SeedClients, now: Date): Deps => ({
  clients,
  config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
  now: () => now,
});
const row = (report: Report | undefined, suffix: string) =>
  report?.resources.find((r) => r.arn.endsWith(suffix));

/** A door a held call waits at until the test opens it. */
const door = () => {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
};

describe.runIf(motoTestsEnabled())('ecs-scheduler: a stop and a start at once (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  /** Straight to moto: the run that is not held, and the test's own reads. */
  let aws: SeedClients;
  /** Through the proxy: the run the test holds. */
  let held: SeedClients;
  /** The lease tables of two stages deployed in one account. */
  let dev: LeaseStore;
  let stage: LeaseStore;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(moto.url);
    aws = seedClients(moto.url);
    held = seedClients(proxy.url);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    for (const op of HOOKED) proxy.before(op, undefined);
    await moto.reset();
    dev = await leaseTable(moto.url, 'nightshift-dev-leases');
    stage = await leaseTable(moto.url, 'nightshift-stage-leases');
    await seedEstate(aws);
    proxy.requests.length = 0;
  });

  it("leaves the saved state of a stop held between its TagResource and its UpdateService to that stop's start", async () => {
    // Prepare: the stop (stage dev) is held at its first park calls, web's RegisterScalableTarget and
    // worker's UpdateService, both after their TagResource; the start (stage stage) runs meanwhile.
    const before = await observeSample(aws);
    const parked = door();
    let start: Report | undefined;
    let arrived = 0;
    const hold = async () => {
      arrived += 1;
      if (arrived === 2) {
        start = await run(
          { action: 'start', clusters: ['stage'] },
          runContext({ leases: runLeases(stage, 'ecs-scheduler start (nightshift-stage)') }),
          deps(aws, minutes(1)),
        );
        parked.open();
      }
      await parked.opened;
    };
    proxy.before('RegisterScalableTarget', hold);
    proxy.before('UpdateService', hold);

    // Act
    const stop = await run(
      { action: 'stop', clusters: ['stage'] },
      runContext({ leases: runLeases(dev, 'ecs-scheduler stop (nightshift-dev)') }),
      deps(held, T0),
    );
    const stopped = await observeSample(aws);
    const later = await run(
      { action: 'start', clusters: ['stage'] },
      runContext({ leases: runLeases(stage, 'ecs-scheduler start (nightshift-stage)') }),
      deps(aws, minutes(20)),
    );

    // Assess: the start left web and worker alone, the stop finished, nothing saved was lost
    for (const name of ['web', 'worker']) {
      expect(row(start, `service/stage/${name}`)).toMatchObject({ outcome: 'skipped' });
      expect(row(start, `service/stage/${name}`)?.detail).toMatch(
        /^saved state from 2026-11-23T18:00:00Z is 1m old and the service is not parked yet: a stop may still be running on it/,
      );
    }
    expect(stop.summary).toMatchObject({ changed: 4, failed: 0 });
    expect(stopped.services['stage/web']).toMatchObject({
      desired: 0,
      scaling: { min: 0, max: 0 },
      tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z' },
    });
    expect(stopped.services['stage/worker']).toMatchObject({
      desired: 0,
      tags: { [STOPPED]: 'desired=2 at=2026-11-23T18:00:00Z' },
    });
    expect(later.summary).toMatchObject({ failed: 0 });
    expect(await observeSample(aws)).toEqual(before);
  });

  it("keeps the state a stop saves again while a start is between its UpdateService and its tag's removal", async () => {
    // Prepare: `solo` runs worker at 2 on no capacity group; a stop parked it the night before
    await createCluster(aws, { name: 'solo', services: [{ name: 'worker', desired: 2 }] });
    const before = await observe(aws, ['solo'], []);
    await run(
      { action: 'stop', clusters: ['solo'] },
      runContext({ leases: runLeases(dev, 'ecs-scheduler stop (nightshift-dev)') }),
      deps(aws, T0),
    );
    const morning = minutes(13 * 60);
    const done = door();
    let updated = false;
    let stop: Report | undefined;
    proxy.before('UpdateService', async () => {
      updated = true;
    });
    // The start's next call after its UpdateService: its re-read of the tag (or, without one, its UntagResource).
    const hold = async () => {
      if (!updated || stop) return;
      stop = await run(
        { action: 'stop', clusters: ['solo'] },
        runContext({ leases: runLeases(dev, 'ecs-scheduler stop (nightshift-dev)') }),
        deps(aws, morning),
      );
      done.open();
      await done.opened;
    };
    proxy.before('DescribeServices', hold);
    proxy.before('UntagResource', hold);

    // Act
    const start = await run(
      { action: 'start', clusters: ['solo'] },
      runContext({ leases: runLeases(stage, 'ecs-scheduler start (nightshift-stage)') }),
      deps(held, morning),
    );
    const after = await observe(aws, ['solo'], []);
    const later = await run(
      { action: 'start', clusters: ['solo'] },
      runContext({ leases: runLeases(stage, 'ecs-scheduler start (nightshift-stage)') }),
      deps(aws, minutes(13 * 60 + 20)),
    );

    // Assess
    expect(row(stop, 'service/solo/worker')).toMatchObject({ outcome: 'changed' });
    expect(row(start, 'service/solo/worker')).toMatchObject({ outcome: 'failed' });
    expect(row(start, 'service/solo/worker')?.error).toMatch(
      /^remove saved state \(UntagResource\) failed: SavedStateChangedError: the saved state changed since this start read it/,
    );
    expect(after.services['solo/worker']).toEqual({
      desired: 0,
      tags: { [STOPPED]: 'desired=2 at=2026-11-24T07:00:00Z' },
    });
    expect(later.summary).toMatchObject({ changed: 1, failed: 0 });
    expect(await observe(aws, ['solo'], [])).toEqual(before);
  });

  it('skips a start while a stop holds the lease on the cluster, naming the holder, and restores exactly afterwards', async () => {
    // Prepare: one stage, one lease table; the stop is held at its first change
    const before = await observeSample(aws);
    const go = door();
    const stopLeases = runLeases(dev, 'ecs-scheduler run 2f8e6c1a (nightshift-dev-ecs-scheduler)');
    let start: Report | undefined;
    proxy.before('TagResource', async () => {
      if (!start) {
        start = await run(
          { action: 'start', clusters: ['stage'] },
          runContext({ leases: runLeases(dev, 'ecs-scheduler run 7d01 (cli --local)') }),
          deps(aws, minutes(1)),
        );
        go.open();
      }
      await go.opened;
    });

    // Act
    const stop = await run(
      { action: 'stop', clusters: ['stage'] },
      runContext({ leases: stopLeases }),
      deps(held, T0),
    );
    await stopLeases.releaseAll();
    const stopped = await observeSample(aws);
    const again = await run(
      { action: 'start', clusters: ['stage'] },
      runContext({ leases: runLeases(dev, 'ecs-scheduler run 7d01 (cli --local)') }),
      deps(aws, minutes(5)),
    );

    // Assess: the start was skipped whole, with who holds the cluster and since when
    expect(start?.resources).toEqual([
      {
        arn: 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage',
        type: 'ecs-cluster',
        outcome: 'skipped',
        detail: expect.stringMatching(
          /^another run holds the lease on it: ecs-scheduler run 2f8e6c1a \(nightshift-dev-ecs-scheduler\), for 0m \(since .*Z, expires .*Z\); nothing changed — run again once it is done$/,
        ),
      },
    ]);
    expect(stop.summary).toMatchObject({ changed: 4, failed: 0 });
    expect(stopped.services['stage/web']?.desired).toBe(0);
    expect(again.summary).toMatchObject({ changed: 4, failed: 0 });
    expect(await observeSample(aws)).toEqual(before);
  });

  it('changes nothing when the lease table cannot be reached, and says why for each cluster', async () => {
    // Prepare
    const before = await observeSample(aws);
    await dynamoClient(moto.url).send(new DeleteTableCommand({ TableName: 'nightshift-dev-leases' }));
    const gone = dynamoLeaseStore(dynamoClient(moto.url), 'nightshift-dev-leases');

    // Act
    const stop = await run(
      { action: 'stop', tags: { team: 'shop' } },
      runContext({ leases: runLeases(gone, 'ecs-scheduler stop') }),
      deps(held, T0),
    );

    // Assess
    expect(stop.resources.map((r) => `${r.arn.split('/').pop()} ${r.outcome}`).sort()).toEqual([
      'prod skipped',
      'stage skipped',
    ]);
    expect(row(stop, 'cluster/stage')?.detail).toMatch(
      /^could not take a lease in nightshift-dev-leases \(ResourceNotFoundException.*\); nothing changed: without a lease another run could act on it at the same time$/,
    );
    expect(await observeSample(aws)).toEqual(before);
    expect(proxy.delivered().filter((r) => !/^(Describe|List)/.test(r.operation))).toEqual([]);
  });
});
