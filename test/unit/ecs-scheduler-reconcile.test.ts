/**
 * The reconcile planner (functions/ecs-scheduler/reconcile.ts): which opted-in services a reconcile
 * stops or starts at `now`, and why, with DST edges in Europe/Berlin and America/New_York. Pure: no
 * AWS, a fixed `now`.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterState, Estate, ServiceState } from '#functions/ecs-scheduler/inventory.ts';
import {
  clusterClearRows,
  decideReconcile,
  groupStartRecordCandidates,
  planReconcile,
  startRecordCandidates,
  type ReconcileOptions,
} from '#functions/ecs-scheduler/reconcile.ts';
import { EcsSchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { parseInput } from '#shared/input.ts';
import { planOverride, type OverrideOptions } from '#functions/ecs-scheduler/override.ts';
import type { OverrideInput } from '#events/ecs-scheduler/schema.ts';
import { parseSchedules } from '#shared/schedules.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';

const SCHEDULES = parseSchedules({
  schedules: {
    'office-hours': {
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
    },
    'office-enforced': {
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
      enforced: true,
    },
    // Begins inside the hour Berlin skips on 29 March 2026 (02:00 → 03:00).
    early: { timezone: 'Europe/Berlin', periods: [{ begintime: '02:30', endtime: '20:00' }] },
    // Runs 01:00-02:30: on 25 October 2026 Berlin lives 02:00-03:00 twice, so it runs twice that night.
    repeat: { timezone: 'Europe/Berlin', periods: [{ begintime: '01:00', endtime: '02:30' }] },
    ny: {
      timezone: 'America/New_York',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
    },
    'stage-nights': { periods: [{ endtime: '20:00', weekdays: 'mon-fri' }] },
    'always-on': { periods: [{ weekdays: 'mon-sun' }] },
  },
});

const OLD = new Date('2026-01-05T09:00:00Z');
const CLUSTER_ARN = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';

const service = (name: string, over: Partial<ServiceState> = {}): ServiceState => ({
  arn: `arn:aws:ecs:eu-central-1:123456789012:service/stage/${name}`,
  name,
  clusterArn: CLUSTER_ARN,
  clusterName: 'stage',
  status: 'ACTIVE',
  schedulingStrategy: 'REPLICA',
  desiredCount: 2,
  tasks: 2,
  tags: {},
  createdAt: OLD,
  ...over,
});

const parked = (name: string, at: string, schedule?: string): ServiceState =>
  service(name, {
    desiredCount: 0,
    tasks: 0,
    tags: {
      'nightshift:stopped': `desired=2 at=${at}`,
      ...(schedule && { 'nightshift:schedule': schedule }),
    },
  });

const estate = (services: ServiceState[], clusterTags: Record<string, string> = {}): Estate => {
  const cluster: ClusterState = {
    arn: CLUSTER_ARN,
    name: 'stage',
    tags: clusterTags,
    capacityProviders: [],
    tasks: services.reduce((n, s) => n + s.tasks, 0),
    services,
  };
  return { clusters: [cluster], missingClusters: [], sharers: [], groups: [], groupUsers: {} };
};

const options = (now: string, startedAt: Record<string, string> = {}): ReconcileOptions => ({
  protectedTags: DEFAULT_PROTECTED_TAGS,
  now: new Date(now),
  schedules: SCHEDULES,
  graceMs: 15 * 60_000,
  startedAt: new Map(
    Object.entries(startedAt).map(([name, at]) => [service(name).arn, { at: new Date(at) }] as const),
  ),
});

const decide = (e: Estate, o: ReconcileOptions) =>
  Object.fromEntries(
    decideReconcile(e, o).map((d) => [d.service.name, { want: d.want, why: d.why, row: d.row }]),
  );

describe('reconcile planner', () => {
  it.each([
    // [case, schedule, now (UTC), service, want]
    [
      'Berlin spring forward: before the start that falls in the skipped hour, a service parked the evening before rests',
      'early',
      '2026-03-29T00:55:00Z',
      parked('web', '2026-03-28T19:00:30Z', 'early'),
      undefined,
    ],
    [
      'Berlin spring forward: a begintime of 02:30 starts at 03:00 local, the first time after the gap',
      'early',
      '2026-03-29T01:05:00Z',
      parked('web', '2026-03-28T19:00:30Z', 'early'),
      'start',
    ],
    [
      'Berlin fall back: the first 02:30 stopped it, the repeated hour ran again, the second 02:30 is due',
      'repeat',
      '2026-10-25T01:40:00Z',
      parked('web', '2026-10-25T00:30:30Z', 'repeat'),
      'stop',
    ],
    [
      'Berlin fall back: in the repeated hour the stop of the first 02:30 is older than the start at 02:00',
      'repeat',
      '2026-10-25T01:10:00Z',
      parked('web', '2026-10-25T00:30:30Z', 'repeat'),
      'start',
    ],
    [
      'New York fall back over the weekend: Friday 19:00 EDT stop still holds on Sunday',
      'ny',
      '2026-11-01T12:00:00Z',
      parked('web', '2026-10-30T23:00:30Z', 'ny'),
      undefined,
    ],
    [
      'New York: Monday 07:00 EST (12:00Z, an hour later in UTC than the week before) starts it',
      'ny',
      '2026-11-02T12:00:30Z',
      parked('web', '2026-10-30T23:00:30Z', 'ny'),
      'start',
    ],
  ])('%s', (_case, _schedule, now, svc, want) => {
    const [d] = decideReconcile(estate([svc]), options(now));
    expect(d?.want).toBe(want);
    expect(d?.why).toMatch(/ (Europe\/Berlin|America\/New_York) /);
  });

  it('says the schedule, since when and what is next, in local time', () => {
    const e = estate([service('web')], { 'nightshift:schedule': 'office-hours' });

    const d = decide(e, options('2026-11-27T18:00:30Z'));

    expect(d.web?.want).toBe('stop');
    expect(d.web?.why).toBe(
      'office-hours: stopped since Fri 19:00 Europe/Berlin (period 1 ended at 19:00); next start Mon 07:00 (tag on cluster stage)',
    );
  });

  it("follows a service's own tag over its cluster's", () => {
    const e = estate([service('web'), service('search', { tags: { 'nightshift:schedule': 'always-on' } })], {
      'nightshift:schedule': 'office-hours',
    });

    const d = decide(e, options('2026-11-27T18:00:30Z'));

    expect(d.web?.want).toBe('stop');
    expect(d.search?.want).toBeUndefined();
    expect(d.search?.why).toMatch(/^always-on: running/);
  });

  it('leaves out services with no schedule on them or their cluster', () => {
    expect(decideReconcile(estate([service('web')]), options('2026-11-27T18:00:30Z'))).toEqual([]);
  });

  it('fails the row of an unknown schedule, naming it', () => {
    const e = estate([service('web', { tags: { 'nightshift:schedule': 'ofice-hours' } })]);

    const d = decide(e, options('2026-11-27T18:00:30Z'));

    expect(d.web?.want).toBeUndefined();
    expect(d.web?.row).toMatchObject({ outcome: 'failed', steps: [] });
    expect(d.web?.row?.detail).toMatch(/^schedule "ofice-hours" \(tag nightshift:schedule on the service\)/);
  });

  it('leaves a service in its grace period alone and says until when, in local time', () => {
    const e = estate([service('web', { createdAt: new Date('2026-11-27T17:58:00Z') })], {
      'nightshift:schedule': 'office-hours',
    });

    const d = decide(e, options('2026-11-27T18:00:30Z'));

    expect(d.web?.want).toBeUndefined();
    expect(d.web?.row?.outcome).toBe('skipped');
    expect(d.web?.row?.detail).toMatch(/left alone until Fri 19:13 Europe\/Berlin$/);
  });

  it('takes no action where a one-sided period has no wish yet', () => {
    const e = estate([service('web', { tags: { 'nightshift:schedule': 'stage-nights' } })]);

    const d = decide(e, options('2026-11-27T14:00:00Z'));

    expect(d.web?.want).toBeUndefined();
    expect(d.web?.row).toMatchObject({ outcome: 'unchanged' });
    expect(d.web?.row?.detail).toMatch(/^stage-nights: any .*; no action$/);
  });

  it('transition-only: a service started on demand after the stop transition rests; one started before it is due', () => {
    const e = estate([service('web'), service('api')], { 'nightshift:schedule': 'office-hours' });

    const d = decide(
      e,
      options('2026-11-27T21:10:00Z', { web: '2026-11-27T21:00:00Z', api: '2026-11-27T06:00:30Z' }),
    );

    expect(d.web?.want).toBeUndefined();
    expect(d.web?.row?.detail).toMatch(/started on demand at Fri 22:00, after the transition/);
    expect(d.api?.want).toBe('stop');
  });

  it('enforced: every run enforces the state, whatever happened since the transition', () => {
    const e = estate([service('web')], { 'nightshift:schedule': 'office-enforced' });

    const d = decide(e, options('2026-11-27T21:10:00Z', { web: '2026-11-27T21:00:00Z' }));

    expect(d.web?.want).toBe('stop');
  });

  it('transition-only: a service stopped on demand after the start transition stays stopped until the next one', () => {
    const e = estate([parked('web', '2026-11-27T10:00:00Z', 'office-hours')]);

    const d = decide(e, options('2026-11-27T10:10:00Z'));

    expect(d.web?.want).toBeUndefined();
    expect(d.web?.row?.detail).toMatch(
      /stopped on demand at Fri 11:00, after the transition: left as it is until Fri 19:00/,
    );
  });

  it('does not start a service nightshift did not stop', () => {
    const e = estate([service('web', { desiredCount: 0, tasks: 0 })], {
      'nightshift:schedule': 'office-hours',
    });

    const d = decide(e, options('2026-11-30T06:00:30Z'));

    expect(d.web?.want).toBeUndefined();
    expect(d.web?.row?.detail).toMatch(/not stopped by nightshift \(no saved state\)$/);
  });

  it('stops with the existing planner, taking along the parked services of the cluster so it is stopped whole', () => {
    const e = estate([service('web'), parked('worker', '2026-11-27T18:00:30Z')], {
      'nightshift:schedule': 'office-hours',
    });

    const plan = planReconcile(e, options('2026-11-27T18:20:00Z'));

    expect(plan.start).toBeUndefined();
    const rows = Object.fromEntries((plan.stop?.phases.flat() ?? []).map((p) => [p.name, p]));
    expect(rows.web?.steps.map((s) => s.op)).toEqual([
      'save-service-state',
      'set-desired-count',
      'verify-service-state',
    ]);
    expect(rows.web?.detail).toMatch(/^office-hours: stopped since Fri 19:00 .*: desiredCount 2 → 0/);
    expect(rows.worker).toMatchObject({ steps: [], outcome: 'unchanged' });
    expect(plan.idle).toEqual([]);
  });

  it('reads start records only for services due to rest that carry no saved state', () => {
    const e = estate([service('web'), parked('worker', '2026-11-27T18:00:30Z')], {
      'nightshift:schedule': 'office-hours',
    });

    expect(startRecordCandidates(e, SCHEDULES, new Date('2026-11-27T18:20:00Z'))).toEqual([
      service('web').arn,
    ]);
    expect(startRecordCandidates(e, SCHEDULES, new Date('2026-11-27T12:00:00Z'))).toEqual([]);
  });

  it('reads start records only for standalone groups due to rest that carry no saved state', () => {
    // Prepare: running, parked (saved sizes), on an unknown schedule, on none
    const arn = (name: string) =>
      `arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:uuid:autoScalingGroupName/${name}`;
    const groups: { arn: string; tags: Record<string, string> }[] = [
      { arn: arn('batch'), tags: { 'nightshift:schedule': 'office-hours' } },
      { arn: arn('parked'), tags: { 'nightshift:schedule': 'office-hours', 'nightshift:stopped': '0,0,0' } },
      { arn: arn('typo'), tags: { 'nightshift:schedule': 'office-hour' } },
      { arn: arn('none'), tags: {} },
    ];

    // Act / Assess: after the stop transition only the running one; while it should run, none at all
    expect(groupStartRecordCandidates(groups, SCHEDULES, new Date('2026-11-27T18:20:00Z'))).toEqual([
      arn('batch'),
    ]);
    expect(groupStartRecordCandidates(groups, SCHEDULES, new Date('2026-11-27T12:00:00Z'))).toEqual([]);
  });

  it('never parks a capacity group the same reconcile starts services on', () => {
    // Prepare: clusters stage (Berlin office hours, due to stop) and tools (New York office hours, due
    // to start: 13:00 there) share the group nodes
    const tools = (name: string): ServiceState => ({
      ...parked(name, '2026-11-26T18:00:30Z', 'ny'),
      arn: `arn:aws:ecs:eu-central-1:123456789012:service/tools/${name}`,
      clusterArn: 'arn:aws:ecs:eu-central-1:123456789012:cluster/tools',
      clusterName: 'tools',
    });
    const base = estate([service('web')], { 'nightshift:schedule': 'office-hours' });
    const group = {
      arn: 'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/nodes',
      name: 'nodes',
      min: 0,
      desired: 0,
      max: 0,
      tags: { 'nightshift:stopped': 'min=1 desired=2 max=4 at=2026-11-26T18:00:30Z' },
    };
    const e: Estate = {
      ...base,
      clusters: [
        { ...base.clusters[0]!, capacityProviders: ['nodes-cp'] },
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:cluster/tools',
          name: 'tools',
          tags: {},
          capacityProviders: ['nodes-cp'],
          tasks: 0,
          services: [tools('ci')],
        },
      ],
      groups: [group],
      groupUsers: { nodes: [CLUSTER_ARN, 'arn:aws:ecs:eu-central-1:123456789012:cluster/tools'] },
    };

    // Act
    const plan = planReconcile(e, options('2026-11-27T18:00:30Z'));

    // Assess: the start restores the group first; the stop has no row for it
    expect(plan.stop?.phases.flat().some((p) => p.arn === group.arn)).toBe(false);
    const restore = plan.start?.phases.flat().find((p) => p.arn === group.arn);
    expect(restore?.steps.map((s) => s.op)).toEqual(['set-group-size', 'clear-group-state']);
    expect(restore?.detail).toMatch(/^reconcile start for schedule ny: /);
  });

  it('accepts {"action": "reconcile"} and refuses any scope field, naming it', () => {
    expect(parseInput(EcsSchedulerInput, { action: 'reconcile', dryRun: true })).toEqual({
      action: 'reconcile',
      dryRun: true,
    });
    expect(() => parseInput(EcsSchedulerInput, { action: 'reconcile', clusters: ['stage'] })).toThrow(
      expect.objectContaining({ message: 'invalid event: unknown field(s) clusters' }),
    );
    expect(() => parseInput(EcsSchedulerInput, { action: 'reconcile', planDigest: 'abc' })).toThrow(
      /field "planDigest": expected the hex sha256 planDigest of a dry run/,
    );
  });

  describe('overrides', () => {
    const OV = 'nightshift:override';
    const running = (name: string, tags: Record<string, string> = {}) =>
      service(name, { desiredCount: 2, tags });
    // Friday 27 November 2026, 20:00 Berlin (19:00Z): office-hours stopped since 19:00.
    const FRI_2000 = '2026-11-27T19:00:00Z';

    it('an active override on the cluster wins over the schedule, and says who, why and until when', () => {
      // Prepare
      const e = estate([parked('web', '2026-11-27T18:00:30Z')], {
        'nightshift:schedule': 'office-hours',
        [OV]: 'state=running until=2026-11-27T22:00:00Z by=user/jane why=release test',
      });

      // Act
      const d = decideReconcile(e, options(FRI_2000))[0];

      // Assess
      expect(d?.want).toBe('start');
      expect(d?.why).toMatch(
        /^override by user\/jane until Fri 23:00 Europe\/Berlin \(why: release test\), over office-hours: stopped since Fri 19:00/,
      );
    });

    it("a service's own override wins over its cluster's", () => {
      // Prepare
      const e = estate(
        [
          running('web', { [OV]: 'state=stopped until=2026-11-27T22:00:00Z by=user/sam' }),
          parked('api', '2026-11-27T18:00:30Z'),
        ],
        {
          'nightshift:schedule': 'office-hours',
          [OV]: 'state=running until=2026-11-27T22:00:00Z by=user/jane',
        },
      );

      // Act
      const d = decide(e, options(FRI_2000));

      // Assess
      expect(d.web?.want).toBe('stop');
      expect(d.web?.why).toMatch(/^override by user\/sam/);
      expect(d.api?.want).toBe('start');
    });

    it('an unreadable override fails the row and touches nothing', () => {
      // Prepare
      const e = estate([parked('web', '2026-11-27T18:00:30Z', 'office-hours')], {
        [OV]: 'running till 22:00',
      });

      // Act
      const plan = planReconcile(e, options(FRI_2000));

      // Assess
      expect(plan.stop).toBeUndefined();
      expect(plan.start).toBeUndefined();
      expect(plan.idle[0]).toMatchObject({ outcome: 'failed', steps: [] });
      expect(plan.idle[0]?.detail).toMatch(
        /nightshift:override "running till 22:00": state must be running or stopped \(on cluster stage\)/,
      );
    });

    it('an expired override returns the service to its schedule even when enforced: false would leave it, then goes', () => {
      // Prepare: woken at 20:00 by the override (start record 20:00, after the 19:00 transition); it ended at 21:00
      const e = estate([
        running('web', {
          'nightshift:schedule': 'office-hours',
          [OV]: 'state=running until=2026-11-27T20:00:00Z by=user/jane',
        }),
      ]);

      // Act
      const plan = planReconcile(e, options('2026-11-27T20:05:00Z', { web: '2026-11-27T19:00:10Z' }));

      // Assess: stopped, and the tag removed as its last step
      const web = plan.stop?.phases.flat().find((p) => p.name === 'web');
      expect(web?.steps.map((st) => st.op)).toEqual([
        'save-service-state',
        'set-desired-count',
        'verify-service-state',
        'clear-override',
      ]);
      expect(web?.detail).toMatch(/override by user\/jane ended at Fri 21:00 Europe\/Berlin/);
    });

    it('an expired override on a service already on schedule is removed alone', () => {
      // Prepare
      const e = estate(
        [parked('web', '2026-11-27T18:00:30Z', 'office-hours')].map((s) => ({
          ...s,
          tags: { ...s.tags, [OV]: 'state=stopped until=2026-11-27T18:30:00Z by=user/sam' },
        })),
      );

      // Act
      const plan = planReconcile(e, options(FRI_2000));

      // Assess: the stop finds it parked already; its only step removes the tag
      const rows = [...plan.idle, ...(plan.stop?.phases.flat() ?? []), ...(plan.start?.phases.flat() ?? [])];
      expect(rows.filter((r) => r.name === 'web')).toEqual([
        expect.objectContaining({
          steps: [{ op: 'clear-override', expected: expect.any(String) }],
          outcome: undefined,
        }),
      ]);
    });

    it('an expired cluster override is removed only once every service that followed it settled', () => {
      // Prepare
      const e = estate([parked('web', '2026-11-27T18:00:30Z'), running('api')], {
        'nightshift:schedule': 'office-hours',
        [OV]: 'state=running until=2026-11-27T18:30:00Z by=user/jane',
      });
      const plan = planReconcile(e, options(FRI_2000));
      expect(plan.clusterClears).toHaveLength(1);
      const [web, api] = [service('web').arn, service('api').arn];

      // Act
      const blocked = clusterClearRows(
        plan.clusterClears,
        [
          { arn: web, outcome: 'unchanged' },
          { arn: api, outcome: 'failed' },
        ],
        new Date(FRI_2000),
      );
      const settled = clusterClearRows(
        plan.clusterClears,
        [
          { arn: web, outcome: 'unchanged' },
          { arn: api, outcome: 'changed' },
        ],
        new Date(FRI_2000),
      );

      // Assess
      expect(blocked[0]).toMatchObject({ outcome: 'skipped', steps: [] });
      expect(blocked[0]?.detail).toMatch(/kept until its services are back on schedule \(not yet: 1 of 2\)/);
      expect(settled[0]).toMatchObject({ steps: [{ op: 'clear-override' }] });
    });

    it('fails only the rows of a schedule that cannot be evaluated (holidays not in the bundle), the others run on', () => {
      // Prepare: a calendar whose years are not in the bundle, and a plain schedule
      const schedules = parseSchedules(
        {
          schedules: {
            'office-hours': {
              timezone: 'Europe/Berlin',
              periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
            },
            berlin: {
              timezone: 'Europe/Berlin',
              periods: [{ begintime: '07:00', endtime: '19:00' }],
              holidays: { calendar: 'DE-BE' },
            },
          },
        },
        {
          calendars: {
            check: () => undefined,
            holidays: (code, year) => {
              throw new Error(
                `holiday calendar ${code}: this bundle carries no holidays for ${year}; rebuild and redeploy`,
              );
            },
          },
        },
      );
      const e = estate([
        service('web', { tags: { 'nightshift:schedule': 'office-hours' } }),
        service('api', { tags: { 'nightshift:schedule': 'berlin' } }),
      ]);

      // Act
      const d = decide(e, { ...options('2026-11-27T18:00:30Z'), schedules });

      // Assess
      expect(d.web?.want).toBe('stop');
      expect(d.api?.row).toMatchObject({ outcome: 'failed' });
      expect(d.api?.row?.detail).toMatch(
        /^berlin: holiday calendar DE-BE: this bundle carries no holidays for 2026; rebuild and redeploy; nothing changed$/,
      );
    });

    it('leaves a resource tagged nightshift:stage for another stage to that stage', () => {
      // Prepare
      const e = estate(
        [
          parked('web', '2026-11-27T18:00:30Z'),
          {
            ...parked('api', '2026-11-27T18:00:30Z'),
            tags: { 'nightshift:stopped': 'desired=2 at=2026-11-27T18:00:30Z', 'nightshift:stage': 'dev' },
          },
        ],
        {
          'nightshift:schedule': 'office-hours',
        },
      );
      const monday = '2026-11-30T06:00:30Z';

      // Act
      const asStage = decide(e, { ...options(monday), stage: 'stage' });
      const asDev = decide(e, { ...options(monday), stage: 'dev' });

      // Assess: untagged: every stage's; tagged: its stage's only
      expect(Object.keys(asStage)).toEqual(['web']);
      expect(Object.keys(asDev).sort()).toEqual(['api', 'web']);
    });

    describe('planOverride (wake, sleep, cancel)', () => {
      const input = (over: Partial<OverrideInput>): OverrideInput => ({
        action: 'wake',
        clusters: ['stage'],
        by: 'user/jane',
        ...over,
      });
      const opts = (now: string, maxHours = 24): OverrideOptions => ({
        schedules: SCHEDULES,
        protectedTags: DEFAULT_PROTECTED_TAGS,
        now: new Date(now),
        maxMs: maxHours * 3_600_000,
      });

      it('puts the override on a cluster named whole, and on each service when services are named', () => {
        // Prepare
        const e = estate([parked('web', '2026-11-27T18:00:30Z'), parked('api', '2026-11-27T18:00:30Z')], {
          'nightshift:schedule': 'office-hours',
        });

        // Act
        const whole = planOverride(input({ for: '3h' }), e, opts(FRI_2000));
        const one = planOverride(input({ for: '3h', services: ['web'] }), e, opts(FRI_2000));

        // Assess
        expect(whole.rows.map((r) => [r.type, r.name])).toEqual([['ecs-cluster', 'stage']]);
        expect(whole.rows[0]?.steps).toEqual([
          {
            op: 'set-override',
            value: 'state=running until=2026-11-27T22:00:00Z by=user/jane',
            fromNow: true,
          },
        ]);
        expect(whole.estate.clusters[0]?.tags[OV]).toBe(
          'state=running until=2026-11-27T22:00:00Z by=user/jane',
        );
        expect(one.rows.map((r) => [r.type, r.name])).toEqual([['ecs-service', 'web']]);
        expect(one.estate.clusters[0]?.tags[OV]).toBeUndefined();
      });

      it('refuses --until 22:00 for a cluster whose services follow schedules in two zones', () => {
        // Prepare
        const e = estate([
          parked('web', '2026-11-27T18:00:30Z', 'office-hours'),
          parked('api', '2026-11-27T18:00:30Z', 'ny'),
        ]);

        // Act
        const plan = planOverride(input({ until: '22:00' }), e, opts(FRI_2000));

        // Assess
        expect(plan.rows[0]).toMatchObject({ outcome: 'failed', steps: [] });
        expect(plan.rows[0]?.detail).toMatch(/several zones \(Europe\/Berlin, America\/New_York\)/);
      });

      it('a sleep without --for or --until lasts until the next transition, at most the cap', () => {
        // Prepare: Friday 10:00 Berlin, office-hours running until 19:00
        const e = estate([running('web')], { 'nightshift:schedule': 'office-hours' });

        // Act
        const untilNext = planOverride(input({ action: 'sleep' }), e, opts('2026-11-27T09:00:00Z'));
        const capped = planOverride(input({ action: 'sleep' }), e, opts('2026-11-27T09:00:00Z', 2));

        // Assess
        expect(untilNext.rows[0]?.steps[0]).toMatchObject({
          value: expect.stringMatching(/^state=stopped until=2026-11-27T18:00:00Z /),
        });
        expect(capped.rows[0]?.steps[0]).toMatchObject({
          value: expect.stringMatching(/until=2026-11-27T11:00:00Z /),
        });
      });

      it('fails a target whose schedule is unknown, and refuses the whole request past the cap', () => {
        // Prepare
        const e = estate([parked('web', '2026-11-27T18:00:30Z')], { 'nightshift:schedule': 'nope' });
        const ok = estate([parked('web', '2026-11-27T18:00:30Z')], { 'nightshift:schedule': 'office-hours' });

        // Act + Assess
        expect(planOverride(input({ for: '1h' }), e, opts(FRI_2000)).rows[0]).toMatchObject({
          outcome: 'failed',
        });
        expect(() => planOverride(input({ until: '23:00' }), ok, opts(FRI_2000, 1))).toThrow(
          /until: refused: an override may last at most 1 h .*asked: stage until Fri 23:00 Europe\/Berlin \(3 h\)/,
        );
      });

      it('cancel ends the override now, and says so where there is none', () => {
        // Prepare
        const e = estate(
          [running('web', { [OV]: 'state=running until=2026-11-27T22:00:00Z by=user/sam' }), running('api')],
          {
            'nightshift:schedule': 'office-hours',
            [OV]: 'state=running until=2026-11-27T22:00:00Z by=user/jane',
          },
        );
        const bare = estate([running('web')], { 'nightshift:schedule': 'office-hours' });

        // Act
        const plan = planOverride(input({ cancel: true, by: 'user/ops' }), e, opts(FRI_2000));
        const none = planOverride(input({ cancel: true }), bare, opts(FRI_2000));

        // Assess: the cluster's and the service's own override both end now
        expect(plan.rows.map((r) => r.name)).toEqual(['stage', 'web']);
        for (const r of plan.rows) {
          expect(r.steps[0]).toMatchObject({
            value: expect.stringMatching(
              /^state=running until=2026-11-27T19:00:00Z by=user\/ops why=cancelled/,
            ),
          });
        }
        expect(none.rows[0]).toMatchObject({ outcome: 'unchanged', steps: [] });
      });
    });

    it('accepts wake and sleep events and refuses what they cannot mean, naming the field', () => {
      const ok = parseInput(EcsSchedulerInput, {
        action: 'wake',
        clusters: ['stage'],
        for: '3h',
        by: 'user/jane',
      });
      expect(ok).toMatchObject({ action: 'wake', for: '3h' });
      expect(() => parseInput(EcsSchedulerInput, { action: 'wake', clusters: ['stage'], by: 'x' })).toThrow(
        /field "for": wake needs for/,
      );
      expect(() =>
        parseInput(EcsSchedulerInput, {
          action: 'wake',
          clusters: ['stage'],
          for: '1h',
          until: '22:00',
          by: 'x',
        }),
      ).toThrow(/field "until": give for or until, not both/);
      expect(() =>
        parseInput(EcsSchedulerInput, { action: 'sleep', clusters: ['stage'], until: '25:00', by: 'x' }),
      ).toThrow(/field "until": expected a clock time/);
      expect(() =>
        parseInput(EcsSchedulerInput, { action: 'sleep', services: ['web'], for: '1h', by: 'x' }),
      ).toThrow(/field "clusters": clusters, groups or tags is required/);
      expect(() =>
        parseInput(EcsSchedulerInput, { action: 'sleep', clusters: ['stage'], for: '1h' }),
      ).toThrow(/field "by"/);
      expect(() =>
        parseInput(EcsSchedulerInput, { action: 'wake', clusters: ['stage'], for: '0m', by: 'x' }),
      ).toThrow(/field "for": expected a duration such as 30m, 3h or 1d/);
    });
  });
});
