import { describe, expect, it } from 'vitest';
import { parkDecision, wakeCommand, wakeHint, type BundledSchedules } from '#shared/parked.ts';
import { parseSchedules, type HolidayCalendars } from '#shared/schedules.ts';

// The tag names are a public contract: spelled out here rather than imported.
const STOPPED = 'nightshift:stopped';
const SCHEDULE = 'nightshift:schedule';
const OVERRIDE = 'nightshift:override';

const noHolidays: HolidayCalendars = { check: () => undefined, holidays: () => new Map() };
const bundled: BundledSchedules = {
  schedules: parseSchedules(
    {
      schedules: {
        'office-hours': {
          timezone: 'Europe/Berlin',
          periods: [{ begintime: '07:00', endtime: '19:00', weekdays: ['mon-fri'] }],
        },
        'start-only': { periods: [{ begintime: '07:00', weekdays: ['mon-fri'] }] },
        strict: {
          timezone: 'Europe/Berlin',
          periods: [{ begintime: '07:00', endtime: '19:00', weekdays: ['mon-fri'] }],
          enforced: true,
        },
        lenient: {
          timezone: 'Europe/Berlin',
          periods: [{ begintime: '07:00', endtime: '19:00', weekdays: ['mon-fri'] }],
          enforced: false,
        },
      },
    },
    { calendars: noHolidays },
  ),
};
/** Monday 23 November 2026, in Berlin (UTC+1). */
const at = (local: string) => new Date(`2026-11-23T${local}:00+01:00`);
const running = (until: string) => `state=running until=${until} by=user/jane why=release test`;
const sleeping = (until: string) => `state=stopped until=${until} by=user/joe`;

