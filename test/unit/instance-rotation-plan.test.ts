import { describe, expect, it } from 'vitest';
import { planRotations, type RotationOptions } from '#functions/instance-rotation/plan.ts';
import type { GroupState, InstanceState } from '#functions/instance-rotation/inventory.ts';

const NOW = new Date('2026-11-23T03:00:00Z');
const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);
const OPTS: RotationOptions = {
  maxAge: { text: '14d', ms: 14 * DAY },
  replacementTimeoutMinutes: 60,
  now: NOW,
};

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
            'desired=3 instance=i-0000000b phase=launching at=2026-11-23T03:00:00Z suspended=AlarmNotification+ScheduledActions+AZRebalance',
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
          'desired=3 instance=i-0000000b phase=launching at=2026-11-23T03:00:00Z suspended=AlarmNotification+ScheduledActions',
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
  const rotating = (phase: 'launching' | 'draining', at = '2026-11-23T02:50:00Z') => ({
    'nightshift:rotate': 'true',
    'nightshift:rotation': `desired=3 instance=i-0000000b phase=${phase} at=${at} suspended=AlarmNotification+ScheduledActions`,
  });
  const RESUME = { op: 'resume', processes: ['AlarmNotification', 'ScheduledActions'] };
  const withReplacement = [...group().instances, instance('i-0000000d', 0)];

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
      steps: [{ op: 'terminate', instanceId: 'i-0000000b' }, RESUME, { op: 'clear-rotation' }],
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
      container,
    });
    const draining = group({
      tags: rotating('draining'),
      desired: 4,
      instances: withReplacement,
      container: { ...container, status: 'DRAINING' },
    });
    const drained = group({
      tags: rotating('draining'),
      desired: 4,
      instances: withReplacement,
      container: { ...container, status: 'DRAINING', runningTasks: 0 },
    });

    expect(plan(launching)?.steps).toEqual([
      { op: 'drain', cluster: 'stage', containerInstance: 'arn:ci' },
      {
        op: 'save-rotation',
        value:
          'desired=3 instance=i-0000000b phase=draining at=2026-11-23T03:00:00Z suspended=AlarmNotification+ScheduledActions',
      },
    ]);
    expect(plan(draining)).toMatchObject({
      hasWork: false,
      detail: 'draining i-0000000b: 2 ECS task(s) still on it',
    });
    expect(plan(drained)?.steps.map((s) => s.op)).toEqual(['terminate', 'resume', 'clear-rotation']);
  });

  it('abandons a rotation whose replacement never came, restoring the saved desired', () => {
    const g = group({ tags: rotating('launching', '2026-11-23T01:30:00Z'), desired: 4 });

    expect(plan(g)).toMatchObject({
      steps: [{ op: 'set-desired', desired: 3 }, RESUME, { op: 'clear-rotation' }],
      failure:
        'the replacement for i-0000000b did not come into service within 60 min (3 of 4 in service); rotation abandoned, desired restored to 3',
    });
  });

  it('finishes when the old instance left the group, restoring desired if it was not decremented', () => {
    const g = group({
      tags: rotating('launching'),
      desired: 4,
      instances: [instance('i-0000000a', 20), instance('i-0000000c', 2), instance('i-0000000d', 0)],
    });

    expect(plan(g)).toMatchObject({
      steps: [{ op: 'set-desired', desired: 3 }, RESUME, { op: 'clear-rotation' }],
      detail: 'i-0000000b left the group; desired 4 → 3 restored; rotation finished',
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
    expect(plan(atMin)).toMatchObject({ hasWork: false, outcome: 'unchanged' });
  });

  it('abandons a drain that does not finish in time, setting the container instance back to ACTIVE', () => {
    const container = { cluster: 'stage', arn: 'arn:ci', status: 'DRAINING', runningTasks: 1 };
    const g = group({
      tags: rotating('draining', '2026-11-23T01:00:00Z'),
      desired: 4,
      instances: withReplacement,
      container,
    });

    expect(plan(g)).toMatchObject({
      steps: [
        { op: 'undrain', cluster: 'stage', containerInstance: 'arn:ci' },
        { op: 'set-desired', desired: 3 },
        RESUME,
        { op: 'clear-rotation' },
      ],
      failure: expect.stringMatching(
        /^i-0000000b did not finish draining within 60 min \(1 ECS task\(s\) left/,
      ),
    });
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
});
