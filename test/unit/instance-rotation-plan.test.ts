import { describe, expect, it } from 'vitest';
import {
  decodeRotation,
  encodeRotation,
  planRotations,
  type RotationOptions,
} from '#functions/instance-rotation/plan.ts';
import type { GroupState, InstanceState } from '#functions/instance-rotation/inventory.ts';
import { windowAt } from '#functions/instance-rotation/window.ts';
import { parseCron } from '#shared/cron.ts';

// Monday 2026-11-23 04:00 CET: inside the default window (weekdays 01:00-05:50 Europe/Berlin).
const NOW = new Date('2026-11-23T03:00:00Z');
const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);
const WEEKDAYS = parseCron('cron(0/10 1-5 ? * MON-FRI *)', 'Europe/Berlin');
/** The options of a run at `now` under `schedule` (a fake clock: nothing reads the real one). */
const optsAt = (now: Date, schedule = WEEKDAYS): RotationOptions => ({
  maxAge: { text: '14d', ms: 14 * DAY },
  replacementTimeoutMinutes: 60,
  abandonBackoff: { text: '24h', ms: DAY },
  now,
  window: windowAt(schedule, now),
});
const OPTS = optsAt(NOW);

const instance = (id: string, days: number, extra: Partial<InstanceState> = {}): InstanceState => ({
  id,
  lifecycle: 'InService',
  health: 'Healthy',
  since: daysAgo(days),
  ...extra,
});
const group = (extra: Partial<GroupState> = {}): GroupState => ({
  name: 'web',
  arn: 'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/web',
  min: 2,
  max: 4,
  desired: 3,
  tags: { 'nightshift:rotate': 'true' },
  suspended: [],
  instances: [instance('i-0000000a', 20), instance('i-0000000b', 30), instance('i-0000000c', 2)],
  activities: [],
  // Its scaling activities were read back to the rotation's start: none launched or terminated anything
  history: [],
  containers: {},
  ...extra,
});
const plan = (g: GroupState, opts: Partial<RotationOptions> = {}) =>
  planRotations([g], undefined, { ...OPTS, ...opts })[0];

describe('planRotations: starting a rotation', () => {
  it('launches a replacement for the oldest due instance first, saving the desired count', () => {
    expect(plan(group())).toMatchObject({
      hasWork: true,
      steps: [
        {
          op: 'save-rotation',
          value:
            'desired=3 instance=i-0000000b phase=launching at=2026-11-23T03:00:00Z started=2026-11-23T03:00:00Z suspended=AlarmNotification+ScheduledActions+AZRebalance',
        },
        { op: 'suspend', processes: ['AlarmNotification', 'ScheduledActions', 'AZRebalance'] },
        { op: 'set-desired', desired: 4 },
      ],
      detail:
        'launch a replacement for i-0000000b (30d old, max 14d): desired 3 → 4; ' +
        'AlarmNotification, ScheduledActions, AZRebalance suspended until it is done; 1 more due after it',
    });
  });

  it('lets the group tag override maxAge with its own duration', () => {
    expect(plan(group({ tags: { 'nightshift:rotate': '45d' } }))).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
      detail: 'no instance older than 45d (oldest: i-0000000b, 30d)',
    });
  });

  it('makes every instance due at maxAge 0h', () => {
    const young = group({
      instances: [instance('i-0000000a', 0.01), instance('i-0000000b', 0.02)],
      desired: 2,
    });

    expect(plan(young, { maxAge: { text: '0h', ms: 0 } })?.steps[0]).toMatchObject({
      value: expect.stringContaining('instance=i-0000000b'),
    });
  });

  it('fails a group whose opt-in tag is neither true nor a duration', () => {
    expect(plan(group({ tags: { 'nightshift:rotate': 'yes please' } }))).toMatchObject({
      outcome: 'failed',
      detail: 'tag nightshift:rotate=yes please is neither true, false nor a duration such as 7d',
    });
  });

  it('treats nightshift:rotate=false as opted out, not as an error', () => {
    expect(plan(group({ tags: { 'nightshift:rotate': 'false' } }))).toMatchObject({
      outcome: 'skipped',
      detail: 'opted out: nightshift:rotate=false',
    });
  });

  it('holds only the processes that were not suspended already, and saves which', () => {
    const g = group({ suspended: ['AZRebalance'] });

    expect(plan(g)?.steps.slice(0, 2)).toEqual([
      {
        op: 'save-rotation',
        value:
          'desired=3 instance=i-0000000b phase=launching at=2026-11-23T03:00:00Z started=2026-11-23T03:00:00Z suspended=AlarmNotification+ScheduledActions',
      },
      { op: 'suspend', processes: ['AlarmNotification', 'ScheduledActions'] },
    ]);
  });

  it.each([
    [
      { warmPool: true },
      'the group has a warm pool: its instances keep their age across reuse, so rotation is not supported',
    ],
    [
      { weighted: true },
      'desired capacity is in units (vCPU, memory or instance weights), not instances: rotation is not supported',
    ],
    [
      { readError: 'ThrottlingException: Rate exceeded' },
      "could not read the group's state: ThrottlingException: Rate exceeded",
    ],
  ])('does not rotate groups it cannot reason about: %o', (extra, detail) => {
    expect(plan(group(extra))).toMatchObject({ hasWork: false, detail });
  });

  it.each([
    [{ suspended: ['AZRebalance', 'ReplaceUnhealthy'] }, 'processes suspended: ReplaceUnhealthy'],
    [
      { activities: ['Launching a new EC2 instance (InProgress)'] },
      'scaling activity in progress: Launching a new EC2 instance (InProgress)',
    ],
    [{ refresh: 'instance refresh r-1 is InProgress' }, 'instance refresh r-1 is InProgress'],
    [{ desired: 4 }, 'not stable: 3 of 4 desired instances in service'],
    [
      {
        instances: [
          instance('i-0000000a', 20),
          instance('i-0000000b', 30, { health: 'Unhealthy' }),
          instance('i-0000000c', 2),
        ],
      },
      'not stable: 2 of 3 desired instances in service',
    ],
    [
      { desired: 3, max: 3 },
      'no headroom: desired 3 = max 3, and capacity never drops below desired; raise max by one to rotate',
    ],
  ])('skips an unstable or full group: %o', (extra, detail) => {
    expect(plan(group(extra))).toMatchObject({ hasWork: false, outcome: 'skipped', detail });
  });

  it('reports named groups that do not exist', () => {
    expect(planRotations([], ['ghost'], OPTS)).toEqual([
      {
        arn: 'ghost',
        type: 'autoscaling-group',
        group: 'ghost',
        hasWork: false,
        outcome: 'failed',
        detail: 'Auto Scaling group not found',
        steps: [],
      },
    ]);
  });
});

