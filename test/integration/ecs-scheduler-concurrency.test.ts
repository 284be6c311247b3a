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
  'DescribeScalableTargets',
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
      // Undone, not skipped: the start is still to do (carried over; the CLI exits 3).
      expect(row(start, `service/stage/${name}`)).toMatchObject({ outcome: 'undone' });
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

  describe('a start whose UntagResource lands after a stop in another lease table saved again', () => {
    /** `solo` runs web (autoscaled 2–6) at 3 and worker at 2 on no capacity group; a stop parked both the night before. */
    const parkedSolo = async () => {
      await createCluster(aws, {
        name: 'solo',
        services: [
          { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
          { name: 'worker', desired: 2 },
        ],
      });
      const before = await observe(aws, ['solo'], []);
      const night = await run(
        { action: 'stop', clusters: ['solo'] },
        runContext({ leases: runLeases(dev, 'ecs-scheduler stop (nightshift-dev)') }),
        deps(aws, T0),
      );
      expect(night.summary).toMatchObject({ changed: 2, failed: 0 });
      return before;
    };
    const morning = minutes(13 * 60);
    const SAVED = {
      'solo/web': 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z',
      'solo/worker': 'desired=2 at=2026-11-23T18:00:00Z',
    };
    const PARKED_WEB = { min: 0, max: 0, suspended: [true, true, true] };
    /** A single-service DescribeServices: a run's re-read of one service, not its read of the estate. */
    const oneService = (body: string) => /"services":\["[^"]+"\]/.test(body);

    it('holds the start at its UntagResource while the stop runs in full: the start writes the state back', async () => {
      // Prepare: the start (stage `stage`) has restored both services and re-read their tags; both its
      // UntagResource calls wait while a stop (stage `dev`, its own lease table) runs from start to end
      const before = await parkedSolo();
      const go = door();
      let arrived = 0;
      let stop: Report | undefined;
      proxy.before('UntagResource', async () => {
        arrived += 1;
        if (arrived === 2) {
          stop = await run(
            { action: 'stop', clusters: ['solo'] },
            runContext({ leases: runLeases(dev, 'ecs-scheduler stop (nightshift-dev)') }),
            deps(aws, morning),
          );
          go.open();
        }
        await go.opened;
      });

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

      // Assess: the stop ran in full and found its tags in place; the start's UntagResource then removed
      // them, saw each service parked by someone else, and wrote back what it had removed
      expect(stop?.summary).toMatchObject({ changed: 2, failed: 0 });
      for (const name of ['web', 'worker'] as const) {
        expect(row(start, `service/solo/${name}`)).toMatchObject({ outcome: 'changed' });
        expect(row(start, `service/solo/${name}`)?.detail).toContain(
          `a stop parked it again right after this start read its saved state, and this start's removal took the state that stop saved: "${SAVED[`solo/${name}`]}" written back for the next start`,
        );
      }
      const sent = proxy.delivered().map((r) => r.operation);
      expect(sent.lastIndexOf('TagResource')).toBeGreaterThan(sent.lastIndexOf('UntagResource'));
      expect(after.services).toEqual({
        'solo/web': { desired: 0, scaling: PARKED_WEB, tags: { [STOPPED]: SAVED['solo/web'] } },
        'solo/worker': { desired: 0, tags: { [STOPPED]: SAVED['solo/worker'] } },
      });
      expect(later.summary).toMatchObject({ changed: 2, failed: 0 });
      expect(await observe(aws, ['solo'], [])).toEqual(before);
    });

    it("lets the start's UntagResource land between the stop's park and its re-read: the stop writes the state back", async () => {
      // Prepare: as above, but the stop runs through its own proxy: its re-read of each service (its last
      // step) waits until the start's UntagResource calls have landed, and the start's own check after
      // them waits until the stop is done, so the stop alone finds its tags gone
      const before = await parkedSolo();
      const stopProxy = await startProxy(moto.url);
      const stopClients = seedClients(stopProxy.url);
      try {
        const untag = door();
        let untagOpen = false;
        const landed = door();
        let checks = 0;
        const stopDone = door();
        let untags = 0;
        let stop: Promise<Report> | undefined;
        proxy.before('UntagResource', async () => {
          untags += 1;
          if (untags === 2) {
            stop = run(
              { action: 'stop', clusters: ['solo'] },
              runContext({ leases: runLeases(dev, 'ecs-scheduler stop (nightshift-dev)') }),
              deps(stopClients, morning),
            ).finally(() => stopDone.open());
          }
          await untag.opened;
        });
        proxy.before('DescribeServices', async () => {
          if (!untagOpen) return;
          checks += 1;
          if (checks === 2) landed.open();
          await stopDone.opened;
        });
        stopProxy.before('DescribeServices', async (request) => {
          if (!oneService(request.body)) return;
          untagOpen = true;
          untag.open();
          await landed.opened;
        });

        // Act
        const start = await run(
          { action: 'start', clusters: ['solo'] },
          runContext({ leases: runLeases(stage, 'ecs-scheduler start (nightshift-stage)') }),
          deps(held, morning),
        );
        const stopped = await stop;
        const after = await observe(aws, ['solo'], []);
        const later = await run(
          { action: 'start', clusters: ['solo'] },
          runContext({ leases: runLeases(stage, 'ecs-scheduler start (nightshift-stage)') }),
          deps(aws, minutes(13 * 60 + 20)),
        );

        // Assess
        expect(start.summary).toMatchObject({ changed: 2, failed: 0 });
        for (const name of ['web', 'worker']) {
          expect(row(stopped, `service/solo/${name}`)).toMatchObject({ outcome: 'changed' });
          expect(row(stopped, `service/solo/${name}`)?.detail).toMatch(
            /; its saved state was removed after this stop wrote it \(by a start without a common lease\) while the service stayed parked: written back$/,
          );
        }
        // What the stop sent from its first re-read on: one TagResource per service, writing its tag back
        const sent = stopProxy.delivered();
        const check = sent.findIndex((r) => r.operation === 'DescribeServices' && oneService(r.body));
        expect(
          sent
            .slice(check)
            .filter((r) => r.operation === 'TagResource')
            .map((r) => (JSON.parse(r.body) as { resourceArn: string }).resourceArn.split('/').pop())
            .sort(),
        ).toEqual(['web', 'worker']);
        expect(after.services).toEqual({
          'solo/web': {
            desired: 0,
            scaling: PARKED_WEB,
            tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-24T07:00:00Z' },
          },
          'solo/worker': { desired: 0, tags: { [STOPPED]: 'desired=2 at=2026-11-24T07:00:00Z' } },
        });
        expect(later.summary).toMatchObject({ changed: 2, failed: 0 });
        expect(await observe(aws, ['solo'], [])).toEqual(before);
      } finally {
        await stopProxy.close();
      }
    });
  });

  it("keeps web's scaling when a stop in another lease table reads web before a stop parks it and its target after", async () => {
    // Prepare: stop B (stage `stage`) has read web at desiredCount 3 without a tag; before it reads the
    // scalable targets, stop A (stage `dev`, its own lease table) stops web from start to end
    const before = await observeSample(aws);
    let stopA: Report | undefined;
    proxy.before('DescribeScalableTargets', async () => {
      if (stopA) return;
      const leases = runLeases(dev, 'ecs-scheduler stop (nightshift-dev)');
      stopA = await run(
        { action: 'stop', clusters: ['stage'], services: ['web'] },
        runContext({ leases }),
        deps(aws, T0),
      );
      await leases.releaseAll();
    });

    // Act
    const stopB = await run(
      { action: 'stop', clusters: ['stage'], services: ['web'] },
      runContext({ leases: runLeases(stage, 'ecs-scheduler stop (nightshift-stage)') }),
      deps(held, minutes(0.5)),
    );
    const stopped = await observeSample(aws);
    const nextB = await run(
      { action: 'stop', clusters: ['stage'], services: ['web'] },
      runContext({ leases: runLeases(stage, 'ecs-scheduler stop (nightshift-stage)') }),
      deps(aws, minutes(1)),
    );
    const start = await run(
      { action: 'start', clusters: ['stage'], services: ['web'] },
      runContext({ leases: runLeases(dev, 'ecs-scheduler start (nightshift-dev)') }),
      deps(aws, minutes(20)),
    );

    // Assess: B saved and changed nothing (web undone), A's saved state stands, and the start restores
    // web's own limits 2–6 with scaling active
    expect(row(stopA, 'service/stage/web')).toMatchObject({ outcome: 'changed' });
    expect(row(stopB, 'service/stage/web')).toMatchObject({
      outcome: 'undone',
      detail: expect.stringContaining('another stop may be parking it; nothing saved or changed'),
    });
    expect(proxy.delivered().filter((r) => !/^(Describe|List)/.test(r.operation))).toEqual([]);
    expect(stopped.services['stage/web']).toEqual({
      desired: 0,
      scaling: { min: 0, max: 0, suspended: [true, true, true] },
      tags: { app: 'web', [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z' },
    });
    expect(row(nextB, 'service/stage/web')).toMatchObject({ outcome: 'unchanged' });
    expect(row(start, 'service/stage/web')).toMatchObject({ outcome: 'changed' });
    expect((await observeSample(aws)).services['stage/web']).toEqual(before.services['stage/web']);
  });

  it('leaves a start undone while a stop holds the lease on the cluster, naming the holder, and restores exactly afterwards', async () => {
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

    // Assess: the start left the cluster whole, undone, with who holds it and since when
    expect(start?.resources).toEqual([
      {
        arn: 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage',
        type: 'ecs-cluster',
        outcome: 'undone',
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

  it('changes nothing when the lease table cannot be reached, and fails each cluster saying why', async () => {
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
      'prod failed',
      'stage failed',
    ]);
    expect(row(stop, 'cluster/stage')?.detail).toMatch(
      /^could not take a lease in nightshift-dev-leases \(ResourceNotFoundException.*\); nothing changed: without a lease another run could act on it at the same time$/,
    );
    expect(await observeSample(aws)).toEqual(before);
    expect(proxy.delivered().filter((r) => !/^(Describe|List)/.test(r.operation))).toEqual([]);
  });
});
