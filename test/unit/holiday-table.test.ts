/**
 * The holiday table a bundle carries instead of date-holidays (shared/holiday-table.ts): the same
 * holidays as the full calendars for the years it holds, exactly the calendars it was built with, and
 * a loud failure, naming calendar and year, for any year it does not hold.
 */
import { describe, expect, it } from 'vitest';
import {
  HolidaysNotBuiltError,
  holidayYears,
  tableCalendars,
  tabulateHolidays,
} from '#shared/holiday-table.ts';
import { holidayCalendars } from '#shared/holidays.ts';
import { desiredState, evaluate, parseSchedules, type Schedule } from '#shared/schedules.ts';

const YEARS = holidayYears(2026);
const table = tabulateHolidays(holidayCalendars, ['DE-BE', 'US-NY', 'KR', 'DE-BE'], YEARS);
const built = tableCalendars(table);

const officeHours = (calendars = built): Schedule =>
  parseSchedules(
    {
      schedules: {
        'office-hours': {
          timezone: 'Europe/Berlin',
          periods: [{ begintime: '07:00', endtime: '19:00', weekdays: 'mon-fri' }],
          holidays: { calendar: 'de-be', dates: ['2026-12-24'] },
        },
      },
    },
    { calendars },
  ).get('office-hours')!;

describe('holidayYears', () => {
  it('holds the year before the build to eleven years after it', () => {
    expect(holidayYears(2026)).toEqual({ first: 2025, last: 2037 });
  });
});

describe('tabulateHolidays', () => {
  it('holds, for every calendar and year, exactly what the full calendars answer', () => {
    expect(Object.keys(table.calendars)).toEqual(['DE-BE', 'KR', 'US-NY']);
    for (const code of ['DE-BE', 'US-NY', 'KR']) {
      for (let year = YEARS.first; year <= YEARS.last; year++) {
        expect([...built.holidays(code, year)], `${code} ${year}`).toEqual([
          ...holidayCalendars.holidays(code, year),
        ]);
      }
    }
  });

  it('lists public holidays only, and a holiday of several days on each of its days', () => {
    // Christmas Eve is a bank holiday from 14:00 in DE-BE, not a public holiday.
    expect(built.holidays('DE-BE', 2026).get('2026-12-24')).toBeUndefined();
    expect(built.holidays('DE-BE', 2027).get('2027-10-03')).toBe('National Holiday');
    // Korean New Year 2027 lasts three days, 7-9 February.
    expect(
      ['2027-02-06', '2027-02-07', '2027-02-08', '2027-02-09', '2027-02-10'].map((d) =>
        built.holidays('KR', 2027).get(d),
      ),
    ).toEqual([undefined, 'Korean New Year', 'Korean New Year', 'Korean New Year', undefined]);
  });

  it('refuses a calendar date-holidays does not know', () => {
    expect(() => tabulateHolidays(holidayCalendars, ['DE-XX'], YEARS)).toThrow(
      /cannot tabulate holiday calendar DE-XX: "DE-XX": DE has no state or province "XX"/,
    );
  });
});

describe('tableCalendars', () => {
  it('knows exactly the calendars built in', () => {
    expect(built.check('DE-BE')).toBeUndefined();
    expect(built.check('US-NY')).toBeUndefined();
    expect(built.check('DE-BY')).toBe(
      '"DE-BY" is not among the holiday calendars built into this bundle (DE-BE, KR, US-NY): ' +
        'rebuild and redeploy with the schedules file that names it',
    );
    expect(() =>
      parseSchedules({ schedules: { s: { holidays: { calendar: 'FR' } } } }, { calendars: built }),
    ).toThrow(
      /schedules\.s\.holidays\.calendar: "FR" is not among the holiday calendars built into this bundle/,
    );
  });

  it('evaluates a schedule exactly as the full calendars do within the years it holds', () => {
    const times = [
      '2026-12-25T10:00:00Z',
      '2027-10-04T10:00:00Z',
      '2027-10-01T10:00:00Z',
      '2036-11-28T10:00:00Z',
    ];
    for (const at of times) {
      expect(evaluate(officeHours(), new Date(at)), at).toEqual(
        evaluate(officeHours(holidayCalendars), new Date(at)),
      );
    }
    expect(evaluate(officeHours(), new Date('2026-12-25T10:00:00Z')).reason).toBe(
      'office-hours: stopped since Wed 19:00 Europe/Berlin (holiday: Christmas Day (DE-BE)); next start Mon 07:00',
    );
  });

  it('throws for a year it does not hold, naming the calendar and the year: never "no holidays"', () => {
    const outside = [YEARS.first - 1, YEARS.last + 1, 2090];
    for (const year of outside) {
      let error: unknown;
      try {
        built.holidays('DE-BE', year);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HolidaysNotBuiltError);
      expect(error).toMatchObject({ name: 'HolidaysNotBuiltError', calendar: 'DE-BE', year });
      expect((error as Error).message).toBe(
        `holiday calendar DE-BE: this bundle carries its holidays for 2025–2037 only, not ${year}, so no ` +
          'schedule naming DE-BE can be evaluated: rebuild and redeploy (npm run build computes the ' +
          'holidays again from the build year)',
      );
    }
    expect(() => built.holidays('FR', 2026)).toThrow(
      /^holiday calendar FR: not built into this bundle \(asked for 2026\), so no schedule naming FR can be evaluated: rebuild and redeploy/,
    );
  });

  it('fails the evaluation of a schedule naming the calendar outside its years, and not the others', () => {
    const s = officeHours();
    const stageNights = parseSchedules(
      { schedules: { n: { periods: [{ endtime: '20:00', weekdays: 'mon-fri' }] } } },
      { calendars: built },
    ).get('n')!;

    // A date reads its year's calendar and the next one's (a New Year's Day observed on 31 Dec), and an
    // evaluation looks a month ahead for the next transition: November 2036 is the last month served.
    expect(evaluate(s, new Date('2036-11-28T10:00:00Z')).reason).toMatch(/^office-hours: running since /);
    expect(desiredState(s, new Date('2036-12-26T10:00:00Z'))).toBe('stopped');
    expect(() => evaluate(s, new Date('2036-12-15T10:00:00Z'))).toThrow(
      /holiday calendar DE-BE: .* not 2038, .*rebuild and redeploy/,
    );
    expect(() => desiredState(s, new Date('2090-06-15T10:00:00Z'))).toThrow(
      /holiday calendar DE-BE: .* not 2090, .*rebuild and redeploy/,
    );
    // A schedule without a calendar is not concerned.
    expect(evaluate(stageNights, new Date('2090-06-15T21:00:00Z')).state).toBe('stopped');
  });
});