describe('planRotations: a rotation in flight', () => {
  // Saved at 03:50 CET by a run of this window, before desired was raised
  const rotating = (
    phase: 'launching' | 'draining',
    at = '2026-11-23T02:50:00Z',
    started = '2026-11-23T02:50:00Z',
  ) => ({
    'nightshift:rotate': 'true',
    'nightshift:rotation': `desired=3 instance=i-0000000b phase=${phase} at=${at} started=${started} suspended=AlarmNotification+ScheduledActions`,
  });
  const RESUME = { op: 'resume', processes: ['AlarmNotification', 'ScheduledActions'] };
  const CLEAR = { op: 'clear-rotation', keys: ['nightshift:rotation'] };
  // i-…d launched 5 minutes ago, after the rotation began: the replacement
  const replacement = instance('i-0000000d', 0, { since: new Date(NOW.getTime() - 5 * 60_000) });
  const withReplacement = [...group().instances, replacement];

  it('waits while the replacement is not in service, never starting a second one', () => {
    const g = group({ tags: rotating('launching'), desired: 4, activities: ['Launching (InProgress)'] });

    expect(plan(g)).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
      detail: 'waiting for the replacement of i-0000000b: 3 of 4 in service, Launching (InProgress)',
    });
  });

  it('terminates the old instance, decrementing desired, once the replacement is in service', () => {
    const g = group({ tags: rotating('launching'), desired: 4, instances: withReplacement });

    expect(plan(g)).toMatchObject({
      steps: [{ op: 'terminate', instanceId: 'i-0000000b' }, RESUME, CLEAR],
      detail:
        'terminate i-0000000b now that its replacement is in service (4 in service): desired 4 → 3; resume AlarmNotification, ScheduledActions',
    });
  });

  it('drains an ECS container instance first, then waits for its tasks to leave', () => {
    const container = { cluster: 'stage', arn: 'arn:ci', status: 'ACTIVE', runningTasks: 2 };
    const launching = group({
      tags: rotating('launching'),
      desired: 4,
      instances: withReplacement,
      containers: { 'i-0000000b': container },
    });
    // The drain recorded the replacement
    const recorded = (tags: Record<string, string>) => ({
      ...tags,
      'nightshift:rotation': `${tags['nightshift:rotation']} replacement=i-0000000d`,
    });
    const draining = group({
      tags: recorded(rotating('draining')),
      desired: 4,
      instances: withReplacement,
      containers: { 'i-0000000b': { ...container, status: 'DRAINING' } },
    });
    const drained = group({
      tags: recorded(rotating('draining')),
      desired: 4,
      instances: withReplacement,
      containers: { 'i-0000000b': { ...container, status: 'DRAINING', runningTasks: 0 } },
    });

    expect(plan(launching)?.steps).toEqual([
      { op: 'drain', cluster: 'stage', containerInstance: 'arn:ci' },
      {
        op: 'save-rotation',
        value:
          'desired=3 instance=i-0000000b phase=draining at=2026-11-23T03:00:00Z started=2026-11-23T02:50:00Z suspended=AlarmNotification+ScheduledActions replacement=i-0000000d',
      },
    ]);
    expect(plan(draining)).toMatchObject({
      hasWork: false,
      detail: 'draining i-0000000b: 2 ECS task(s) still on it',
    });
    expect(plan(drained)?.steps.map((s) => s.op)).toEqual(['terminate', 'resume', 'clear-rotation']);
  });

  it('finishes when the old instance left the group, restoring desired if it was not decremented', () => {
    const g = group({
      tags: rotating('launching'),
      desired: 4,
      instances: [instance('i-0000000a', 20), instance('i-0000000c', 2), replacement],
    });

    expect(plan(g)).toMatchObject({
      steps: [{ op: 'set-desired', desired: 3 }, RESUME, CLEAR],
      detail:
        'i-0000000b left the group; desired 4 → 3, which terminates nothing: only 3 instance(s) count towards desired; ' +
        'AlarmNotification, ScheduledActions resumed; rotation finished',
    });
  });

  it('never terminates while the others in service would not cover desired, nor below min', () => {
    // The replacement was scaled in (or replaced): only 3 in service, one of them the old instance
    const short = group({ tags: rotating('draining'), desired: 4 });
    const atMin = group({ tags: rotating('launching'), desired: 4, min: 4, instances: withReplacement });

    expect(plan(short)).toMatchObject({
      hasWork: false,
      detail: 'waiting before terminating i-0000000b: 2 other instance(s) in service, desired 4, min 2',
    });
    // Nothing is terminated; the run only records the replacement it can now tell apart
    expect(plan(atMin)?.steps).toEqual([
      {
        op: 'save-rotation',
        value:
          'desired=3 instance=i-0000000b phase=launching at=2026-11-23T02:50:00Z started=2026-11-23T02:50:00Z suspended=AlarmNotification+ScheduledActions replacement=i-0000000d',
      },
    ]);
  });

  it('raises desired when the state was saved but the raise never happened', () => {
    expect(plan(group({ tags: rotating('launching') }))).toMatchObject({
      steps: [{ op: 'set-desired', desired: 4 }],
      detail: 'launch the replacement for i-0000000b saved at 2026-11-23T02:50:00Z: desired 3 → 4',
    });
  });

  it('finishes a rotation in flight even after the group opted out', () => {
    const g = group({
      tags: { 'nightshift:rotation': rotating('launching')['nightshift:rotation'] },
      desired: 4,
      instances: withReplacement,
    });

    expect(plan(g)?.steps.map((s) => s.op)).toEqual(['terminate', 'resume', 'clear-rotation']);
  });

  it('fails, changing nothing, on an unreadable rotation tag', () => {
    const g = group({ tags: { 'nightshift:rotate': 'true', 'nightshift:rotation': 'desired=three' } });

    expect(plan(g)).toMatchObject({ hasWork: false, outcome: 'failed' });
    expect(plan(g)?.detail).toMatch(/^tag nightshift:rotation is unreadable/);
  });

  it('reads a rotation saved before `started` existed, taking `at` as its start', () => {
    const legacy = {
      'nightshift:rotate': 'true',
      'nightshift:rotation':
        'desired=3 instance=i-0000000b phase=launching at=2026-11-23T02:50:00Z suspended=AlarmNotification+ScheduledActions',
    };

    expect(plan(group({ tags: legacy, desired: 4, instances: withReplacement }))?.steps[0]).toEqual({
      op: 'terminate',
      instanceId: 'i-0000000b',
    });
  });
});

