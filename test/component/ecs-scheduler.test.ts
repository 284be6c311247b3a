/**
 * What moto cannot show: AWS's real page sizes and batch limits on every read, a call failing for one
 * resource mid-run, a run resuming after it, a Lambda running out of time mid-read and mid-write, and
 * leases held by another run. AWS is simulated with aws-sdk-client-mock (test/support/ecs-fake-aws.ts),
 * the lease table in memory with DynamoDB's conditional-write semantics.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { TagResourceCommand, UntagResourceCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { DeleteTagsCommand, UpdateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { RunLeases, type LeaseStore } from '#shared/lease.ts';
import type { Report } from '#shared/report.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import {
  clusterArn,
  fakeAws,
  fakeClients,
  groupArn,
  memoryLeaseStore,
  serviceArn,
  type FakeAws,
  type FakeCluster,
  type FakeEstate,
} from '#test/support/ecs-fake-aws.ts';

const NOW = new Date('2026-11-23T18:00:00Z');
const EARLIER = '2026-11-22T18:00:00Z';
const STOPPED = 'nightshift:stopped';
const WRITES = [
  'TagResource',
  'UntagResource',
  'UpdateService',
  'RegisterScalableTarget',
  'CreateOrUpdateTags',
  'DeleteTags',
  'UpdateAutoScalingGroup',
];

const deps = (now: Date = NOW): Deps => ({
  clients: fakeClients(),
  config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
  now: () => now,
});
let store: LeaseStore & { items: Map<string, unknown> };
const leases = (holder = 'ecs-scheduler test run', now: Date = NOW) =>
  new RunLeases(
    store,
    { holder, token: `${holder}-token` },
    () => now,
    () => 900_000,
  );
const ctx = (options: { hasTime?: () => boolean; carried?: Record<string, string[]> } = {}) =>
  runContext({ leases: leases(), ...options });

/**
 * Every call the fake answered, in order, with its input as sent (the SDK's paginators reuse one
 * input object, so aws-sdk-client-mock's own records show every page with the last token).
 */
const calls = (aws: FakeAws) => {
  const log: { op: string; input: Record<string, unknown> }[] = [];
  aws.hooks.before = (op, input) => {
    log.push({ op, input: { ...input } });
  };
  return log;
};
const inputs = (log: { op: string; input: Record<string, unknown> }[], op: string) =>
  log.filter((c) => c.op === op).map((c) => c.input);
const writes = <C extends { op: string }>(log: C[]) => log.filter((c) => WRITES.includes(c.op));
const outcomes = (report: Report) => report.resources.map((r) => `${r.arn.split('/').pop()} ${r.outcome}`);

/**
 * A clock for a run (RunContext.hasTime) that says "no time" once, right after the fake answered `op`
 * for the first time: the run stops there, between that call's step and the next.
 */
const cutAfter = (aws: FakeAws, op: string) => {
  let out = false;
  let done = false;
  aws.hooks.before = (called) => {
    if (called === op && !done) out = done = true;
  };
  return () => {
    if (!out) return true;
    out = false;
    return false;
  };
};

/** A stage cluster of plain services at desiredCount 2 on one capacity group. */
const stage = (names: string[], extra: Partial<FakeCluster> = {}): FakeEstate => ({
  clusters: [
    {
      name: 'stage',
      tags: { env: 'stage' },
      providers: ['stage-cp'],
      services: names.map((name) => ({ name, desired: 2 })),
      ...extra,
    },
  ],
  providers: { 'stage-cp': 'stage-nodes' },
  groups: [{ name: 'stage-nodes', min: 1, desired: 2, max: 3 }],
});

