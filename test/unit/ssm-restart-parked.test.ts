import { describe, expect, it } from 'vitest';
import { planRestart, type RestartRequest } from '#functions/ssm-restart/plan.ts';
import type { InstanceState, RestartEstate, ServiceState } from '#functions/ssm-restart/inventory.ts';
import type { Lease } from '#shared/lease.ts';
import type { BundledSchedules } from '#shared/parked.ts';
import { parseSchedules } from '#shared/schedules.ts';

// Monday 23 November 2026, 19:01 in Berlin: office-hours (07:00-19:00) wants its resources stopped.
const now = new Date('2026-11-23T18:01:00Z');
// The tag names are a public contract: spelled out here rather than imported.
const RESTARTABLE = { 'nightshift:restartable': 'true' };
const STOPPED = 'nightshift:stopped';
const SCHEDULE = 'nightshift:schedule';
const schedules: BundledSchedules = {
  schedules: parseSchedules(
    {
      schedules: {
        'office-hours': {
          timezone: 'Europe/Berlin',
          periods: [{ begintime: '07:00', endtime: '19:00', weekdays: ['mon-fri'] }],
        },
      },
    },
    { calendars: { check: () => undefined, holidays: () => new Map() } },
  ),
};
const owner = { holder: 'ssm-restart run 2f8e (nightshift-dev-ssm-restart)', token: 'run-token' };
const opts = (records: Map<string, Lease | undefined> = new Map()) => ({
  cooldownMinutes: 15,
  maxPerHour: 3,
  now,
  records: { records },
  owner,
  runUntil: new Date(now.getTime() + 11 * 60_000),
  schedules,
});

const instance = (n: number, spec: Partial<InstanceState> = {}): InstanceState => {
  const id = `i-${n.toString(16).padStart(17, '0')}`;
  return {
    id,
    arn: `arn:aws:ec2:eu-central-1:123456789012:instance/${id}`,
    state: 'running',
    pingStatus: 'Online',
    tags: RESTARTABLE,
    ...spec,
  };
};
const service = (spec: Partial<ServiceState> = {}): ServiceState => ({
  arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
  cluster: 'stage',
  name: 'web',
  tags: RESTARTABLE,
  ...spec,
});
const estate = (parts: Partial<RestartEstate> = {}): RestartEstate => ({
  instances: [],
  missingInstances: [],
  groups: {},
  services: [],
  missingServices: [],
  ...parts,
});
const alarm = (spec: Partial<RestartRequest> = {}): RestartRequest => ({
  trigger: 'alarm',
  reason: 'alarm web-unhealthy',
  what: { kind: 'container', name: 'web' },
  selection: { instanceIds: [], groups: [], services: [] },
  ...spec,
});
/** A record the flap guard latched: an alarm restart of the target would be `failed` and renew it. */
const latched = (scope: string): Lease => ({
  scope,
  holder: 'ssm-restart run 1 (nightshift-dev-ssm-restart)',
  token: 't',
  acquiredAt: new Date(now.getTime() - 3 * 3_600_000),
  expiresAt: new Date(now.getTime() + 3_650 * 86_400_000),
  version: 3,
  data: { flapped: new Date(now.getTime() - 2 * 3_600_000).toISOString() },
});

describe('planRestart: targets nightshift parked or is about to park', () => {
  it('skips the instances of a parked group, sends nothing and claims nothing', () => {
    const group = { name: 'stage-web', tags: { [STOPPED]: 'min=2 desired=2 max=2' } };
    const plan = planRestart(alarm(), estate({ instances: [instance(1, { group }), instance(2)] }), opts());

    expect(plan.instances.map((w) => [w.instanceId, w.outcome, w.hasWork, w.claim, w.latch])).toEqual([
      ['i-00000000000000001', 'skipped', false, undefined, undefined],
      ['i-00000000000000002', undefined, true, expect.anything(), undefined],
    ]);
    expect(plan.instances[0]?.detail).toMatch(/^its Auto Scaling group stage-web is parked by nightshift/);
    expect(plan.send?.batches).toEqual([['i-00000000000000002']]);
  });

  it('says why a parked group named by an alarm has no instance to restart, with the hint', () => {
    const plan = planRestart(
      alarm({ selection: { instanceIds: [], groups: ['stage-web'], services: [] } }),
      estate({ groups: { 'stage-web': [] }, groupTags: { 'stage-web': { [SCHEDULE]: 'office-hours' } } }),
      opts(),
    );

    expect(plan.selection).toEqual([
      {
        arn: 'autoScalingGroupName/stage-web',
        type: 'autoscaling-group',
        hasWork: false,
        outcome: 'skipped',
        detail: expect.stringMatching(
          /^the group is to be parked: office-hours: stopped since Mon 19:00 .*`nightshift wake --group stage-web --for 1h` first; nothing sent$/,
        ),
      },
    ]);
  });

  it('does not let a parked service trip the flap guard: no latch is renewed, nothing claimed', () => {
    const s = service({ clusterTags: { [SCHEDULE]: 'office-hours' } });
    const plan = planRestart(
      alarm({ what: { kind: 'ecs-service' } }),
      estate({ services: [s] }),
      opts(new Map([[`restart#${s.arn}`, latched(`restart#${s.arn}`)]])),
    );

    expect(plan.services).toHaveLength(1);
    expect(plan.services[0]).toMatchObject({ outcome: 'skipped', hasWork: false });
    expect(plan.services[0]?.latch).toBeUndefined();
    expect(plan.services[0]?.claim).toBeUndefined();
    expect(plan.services[0]?.detail).toContain('`nightshift wake --cluster stage --service web --for 1h`');
    // The same alarm on the service when it is not held meets the latch (and renews it)
    const awake = planRestart(
      alarm({ what: { kind: 'ecs-service' } }),
      estate({ services: [service()] }),
      opts(new Map([[`restart#${s.arn}`, latched(`restart#${s.arn}`)]])),
    );
    expect(awake.services[0]).toMatchObject({ outcome: 'failed', latch: expect.anything() });
  });

  it('restarts a service whose cluster tags could not be read, and says its schedule was not checked', () => {
    const plan = planRestart(
      alarm({ what: { kind: 'ecs-service' } }),
      estate({ services: [service({ clusterTagsError: 'DescribeClusters: AccessDeniedException' })] }),
      opts(),
    );

    expect(plan.services[0]?.hasWork).toBe(true);
    expect(plan.services[0]?.detail).toContain(
      "its cluster's tags could not be read (DescribeClusters: AccessDeniedException): its cluster's schedule and override were not checked",
    );
  });
});