describe('planRotations: an abandoned rotation (item 10)', () => {
  const rotating = (phase: 'launching' | 'draining', at: string, tags: Record<string, string> = {}) => ({
    'nightshift:rotate': 'true',
    'nightshift:rotation': `desired=3 instance=i-0000000b phase=${phase} at=${at} started=2026-11-23T01:00:00Z suspended=AlarmNotification+ScheduledActions`,
    ...tags,
  });
  const RESUME = { op: 'resume', processes: ['AlarmNotification', 'ScheduledActions'] };
  const ABANDONED = { op: 'save-abandoned', value: 'at=2026-11-23T03:00:00Z instance=i-0000000b' };
  const CLEAR = { op: 'clear-rotation', keys: ['nightshift:rotation'] };
  // Launched at 01:20Z for the rotation that began at 01:00Z, and never healthy
  const unhealthy = instance('i-0000000d', 0, {
    since: new Date('2026-11-23T01:20:00Z'),
    health: 'Unhealthy',
  });

  it('gives up after the timeout: terminates the replacement by id, resumes, and records the abandonment', () => {
    const g = group({
      tags: rotating('launching', '2026-11-23T01:00:00Z'),
      desired: 4,
      instances: [...group().instances, unhealthy],
    });

    expect(plan(g)).toMatchObject({
      steps: [{ op: 'terminate-replacement', instanceId: 'i-0000000d' }, RESUME, ABANDONED, CLEAR],
      detail:
        'rotation of i-0000000b abandoned: replacement i-0000000d (the only instance launched since the rotation began) terminated, desired 4 → 3; AlarmNotification, ScheduledActions resumed',
      failure:
        'the replacement for i-0000000b did not come into service within 60 min (3 of 4 in service); rotation abandoned: ' +
        'replacement i-0000000d (the only instance launched since the rotation began) terminated, desired 4 → 3; AlarmNotification, ScheduledActions resumed; ' +
        'no new rotation in this group before 2026-11-24T03:00:00Z (ABANDON_BACKOFF 24h, tag nightshift:rotation-abandoned)',
    });
  });

  it('puts desired back itself when nothing was launched for the rotation yet', () => {
    const g = group({ tags: rotating('launching', '2026-11-23T01:00:00Z'), desired: 4 });

    expect(plan(g)?.steps).toEqual([{ op: 'set-desired', desired: 3 }, RESUME, ABANDONED, CLEAR]);
  });

  it('never takes the old instance, or one that was there before the rotation, for the replacement, nor lets the group pick one', () => {
    // i-…a, i-…c were there before; i-…b is the old one; i-…e started before the rotation too, yet 4
    // instances count towards desired: lowering desired would make the group pick one to terminate
    const before = group({
      tags: rotating('launching', '2026-11-23T01:00:00Z'),
      desired: 4,
      instances: [
        ...group().instances,
        instance('i-0000000e', 0, { since: new Date('2026-11-23T00:59:00Z'), health: 'Unhealthy' }),
      ],
    });
    // Two instances launched since the rotation began (the group replaced an unhealthy one too)
    const two = group({
      tags: rotating('launching', '2026-11-23T01:00:00Z'),
      desired: 4,
      instances: [
        ...group().instances,
        unhealthy,
        instance('i-0000000f', 0, { since: new Date('2026-11-23T01:30:00Z'), health: 'Unhealthy' }),
      ],
    });

    // Inside the window the run waits, changing nothing, and fails the row saying what to check
    for (const g of [before, two]) {
      expect(plan(g)).toMatchObject({ hasWork: false, outcome: 'failed', steps: [] });
      expect(plan(g)?.detail).toMatch(
        /^the replacement for i-0000000b did not come into service within 60 min \(\d of 4 in service\); the rotation cannot be abandoned safely: cannot tell which instance is the replacement of i-0000000b: /,
      );
      expect(plan(g)?.detail).toContain(
        'nothing was terminated and desired stays at 4, rather than letting the group pick which instance goes',
      );
    }
    expect(plan(before)?.detail).toContain('no instance launched since the rotation began is in the group');
    expect(plan(two)?.detail).toContain(
      '2 instances launched since the rotation began are in the group (i-0000000d, i-0000000f)',
    );
  });

  it('abandons a drain that does not finish in time, setting the container instance back to ACTIVE', () => {
    const container = { cluster: 'stage', arn: 'arn:ci', status: 'DRAINING', runningTasks: 1 };
    const g = group({
      tags: rotating('draining', '2026-11-23T01:30:00Z'),
      desired: 4,
      instances: [
        ...group().instances,
        instance('i-0000000d', 0, { since: new Date('2026-11-23T01:20:00Z') }),
      ],
      containers: { 'i-0000000b': container },
    });

    expect(plan(g)).toMatchObject({
      steps: [
        { op: 'undrain', cluster: 'stage', containerInstance: 'arn:ci' },
        { op: 'terminate-replacement', instanceId: 'i-0000000d' },
        RESUME,
        ABANDONED,
        CLEAR,
      ],
      failure: expect.stringMatching(
        /^i-0000000b did not finish draining within 60 min \(1 ECS task\(s\) left/,
      ),
    });
  });

  it('records no abandonment on a group that opted out meanwhile (the role may not tag it)', () => {
    const tags = rotating('launching', '2026-11-23T01:00:00Z');
    const g = group({ tags: { 'nightshift:rotation': tags['nightshift:rotation'] }, desired: 4 });

    expect(plan(g)?.steps.map((s) => s.op)).toEqual(['set-desired', 'resume', 'clear-rotation']);
  });

  it('starts no new rotation in the group until the back-off has passed', () => {
    const abandoned = {
      'nightshift:rotate': 'true',
      'nightshift:rotation-abandoned': 'at=2026-11-22T04:00:00Z instance=i-0000000b',
    };

    expect(plan(group({ tags: abandoned }))).toMatchObject({
      outcome: 'skipped',
      detail:
        'a rotation of i-0000000b was abandoned at 2026-11-22T04:00:00Z: no new rotation before 2026-11-23T04:00:00Z ' +
        '(ABANDON_BACKOFF 24h); delete tag nightshift:rotation-abandoned to retry sooner',
    });
    expect(plan(group({ tags: abandoned }), { abandonBackoff: { text: '12h', ms: DAY / 2 } })).toMatchObject({
      hasWork: true,
    });
    expect(plan(group({ tags: { ...abandoned, 'nightshift:rotation-abandoned': 'soon' } }))).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(/^tag nightshift:rotation-abandoned is unreadable/),
    });
  });

  it('removes an old abandonment when the next rotation finishes', () => {
    const g = group({
      tags: {
        ...rotating('launching', '2026-11-23T02:50:00Z'),
        'nightshift:rotation-abandoned': 'at=2026-11-20T04:00:00Z instance=i-0000000a',
      },
      desired: 4,
      instances: [...group().instances, instance('i-0000000d', 0)],
    });

    expect(plan(g)?.steps.at(-1)).toEqual({
      op: 'clear-rotation',
      keys: ['nightshift:rotation', 'nightshift:rotation-abandoned'],
    });
  });
});

