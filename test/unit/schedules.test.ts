/**
 * The schedule evaluator, table by table, from AWS Instance Scheduler's documented period semantics
 * (implementation guide, "Period reference": begintime/endtime, one-sided periods, adjacent periods,
 * days of the week 0=Monday, `#`, `L`, `W`, months; "Schedule reference": several periods, time zone)
 * plus nightshift's holidays. Calendars checked by hand (2026-11-09 is the second Monday of November;
 * 2026-11-15 is a Sunday; 2028 is a leap year, 2100 is not).
 */
import { describe, expect, it } from 'vitest';
import { holidayCalendars } from '#shared/holidays.ts';
import {
  desiredState,
  evaluate,
  lastTransition,
  localIso,
  nextTransition,
  parseSchedules,
  ScheduleError,
  transitionsBetween,
  type DesiredState,
  type Schedule,
} from '#shared/schedules.ts';

const schedule = (def: Record<string, unknown>): Schedule =>
  parseSchedules({ schedules: { s: def } }, { calendars: holidayCalendars }).get('s')!;

/** Each row: [instant (ISO, UTC or with offset), expected state]. */
type Row = [string, DesiredState];

const expectStates = (s: Schedule, rows: Row[]) => {
  const actual = rows.map(([at]) => [at, desiredState(s, new Date(at))]);
  expect(actual).toEqual(rows);
};

/** Transitions as `<local time> <from>-><to>`, in the schedule's zone. */
const transitions = (s: Schedule, from: string, until: string) =>
  transitionsBetween(s, new Date(from), new Date(until)).map(
    (t) => `${localIso(s.timezone, t.at)} ${t.from}->${t.to}`,
  );

describe('begintime and endtime', () => {
  it('runs from begintime and stops at endtime (begintime <= time < endtime)', () => {
    expectStates(schedule({ periods: [{ begintime: '09:00', endtime: '17:00' }] }), [
      ['2026-11-30T08:59:59Z', 'stopped'],
      ['2026-11-30T09:00:00Z', 'running'],
      ['2026-11-30T16:59:59Z', 'running'],
      ['2026-11-30T17:00:00Z', 'stopped'],
      ['2026-11-30T23:00:00Z', 'stopped'],
    ]);
  });

  it('accepts H:MM as Instance Scheduler does, and a period with no times runs all day on its days', () => {
    expectStates(schedule({ periods: [{ begintime: '7:05', endtime: '9:30' }] }), [
      ['2026-11-30T07:04:00Z', 'stopped'],
      ['2026-11-30T07:05:00Z', 'running'],
      ['2026-11-30T09:30:00Z', 'stopped'],
    ]);
    expectStates(schedule({ periods: [{ weekdays: 'sat,sun' }] }), [
      ['2026-11-28T00:00:00Z', 'running'],
      ['2026-11-29T23:59:59Z', 'running'],
      ['2026-11-30T00:00:00Z', 'stopped'],
    ]);
  });

  it('a one-sided start period has no wish before its begintime and runs from it; outside its days it is stopped', () => {
    expectStates(schedule({ periods: [{ begintime: '10:00', weekdays: 'mon-fri' }] }), [
      ['2026-11-30T05:00:00Z', 'any'],
      ['2026-11-30T10:00:00Z', 'running'],
      ['2026-11-30T23:59:59Z', 'running'],
      // Saturday: the documented "stops at 11:59 PM on Friday" of a 9 AM start with weekdays mon-fri.
      ['2026-11-28T12:00:00Z', 'stopped'],
    ]);
  });

  it('a one-sided stop period has no wish before its endtime and is stopped from it', () => {
    expectStates(schedule({ periods: [{ endtime: '20:00', weekdays: 'mon-fri' }] }), [
      ['2026-11-30T05:00:00Z', 'any'],
      ['2026-11-30T19:59:59Z', 'any'],
      ['2026-11-30T20:00:00Z', 'stopped'],
      ['2026-11-28T05:00:00Z', 'stopped'],
    ]);
  });

  it('a period ending at midnight is written 23:59 and stops at 23:59 when nothing follows it', () => {
    expectStates(schedule({ periods: [{ begintime: '18:00', endtime: '23:59' }] }), [
      ['2026-11-30T23:58:59Z', 'running'],
      ['2026-11-30T23:59:00Z', 'stopped'],
      ['2026-12-01T00:00:00Z', 'stopped'],
    ]);
  });
});

