import { describe, expect, it } from 'vitest';
import {
  formatLocal,
  instantOf,
  nextRun,
  parseCron,
  previousRun,
  runsAfter,
  runsBefore,
  type CronSchedule,
} from '#shared/cron.ts';

const BERLIN = 'Europe/Berlin';
const take = (runs: Iterable<Date>, n: number) => {
  const out: string[] = [];
  for (const run of runs) {
    out.push(run.toISOString().replace(':00.000Z', 'Z'));
    if (out.length === n) break;
  }
  return out;
};
const local = (s: CronSchedule, runs: string[]) => runs.map((r) => formatLocal(new Date(r), s.timeZone));

describe('parseCron', () => {
  it.each([
    ['cron(0 1 * * * *)', /one of day-of-month and day-of-week must be "\?"/],
    ['cron(0 1 ? * ? *)', /one of day-of-month and day-of-week must be "\?"/],
    ['cron(0 1 * * ?)', /has 5 fields; cron\(\) needs 6/],
    ['rate(10 minutes)', /is not a cron\(\.\.\.\) expression/],
    ['0 1 * * ? *', /is not a cron\(\.\.\.\) expression/],
    ['cron(60 1 * * ? *)', /^minutes: "60" is not a value from 0 to 59$/],
    ['cron(0 24 * * ? *)', /^hours: "24" is not a value from 0 to 23$/],
    ['cron(0 1 32 * ? *)', /^day-of-month: "32"/],
    ['cron(0 1 ? * 8 *)', /^day-of-week: "8" is not a value from 1 to 7 or SUN-SAT$/],
    ['cron(0 1 ? * FRI-MON *)', /^day-of-week: "FRI-MON" wraps around/],
    ['cron(0 22-2 * * ? *)', /^hours: "22-2" wraps around/],
    ['cron(0 1 ? * 3#1,6#3 *)', /^day-of-week: "3#1,6#3": L and # stand alone/],
    [
      'cron(0 1 L-2 * ? *)',
      /^day-of-month: "L-2" \(days before the last day of the month\) is not in the EventBridge cron reference/,
    ],
    ['cron(0 1 L-2,15 * ? *)', /^day-of-month: "L-2,15": L and W stand alone/],
    ['cron(0 1 * * ? 2200)', /^year: "2200" is not a value from 1970 to 2199$/],
    ['cron(0/0 1 * * ? *)', /^minutes: "0\/0" needs a whole step of 1 or more/],
    ['cron(0 L * * ? *)', /^hours: "L" may use only , - \* \/$/],
  ])('refuses %s, naming the problem', (expression, message) => {
    expect(() => parseCron(expression, BERLIN)).toThrow(message);
  });

  it('refuses a time zone Intl does not know', () => {
    expect(() => parseCron('cron(0 1 * * ? *)', 'Europe/Atlantis')).toThrow(
      '"Europe/Atlantis" is not an IANA time zone such as Europe/Berlin',
    );
  });

  it('reads lists, ranges, steps and names in any case', () => {
    const s = parseCron('cron(5/20 1,3-4 ? jan-Mar,DEC mon-fri 2026-2027)', BERLIN);

    expect(s.minutes).toEqual([5, 25, 45]);
    expect(s.hours).toEqual([1, 3, 4]);
    expect([...s.months]).toEqual([1, 2, 3, 12]);
    expect([...s.years]).toEqual([2026, 2027]);
    expect(parseCron('cron(*/15 * * * ? *)', 'UTC').minutes).toEqual([0, 15, 30, 45]);
  });
});

describe('runs of a schedule in its time zone', () => {
  it('runs every 10 minutes on weekday nights, local time, and jumps from Friday to Monday', () => {
    const s = parseCron('cron(0/10 1-5 ? * MON-FRI *)', BERLIN);

    // Friday 2026-11-27 05:40 CET (04:40Z)
    expect(local(s, take(runsAfter(s, new Date('2026-11-27T04:40:00Z')), 2))).toEqual([
      'Fri 2026-11-27 05:50 Europe/Berlin',
      'Mon 2026-11-30 01:00 Europe/Berlin',
    ]);
    expect(previousRun(s, new Date('2026-11-30T00:00:00Z'))?.toISOString()).toBe('2026-11-30T00:00:00.000Z');
    expect(previousRun(s, new Date('2026-11-29T23:59:59Z'))?.toISOString()).toBe('2026-11-27T04:50:00.000Z');
  });

  it('skips local times that do not exist when clocks go forward (Europe/Berlin, last Sunday of March)', () => {
    const s = parseCron('cron(0/10 1-5 * * ? *)', BERLIN);

    // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:00-02:59 never happens
    const runs = take(runsAfter(s, new Date('2026-03-29T00:35:00Z')), 4);
    expect(runs).toEqual([
      '2026-03-29T00:40Z',
      '2026-03-29T00:50Z',
      '2026-03-29T01:00Z',
      '2026-03-29T01:10Z',
    ]);
    expect(local(s, runs)).toEqual([
      'Sun 2026-03-29 01:40 Europe/Berlin',
      'Sun 2026-03-29 01:50 Europe/Berlin',
      'Sun 2026-03-29 03:00 Europe/Berlin',
      'Sun 2026-03-29 03:10 Europe/Berlin',
    ]);
    const once = parseCron('cron(30 2 * * ? *)', BERLIN);
    // 02:30 on the 29th does not exist: that day has no run
    expect(take(runsAfter(once, new Date('2026-03-28T12:00:00Z')), 2)).toEqual([
      '2026-03-30T00:30Z',
      '2026-03-31T00:30Z',
    ]);
  });

  it('runs a local time that happens twice only once, at its first occurrence (last Sunday of October)', () => {
    const s = parseCron('cron(0/10 1-5 * * ? *)', BERLIN);

    // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happens twice
    const runs = take(runsAfter(s, new Date('2026-10-25T00:35:00Z')), 4);
    expect(runs).toEqual([
      '2026-10-25T00:40Z',
      '2026-10-25T00:50Z',
      '2026-10-25T02:00Z',
      '2026-10-25T02:10Z',
    ]);
    expect(local(s, runs)).toEqual([
      'Sun 2026-10-25 02:40 Europe/Berlin',
      'Sun 2026-10-25 02:50 Europe/Berlin',
      'Sun 2026-10-25 03:00 Europe/Berlin',
      'Sun 2026-10-25 03:10 Europe/Berlin',
    ]);
    expect(take(runsBefore(s, new Date('2026-10-25T02:05:00Z')), 2)).toEqual([
      '2026-10-25T02:00Z',
      '2026-10-25T00:50Z',
    ]);
    expect(instantOf(BERLIN, 2026, 10, 25, 2, 30)).toBe(Date.parse('2026-10-25T00:30:00Z'));
    expect(instantOf(BERLIN, 2026, 3, 29, 2, 30)).toBeUndefined();
  });

  it('follows the zone it is given, with its own DST dates (America/New_York, second Sunday of March)', () => {
    const s = parseCron('cron(30 2 * * ? *)', 'America/New_York');

    expect(take(runsAfter(s, new Date('2026-03-07T12:00:00Z')), 2)).toEqual([
      '2026-03-09T06:30Z',
      '2026-03-10T06:30Z',
    ]);
    expect(nextRun(s, new Date('2026-03-06T12:00:00Z'))?.toISOString()).toBe('2026-03-07T07:30:00.000Z');
  });

  it('crosses midnight, with the weekday of each calendar day deciding', () => {
    const s = parseCron('cron(0/10 22-23,0-1 ? * MON-FRI *)', BERLIN);

    expect(local(s, take(runsAfter(s, new Date('2026-11-23T22:45:00Z')), 2))).toEqual([
      'Mon 2026-11-23 23:50 Europe/Berlin',
      'Tue 2026-11-24 00:00 Europe/Berlin',
    ]);
    expect(local(s, take(runsAfter(s, new Date('2026-11-27T22:45:00Z')), 2))).toEqual([
      'Fri 2026-11-27 23:50 Europe/Berlin',
      'Mon 2026-11-30 00:00 Europe/Berlin',
    ]);
  });

  it.each([
    ['cron(0 12 L * ? *)', ['2026-01-31', '2026-02-28', '2026-03-31']],
    ['cron(0 12 LW * ? *)', ['2026-01-30', '2026-02-27', '2026-03-31']],
    // 2026-02-01 is a Sunday: the nearest weekday to the 1st stays in the month (Monday the 2nd)
    ['cron(0 12 1W * ? *)', ['2026-01-01', '2026-02-02', '2026-03-02']],
    ['cron(0 12 ? * 6L *)', ['2026-01-30', '2026-02-27', '2026-03-27']],
    ['cron(0 12 ? * 3#2 *)', ['2026-01-13', '2026-02-10', '2026-03-10']],
    ['cron(0 12 ? * L *)', ['2026-01-03', '2026-01-10', '2026-01-17']],
    ['cron(0 12 29 2 ? *)', ['2028-02-29', '2032-02-29', '2036-02-29']],
  ])('%s runs on %o', (expression, days) => {
    const s = parseCron(expression, 'UTC');

    expect(take(runsAfter(s, new Date('2026-01-01T00:00:00Z')), 3).map((r) => r.slice(0, 10))).toEqual(days);
  });

  it('ends with the last year it names, and never ran before its first', () => {
    const s = parseCron('cron(0 12 1 1 ? 2027)', 'UTC');

    expect(nextRun(s, new Date('2026-06-01T00:00:00Z'))?.toISOString()).toBe('2027-01-01T12:00:00.000Z');
    expect(nextRun(s, new Date('2027-06-01T00:00:00Z'))).toBeUndefined();
    expect(previousRun(s, new Date('2026-06-01T00:00:00Z'))).toBeUndefined();
  });
});