describe('planRotations: nothing left suspended outside the window (item 2)', () => {
  const EVERY_NIGHT = parseCron('cron(0/10 1-5 * * ? *)', 'Europe/Berlin');
  const RESUME = { op: 'resume', processes: ['AlarmNotification', 'ScheduledActions'] };
  const CLEAR = { op: 'clear-rotation', keys: ['nightshift:rotation'] };
  const rotatingSince = (started: string, phase: 'launching' | 'draining' = 'launching') => ({
    'nightshift:rotate': 'true',
    'nightshift:rotation': `desired=3 instance=i-0000000b phase=${phase} at=${started} started=${started} suspended=AlarmNotification+ScheduledActions`,
  });
  const launchedAt = (iso: string, extra: Partial<InstanceState> = {}) =>
    instance('i-0000000d', 0, { since: new Date(iso), ...extra });
  const planAt = (g: GroupState, iso: string, schedule = WEEKDAYS) =>
    planRotations([g], undefined, optsAt(new Date(iso), schedule))[0];

  it('starts a rotation when the window has room for it, up to REPLACEMENT_TIMEOUT_MINUTES before its last run', () => {
    // 04:50 CET: the last run is at 05:50, an hour away
    expect(planAt(group(), '2026-11-23T03:50:10Z')?.hasWork).toBe(false);
    expect(planAt(group(), '2026-11-23T03:50:00Z')).toMatchObject({ hasWork: true });
  });

  it('does not start a rotation that cannot finish before the window ends', () => {
    // 05:00 CET, 50 minutes before the last run
    expect(planAt(group(), '2026-11-23T04:00:20Z')).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        'i-0000000b is due, but too little of the window is left: its last run is Mon 2026-11-23 05:50 Europe/Berlin, ' +
        'in 49m, and a rotation may take 1h (REPLACEMENT_TIMEOUT_MINUTES to launch)',
    });
  });

  it('counts the drain of an ECS container instance in the time a rotation needs', () => {
    const ecs = group({
      containers: { 'i-0000000b': { cluster: 'stage', arn: 'arn:ci', status: 'ACTIVE', runningTasks: 3 } },
    });

    // 04:00 CET: 1h 50m left, two hours needed
    expect(planAt(ecs, '2026-11-23T03:00:00Z')).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringContaining(
        'a rotation may take 2h (REPLACEMENT_TIMEOUT_MINUTES to launch, and as long again to drain its ECS container instance)',
      ),
    });
    expect(planAt(ecs, '2026-11-23T02:50:00Z')?.hasWork).toBe(true);
  });

  it('starts nothing at the last run of the window, saying why', () => {
    expect(planAt(group(), '2026-11-23T04:50:20Z')).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        'i-0000000b is due, but no rotation starts: this is the last run of its window (Mon 2026-11-23 01:00 Europe/Berlin to ' +
        'Mon 2026-11-23 05:50 Europe/Berlin); the next run is Tue 2026-11-24 01:00 Europe/Berlin, 19h 9m away',
    });
  });

  it('continues a rotation in flight at the run just before the last one', () => {
    const g = group({
      tags: rotatingSince('2026-11-23T04:10:00Z'),
      desired: 4,
      activities: ['Launching (InProgress)'],
    });

    // 05:40 CET
    expect(planAt(g, '2026-11-23T04:40:20Z')).toMatchObject({ hasWork: false, outcome: 'unchanged' });
  });

  it('finishes, at the last run, a rotation whose replacement is in service', () => {
    const g = group({
      tags: rotatingSince('2026-11-23T04:00:00Z'),
      desired: 4,
      instances: [...group().instances, launchedAt('2026-11-23T04:01:00Z')],
    });

    const last = planAt(g, '2026-11-23T04:50:20Z');
    expect(last).toMatchObject({
      closing: true,
      steps: [{ op: 'terminate', instanceId: 'i-0000000b' }, RESUME, CLEAR],
      detail: expect.stringMatching(
        /^rotation of i-0000000b finished: i-0000000b terminated now that its replacement is in service \(4 in service\), desired 4 → 3; AlarmNotification, ScheduledActions resumed — this is the last run of its window/,
      ),
    });
    expect(last?.failure).toBeUndefined();
  });

  it('rolls back, at the last run, a rotation whose replacement is not in service yet', () => {
    // A rotation started near the end by an older version: launched at 05:35 CET, still pending at 05:50
    const g = group({
      tags: rotatingSince('2026-11-23T04:35:00Z'),
      desired: 4,
      instances: [
        ...group().instances,
        launchedAt('2026-11-23T04:36:00Z', { lifecycle: 'Pending', health: 'Healthy' }),
      ],
    });

    expect(planAt(g, '2026-11-23T04:50:20Z')).toMatchObject({
      closing: true,
      steps: [{ op: 'terminate-replacement', instanceId: 'i-0000000d' }, RESUME, CLEAR],
      detail: expect.stringMatching(
        /^rotation of i-0000000b rolled back \(i-0000000b stays\): replacement i-0000000d \(the only instance launched since the rotation began\) terminated, desired 4 → 3; AlarmNotification, ScheduledActions resumed — this is the last run/,
      ),
    });
  });

  it('rolls back a drain in progress at the last run: the container instance goes back to ACTIVE', () => {
    const g = group({
      tags: rotatingSince('2026-11-23T04:00:00Z', 'draining'),
      desired: 4,
      instances: [...group().instances, launchedAt('2026-11-23T04:01:00Z')],
      containers: { 'i-0000000b': { cluster: 'stage', arn: 'arn:ci', status: 'DRAINING', runningTasks: 2 } },
    });

    expect(planAt(g, '2026-11-23T04:50:20Z')?.steps).toEqual([
      { op: 'undrain', cluster: 'stage', containerInstance: 'arn:ci' },
      { op: 'terminate-replacement', instanceId: 'i-0000000d' },
      RESUME,
      CLEAR,
    ]);
  });

  it('only resumes and clears when the state was saved but desired never raised', () => {
    const g = group({ tags: rotatingSince('2026-11-23T04:40:00Z') });

    expect(planAt(g, '2026-11-23T04:50:20Z')?.steps).toEqual([RESUME, CLEAR]);
  });

  it("rolls back at Friday's last run, which the weekend follows", () => {
    const g = group({ tags: rotatingSince('2026-11-27T04:30:00Z'), desired: 4 });

    const friday = planAt(g, '2026-11-27T04:50:30Z');
    expect(friday?.steps).toEqual([{ op: 'set-desired', desired: 3 }, RESUME, CLEAR]);
    expect(friday?.detail).toMatch(/the next run is Mon 2026-11-30 01:00 Europe\/Berlin, 2d 19h away$/);
  });

  it('starts nothing and rolls back on demand outside the window', () => {
    expect(planAt(group(), '2026-11-23T11:00:00Z')).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(
        /^i-0000000b is due, but no rotation starts: outside the rotation window/,
      ),
    });
    // A rotation the last run could not end (it failed half-way): an on-demand run ends it, and says it was overdue
    const g = group({
      tags: rotatingSince('2026-11-23T04:30:00Z'),
      desired: 4,
      suspended: ['AlarmNotification', 'ScheduledActions'],
    });
    const later = planAt(g, '2026-11-23T11:00:00Z');
    expect(later?.steps).toEqual([{ op: 'set-desired', desired: 3 }, RESUME, CLEAR]);
    expect(later?.failure).toMatch(
      /^the window's last run \(Mon 2026-11-23 05:50 Europe\/Berlin\) did not finish it: processes \(AlarmNotification, ScheduledActions\) stayed suspended outside the window until now; rotation of i-0000000b rolled back/,
    );
  });

  it('rolls back first when the last run of a window did not happen, even in the next window, and fails the row', () => {
    // Started Friday 05:30; Friday's 05:50 run never came; Monday 01:00 is the next run
    const g = group({
      tags: rotatingSince('2026-11-27T04:30:00Z'),
      desired: 4,
      suspended: ['AlarmNotification', 'ScheduledActions'],
    });

    const monday = planAt(g, '2026-11-30T00:00:30Z');
    expect(monday).toMatchObject({
      closing: true,
      steps: [{ op: 'set-desired', desired: 3 }, RESUME, CLEAR],
      failure: expect.stringMatching(
        /^the rotation began at 2026-11-27T04:30:00Z, before this window began \(Mon 2026-11-30 01:00 Europe\/Berlin\): the last run of its window did not finish it: processes \(AlarmNotification, ScheduledActions\) stayed suspended outside the window until now/,
      ),
    });
  });

  it('says so when an overdue rotation had its processes resumed already (a roll-back that failed half-way)', () => {
    const g = group({ tags: rotatingSince('2026-11-27T04:30:00Z'), desired: 4, suspended: [] });

    expect(planAt(g, '2026-11-30T00:00:30Z')?.failure).toMatch(
      /did not finish it: its processes were resumed, but its extra capacity and state stayed; rotation of i-0000000b rolled back/,
    );
  });

  it('keeps a rotation going across the hour clocks skip (last Sunday of March)', () => {
    // Started 01:20 CET; 01:50 CET is followed by 03:00 CEST ten minutes later
    const g = group({
      tags: rotatingSince('2026-03-29T00:20:00Z'),
      desired: 4,
      activities: ['Launching (InProgress)'],
    });

    expect(planAt(g, '2026-03-29T00:50:10Z', EVERY_NIGHT)).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
    });
  });

  it('ends a rotation before the hour clocks repeat (last Sunday of October), when 70 minutes pass without a run', () => {
    // Started 01:30 CEST; the 02:50 CEST run is followed by 03:00 CET, 70 minutes later
    const g = group({ tags: rotatingSince('2026-10-24T23:30:00Z'), desired: 4 });

    const before = planAt(g, '2026-10-25T00:50:10Z', EVERY_NIGHT);
    expect(before?.steps).toEqual([{ op: 'set-desired', desired: 3 }, RESUME, CLEAR]);
    expect(before?.failure).toBeUndefined();
    // 02:00 CEST: fifty minutes are left before 02:50 CEST, too few to start
    const october = group({
      instances: ['i-0000000a', 'i-0000000b', 'i-0000000c'].map((id) =>
        instance(id, 0, { since: new Date('2026-09-01T00:00:00Z') }),
      ),
    });
    expect(planAt(october, '2026-10-25T00:00:10Z', EVERY_NIGHT)?.detail).toMatch(
      /too little of the window is left: its last run is Sun 2026-10-25 02:50 Europe\/Berlin, in 49m/,
    );
  });

  it('keeps a window that crosses midnight whole', () => {
    const lateShift = parseCron('cron(0/10 22-23,0-1 ? * MON-FRI *)', 'Europe/Berlin');
    const g = group({
      tags: rotatingSince('2026-11-23T22:30:00Z'),
      desired: 4,
      activities: ['Launching (InProgress)'],
    });

    // Monday 23:50 CET: continued; the window ends Tuesday 01:50, so a rotation may still start
    expect(planAt(g, '2026-11-23T22:50:05Z', lateShift)).toMatchObject({ outcome: 'unchanged' });
    expect(planAt(group(), '2026-11-23T22:50:05Z', lateShift)?.hasWork).toBe(true);
    // Friday 23:50 CET: the last run before the weekend
    expect(planAt(g, '2026-11-27T22:50:05Z', lateShift)?.closing).toBe(true);
  });

  it('says which processes stay suspended when a group cannot be read at the last run', () => {
    const g = group({
      tags: rotatingSince('2026-11-23T04:30:00Z'),
      suspended: ['AlarmNotification', 'ScheduledActions'],
      readError: 'Throttling: Rate exceeded',
    });

    expect(planAt(g, '2026-11-23T04:50:20Z')).toMatchObject({
      outcome: 'failed',
      detail: expect.stringMatching(
        /^could not read the group's state: Throttling: Rate exceeded; the rotation in flight stays as it is, with AlarmNotification, ScheduledActions suspended, outside its window \(this is the last run/,
      ),
    });
  });
});