describe('several periods', () => {
  it('adjacent periods across midnight (to 23:59, from 00:00) never stop in between', () => {
    const s = schedule({
      periods: [
        { begintime: '05:00', endtime: '23:59' },
        { begintime: '00:00', endtime: '03:00' },
      ],
    });
    expectStates(s, [
      ['2026-11-30T23:58:00Z', 'running'],
      ['2026-11-30T23:59:00Z', 'running'],
      ['2026-11-30T23:59:59Z', 'running'],
      ['2026-12-01T00:00:00Z', 'running'],
      ['2026-12-01T02:59:00Z', 'running'],
      ['2026-12-01T03:00:00Z', 'stopped'],
      ['2026-12-01T04:59:00Z', 'stopped'],
    ]);
    expect(transitions(s, '2026-11-30T12:00:00Z', '2026-12-01T12:00:00Z')).toEqual([
      '2026-12-01T03:00:00+00:00 running->stopped',
      '2026-12-01T05:00:00+00:00 stopped->running',
    ]);
  });

  it('adjacent periods a minute apart (to 12:00, from 12:01) keep running', () => {
    expectStates(
      schedule({
        periods: [
          { begintime: '09:00', endtime: '12:00' },
          { begintime: '12:01', endtime: '17:00' },
        ],
      }),
      [
        ['2026-11-30T12:00:00Z', 'running'],
        ['2026-11-30T12:00:30Z', 'running'],
        ['2026-11-30T17:00:00Z', 'stopped'],
      ],
    );
  });

  it('overlapping periods: running if any runs; the period that began last decides; any beats stopped', () => {
    const s = schedule({
      periods: [
        { begintime: '06:00', endtime: '18:00' },
        { begintime: '10:00', endtime: '16:00' },
        { endtime: '22:00', weekdays: 'mon' },
      ],
    });
    expect(evaluate(s, new Date('2026-11-30T13:00:00Z')).period).toBe(2);
    expect(evaluate(s, new Date('2026-11-30T17:00:00Z')).period).toBe(1);
    expectStates(s, [
      ['2026-11-30T05:00:00Z', 'any'], // Monday: period 3 has no wish yet, the others are stopped
      ['2026-11-30T13:00:00Z', 'running'],
      ['2026-11-30T18:00:00Z', 'any'],
      ['2026-11-30T22:00:00Z', 'stopped'],
      ['2026-12-01T05:00:00Z', 'stopped'], // Tuesday: period 3 is not on that day
    ]);
  });
});