describe('parkDecision', () => {
  it.each([
    ['no tags', {}, undefined, '12:00', false],
    ['its saved state (parked), even in office hours', { [STOPPED]: 'desired=2' }, undefined, '12:00', true],
    ['its own schedule, stopped since 19:00', { [SCHEDULE]: 'office-hours' }, undefined, '19:01', true],
    ['its own schedule at 18:59', { [SCHEDULE]: 'office-hours' }, undefined, '18:59', false],
    ['its own schedule exactly at 19:00', { [SCHEDULE]: 'office-hours' }, undefined, '19:00', true],
    ["its cluster's schedule", {}, { [SCHEDULE]: 'office-hours' }, '19:01', true],
    [
      "its own schedule over its cluster's",
      { [SCHEDULE]: 'start-only' },
      { [SCHEDULE]: 'office-hours' },
      '19:01',
      false,
    ],
    [
      'an enforced schedule, long after its stop transition',
      { [SCHEDULE]: 'strict' },
      undefined,
      '21:00',
      true,
    ],
    ['enforced: false, just after its stop transition', { [SCHEDULE]: 'lenient' }, undefined, '19:15', true],
    // Running 20 minutes after the transition under enforced: false: started on purpose, reconcile leaves it.
    [
      'enforced: false, 20 minutes after its stop transition',
      { [SCHEDULE]: 'lenient' },
      undefined,
      '19:20',
      false,
    ],
    ["a schedule with no wish ('any')", { [SCHEDULE]: 'start-only' }, undefined, '06:00', false],
    [
      'a wake override on its cluster',
      {},
      { [SCHEDULE]: 'office-hours', [OVERRIDE]: running('2026-11-23T20:00:00Z') },
      '19:01',
      false,
    ],
    [
      'an expired wake override',
      {},
      { [SCHEDULE]: 'office-hours', [OVERRIDE]: running('2026-11-23T18:00:00Z') },
      '19:01',
      true,
    ],
    [
      "its own sleep override over its cluster's wake",
      { [OVERRIDE]: sleeping('2026-11-23T12:00:00Z') },
      { [OVERRIDE]: running('2026-11-23T12:00:00Z') },
      '10:00',
      true,
    ],
    [
      'a wake override does not unpark',
      { [STOPPED]: 'desired=2', [OVERRIDE]: running('2026-11-23T20:00:00Z') },
      undefined,
      '12:00',
      true,
    ],
  ])('%s', (_, tags: Record<string, string>, parent: Record<string, string> | undefined, local, held) => {
    const facts = { tags, ...(parent && { parent: { tags: parent, name: 'cluster stage' } }) };
    const decision = parkDecision(facts, bundled, at(local));
    expect(decision.held).toBe(held);
    if (decision.held) expect(decision.reason).toMatch(/parked/);
  });

  it('says why a running resource under enforced: false is not held after the transition', () => {
    const decision = parkDecision({ tags: { [SCHEDULE]: 'lenient' } }, bundled, at('21:00'));
    expect(decision).toEqual({
      held: false,
      note: expect.stringContaining(
        'with enforced: false a resource still running 20 min after the transition is left running',
      ),
    });
  });

  it('says which override keeps a target running against its schedule', () => {
    const decision = parkDecision(
      {
        tags: {},
        parent: {
          tags: { [SCHEDULE]: 'office-hours', [OVERRIDE]: running('2026-11-23T20:00:00Z') },
          name: 'cluster stage',
        },
      },
      bundled,
      at('19:01'),
    );
    expect(decision).toEqual({
      held: false,
      note: 'kept running by override on cluster stage by user/jane until Mon 21:00 Europe/Berlin (why: release test)',
    });
  });

  it.each([
    [
      'an unknown schedule',
      { [SCHEDULE]: 'night-owls' },
      bundled,
      /night-owls on it\) is not defined in this function's schedules: not checked/,
    ],
    [
      'schedules that could not be read',
      { [SCHEDULE]: 'office-hours' },
      { error: 'infra/schedules.yml: broken' },
      /was not checked: infra\/schedules.yml: broken/,
    ],
    ['an unreadable override', { [SCHEDULE]: 'office-hours', [OVERRIDE]: 'state=maybe' }, bundled, null],
  ])(
    'never holds on %s, and says so',
    (_, tags: Record<string, string>, schedules: BundledSchedules, note) => {
      const decision = parkDecision({ tags }, schedules, at('19:01'));
      if (note === null) {
        // The override is not obeyed; the schedule still decides.
        expect(decision.held).toBe(true);
        return;
      }
      expect(decision.held).toBe(false);
      expect(!decision.held && decision.note).toMatch(note);
    },
  );

  it('never holds on a schedule that cannot be evaluated', () => {
    const broken: BundledSchedules = {
      schedules: parseSchedules(
        {
          schedules: {
            'office-hours': {
              timezone: 'Europe/Berlin',
              periods: [{ begintime: '07:00', endtime: '19:00' }],
              holidays: { calendar: 'DE-BE' },
            },
          },
        },
        {
          calendars: {
            check: () => undefined,
            holidays: () => {
              throw new Error('holidays of DE-BE in 2026 are not in this bundle');
            },
          },
        },
      ),
    };
    const decision = parkDecision({ tags: { [SCHEDULE]: 'office-hours' } }, broken, at('19:01'));
    expect(decision).toEqual({
      held: false,
      note:
        'its schedule (nightshift:schedule=office-hours on it) could not be evaluated (holidays of DE-BE in 2026 ' +
        'are not in this bundle): not checked',
    });
  });
});

describe('wake commands', () => {
  it('names a service by its cluster and name, and a group by --group', () => {
    expect(wakeCommand({ kind: 'ecs-service', cluster: 'stage', service: 'web' })).toBe(
      'nightshift wake --cluster stage --service web --for 1h',
    );
    expect(wakeCommand({ kind: 'autoscaling-group', group: 'stage-web' })).toBe(
      'nightshift wake --group stage-web --for 1h',
    );
  });

  it('tells a group parked as ECS capacity to wake its cluster', () => {
    expect(wakeHint({ kind: 'autoscaling-group', group: 'stage-web' }, false)).toContain(
      'wake the ECS cluster whose capacity it is',
    );
    expect(wakeHint({ kind: 'autoscaling-group', group: 'stage-web' }, true)).toBe(
      'to restart it now, `nightshift wake --group stage-web --for 1h` first',
    );
  });
});