describe('planRotations: groups ecs-scheduler parked (item 11)', () => {
  const PARKED = { 'nightshift:stopped': 'min=2 desired=3 max=4 at=2026-11-22T18:00:00Z' };

  it('never rotates a parked group', () => {
    expect(plan(group({ tags: { 'nightshift:rotate': 'true', ...PARKED } }))).toMatchObject({
      hasWork: false,
      outcome: 'skipped',
      detail:
        'parked by ecs-scheduler (nightshift:stopped): a parked group is never rotated; to rotate it now, wak' +
        'e the ECS cluster whose capacity it is (`nightshift wake --cluster <cluster> --for 1h`), or the grou' +
        'p if it follows a schedule itself (`nightshift wake --group web --for 1h`), then `nightshift rotate --group web`',
    });
  });

  it('rolls back a rotation in flight on a group parked meanwhile, leaving its size to ecs-scheduler', () => {
    const g = group({
      tags: {
        'nightshift:rotate': 'true',
        'nightshift:rotation':
          'desired=3 instance=i-0000000b phase=launching at=2026-11-23T02:50:00Z started=2026-11-23T02:50:00Z suspended=AlarmNotification',
        ...PARKED,
      },
      min: 0,
      max: 0,
      desired: 0,
      instances: [...group().instances, instance('i-0000000d', 0)],
    });

    const parked = plan(g);
    expect(parked?.steps).toEqual([
      { op: 'resume', processes: ['AlarmNotification'] },
      { op: 'clear-rotation', keys: ['nightshift:rotation'] },
    ]);
    expect(parked?.detail).toMatch(
      /^rotation of i-0000000b rolled back \(i-0000000b stays\): size left to ecs-scheduler \(now desired 0\); AlarmNotification resumed — the group was parked by ecs-scheduler/,
    );
    expect(parked?.failure).toBeUndefined();
  });

  it('fails the row when the size ecs-scheduler saved includes the rotation’s +1, saying how to fix it', () => {
    const g = group({
      tags: {
        'nightshift:rotate': 'true',
        'nightshift:rotation':
          'desired=3 instance=i-0000000b phase=launching at=2026-11-23T02:50:00Z started=2026-11-23T02:50:00Z suspended=none',
        'nightshift:stopped': 'min=2 desired=4 max=4 at=2026-11-23T02:55:00Z',
      },
      desired: 0,
    });

    expect(plan(g)?.failure).toBe(
      "ecs-scheduler saved desired=4 in nightshift:stopped, which includes this rotation's +1: a start would bring the group back one instance larger; change it to desired=3 in that tag",
    );
  });
});

describe('planRotations: the plan digest', () => {
  it('describes a start without ages or clocks, so a dry run and its apply minutes later agree', () => {
    const first = plan(group());
    const later = planRotations([group()], undefined, optsAt(new Date(NOW.getTime() + 3 * 60_000)))[0];

    expect(first?.detail).not.toBe(
      planRotations([group()], undefined, optsAt(new Date(NOW.getTime() + 3 * 3_600_000 * 24)))[0]?.detail,
    );
    expect(first?.digestKey).toBe(later?.digestKey);
    expect(first?.digestKey).toBe(
      'save-rotation desired=3 instance=i-0000000b phase=launching suspended=AlarmNotification+ScheduledActions+AZRebalance; ' +
        '{"op":"suspend","processes":["AlarmNotification","ScheduledActions","AZRebalance"]}; {"op":"set-desired","desired":4}',
    );
  });
});