describe('days and months', () => {
  const days = (field: Record<string, unknown>, rows: Row[]) =>
    expectStates(schedule({ periods: [field] }), rows);

  it.each([
    ['numbers, 0 is Monday', { weekdays: 0 }, '2026-11-30', '2026-12-06'],
    ['6 is Sunday', { weekdays: '6' }, '2026-12-06', '2026-11-30'],
    ['names and abbreviations', { weekdays: ['Monday', 'wed'] }, '2026-12-02', '2026-12-01'],
    ['a range', { weekdays: 'mon-fri' }, '2026-12-04', '2026-12-05'],
    ['a range that wraps', { weekdays: 'sat-mon' }, '2026-11-30', '2026-12-01'],
    ['a comma string of numbers', { weekdays: '1,3' }, '2026-12-03', '2026-12-02'],
    ['mon#2, the second Monday', { weekdays: 'mon#2' }, '2026-11-09', '2026-11-16'],
    ['0#1, the first Monday', { weekdays: '0#1' }, '2026-11-02', '2026-11-09'],
    ['fri#5 in a month with four Fridays never matches', { weekdays: 'fri#5' }, '2026-01-30', '2026-11-27'],
    ['friL, the last Friday', { weekdays: 'friL' }, '2026-11-27', '2026-11-20'],
    ['friL in a month with five Fridays is the fifth', { weekdays: 'friL' }, '2026-07-31', '2026-07-24'],
    ['4L, the last Friday by number', { weekdays: '4L' }, '2026-11-27', '2026-11-20'],
    ['L alone, the last day of the week (Sunday)', { weekdays: 'L' }, '2026-11-29', '2026-11-28'],
    ['monthdays 1-15', { monthdays: '1-15' }, '2026-11-15', '2026-11-16'],
    ['monthdays 15-L', { monthdays: '15-L' }, '2026-11-30', '2026-11-14'],
    ['monthdays with a step', { monthdays: '1/7' }, '2026-11-22', '2026-11-21'],
    ['monthdays L, the last day', { monthdays: 'L' }, '2026-11-30', '2026-11-29'],
    ['L in February of a leap year is the 29th', { monthdays: 'L' }, '2028-02-29', '2028-02-28'],
    ['L in February of a common year is the 28th', { monthdays: 'L' }, '2027-02-28', '2027-02-27'],
    ['L in February 2100 (not a leap year) is the 28th', { monthdays: 'L' }, '2100-02-28', '2100-02-27'],
    ['15W on a Sunday 15th is Monday the 16th', { monthdays: '15W' }, '2026-11-16', '2026-11-15'],
    ['15W on a Saturday 15th is Friday the 14th', { monthdays: '15W' }, '2026-08-14', '2026-08-15'],
    [
      '1W on a Saturday 1st stays in the month: Monday the 3rd',
      { monthdays: '1W' },
      '2026-08-03',
      '2026-07-31',
    ],
    [
      '31W on a Sunday 31st stays in the month: Friday the 29th',
      { monthdays: '31W' },
      '2026-05-29',
      '2026-06-01',
    ],
    ['months by name', { months: 'nov' }, '2026-11-30', '2026-12-01'],
    ['months by number range', { months: '1-3' }, '2026-03-31', '2026-04-01'],
    ['months range that wraps', { months: 'nov-feb' }, '2027-02-01', '2026-10-31'],
    ['* matches every day', { weekdays: '*', months: '*', monthdays: '*' }, '2026-11-30', undefined],
    [
      'all fields must match: Mondays among days 1-7',
      { weekdays: 'mon', monthdays: '1-7' },
      '2026-11-02',
      '2026-11-09',
    ],
  ])('%s', (_name, field, runs, stops) => {
    const rows: Row[] = [[`${runs}T12:00:00Z`, 'running']];
    if (stops) rows.push([`${stops}T12:00:00Z`, 'stopped']);
    days(field, rows);
  });

  it('31W matches nothing in a month without a 31st', () => {
    const s = schedule({ periods: [{ monthdays: '31W' }] });
    expect(transitions(s, '2026-11-01T00:00:00Z', '2026-11-30T23:00:00Z')).toEqual([]);
    expect(desiredState(s, new Date('2026-11-30T12:00:00Z'))).toBe('stopped');
  });

  it('reads lists as YAML lists or comma strings, numbers as numbers or strings, alike', () => {
    const forms = [[0, 1, 2], ['0', '1', '2'], '0,1,2', 'mon-wed', ['mon', 'tue, wed']];
    const weeks = forms.map((weekdays) => {
      const s = schedule({ periods: [{ weekdays }] });
      return ['2026-11-30', '2026-12-01', '2026-12-02', '2026-12-03'].map((d) =>
        desiredState(s, new Date(`${d}T12:00:00Z`)),
      );
    });
    for (const week of weeks) expect(week).toEqual(['running', 'running', 'running', 'stopped']);
  });
});