describe('ecs-scheduler with simulated AWS', () => {
  beforeEach(() => {
    store = memoryLeaseStore();
  });

  describe('partial failure', () => {
    it('stops the other services when one fails, and leaves their shared capacity running (undone: still to do)', async () => {
      // Prepare
      const aws = fakeAws(stage(['a', 'b', 'c']));
      aws.ecs
        .on(UpdateServiceCommand, { service: 'b' })
        .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['a changed', 'b failed', 'c changed', 'stage-nodes undone']);
      expect(report.resources[1]?.error).toBe(
        'set desiredCount (UpdateService) failed: ThrottlingException: Rate exceeded; done before it: save state (TagResource)',
      );
      expect(report.resources[3]?.detail).toBe(
        `capacity left running: ${serviceArn('stage', 'b')} did not stop (failed); nothing changed`,
      );
      expect(aws.groups.get('stage-nodes')).toEqual({ name: 'stage-nodes', min: 1, desired: 2, max: 3 });
    });

    it('finishes an interrupted stop, writing the same saved values again before it parks anything', async () => {
      // Prepare: b was saved (desired=2) but its UpdateService never happened; it still runs 2.
      const estate = stage(['b']);
      estate.clusters[0]!.services[0]!.tags = { [STOPPED]: 'desired=2 at=2026-11-23T17:00:00Z' };
      const aws = fakeAws(estate);
      const log = calls(aws);

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(writes(log).map((c) => c.op)).toEqual([
        'TagResource',
        'UpdateService',
        'CreateOrUpdateTags',
        'UpdateAutoScalingGroup',
      ]);
      expect(aws.service('stage', 'b')).toMatchObject({
        desired: 0,
        tags: { [STOPPED]: 'desired=2 at=2026-11-23T18:00:00Z' },
      });
      expect(report.summary).toMatchObject({ changed: 2, failed: 0 });
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 0, desired: 0, max: 0 });
    });

    it('keeps the saved state when a restore fails, so the next start can finish', async () => {
      // Prepare
      const aws = fakeAws({
        ...stage([]),
        clusters: [
          {
            name: 'stage',
            services: [
              {
                name: 'a',
                desired: 0,
                scaling: { min: 0, max: 0, suspended: [true, true, true] },
                tags: { [STOPPED]: `desired=2 min=1 max=4 suspended=none at=${EARLIER}` },
              },
            ],
          },
        ],
      });
      aws.ecs
        .on(UpdateServiceCommand)
        .rejects(Object.assign(new Error('service is draining'), { name: 'InvalidParameterException' }));

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      const row = report.resources.find((r) => r.type === 'ecs-service');
      expect(row).toMatchObject({ outcome: 'failed' });
      expect(row?.error).toMatch(
        /^set desiredCount \(UpdateService\) failed: InvalidParameterException: service is draining; done before it: restore scaling/,
      );
      expect(aws.ecs.commandCalls(UntagResourceCommand)).toHaveLength(0);
      expect(aws.service('stage', 'a')).toMatchObject({
        scaling: { min: 1, max: 4, suspended: [false, false, false] },
        tags: { [STOPPED]: `desired=2 min=1 max=4 suspended=none at=${EARLIER}` },
      });
    });

    it('starts no service whose capacity group could not be restored, and leaves it undone for the next run', async () => {
      // Prepare
      const estate = stage(['a']);
      estate.clusters[0]!.services[0] = {
        name: 'a',
        desired: 0,
        tags: { [STOPPED]: `desired=2 at=${EARLIER}` },
      };
      estate.groups![0] = {
        name: 'stage-nodes',
        min: 0,
        desired: 0,
        max: 0,
        tags: { [STOPPED]: `min=1 desired=2 max=3 at=${EARLIER}` },
      };
      const aws = fakeAws(estate);
      aws.autoscaling
        .on(UpdateAutoScalingGroupCommand)
        .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['stage-nodes failed', 'a undone']);
      expect(report.summary).toMatchObject({ failed: 1, undone: 1, skipped: 0 });
      expect(report.resources[1]?.detail).toBe(
        `not started: its capacity group ${groupArn('stage-nodes')} is not back (failed), so its tasks would have nowhere to run; nothing changed — run start again`,
      );
      expect(aws.service('stage', 'a')?.desired).toBe(0);
    });
  });

  describe('an interrupted start (item 7)', () => {
    /** web after a start restored its scaling (min 2 moved desiredCount 0 → 2) and then failed. */
    const interrupted = (): FakeEstate => ({
      clusters: [
        {
          name: 'stage',
          services: [
            {
              name: 'web',
              desired: 2,
              scaling: { min: 2, max: 6 },
              tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
            },
          ],
        },
      ],
    });

    it('is finished by the next start, not reported as stale', async () => {
      // Prepare
      const aws = fakeAws(interrupted());

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources).toEqual([
        {
          arn: serviceArn('stage', 'web'),
          type: 'ecs-service',
          outcome: 'changed',
          detail: `desiredCount 2 → 3 (finishing a start that restored the scaling target but not desiredCount); saved state from ${EARLIER} removed`,
        },
      ]);
      expect(aws.service('stage', 'web')).toEqual({
        name: 'web',
        desired: 3,
        scaling: { min: 2, max: 6 },
        tags: {},
      });
    });

    it('is stopped by a stop that keeps the tag as the saved state, which the next start restores', async () => {
      // Prepare
      const aws = fakeAws(interrupted());

      // Act
      const stop = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
      const stopped = structuredClone(aws.service('stage', 'web'));
      const start = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(stop.resources[0]).toMatchObject({
        outcome: 'changed',
        detail:
          'desiredCount 2 → 0; scaling min 2→0 max 6→0, all scaling suspended (a start from before restored ' +
          `its scaling but not its desiredCount; saved state from ${EARLIER} kept, start restores desiredCount 3, ` +
          'scaling min 2 max 6, scaling active)',
      });
      expect(stopped).toMatchObject({
        desired: 0,
        scaling: { min: 0, max: 0, suspended: [true, true, true] },
        tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z' },
      });
      expect(start.summary).toMatchObject({ changed: 1, failed: 0 });
      expect(aws.service('stage', 'web')).toEqual({
        name: 'web',
        desired: 3,
        scaling: { min: 2, max: 6, suspended: [false, false, false] },
        tags: {},
      });
    });
  });

  describe('a start whose UntagResource failed, then Application Auto Scaling moved the service (M1)', () => {
    it('is stale for the next start, which fails it and leaves the scaled service alone', async () => {
      // Prepare: web parked the night before; this start's UntagResource fails (throttled), after which
      // target tracking scales web from 3 to 5, inside its restored limits 2–6
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: [
              {
                name: 'web',
                desired: 0,
                scaling: { min: 0, max: 0, suspended: [true, true, true] },
                tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
              },
            ],
          },
        ],
      });
      aws.hooks.before = (op) => {
        if (op === 'UntagResource') {
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        }
      };
      const first = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());
      aws.service('stage', 'web')!.desired = 5;
      const log = calls(aws);

      // Act
      const again = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess: nothing sets web back to 3; the row says why and what to do
      expect(first.resources[0]).toMatchObject({
        outcome: 'failed',
        error: expect.stringMatching(
          /^remove saved state \(UntagResource\) failed: ThrottlingException: Rate exceeded; done before it: restore scaling \(RegisterScalableTarget\), set desiredCount \(UpdateService\)$/,
        ),
      });
      expect(again.resources[0]).toMatchObject({
        outcome: 'failed',
        detail:
          `saved state from ${EARLIER} (desiredCount 3, scaling min 2 max 6, scaling active) does not match the ` +
          'running service (desiredCount 5, scaling min 2 max 6, scaling active): it may be left over from a start ' +
          'that could not remove it; nothing changed — delete tag nightshift:stopped and run again',
      });
      expect(writes(log)).toEqual([]);
      expect(aws.service('stage', 'web')?.desired).toBe(5);
    });

    it('is parked by the next stop, which keeps the saved desiredCount for the start after it', async () => {
      // Prepare: as above: the start's UntagResource failed, then target tracking scaled web from 3 to 5
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: [
              {
                name: 'web',
                desired: 0,
                scaling: { min: 0, max: 0, suspended: [true, true, true] },
                tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
              },
            ],
          },
        ],
      });
      let failing = true;
      aws.hooks.before = (op) => {
        if (op === 'UntagResource' && failing) {
          failing = false;
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        }
      };
      const morning = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());
      aws.service('stage', 'web')!.desired = 5;

      // Act
      const stop = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
      const stopped = structuredClone(aws.service('stage', 'web'));
      const start = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(morning.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(stop.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(stopped).toEqual({
        name: 'web',
        desired: 0,
        scaling: { min: 0, max: 0, suspended: [true, true, true] },
        tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z' },
      });
      expect(start.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(aws.service('stage', 'web')).toEqual({
        name: 'web',
        desired: 3,
        scaling: { min: 2, max: 6, suspended: [false, false, false] },
        tags: {},
      });
    });

    it('still finishes a start cut off after its scaling restore, which left desiredCount at the saved min', async () => {
      // Prepare: the first start's UpdateService fails; registering min 2 moved desiredCount 0 → 2
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: [
              {
                name: 'web',
                desired: 0,
                scaling: { min: 0, max: 0, suspended: [true, true, true] },
                tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
              },
            ],
          },
        ],
      });
      let failing = true;
      aws.hooks.before = (op) => {
        if (op === 'UpdateService' && failing) {
          failing = false;
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        }
      };
      const first = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());
      const between = structuredClone(aws.service('stage', 'web'));

      // Act
      const again = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(first.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(between).toMatchObject({ desired: 2, scaling: { min: 2, max: 6 } });
      expect(again.resources[0]).toMatchObject({
        outcome: 'changed',
        detail: `desiredCount 2 → 3 (finishing a start that restored the scaling target but not desiredCount); saved state from ${EARLIER} removed`,
      });
      expect(aws.service('stage', 'web')).toMatchObject({ desired: 3, tags: {} });
    });
  });

  describe('a stop cut short after saving its state, then scaling moved the resource', () => {
    it('finishes a stop cut short after saving its state, once Application Auto Scaling moved desiredCount', async () => {
      // Prepare: the stop saved web's state, then RegisterScalableTarget was throttled; target tracking then
      // scaled web from 3 to 4 inside its live limits 2–6
      const aws = fakeAws({
        clusters: [{ name: 'stage', services: [{ name: 'web', desired: 3, scaling: { min: 2, max: 6 } }] }],
      });
      let failing = true;
      aws.hooks.before = (op) => {
        if (op === 'RegisterScalableTarget' && failing) {
          failing = false;
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        }
      };
      const first = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
      aws.service('stage', 'web')!.desired = 4;

      // Act
      const again = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
      const stopped = structuredClone(aws.service('stage', 'web'));
      const start = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(first.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(again.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(stopped).toMatchObject({
        desired: 0,
        scaling: { min: 0, max: 0, suspended: [true, true, true] },
        tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z' },
      });
      expect(start.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(aws.service('stage', 'web')).toEqual({
        name: 'web',
        desired: 3,
        scaling: { min: 2, max: 6, suspended: [false, false, false] },
        tags: {},
      });
    });

    it('finishes parking a group whose stop was cut short, once managed scaling moved its desired', async () => {
      // Prepare: the stop parked web and saved the group's state, then UpdateAutoScalingGroup failed; ECS
      // managed scaling then scaled the empty group in from 2 to 1
      const aws = fakeAws({
        clusters: [{ name: 'stage', providers: ['stage-cp'], services: [{ name: 'web', desired: 3 }] }],
        providers: { 'stage-cp': 'stage-nodes' },
        groups: [{ name: 'stage-nodes', min: 1, desired: 2, max: 4 }],
      });
      let failing = true;
      aws.hooks.before = (op) => {
        if (op === 'UpdateAutoScalingGroup' && failing) {
          failing = false;
          throw Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
        }
      };
      const first = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
      aws.groups.get('stage-nodes')!.desired = 1;

      // Act
      const again = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
      const parked = structuredClone(aws.groups.get('stage-nodes'));
      const start = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(first)).toEqual(['web changed', 'stage-nodes failed']);
      expect(outcomes(again)).toEqual(['web unchanged', 'stage-nodes changed']);
      expect(parked).toMatchObject({
        min: 0,
        desired: 0,
        max: 0,
        tags: { [STOPPED]: 'min=1 desired=2 max=4 at=2026-11-23T18:00:00Z' },
      });
      expect(outcomes(start)).toEqual(['stage-nodes changed', 'web changed']);
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 1, desired: 2, max: 4, tags: {} });
      expect(aws.service('stage', 'web')).toMatchObject({ desired: 3, tags: {} });
    });
  });

  describe('a start never removes saved state written after it read', () => {
    const parked = (): FakeEstate => ({
      clusters: [
        {
          name: 'stage',
          services: [{ name: 'worker', desired: 0, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } }],
        },
      ],
    });

    it('reads the tag again right before UntagResource and leaves it when a stop saved it meanwhile', async () => {
      // Prepare: a stop (of another stage, or an older version) saves again while this start runs
      const aws = fakeAws(parked());
      aws.hooks.before = (op) => {
        if (op === 'UpdateService') {
          aws.service('stage', 'worker')!.tags = { [STOPPED]: 'desired=2 at=2026-11-23T18:00:05Z' };
        }
      };

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({
        outcome: 'failed',
        error:
          'remove saved state (UntagResource) failed: SavedStateChangedError: the saved state changed since this ' +
          `start read it (read "desired=2 at=${EARLIER}", now "desired=2 at=2026-11-23T18:00:05Z"): a stop saved it ` +
          'while this start ran, so it stays for the next start; done before it: set desiredCount (UpdateService)',
      });
      expect(aws.ecs.commandCalls(UntagResourceCommand)).toHaveLength(0);
      expect(aws.service('stage', 'worker')?.tags).toEqual({
        [STOPPED]: 'desired=2 at=2026-11-23T18:00:05Z',
      });
    });

    it('reads the group tag again right before DeleteTags and leaves it when a stop saved it meanwhile', async () => {
      // Prepare
      const aws = fakeAws({
        clusters: [{ name: 'stage', providers: ['stage-cp'], services: [] }],
        providers: { 'stage-cp': 'stage-nodes' },
        groups: [
          {
            name: 'stage-nodes',
            min: 0,
            desired: 0,
            max: 0,
            tags: { [STOPPED]: `min=1 desired=2 max=3 at=${EARLIER}` },
          },
        ],
      });
      aws.hooks.before = (op) => {
        if (op === 'UpdateAutoScalingGroup') {
          aws.groups.get('stage-nodes')!.tags = {
            [STOPPED]: 'min=1 desired=2 max=3 at=2026-11-23T18:00:05Z',
          };
        }
      };

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({ outcome: 'failed' });
      expect(report.resources[0]?.error).toMatch(
        /^remove saved state \(DeleteTags\) failed: SavedStateChangedError: the saved state changed since this start read it/,
      );
      expect(aws.autoscaling.commandCalls(DeleteTagsCommand)).toHaveLength(0);
      expect(aws.groups.get('stage-nodes')?.tags).toEqual({
        [STOPPED]: 'min=1 desired=2 max=3 at=2026-11-23T18:00:05Z',
      });
    });

    it('leaves a young tag on a service that is not parked yet, undone: a stop may be between its save and its park', async () => {
      // Prepare: the state a start sees between a stop's TagResource and its UpdateService
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: [
              { name: 'worker', desired: 2, tags: { [STOPPED]: 'desired=2 at=2026-11-23T17:55:00Z' } },
            ],
          },
        ],
      });
      const log = calls(aws);

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({
        outcome: 'undone',
        detail:
          'saved state from 2026-11-23T17:55:00Z is 5m old and the service is not parked yet: a stop may still be ' +
          'running on it (a stop saves its state before it parks); nothing changed — if no stop is running, run ' +
          'start again after 2026-11-23T18:11:00Z',
      });
      expect(writes(log)).toEqual([]);
    });

    it('removes the tag once it is older than the longest a stop can run', async () => {
      // Prepare
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: [
              { name: 'worker', desired: 2, tags: { [STOPPED]: 'desired=2 at=2026-11-23T17:44:00Z' } },
            ],
          },
        ],
      });

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({
        outcome: 'changed',
        detail: 'already at desiredCount 2; saved state from 2026-11-23T17:44:00Z removed',
      });
      expect(aws.service('stage', 'worker')?.tags).toEqual({});
    });
  });

  describe('without a common lease, the saved state a stop wrote survives a start that removes it (H1)', () => {
    /** web at 3 on a capacity group, as a stop finds it. */
    const running = (): FakeEstate => ({
      clusters: [{ name: 'stage', providers: ['stage-cp'], services: [{ name: 'web', desired: 3 }] }],
      providers: { 'stage-cp': 'stage-nodes' },
      groups: [{ name: 'stage-nodes', min: 1, desired: 2, max: 3 }],
    });

    it("writes a service's tag back when a start (an older version, say) removed it after the stop parked it", async () => {
      // Prepare: the start's UntagResource lands between the stop's UpdateService and its re-read
      const aws = fakeAws(running());
      let parked = false;
      aws.hooks.before = (op) => {
        if (op === 'UpdateService') parked = true;
        if (op === 'DescribeServices' && parked && aws.service('stage', 'web')?.tags?.[STOPPED]) {
          aws.service('stage', 'web')!.tags = {};
        }
      };

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({
        outcome: 'changed',
        detail:
          'desiredCount 3 → 0; saved in tag nightshift:stopped; its saved state was removed after this stop wrote ' +
          'it (by a start without a common lease) while the service stayed parked: written back',
      });
      expect(aws.service('stage', 'web')).toMatchObject({
        desired: 0,
        tags: { [STOPPED]: 'desired=3 at=2026-11-23T18:00:00Z' },
      });
    });

    it('leaves a service a start restored meanwhile as it is, fails its row, and keeps its capacity group up', async () => {
      // Prepare: between the stop's UpdateService and its re-read, a start restores web and removes the tag
      const aws = fakeAws(running());
      let parked = false;
      aws.hooks.before = (op) => {
        if (op === 'UpdateService') parked = true;
        const web = aws.service('stage', 'web')!;
        if (op === 'DescribeServices' && parked && web.tags?.[STOPPED])
          Object.assign(web, { desired: 3, tags: {} });
      };

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess: web runs, so its row is not `changed` and the group it runs on is not parked under it
      expect(report.resources[0]).toMatchObject({
        arn: serviceArn('stage', 'web'),
        outcome: 'failed',
        detail: 'desiredCount 3 → 0; saved in tag nightshift:stopped',
        error:
          'check saved state is still there (DescribeServices) failed: StartedMeanwhileError: its saved state was ' +
          'removed after this stop wrote it, and the service runs again (desiredCount 3): restored by a start ' +
          'without a common lease; left as it is, running, and its capacity group with it; done before it: save ' +
          'state (TagResource), set desiredCount (UpdateService)',
      });
      expect(report.resources[1]).toMatchObject({ arn: groupArn('stage-nodes'), outcome: 'undone' });
      expect(aws.ecs.commandCalls(TagResourceCommand)).toHaveLength(1);
      expect(aws.autoscaling.commandCalls(UpdateAutoScalingGroupCommand)).toHaveLength(0);
      expect(aws.service('stage', 'web')).toMatchObject({ desired: 3, tags: {} });
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 1, desired: 2, max: 3 });
      expect(aws.groups.get('stage-nodes')?.tags?.[STOPPED]).toBeUndefined();
    });

    it.each([
      {
        title: 'the same values saved by another stop, with its own time',
        service: { desired: 3 },
        found: 'desired=3 at=2026-11-23T18:00:05Z',
      },
      {
        title: 'other values, where this stop saved a state that restores nothing',
        service: { desired: 0 },
        found: 'desired=3 at=2026-11-22T18:00:00Z',
      },
      {
        // The parked limits came from a tag an earlier version saved from a target another stop had parked.
        title: 'live scaling limits, where this stop saved parked ones',
        service: {
          desired: 3,
          scaling: { min: 0, max: 0, suspended: [true, true, true] as [boolean, boolean, boolean] },
          tags: { [STOPPED]: `desired=3 min=0 max=0 suspended=in+out+scheduled at=${EARLIER}` },
        },
        found: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:05Z',
      },
    ])('keeps a tag its re-read finds replaced by $title', async ({ service, found }) => {
      // Prepare
      const aws = fakeAws({ clusters: [{ name: 'stage', services: [{ name: 'web', ...service }] }] });
      let saved = false;
      aws.hooks.before = (op) => {
        if (op === 'TagResource') saved = true;
        const web = aws.service('stage', 'web')!;
        if (op === 'DescribeServices' && saved && web.tags?.[STOPPED] !== found)
          web.tags = { [STOPPED]: found };
      };

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]).toMatchObject({ outcome: 'changed' });
      expect(aws.ecs.commandCalls(TagResourceCommand)).toHaveLength(1);
      expect(aws.service('stage', 'web')).toMatchObject({ desired: 0, tags: { [STOPPED]: found } });
    });

    it("writes a group's tag back when a start removed it after the stop parked the group", async () => {
      // Prepare
      const aws = fakeAws(running());
      let parked = false;
      aws.hooks.before = (op) => {
        if (op === 'UpdateAutoScalingGroup') parked = true;
        const g = aws.groups.get('stage-nodes')!;
        if (op === 'DescribeAutoScalingGroups' && parked && g.tags?.[STOPPED]) g.tags = {};
      };

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[1]).toMatchObject({
        arn: groupArn('stage-nodes'),
        outcome: 'changed',
        detail:
          'min 1→0, desired 2→0, max 3→0; saved in tag nightshift:stopped; its saved state was removed after this ' +
          'stop wrote it (by a start without a common lease) while the group stayed parked: written back',
      });
      expect(aws.groups.get('stage-nodes')).toEqual({
        name: 'stage-nodes',
        min: 0,
        desired: 0,
        max: 0,
        tags: { [STOPPED]: 'min=1 desired=2 max=3 at=2026-11-23T18:00:00Z' },
      });
    });

    it("makes a start that removed a group's tag a stop saved after the start's re-read write it back", async () => {
      // Prepare: the group parked the night before; between the start's re-read and its DeleteTags a stop
      // (another stage's) saves the same values again and parks the group it had found restored
      const aws = fakeAws({
        clusters: [{ name: 'stage', providers: ['stage-cp'], services: [] }],
        providers: { 'stage-cp': 'stage-nodes' },
        groups: [
          {
            name: 'stage-nodes',
            min: 0,
            desired: 0,
            max: 0,
            tags: { [STOPPED]: `min=1 desired=2 max=3 at=${EARLIER}` },
          },
        ],
      });
      aws.hooks.before = (op) => {
        if (op === 'DeleteTags') {
          Object.assign(aws.groups.get('stage-nodes')!, {
            min: 0,
            desired: 0,
            max: 0,
            tags: { [STOPPED]: 'min=1 desired=2 max=3 at=2026-11-23T18:00:05Z' },
          });
        }
      };

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.resources[0]?.detail).toBe(
        `min 0→1, desired 0→2, max 0→3; saved state from ${EARLIER} removed; a stop parked it again right after ` +
          "this start read its saved state, and this start's removal took the state that stop saved: " +
          `"min=1 desired=2 max=3 at=${EARLIER}" written back for the next start`,
      );
      expect(aws.groups.get('stage-nodes')).toMatchObject({
        min: 0,
        desired: 0,
        max: 0,
        tags: { [STOPPED]: `min=1 desired=2 max=3 at=${EARLIER}` },
      });
    });

    it('writes nothing back after removing the tag of a service it leaves running', async () => {
      // Prepare
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: [{ name: 'web', desired: 0, tags: { [STOPPED]: `desired=3 at=${EARLIER}` } }],
          },
        ],
      });
      const log = calls(aws);

      // Act
      await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess: the check after the removal is one DescribeServices of web alone
      expect(writes(log).map((c) => c.op)).toEqual(['UpdateService', 'UntagResource']);
      expect(inputs(log, 'DescribeServices').slice(-2)).toEqual([
        { cluster: 'stage', services: [serviceArn('stage', 'web')], include: ['TAGS'] },
        { cluster: 'stage', services: [serviceArn('stage', 'web')], include: ['TAGS'] },
      ]);
      expect(aws.service('stage', 'web')).toMatchObject({ desired: 3, tags: {} });
    });
  });

  describe('leases', () => {
    it('changes nothing without a lease table, and fails each cluster saying why', async () => {
      // Prepare
      const aws = fakeAws(stage(['a']));
      const log = calls(aws);

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, runContext(), deps());

      // Assess
      expect(report.resources).toEqual([
        {
          arn: clusterArn('stage'),
          type: 'ecs-cluster',
          outcome: 'failed',
          detail:
            'could not take a lease in (no lease table: LEASE_TABLE is not set) (LEASE_TABLE is not set); nothing ' +
            'changed: without a lease another run could act on it at the same time',
        },
      ]);
      expect(writes(log)).toEqual([]);
    });

    it('takes the cluster and group leases before it reads the state it plans from', async () => {
      // Prepare
      const aws = fakeAws(stage(['a']));
      const log = calls(aws);
      const acquire = store.acquire.bind(store);
      store.acquire = async (scope, ...rest) => {
        log.push({ op: `lease ${scope}`, input: {} });
        return acquire(scope, ...rest);
      };

      // Act
      await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess: discovery (clusters, providers, group ARNs), the leases, then every read again
      expect(log.map((c) => c.op).slice(0, 11)).toEqual([
        'DescribeClusters',
        'DescribeCapacityProviders',
        'DescribeAutoScalingGroups',
        `lease ${clusterArn('stage')}`,
        `lease ${groupArn('stage-nodes')}`,
        'DescribeClusters',
        'ListServices',
        'DescribeServices',
        'DescribeCapacityProviders',
        'ListClusters',
        'DescribeScalableTargets',
      ]);
    });

    it('stops the services but leaves a group whose lease another run holds undone, naming the holder', async () => {
      // Prepare: instance-rotation holds the group for a rotation step
      const aws = fakeAws(stage(['a']));
      await leases(
        'instance-rotation run 9c1d (nightshift-dev-instance-rotation)',
        new Date('2026-11-23T17:58:00Z'),
      ).take(groupArn('stage-nodes'));

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['a changed', 'stage-nodes undone']);
      expect(report.resources[1]?.detail).toBe(
        'another run holds the lease on it: instance-rotation run 9c1d (nightshift-dev-instance-rotation), for 2m ' +
          '(since 2026-11-23T17:58:00Z, expires 2026-11-23T18:13:00Z); nothing changed — run again once it is done',
      );
      expect(aws.service('stage', 'a')?.desired).toBe(0);
      expect(aws.groups.get('stage-nodes')).toEqual({ name: 'stage-nodes', min: 1, desired: 2, max: 3 });
    });

    it('starts no service of a cluster whose capacity group another run holds: both are undone', async () => {
      // Prepare: everything parked; a stop of another cluster sharing the group holds it
      const estate = stage(['a', 'b']);
      estate.clusters[0]!.services = [
        { name: 'a', desired: 0, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
        { name: 'b', desired: 1 },
      ];
      estate.groups![0] = {
        name: 'stage-nodes',
        min: 0,
        desired: 0,
        max: 0,
        tags: { [STOPPED]: `min=1 desired=2 max=3 at=${EARLIER}` },
      };
      const aws = fakeAws(estate);
      const log = calls(aws);
      await leases('ecs-scheduler run 4e2a (nightshift-stage-ecs-scheduler)').take(groupArn('stage-nodes'));

      // Act
      const report = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['stage-nodes undone', 'a undone', 'b unchanged']);
      expect(report.resources[1]?.detail).toMatch(
        /^not started: its capacity group stage-nodes is not this run's to restore \(another run holds the lease on it: ecs-scheduler run 4e2a/,
      );
      expect(writes(log)).toEqual([]);
    });

    it('reads nothing more of a cluster another run holds, and reports it undone with the holder', async () => {
      // Prepare
      const aws = fakeAws(stage(['a']));
      const log = calls(aws);
      await leases('ecs-scheduler run 77aa (nightshift-dev-ecs-scheduler)').take(clusterArn('stage'));

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['stage undone']);
      expect(report.resources[0]?.detail).toMatch(
        /^another run holds the lease on it: ecs-scheduler run 77aa/,
      );
      expect(log.map((c) => c.op)).not.toContain('ListServices');
      expect(writes(log)).toEqual([]);
    });

    it('holds its leases until the run ends (withOps releases them)', async () => {
      // Prepare
      fakeAws(stage(['a']));
      const mine = leases();

      // Act
      await run({ action: 'stop', clusters: ['stage'] }, runContext({ leases: mine }), deps());

      // Assess
      expect([...store.items.keys()].sort()).toEqual([clusterArn('stage'), groupArn('stage-nodes')].sort());
      await mine.releaseAll();
      expect(store.items.size).toBe(0);
    });
  });

  describe('capacity groups with a rotation in flight (item 11)', () => {
    it('stops the services and leaves the group running until the rotation is done', async () => {
      // Prepare
      const estate = stage(['a']);
      estate.groups![0]!.tags = {
        'nightshift:rotation': 'desired=2 instance=i-0a1b2c3d4e5f60718 phase=launching',
      };
      const aws = fakeAws(estate);

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['a changed', 'stage-nodes skipped']);
      expect(report.resources[1]?.detail).toBe(
        'rotation in flight (tag nightshift:rotation=desired=2 instance=i-0a1b2c3d4e5f60718 phase=launching): the ' +
          'group is parked by the next stop after instance-rotation finishes or rolls it back; its services stop now',
      );
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 1, desired: 2, max: 3 });
      expect(aws.service('stage', 'a')?.desired).toBe(0);
    });
  });

  describe('pagination at AWS page sizes (item 4)', () => {
    /** `n` clusters tagged team=shop, each on its own capacity provider and group. */
    const fleet = (n: number): FakeEstate => {
      const names = Array.from({ length: n }, (_, i) => `c${String(i).padStart(3, '0')}`);
      return {
        clusters: names.map((name) => ({
          name,
          tags: { team: 'shop' },
          providers: [`${name}-cp`],
          services: [{ name: 'web', desired: 1 }],
        })),
        providers: Object.fromEntries(names.map((name) => [`${name}-cp`, `${name}-nodes`])),
        groups: names.map((name) => ({ name: `${name}-nodes`, min: 1, desired: 1, max: 2 })),
      };
    };

    it('parks all 12 groups of 12 clusters: DescribeCapacityProviders is followed past its 10-result page', async () => {
      // Prepare
      const aws = fakeAws(fleet(12));
      const log = calls(aws);

      // Act
      const report = await run({ action: 'stop', tags: { team: 'shop' } }, ctx(), deps());

      // Assess
      expect(report.summary).toMatchObject({ changed: 24, skipped: 0, failed: 0 });
      expect([...aws.groups.values()].every((g) => g.min === 0 && g.desired === 0 && g.max === 0)).toBe(true);
      // Read twice (which groups to lease, then under the leases), each time in two pages.
      expect(inputs(log, 'DescribeCapacityProviders').map((i) => i.nextToken)).toEqual([
        undefined,
        '10',
        undefined,
        '10',
      ]);
    });

    it("never parks a group that a cluster reached only through the sharers' 11th capacity provider still runs on", async () => {
      // Prepare: stage stops; 11 other clusters each have a provider; the last shares stage's group
      const estate = fleet(11);
      for (const c of estate.clusters) c.tags = { team: 'other' };
      estate.clusters.push({
        name: 'stage',
        providers: ['stage-cp'],
        services: [{ name: 'web', desired: 2 }],
      });
      estate.clusters[10]!.providers = ['c010-cp', 'shared-cp'];
      estate.providers = { ...estate.providers, 'stage-cp': 'stage-nodes', 'shared-cp': 'stage-nodes' };
      estate.groups!.push({ name: 'stage-nodes', min: 1, desired: 2, max: 3 });
      const aws = fakeAws(estate);

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(outcomes(report)).toEqual(['web changed', 'stage-nodes skipped']);
      expect(report.resources[1]?.detail).toBe(
        'capacity left running: service web in cluster c010 still runs (desiredCount 1)',
      );
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 1, desired: 2, max: 3 });
    });

    it('reads 130 clusters and their groups in pages of 100, and acts on those past the first page', async () => {
      // Prepare
      const aws = fakeAws(fleet(130));
      const log = calls(aws);

      // Act
      const report = await run({ action: 'stop', tags: { team: 'shop' }, dryRun: true }, ctx(), deps());

      // Assess
      expect(report.summary).toMatchObject({ planned: 260, failed: 0 });
      expect(inputs(log, 'ListClusters').map((i) => [i.maxResults, i.nextToken])).toEqual([
        [100, undefined],
        [100, '100'],
      ]);
      expect(inputs(log, 'DescribeClusters').map((i) => (i.clusters as string[]).length)).toEqual([100, 30]);
      const providers = inputs(log, 'DescribeCapacityProviders');
      expect(
        providers.map((i) => [(i.capacityProviders as string[]).length, i.maxResults, i.nextToken]),
      ).toEqual([
        ...Array.from({ length: 10 }, (_, p) => [100, undefined, p === 0 ? undefined : String(p * 10)]),
        [30, undefined, undefined],
        [30, undefined, '10'],
        [30, undefined, '20'],
      ]);
      expect(
        inputs(log, 'DescribeAutoScalingGroups').map((i) => [
          (i.AutoScalingGroupNames as string[]).length,
          i.MaxRecords,
        ]),
      ).toEqual([
        [100, 100],
        [30, 100],
      ]);
    });

    it('reads 120 services in ListServices pages of 100, DescribeServices batches of 10 and scalable targets 50 at a time', async () => {
      // Prepare
      const names = Array.from({ length: 120 }, (_, i) => `svc-${String(i).padStart(3, '0')}`);
      const aws = fakeAws({
        clusters: [
          {
            name: 'stage',
            services: names.map((name) => ({ name, desired: 2, scaling: { min: 1, max: 4 } })),
          },
        ],
      });

      const log = calls(aws);

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());

      // Assess
      expect(report.summary).toMatchObject({ changed: 120, failed: 0 });
      expect(aws.service('stage', 'svc-119')).toMatchObject({
        desired: 0,
        tags: { [STOPPED]: 'desired=2 min=1 max=4 suspended=none at=2026-11-23T18:00:00Z' },
      });
      expect(inputs(log, 'ListServices').map((i) => [i.maxResults, i.nextToken])).toEqual([
        [100, undefined],
        [100, '100'],
      ]);
      const batches = inputs(log, 'DescribeServices').map((i) => (i.services as string[]).length);
      expect(batches.slice(0, 12)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
      const targets = inputs(log, 'DescribeScalableTargets').map((i) => [
        (i.ResourceIds as string[]).length,
        i.MaxResults,
      ]);
      expect(targets).toEqual([
        [50, 50],
        [50, 50],
        [20, 50],
      ]);
    });
  });

  describe('the deadline (item 12)', () => {
    it('stops at a deadline hit mid-read with nothing planned from half a picture and nothing changed', async () => {
      // Prepare: stage shares its group with ops, whose 15 services (all at 0) are still being read
      const aws = fakeAws({
        clusters: [
          { name: 'stage', providers: ['stage-cp'], services: [{ name: 'web', desired: 2 }] },
          {
            name: 'ops',
            providers: ['stage-cp'],
            services: Array.from({ length: 15 }, (_, i) => ({ name: `job-${i}`, desired: 0 })),
          },
        ],
        providers: { 'stage-cp': 'stage-nodes' },
        groups: [{ name: 'stage-nodes', min: 1, desired: 2, max: 3 }],
      });
      const log: string[] = [];
      let sharerRead = false;
      aws.hooks.before = (op, input) => {
        log.push(op);
        if (op === 'DescribeServices' && input.cluster === clusterArn('ops')) sharerRead = true;
      };

      // Act
      const error = await run(
        { action: 'stop', clusters: ['stage'] },
        ctx({ hasTime: () => !sharerRead }),
        deps(),
      ).catch((e: unknown) => e);

      // Assess: the first 10 of ops' services were read, the rest were not: no plan, no change
      expect(error).toBeInstanceOf(OutOfTimeError);
      expect((error as Error).message).toBe(
        'the Lambda was about to time out while reading ECS services of cluster ops',
      );
      expect(log.filter((op) => WRITES.includes(op))).toEqual([]);
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 1, desired: 2, max: 3 });
    });

    it('starts with what the previous run left undone, and reports what the deadline leaves undone', async () => {
      // Prepare: the previous stop was cut short before f and g; this time the run has time to start two
      // services and none more. The executor asks before each service it starts, all in one go (the
      // fake answers synchronously); the two that started then finish their steps.
      const aws = fakeAws(stage(['a', 'b', 'c', 'd', 'e', 'f', 'g']));
      const log = calls(aws);
      let budget = 2;
      let started = false;
      const hasTime = () => {
        if (started) return true;
        queueMicrotask(() => (started = true));
        return budget-- > 0;
      };
      const carried = { stop: [serviceArn('stage', 'f'), serviceArn('stage', 'g')] };

      // Act
      const report = await run({ action: 'stop', clusters: ['stage'] }, ctx({ hasTime, carried }), deps());

      // Assess
      expect(
        writes(log)
          .filter((c) => c.op === 'UpdateService')
          .map((c) => c.input.service),
      ).toEqual(['f', 'g']);
      expect(report.summary).toEqual({
        changed: 2,
        planned: 0,
        unchanged: 0,
        skipped: 0,
        undone: 6,
        waiting: 0,
        failed: 0,
      });
      expect(outcomes(report)).toEqual([
        'a undone',
        'b undone',
        'c undone',
        'd undone',
        'e undone',
        'f changed',
        'g changed',
        'stage-nodes undone',
      ]);
      expect(report.resources[0]?.detail).toMatch(
        /^not started: the Lambda was about to time out; the next run starts with it \(would have: desiredCount 2 → 0;/,
      );
      expect(aws.groups.get('stage-nodes')).toMatchObject({ min: 1, desired: 2, max: 3 });
    });
  });

  describe('a run out of time between two steps of a resource (M2)', () => {
    // web (autoscaled 2–6, at 3) on stage-nodes (1/2/3). A stop's steps: web save, park scaling, desiredCount 0,
    // check; then the group save, resize, check. A start's: group resize, remove; then web scaling,
    // desiredCount, remove. The clock says "no time" once, right after the named call: the resource stops
    // there, `undone`, and the next run must finish it whatever comes next.
    const estate = (): FakeEstate => ({
      clusters: [
        {
          name: 'stage',
          providers: ['stage-cp'],
          services: [{ name: 'web', desired: 3, scaling: { min: 2, max: 6 } }],
        },
      ],
      providers: { 'stage-cp': 'stage-nodes' },
      groups: [{ name: 'stage-nodes', min: 1, desired: 2, max: 3 }],
    });
    const MORNING = new Date('2026-11-24T07:00:00Z');
    /** What a stop and a start act on, in one comparable shape. */
    const state = (aws: FakeAws) => {
      const web = aws.service('stage', 'web')!;
      const g = aws.groups.get('stage-nodes')!;
      return {
        web: {
          desired: web.desired,
          min: web.scaling?.min,
          max: web.scaling?.max,
          suspended: web.scaling?.suspended ?? [false, false, false],
          tags: web.tags ?? {},
        },
        group: { min: g.min, desired: g.desired, max: g.max, tags: g.tags ?? {} },
      };
    };
    const RUNNING = {
      web: { desired: 3, min: 2, max: 6, suspended: [false, false, false], tags: {} },
      group: { min: 1, desired: 2, max: 3, tags: {} },
    };

    it.each([
      { after: 'TagResource', row: 'web', before: 'park scaling (RegisterScalableTarget)' },
      { after: 'RegisterScalableTarget', row: 'web', before: 'set desiredCount (UpdateService)' },
      {
        after: 'UpdateService',
        row: 'web',
        before: 'check saved state is still there (DescribeServices)',
      },
      { after: 'CreateOrUpdateTags', row: 'stage-nodes', before: 'resize group (UpdateAutoScalingGroup)' },
      {
        after: 'UpdateAutoScalingGroup',
        row: 'stage-nodes',
        before: 'check saved state is still there (DescribeAutoScalingGroups)',
      },
    ])(
      'stops a stop after $after; the next stop finishes it, and a start from either restores exactly',
      async (cut) => {
        // Prepare
        const aws = fakeAws(estate());

        // Act: the cut stop; a start straight after it (on a copy of AWS's state), then the next stop and a start
        const cutReport = await run(
          { action: 'stop', clusters: ['stage'] },
          ctx({ hasTime: cutAfter(aws, cut.after) }),
          deps(),
        );
        aws.hooks.before = undefined;
        const cutState = state(aws);
        const stop = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps());
        const stopped = state(aws);
        const start = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps(MORNING));
        const restored = state(aws);

        const other = fakeAws(estate());
        Object.assign(other.service('stage', 'web')!, {
          desired: cutState.web.desired,
          scaling: { min: cutState.web.min, max: cutState.web.max, suspended: cutState.web.suspended },
          tags: cutState.web.tags,
        });
        Object.assign(other.groups.get('stage-nodes')!, cutState.group);
        const direct = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps(MORNING));

        // Assess: the cut row says where it stopped and what it had done; every way on restores exactly
        const cutRow = cutReport.resources.find((r) => r.arn.endsWith(cut.row));
        expect(cutRow).toMatchObject({ outcome: 'undone' });
        expect(cutRow?.detail).toMatch(
          new RegExp(
            `^stopped before ${cut.before.replace(/[()]/g, '\\$&')}: the run was about to time out; done before it: .*; the next run finishes it \\(planned: `,
          ),
        );
        expect(cutReport.summary).toMatchObject({ failed: 0, undone: cut.row === 'web' ? 2 : 1 });
        expect(stop.summary).toMatchObject({ failed: 0, undone: 0 });
        expect(stopped).toEqual({
          web: {
            desired: 0,
            min: 0,
            max: 0,
            suspended: [true, true, true],
            tags: { [STOPPED]: 'desired=3 min=2 max=6 suspended=none at=2026-11-23T18:00:00Z' },
          },
          group: {
            min: 0,
            desired: 0,
            max: 0,
            tags: { [STOPPED]: 'min=1 desired=2 max=3 at=2026-11-23T18:00:00Z' },
          },
        });
        expect(start.summary).toMatchObject({ changed: 2, failed: 0 });
        expect(restored).toEqual(RUNNING);
        expect(direct.summary).toMatchObject({ failed: 0, undone: 0, skipped: 0 });
        expect(state(other)).toEqual(RUNNING);
      },
    );
  });

  describe('a start out of time between two steps of a resource (M2)', () => {
    /** The same estate parked by a stop the night before. */
    const parked = (): FakeEstate => ({
      clusters: [
        {
          name: 'stage',
          providers: ['stage-cp'],
          services: [
            {
              name: 'web',
              desired: 0,
              scaling: { min: 0, max: 0, suspended: [true, true, true] },
              tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
            },
          ],
        },
      ],
      providers: { 'stage-cp': 'stage-nodes' },
      groups: [
        {
          name: 'stage-nodes',
          min: 0,
          desired: 0,
          max: 0,
          tags: { [STOPPED]: `min=1 desired=2 max=3 at=${EARLIER}` },
        },
      ],
    });
    const running = (aws: FakeAws) => {
      expect(aws.service('stage', 'web')).toEqual({
        name: 'web',
        desired: 3,
        scaling: { min: 2, max: 6, suspended: [false, false, false] },
        tags: {},
      });
      expect(aws.groups.get('stage-nodes')).toEqual({
        name: 'stage-nodes',
        min: 1,
        desired: 2,
        max: 3,
        tags: {},
      });
    };

    it.each([
      {
        after: 'UpdateAutoScalingGroup',
        row: 'stage-nodes',
        before: 'remove saved state (DeleteTags)',
        undone: 2,
        kept: EARLIER,
      },
      {
        after: 'RegisterScalableTarget',
        row: 'web',
        before: 'set desiredCount (UpdateService)',
        undone: 1,
        kept: '2026-11-23T19:00:00Z',
      },
      {
        after: 'UpdateService',
        row: 'web',
        before: 'remove saved state (UntagResource)',
        undone: 1,
        kept: '2026-11-23T19:00:00Z',
      },
    ])(
      'stops a start after $after; the next start finishes it, and so does a stop then a start',
      async (cut) => {
        // Prepare
        const first = fakeAws(parked());

        // Act: the cut start, then the next start
        const cutReport = await run(
          { action: 'start', clusters: ['stage'] },
          ctx({ hasTime: cutAfter(first, cut.after) }),
          deps(),
        );
        first.hooks.before = undefined;
        const between = {
          web: structuredClone(first.service('stage', 'web')),
          group: { ...first.groups.get('stage-nodes') },
        };
        const next = await run({ action: 'start', clusters: ['stage'] }, ctx(), deps());

        // Assess
        const cutRow = cutReport.resources.find((r) => r.arn.endsWith(cut.row));
        expect(cutRow).toMatchObject({ outcome: 'undone' });
        expect(cutRow?.detail).toMatch(
          new RegExp(
            `^stopped before ${cut.before.replace(/[()]/g, '\\$&')}: the run was about to time out; done before it: `,
          ),
        );
        expect(cutReport.summary).toMatchObject({ failed: 0, undone: cut.undone });
        if (cut.row === 'stage-nodes') {
          expect(cutReport.resources.find((r) => r.arn.endsWith('/web'))).toMatchObject({
            outcome: 'undone',
            detail: `not started: its capacity group ${groupArn('stage-nodes')} is not back (undone), so its tasks would have nowhere to run; nothing changed — run start again`,
          });
        }
        expect(next.summary).toMatchObject({ failed: 0, undone: 0, skipped: 0 });
        running(first);

        // Act: from the same cut state, a stop (that evening) and then a start (the next morning)
        const second = fakeAws(parked());
        Object.assign(second.service('stage', 'web')!, between.web);
        Object.assign(second.groups.get('stage-nodes')!, between.group);
        const stop = await run(
          { action: 'stop', clusters: ['stage'] },
          ctx(),
          deps(new Date('2026-11-23T19:00:00Z')),
        );
        const stoppedTags = { ...second.service('stage', 'web')?.tags };
        const start = await run(
          { action: 'start', clusters: ['stage'] },
          ctx(),
          deps(new Date('2026-11-24T07:00:00Z')),
        );

        // Assess: the stop kept what was saved as the saved state (written again by a stop that parks web,
        // as it is when the start did not get to web)
        expect(stop.summary).toMatchObject({ failed: 0, undone: 0 });
        expect(stoppedTags).toEqual({ [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${cut.kept}` });
        expect(start.summary).toMatchObject({ failed: 0, undone: 0, skipped: 0 });
        running(second);
      },
    );
  });

  describe('the plan digest', () => {
    it('returns a digest with a dry run, applies the same plan minutes later, and refuses a changed one', async () => {
      // Prepare
      const aws = fakeAws(stage(['a', 'b']));
      const dry = await run({ action: 'stop', clusters: ['stage'], dryRun: true }, ctx(), deps());

      // Act: someone scales b by hand before the apply
      aws.service('stage', 'b')!.desired = 5;
      const changed = await run(
        { action: 'stop', clusters: ['stage'], planDigest: dry.planDigest },
        ctx(),
        deps(new Date('2026-11-23T18:03:00Z')),
      );
      const again = await run({ action: 'stop', clusters: ['stage'], dryRun: true }, ctx(), deps());
      const applied = await run(
        { action: 'stop', clusters: ['stage'], planDigest: again.planDigest },
        ctx(),
        deps(new Date('2026-11-23T18:04:00Z')),
      );

      // Assess
      expect(dry.planDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(changed.summary).toMatchObject({ changed: 0, skipped: 3 });
      expect(changed.resources[1]?.detail).toBe(
        'the plan changed since it was confirmed (another run, a person or AWS changed something in between); ' +
          'nothing changed — look at the new plan and confirm again (the new plan: desiredCount 5 → 0; saved in tag nightshift:stopped)',
      );
      expect(applied.summary).toMatchObject({ changed: 3, failed: 0 });
      expect(aws.service('stage', 'b')).toMatchObject({
        desired: 0,
        tags: { [STOPPED]: 'desired=5 at=2026-11-23T18:04:00Z' },
      });
      expect(applied.planDigest).toBeUndefined();
    });
  });
});