describe('planRotations: telling the replacement apart (review risks 1 and 2)', () => {
  // Started at 03:50 CET by a run of this window: desired 3 → 4
  const STARTED = '2026-11-23T02:50:00Z';
  const rotation = (extra = '') =>
    `desired=3 instance=i-0000000b phase=launching at=${STARTED} started=${STARTED} suspended=AlarmNotification+ScheduledActions${extra}`;
  const tags = (extra = '') => ({ 'nightshift:rotate': 'true', 'nightshift:rotation': rotation(extra) });
  const RESUME = { op: 'resume', processes: ['AlarmNotification', 'ScheduledActions'] };
  const CLEAR = { op: 'clear-rotation', keys: ['nightshift:rotation'] };
  const LAST_RUN = new Date('2026-11-23T04:50:20Z');
  const at = (iso: string) => new Date(iso);
  // What Auto Scaling writes for the launch our SetDesiredCapacity started, and for one it starts to
  // replace an unhealthy instance (DescribeScalingActivities; AWS CLI and Tools for PowerShell examples)
  const OUR_LAUNCH = (id: string) => ({
    kind: 'launch' as const,
    instance: id,
    cause:
      'At 2026-11-23T02:50:05Z a user request explicitly set group desired capacity changing the desired capacity from 3 to 4.  ' +
      'At 2026-11-23T02:50:12Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 3 to 4.',
    status: 'Successful',
  });
  const HEALTH_CHECK_TERMINATION = (id: string) => ({
    kind: 'terminate' as const,
    instance: id,
    cause:
      'At 2026-11-23T03:20:00Z an instance was taken out of service in response to an EC2 instance status checks failure.',
    status: 'Successful',
  });
  const HEALTH_CHECK_LAUNCH = (id: string) => ({
    kind: 'launch' as const,
    instance: id,
    cause:
      'At 2026-11-23T03:20:40Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 3 to 4.',
    status: 'Successful',
  });
  // i-…d: the rotation's replacement, never healthy. i-…e: launched by ReplaceUnhealthy for i-…c.
  const ours = instance('i-0000000d', 0, { since: at('2026-11-23T02:50:15Z'), health: 'Unhealthy' });
  const replacedC = instance('i-0000000e', 0, { since: at('2026-11-23T03:20:45Z') });
  const unhealthyReplacement = group({
    tags: tags(),
    desired: 4,
    instances: [instance('i-0000000a', 20), instance('i-0000000b', 30), ours, replacedC],
    history: [
      HEALTH_CHECK_LAUNCH('i-0000000e'),
      HEALTH_CHECK_TERMINATION('i-0000000c'),
      OUR_LAUNCH('i-0000000d'),
    ],
  });

  it('records the replacement as soon as a run can tell it, from the launch our SetDesiredCapacity caused', () => {
    const g = group({
      tags: tags(),
      desired: 4,
      instances: [...group().instances, { ...ours, lifecycle: 'Pending', health: 'Healthy' }],
      activities: ['Launching a new EC2 instance: i-0000000d (InProgress)'],
      history: [OUR_LAUNCH('i-0000000d')],
    });

    expect(plan(g)).toMatchObject({
      hasWork: true,
      steps: [{ op: 'save-rotation', value: rotation(' replacement=i-0000000d') }],
      detail:
        'waiting for the replacement of i-0000000b: 3 of 4 in service, Launching a new EC2 instance: i-0000000d (InProgress); ' +
        'replacement i-0000000d recorded in nightshift:rotation',
    });
    // Recorded once: the next run only waits
    expect(plan({ ...g, tags: tags(' replacement=i-0000000d') })).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
    });
  });

  it('rolls back by its launch activity, not the instance the group launched meanwhile to replace an unhealthy one', () => {
    const last = planRotations([unhealthyReplacement], undefined, optsAt(LAST_RUN))[0];

    expect(last?.steps).toEqual([{ op: 'terminate-replacement', instanceId: 'i-0000000d' }, RESUME, CLEAR]);
    expect(last?.detail).toMatch(
      /^rotation of i-0000000b rolled back \(i-0000000b stays\): replacement i-0000000d \(its launch activity\) terminated, desired 4 → 3/,
    );
  });

  it('rolls back only the recorded replacement, whatever the group launched since', () => {
    const g = { ...unhealthyReplacement, tags: tags(' replacement=i-0000000d'), history: undefined };

    expect(planRotations([g], undefined, optsAt(LAST_RUN))[0]?.steps[0]).toEqual({
      op: 'terminate-replacement',
      instanceId: 'i-0000000d',
    });
  });

  it('never takes an instance launched by ReplaceUnhealthy for the replacement when ours is not told apart', () => {
    // Our launch is pending and its activity not listed yet; i-…e replaced i-…c meanwhile
    const g = group({
      tags: tags(),
      desired: 4,
      instances: [
        instance('i-0000000a', 20),
        instance('i-0000000b', 30),
        replacedC,
        { ...ours, lifecycle: 'Pending', health: 'Healthy', since: undefined },
      ],
      history: [HEALTH_CHECK_LAUNCH('i-0000000e'), HEALTH_CHECK_TERMINATION('i-0000000c')],
    });

    const last = planRotations([g], undefined, optsAt(LAST_RUN))[0];

    // Nothing is terminated and desired stays: the processes are resumed, the state kept, the row failed
    expect(last?.steps).toEqual([
      RESUME,
      { op: 'save-rotation', value: rotation().replace(/suspended=\S+/, 'suspended=none') },
    ]);
    expect(last?.steps.some((s) => s.op === 'terminate-replacement' || s.op === 'set-desired')).toBe(false);
    expect(last?.detail).toMatch(
      /^rotation of i-0000000b not rolled back \(i-0000000b stays\): AlarmNotification, ScheduledActions resumed; the rotation's state is kept/,
    );
    expect(last?.failure).toBe(
      'cannot tell which instance is the replacement of i-0000000b: EC2 does not say yet when i-0000000d started; ' +
        'the group took out i-0000000c since the rotation began, and may have launched one in its place; ' +
        'nothing was terminated and desired stays at 4, rather than letting the group pick which instance goes; ' +
        "check the group's activity history for the instance launched for this rotation (desired 3 → 4 at 2026-11-23T02:50:00Z), " +
        'then either terminate it with `aws autoscaling terminate-instance-in-auto-scaling-group --instance-id <id> --should-decrement-desired-capacity`, ' +
        'or add replacement=<id> to tag nightshift:rotation and run `nightshift rotate --group web`: the next run then finishes the roll-back',
    );
  });

  it('does not take an instance whose start EC2 does not know yet for the replacement', () => {
    const g = group({
      tags: tags(),
      desired: 4,
      instances: [
        ...group().instances,
        instance('i-0000000f', 0, { lifecycle: 'Pending', since: undefined }),
      ],
    });

    const last = planRotations([g], undefined, optsAt(LAST_RUN))[0];
    expect(last?.steps.map((s) => s.op)).toEqual(['resume', 'save-rotation']);
    expect(last?.failure).toMatch(
      /^cannot tell which instance is the replacement of i-0000000b: EC2 does not say yet when i-0000000f started/,
    );
  });

  it('sets desired back only when that terminates nothing: fewer instances count than the saved desired', () => {
    // Our launch failed; i-…e replaced i-…c: three instances count towards desired 4
    const g = group({
      tags: tags(),
      desired: 4,
      instances: [instance('i-0000000a', 20), instance('i-0000000b', 30), replacedC],
      history: [HEALTH_CHECK_LAUNCH('i-0000000e'), HEALTH_CHECK_TERMINATION('i-0000000c')],
    });

    expect(planRotations([g], undefined, optsAt(LAST_RUN))[0]?.steps).toEqual([
      { op: 'set-desired', desired: 3 },
      RESUME,
      CLEAR,
    ]);
  });

  it('waits inside the window when the replacement cannot be told apart, and resumes at the closing run', () => {
    const g = { ...unhealthyReplacement, history: undefined };
    // An hour after it began, inside the window
    const late = planRotations([g], undefined, optsAt(at('2026-11-23T03:55:00Z')))[0];

    expect(late).toMatchObject({ hasWork: false, outcome: 'failed', steps: [] });
    expect(late?.detail).toContain(
      'the rotation cannot be abandoned safely: cannot tell which instance is the replacement of i-0000000b: ' +
        'its scaling activities since 2026-11-23T02:50:00Z could not all be read',
    );
    expect(late?.detail).toMatch(
      /The processes it suspended stay suspended until the window's last run, which resumes them$/,
    );
    expect(planRotations([g], undefined, optsAt(LAST_RUN))[0]?.steps.map((s) => s.op)).toEqual([
      'resume',
      'save-rotation',
    ]);
  });

  it('keeps a rotation whose processes were resumed, failing each run until a person acts, changing nothing', () => {
    const g = {
      ...unhealthyReplacement,
      tags: { ...tags(), 'nightshift:rotation': rotation().replace(/suspended=\S+/, 'suspended=none') },
      history: undefined,
    };

    // The next window's first run: overdue, still cannot tell, nothing to resume
    const next = planRotations([g], undefined, optsAt(at('2026-11-24T00:00:30Z')))[0];
    expect(next).toMatchObject({ hasWork: false, outcome: 'failed', steps: [] });
    expect(next?.detail).toMatch(/its processes were resumed, but its extra capacity and state stayed/);
  });

  it('removes the rotation’s +1 by id when the group replaced the old instance itself, never by lowering desired', () => {
    // i-…b failed its health check: the group terminated it and launched i-…f; desired is still 4
    const g = group({
      tags: tags(),
      desired: 4,
      instances: [
        instance('i-0000000a', 20),
        instance('i-0000000c', 2),
        { ...ours, health: 'Healthy' },
        instance('i-0000000f', 0, { since: at('2026-11-23T03:30:00Z') }),
      ],
      history: [
        HEALTH_CHECK_LAUNCH('i-0000000f'),
        HEALTH_CHECK_TERMINATION('i-0000000b'),
        OUR_LAUNCH('i-0000000d'),
      ],
    });

    expect(plan(g)).toMatchObject({
      steps: [{ op: 'terminate-replacement', instanceId: 'i-0000000d' }, RESUME, CLEAR],
      detail:
        'i-0000000b left the group; replacement i-0000000d (its launch activity) terminated, desired 4 → 3; ' +
        'AlarmNotification, ScheduledActions resumed; rotation finished',
    });
    // Without its launch activity the two cannot be told apart: nothing terminated, desired kept
    const unknown = plan({ ...g, history: undefined });
    expect(unknown?.steps.map((s) => s.op)).toEqual(['resume', 'save-rotation']);
    expect(unknown?.failure).toMatch(/^cannot tell which instance is the replacement of i-0000000b/);
  });

  it('waits, inside the window, for the instance the group launches in place of the old one before removing the +1', () => {
    // i-…b failed its health check: the group terminated it and is launching i-…f; i-…d (ours) serves
    const g = group({
      tags: tags(),
      desired: 4,
      instances: [
        instance('i-0000000a', 20),
        instance('i-0000000c', 2),
        { ...ours, health: 'Healthy' },
        instance('i-0000000f', 0, { since: at('2026-11-23T03:30:00Z'), lifecycle: 'Pending' }),
      ],
      activities: ['Launching a new EC2 instance: i-0000000f (InProgress)'],
      history: [
        HEALTH_CHECK_LAUNCH('i-0000000f'),
        HEALTH_CHECK_TERMINATION('i-0000000b'),
        OUR_LAUNCH('i-0000000d'),
      ],
    });

    expect(plan(g)).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
      steps: [],
      detail:
        'i-0000000b left the group, which is replacing it (3 of 4 in service, Launching a new EC2 instance: i-0000000f (InProgress)): ' +
        "the rotation's +1 is removed once the others in service cover desired 3 without it",
    });
    // Once i-…f is in service, i-…d goes, by id
    const settled = {
      ...g,
      activities: [],
      instances: g.instances.map((i) => (i.id === 'i-0000000f' ? { ...i, lifecycle: 'InService' } : i)),
    };
    expect(plan(settled)?.steps).toEqual([
      { op: 'terminate-replacement', instanceId: 'i-0000000d' },
      RESUME,
      CLEAR,
    ]);
    // The window's last run does not wait
    expect(plan(g, optsAt(LAST_RUN))?.steps[0]).toEqual({
      op: 'terminate-replacement',
      instanceId: 'i-0000000d',
    });
  });

  it('fits the rotation state in a tag value (256 characters) with the longest values', () => {
    const value = encodeRotation({
      desired: 999_999_999,
      instance: 'i-0123456789abcdef0',
      phase: 'rolling-back',
      at: '2026-11-23T02:50:00Z',
      started: '2026-11-23T02:50:00Z',
      suspended: ['AlarmNotification', 'ScheduledActions', 'AZRebalance'],
      replacement: 'i-0fedcba9876543210',
    });

    expect(value.length).toBeLessThanOrEqual(256);
    expect(decodeRotation(value)).toMatchObject({
      phase: 'rolling-back',
      replacement: 'i-0fedcba9876543210',
    });
    expect(() => decodeRotation(value.replace(/ replacement=\S+/, ''))).toThrow(/names no replacement/);
  });

  it('keeps the abandonment it records when the group carries an older one', () => {
    const g = group({
      tags: {
        ...tags(),
        'nightshift:rotation': `desired=3 instance=i-0000000b phase=launching at=2026-11-23T01:00:00Z started=2026-11-23T01:00:00Z suspended=AlarmNotification+ScheduledActions`,
        'nightshift:rotation-abandoned': 'at=2026-11-20T01:00:00Z instance=i-0000000a',
      },
      desired: 4,
      instances: [...group().instances, { ...ours, since: at('2026-11-23T01:00:30Z') }],
    });

    const steps = plan(g)?.steps;
    expect(steps?.map((s) => s.op)).toEqual([
      'terminate-replacement',
      'resume',
      'save-abandoned',
      'clear-rotation',
    ]);
    expect(steps?.at(-1)).toEqual(CLEAR);
  });
});