describe('time zones and daylight saving time', () => {
  const office = (timezone: string) =>
    schedule({ timezone, periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }] });

  it('Europe/Berlin, spring forward (29 Mar 2026): 07:00 local is 06:00Z before and 05:00Z after', () => {
    expect(transitions(office('Europe/Berlin'), '2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-27T07:00:00+01:00 stopped->running',
      '2026-03-27T19:00:00+01:00 running->stopped',
      '2026-03-30T07:00:00+02:00 stopped->running',
      '2026-03-30T19:00:00+02:00 running->stopped',
    ]);
    expectStates(office('Europe/Berlin'), [
      ['2026-03-30T04:59:59Z', 'stopped'],
      ['2026-03-30T05:00:00Z', 'running'],
    ]);
  });

  it('Europe/Berlin, fall back (25 Oct 2026): 07:00 local is 05:00Z before and 06:00Z after', () => {
    expect(transitions(office('Europe/Berlin'), '2026-10-23T00:00:00Z', '2026-10-27T00:00:00Z')).toEqual([
      '2026-10-23T07:00:00+02:00 stopped->running',
      '2026-10-23T19:00:00+02:00 running->stopped',
      '2026-10-26T07:00:00+01:00 stopped->running',
      '2026-10-26T19:00:00+01:00 running->stopped',
    ]);
  });

  it('America/New_York, both changes (8 Mar and 1 Nov 2026)', () => {
    const s = office('America/New_York');
    expect(transitions(s, '2026-03-06T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual([
      '2026-03-06T07:00:00-05:00 stopped->running',
      '2026-03-06T19:00:00-05:00 running->stopped',
      '2026-03-09T07:00:00-04:00 stopped->running',
      '2026-03-09T19:00:00-04:00 running->stopped',
    ]);
    expect(transitions(s, '2026-10-30T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual([
      '2026-10-30T07:00:00-04:00 stopped->running',
      '2026-10-30T19:00:00-04:00 running->stopped',
      '2026-11-02T07:00:00-05:00 stopped->running',
      '2026-11-02T19:00:00-05:00 running->stopped',
    ]);
    expectStates(s, [
      ['2026-11-02T11:59:59Z', 'stopped'],
      ['2026-11-02T12:00:00Z', 'running'],
    ]);
  });

  it('a begintime in the hour clocks skip takes effect at the first local time after it', () => {
    const s = schedule({ timezone: 'Europe/Berlin', periods: [{ begintime: '02:30', endtime: '05:00' }] });
    expect(transitions(s, '2026-03-28T23:00:00Z', '2026-03-29T12:00:00Z')).toEqual([
      '2026-03-29T03:00:00+02:00 stopped->running',
      '2026-03-29T05:00:00+02:00 running->stopped',
    ]);
  });

  it('the hour clocks repeat is evaluated again as the clock reads it (wall-clock semantics)', () => {
    const berlin = schedule({
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '02:30', endtime: '19:00' }],
    });
    expect(transitions(berlin, '2026-10-24T22:00:00Z', '2026-10-25T12:00:00Z')).toEqual([
      '2026-10-25T02:30:00+02:00 stopped->running',
      '2026-10-25T02:00:00+01:00 running->stopped',
      '2026-10-25T02:30:00+01:00 stopped->running',
    ]);
    const newYork = schedule({ timezone: 'America/New_York', periods: [{ endtime: '01:30' }] });
    expectStates(newYork, [
      ['2026-11-01T05:29:00Z', 'any'], // 01:29 EDT
      ['2026-11-01T05:30:00Z', 'stopped'], // 01:30 EDT
      ['2026-11-01T06:00:00Z', 'any'], // 01:00 EST, the repeated hour
      ['2026-11-01T06:30:00Z', 'stopped'], // 01:30 EST
    ]);
  });

  it('defaults to UTC', () => {
    expect(schedule({ periods: [{ begintime: '07:00' }] }).timezone).toBe('UTC');
  });
});

describe('holidays', () => {
  const allDay = (holidays: Record<string, unknown>, timezone = 'Europe/Berlin') =>
    schedule({ timezone, periods: [{}], holidays });

  it('a public holiday of the calendar is stopped all day in the schedule zone', () => {
    expectStates(allDay({ calendar: 'DE-BE' }), [
      ['2026-12-24T22:59:59Z', 'running'], // 23:59:59 on 24 Dec in Berlin: not a public holiday in DE-BE
      ['2026-12-24T23:00:00Z', 'stopped'], // 00:00 on 25 Dec in Berlin
      ['2026-12-26T22:59:59Z', 'stopped'],
      ['2026-12-26T23:00:00Z', 'running'],
      ['2026-03-08T12:00:00Z', 'stopped'], // International Women's Day: public in Berlin only
    ]);
    expect(desiredState(allDay({ calendar: 'DE-BY' }), new Date('2026-03-08T12:00:00Z'))).toBe('running');
    // New Year's Day 2022 was a Saturday: observed on Friday 31 Dec 2021.
    expect(
      desiredState(allDay({ calendar: 'US' }, 'America/New_York'), new Date('2021-12-31T15:00:00Z')),
    ).toBe('stopped');
    expect(
      desiredState(allDay({ calendar: 'US-NY' }, 'America/New_York'), new Date('2026-11-26T15:00:00Z')),
    ).toBe('stopped');
  });

  it('explicit dates are stopped all day, and the reason names the holiday', () => {
    const s = schedule({
      timezone: 'Europe/Berlin',
      periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
      holidays: { calendar: 'DE-BE', dates: '2026-12-24, 2026-12-31' },
    });
    expectStates(s, [
      ['2026-12-23T10:00:00Z', 'running'],
      ['2026-12-24T10:00:00Z', 'stopped'],
      ['2026-12-31T10:00:00Z', 'stopped'],
    ]);
    expect(evaluate(s, new Date('2026-12-25T10:00:00Z')).reason).toBe(
      's: stopped since Wed 19:00 Europe/Berlin (holiday: Christmas Day (DE-BE)); next start Mon 07:00',
    );
    expect(evaluate(s, new Date('2026-12-24T10:00:00Z')).holiday).toBe('2026-12-24 (holidays.dates)');
  });
});