describe('planRotations: an old instance out of service (review risk 3)', () => {
  const STARTED = '2026-11-23T02:50:00Z';
  const tags = {
    'nightshift:rotate': 'true',
    'nightshift:rotation': `desired=3 instance=i-0000000b phase=launching at=${STARTED} started=${STARTED} suspended=AlarmNotification replacement=i-0000000d`,
  };
  const replacement = instance('i-0000000d', 0, { since: new Date('2026-11-23T02:51:00Z') });
  // Someone put the old instance in Standby without decrementing: the group launched i-…e in its place
  const standby = group({
    tags,
    desired: 4,
    instances: [
      instance('i-0000000a', 20),
      instance('i-0000000b', 30, { lifecycle: 'Standby' }),
      instance('i-0000000c', 2),
      replacement,
      instance('i-0000000e', 0, { since: new Date('2026-11-23T02:55:00Z') }),
    ],
  });

  it('never terminates an old instance in Standby with a decrement: desired does not count it', () => {
    const w = plan(standby);

    expect(w).toMatchObject({ hasWork: false, outcome: 'unchanged' });
    expect(w?.detail).toBe(
      'waiting before terminating i-0000000b: i-0000000b is Standby, and only an instance in service is counted in desired capacity: ' +
        'terminating it with ShouldDecrementDesiredCapacity would make the group take an instance in service out instead; ' +
        'it is terminated once it is in service again (ExitStandby), or the rotation is rolled back at the window’s last run or after REPLACEMENT_TIMEOUT_MINUTES',
    );
  });

  it('rolls back at the last run instead, terminating the recorded replacement', () => {
    const last = planRotations([standby], undefined, optsAt(new Date('2026-11-23T04:50:20Z')))[0];

    expect(last?.steps.some((s) => s.op === 'terminate' && s.instanceId === 'i-0000000b')).toBe(false);
    expect(last?.steps[0]).toEqual({ op: 'terminate-replacement', instanceId: 'i-0000000d' });
  });

  it('never terminates a replacement in Standby with a decrement either', () => {
    // Put in Standby without a decrement: the group launched i-…e for it
    const g = group({
      tags,
      desired: 4,
      instances: [
        ...group().instances,
        { ...replacement, lifecycle: 'Standby' },
        instance('i-0000000e', 0, { since: new Date('2026-11-23T02:55:00Z'), lifecycle: 'Pending' }),
      ],
    });

    const last = planRotations([g], undefined, optsAt(new Date('2026-11-23T04:50:20Z')))[0];
    expect(last?.steps.map((s) => s.op)).toEqual(['resume', 'save-rotation']);
    expect(last?.failure).toMatch(
      /^its replacement i-0000000d is Standby, which desired capacity does not count/,
    );
  });
});

describe('planRotations: rolling back a replacement that carries ECS tasks (M5)', () => {
  const STARTED = '2026-11-23T04:00:00Z';
  const LAST_RUN = new Date('2026-11-23T04:50:20Z');
  const tags = (phase: string, extra = '') => ({
    'nightshift:rotate': 'true',
    'nightshift:rotation': `desired=3 instance=i-0000000b phase=${phase} at=${STARTED} started=${STARTED} suspended=AlarmNotification+ScheduledActions replacement=i-0000000d${extra}`,
  });
  const ROLLING_BACK = `desired=3 instance=i-0000000b phase=rolling-back at=2026-11-23T04:50:20Z started=${STARTED} suspended=none replacement=i-0000000d`;
  const withReplacement = [
    ...group().instances,
    instance('i-0000000d', 0, { since: new Date('2026-11-23T04:01:00Z') }),
  ];
  const ci = (status: string, runningTasks: number) => ({
    cluster: 'stage',
    arn: 'arn:ci-d',
    status,
    runningTasks,
  });
  const rolling = (container: ReturnType<typeof ci> | undefined, extra: Partial<GroupState> = {}) =>
    group({
      tags: { 'nightshift:rotate': 'true', 'nightshift:rotation': ROLLING_BACK },
      desired: 4,
      instances: withReplacement,
      ...(container && { containers: { 'i-0000000d': container } }),
      ...extra,
    });

  it('drains the replacement first at the closing run, resuming the processes at once, and keeps a rolling-back state', () => {
    // The old instance is draining, its tasks moving to the replacement; the window ends
    const g = group({
      tags: tags('draining'),
      desired: 4,
      instances: withReplacement,
      containers: {
        'i-0000000b': { cluster: 'stage', arn: 'arn:ci-b', status: 'DRAINING', runningTasks: 1 },
        'i-0000000d': ci('ACTIVE', 3),
      },
    });

    const last = planRotations([g], undefined, optsAt(LAST_RUN))[0];

    expect(last).toMatchObject({
      closing: true,
      steps: [
        { op: 'undrain', cluster: 'stage', containerInstance: 'arn:ci-b' },
        { op: 'drain', cluster: 'stage', containerInstance: 'arn:ci-d' },
        { op: 'resume', processes: ['AlarmNotification', 'ScheduledActions'] },
        { op: 'save-rotation', value: ROLLING_BACK },
      ],
    });
    expect(last?.steps.some((s) => s.op === 'terminate-replacement')).toBe(false);
    expect(last?.failure).toBeUndefined();
    expect(last?.detail).toMatch(
      /replacement i-0000000d \(recorded in nightshift:rotation\) set to DRAINING, 3 ECS task\(s\) on it: a later run terminates it, desired 4 → 3, once they have left; AlarmNotification, ScheduledActions resumed/,
    );
  });

  it('finishes the roll-back in a later run, even outside any window, once the replacement has drained', () => {
    // The next afternoon: outside the window
    const afternoon = optsAt(new Date('2026-11-23T13:00:00Z'));
    const waiting = planRotations(
      [rolling(ci('DRAINING', 2))],
      undefined,
      optsAt(new Date('2026-11-23T05:00:00Z')),
    )[0];
    const drained = planRotations([rolling(ci('DRAINING', 0))], undefined, afternoon)[0];

    expect(waiting).toMatchObject({
      hasWork: false,
      outcome: 'unchanged',
      detail:
        'rolling back the rotation of i-0000000b: waiting for replacement i-0000000d to drain before it is terminated (2 ECS task(s) still on it)',
    });
    expect(drained).toMatchObject({
      steps: [
        { op: 'terminate-replacement', instanceId: 'i-0000000d' },
        { op: 'clear-rotation', keys: ['nightshift:rotation'] },
      ],
      detail:
        'roll-back of the rotation of i-0000000b finished: replacement i-0000000d terminated, its ECS tasks gone, desired 4 → 3',
    });
    expect(drained?.closing).toBeUndefined();
  });

  it('fails, changing nothing, when the replacement does not drain within REPLACEMENT_TIMEOUT_MINUTES', () => {
    const stuck = planRotations(
      [rolling(ci('DRAINING', 1))],
      undefined,
      optsAt(new Date('2026-11-23T06:00:00Z')),
    )[0];

    expect(stuck).toMatchObject({ hasWork: false, outcome: 'failed' });
    expect(stuck?.detail).toMatch(
      /replacement i-0000000d has not finished draining after 1h 9m \(REPLACEMENT_TIMEOUT_MINUTES 60\): 1 ECS task\(s\) still on it; standalone tasks do not drain/,
    );
  });

  it('leaves the replacement, back to ACTIVE, when desired was changed meanwhile', () => {
    const scaled = planRotations(
      [rolling(ci('DRAINING', 2), { desired: 5 })],
      undefined,
      optsAt(LAST_RUN),
    )[0];

    expect(scaled?.steps).toEqual([
      { op: 'undrain', cluster: 'stage', containerInstance: 'arn:ci-d' },
      { op: 'clear-rotation', keys: ['nightshift:rotation'] },
    ]);
  });

  it('terminates at once a replacement whose ECS container instance has no tasks left', () => {
    const g = group({
      tags: tags('launching'),
      desired: 4,
      instances: [
        ...group().instances,
        instance('i-0000000d', 0, { since: new Date('2026-11-23T04:01:00Z'), health: 'Unhealthy' }),
      ],
      containers: { 'i-0000000d': ci('DRAINING', 0) },
    });

    expect(planRotations([g], undefined, optsAt(LAST_RUN))[0]?.steps[0]).toEqual({
      op: 'terminate-replacement',
      instanceId: 'i-0000000d',
    });
  });

  it('abandons inside the window by draining the replacement too, recording the back-off', () => {
    const g = group({
      tags: tags('launching'),
      desired: 4,
      instances: [
        ...group().instances,
        instance('i-0000000d', 0, { since: new Date('2026-11-23T04:01:00Z'), health: 'Unhealthy' }),
      ],
      containers: { 'i-0000000d': ci('ACTIVE', 1) },
    });

    const abandoned = planRotations(
      [g],
      undefined,
      optsAt(new Date('2026-11-23T05:01:00Z'), parseCron('cron(* * * * ? *)', 'UTC')),
    )[0];
    expect(abandoned?.steps.map((s) => s.op)).toEqual(['drain', 'resume', 'save-abandoned', 'save-rotation']);
    expect(abandoned?.steps.at(-1)).toEqual({
      op: 'save-rotation',
      value: `desired=3 instance=i-0000000b phase=rolling-back at=2026-11-23T05:01:00Z started=${STARTED} suspended=none replacement=i-0000000d`,
    });
  });
});