describe('reasons and transitions', () => {
  const file = parseSchedules(
    {
      schedules: {
        'office-hours': {
          timezone: 'Europe/Berlin',
          periods: [{ begintime: '07:00', endtime: '19:00', weekdays: ['mon-fri'] }],
          holidays: { calendar: 'DE-BE', dates: ['2026-12-24', '2026-12-31'] },
          enforced: false,
        },
        'stage-nights': { periods: [{ endtime: '20:00', weekdays: ['mon-fri'] }] },
      },
    },
    { calendars: holidayCalendars },
  );
  const office = file.get('office-hours')!;

  it.each([
    [
      '2026-11-30T08:00:00Z',
      'office-hours: running since Mon 07:00 Europe/Berlin (period 1); next stop Mon 19:00',
    ],
    [
      '2026-11-30T18:30:00Z',
      'office-hours: stopped since Mon 19:00 Europe/Berlin (period 1 ended at 19:00); next start Tue 07:00',
    ],
    [
      '2026-11-28T12:00:00Z',
      'office-hours: stopped since Fri 19:00 Europe/Berlin (outside every period); next start Mon 07:00',
    ],
  ])('office-hours at %s', (at, reason) => {
    expect(evaluate(office, new Date(at)).reason).toBe(reason);
  });

  it('stage-nights: no wish by day, stopped from 20:00 UTC', () => {
    expect(evaluate(file.get('stage-nights')!, new Date('2026-11-30T08:00:00Z')).reason).toBe(
      'stage-nights: any since Mon 00:00 UTC (period 1 has no wish before 20:00); next stop Mon 20:00',
    );
  });

  it('the last transition at or before an instant is the one a missed run must catch up', () => {
    // Monday after Christmas, 06:00 Berlin: stopped since Wed 23 Dec 19:00 (holidays and a weekend between).
    const last = lastTransition(office, new Date('2026-12-28T05:00:00Z'))!;
    expect([last.at.toISOString(), last.from, last.to]).toEqual([
      '2026-12-23T18:00:00.000Z',
      'running',
      'stopped',
    ]);
    // At the transition itself, it is that transition.
    expect(lastTransition(office, new Date('2026-12-23T18:00:00Z'))!.at.toISOString()).toBe(
      '2026-12-23T18:00:00.000Z',
    );
    const next = nextTransition(office, new Date('2026-12-23T18:00:00Z'))!;
    expect([next.at.toISOString(), next.to]).toEqual(['2026-12-28T06:00:00.000Z', 'running']);
  });

  it('a schedule that never changes has no transitions', () => {
    const always = schedule({ periods: [{}] });
    expect(lastTransition(always, new Date('2026-11-30T00:00:00Z'))).toBeUndefined();
    expect(evaluate(always, new Date('2026-11-30T00:00:00Z')).reason).toBe(
      's: running for over 400 days, UTC (period 1); no change in the next 400 days',
    );
  });
});

describe('validation', () => {
  const problems = (def: unknown) => {
    try {
      parseSchedules({ schedules: { 'office-hours': def } }, { calendars: holidayCalendars });
    } catch (error) {
      expect(error).toBeInstanceOf(ScheduleError);
      return (error as ScheduleError).problems.map((p) => `${p.field}: ${p.message}`);
    }
    throw new Error('expected a ScheduleError');
  };
  const period = (p: Record<string, unknown>) => ({ periods: [p] });

  it.each([
    [
      { timezone: 'Europe/Berlinn', periods: [{}] },
      'schedules.office-hours.timezone',
      'is not an IANA time zone',
    ],
    [
      period({ weekdays: 'funday' }),
      'schedules.office-hours.periods[0].weekdays',
      '"funday" is not a weekday',
    ],
    [
      period({ weekdays: 7 }),
      'schedules.office-hours.periods[0].weekdays',
      '7 is not a weekday (0-6, 0 is Monday)',
    ],
    [period({ weekdays: 'mon#6' }), 'schedules.office-hours.periods[0].weekdays', 'after # must be 1-5'],
    [period({ monthdays: 0 }), 'schedules.office-hours.periods[0].monthdays', '0 is not a day of the month'],
    [period({ monthdays: '20-10' }), 'schedules.office-hours.periods[0].monthdays', 'cannot wrap around'],
    [period({ monthdays: 'friL' }), 'schedules.office-hours.periods[0].monthdays', 'belongs in weekdays'],
    [period({ months: 13 }), 'schedules.office-hours.periods[0].months', '13 is not a month'],
    [period({ months: 'L' }), 'schedules.office-hours.periods[0].months', 'is not allowed in months'],
    [period({ weekdays: [] }), 'schedules.office-hours.periods[0].weekdays', 'empty list'],
    [period({ begintime: '25:00' }), 'schedules.office-hours.periods[0].begintime', 'is not a time HH:MM'],
    [period({ endtime: '24:00' }), 'schedules.office-hours.periods[0].endtime', 'end a day with 23:59'],
    [period({ begintime: 420 }), 'schedules.office-hours.periods[0].begintime', 'quote it in YAML'],
    [
      period({ begintime: '22:00', endtime: '06:00' }),
      'schedules.office-hours.periods[0].endtime',
      'a period cannot cross midnight',
    ],
    [period({ begintme: '07:00' }), 'schedules.office-hours.periods[0].begintme', 'unknown field'],
    [{ periods: [] }, 'schedules.office-hours.periods', 'at least one period'],
    [{ periods: [{}], enforced: 'yes' }, 'schedules.office-hours.enforced', 'expected true or false'],
    [
      { periods: [{}], holidays: { calendar: 'XX' } },
      'schedules.office-hours.holidays.calendar',
      'not a holiday calendar',
    ],
    [
      { periods: [{}], holidays: { calendar: 'DE-XX' } },
      'schedules.office-hours.holidays.calendar',
      'DE has no state or province "XX"',
    ],
    [
      { periods: [{}], holidays: { dates: ['2026-02-30'] } },
      'schedules.office-hours.holidays.dates',
      'not a date',
    ],
    [{ periods: [{}], retain_running: true }, 'schedules.office-hours.retain_running', 'unknown field'],
  ])('%j → %s', (def, field, message) => {
    const found = problems(def);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(`${field}: `);
    expect(found[0]).toContain(message);
  });

  it('lists every problem at once, each naming the schedule and the field', () => {
    let error: ScheduleError | undefined;
    try {
      parseSchedules(
        {
          schedules: {
            a: { periods: [{ weekdays: 'mon-funday' }] },
            'b c': { timezone: 'Mars/Olympus', periods: [{}] },
          },
        },
        { calendars: holidayCalendars, source: 'infra/schedules.yml' },
      );
    } catch (e) {
      error = e as ScheduleError;
    }
    expect(error?.problems.map((p) => [p.schedule, p.field])).toEqual([
      ['a', 'schedules.a.periods[0].weekdays'],
      ['b c', 'schedules.b c'],
      ['b c', 'schedules.b c.timezone'],
    ]);
    expect(error?.message).toMatch(
      /^infra\/schedules\.yml is invalid:\n {2}schedules\.a\.periods\[0\]\.weekdays: /,
    );
  });

  it('refuses a document without a schedules mapping', () => {
    expect(() => parseSchedules({ schedule: {} })).toThrow(/schedules: expected a mapping/);
  });
});
