/**
 * Public holidays computed at build time and carried in a bundle as a small table, so a deployed
 * function needs no holiday package: date-holidays and its data for every country are about 1.5 MiB
 * of minified bundle, the table for one calendar over thirteen years about 5 KiB.
 *
 * `npm run build` (scripts/build.ts) tabulates every calendar the schedules file names, with the same
 * rules as shared/holidays.ts (it asks shared/holidays.ts), for the years `holidayYears` gives. A year
 * outside the table is never answered with "no holidays": `holidays` throws HolidaysNotBuiltError, which
 * names the calendar and the year and says to rebuild and redeploy.
 */
import type { HolidayCalendars } from './schedules.ts';

/** Holidays by calendar code, then year, as HolidayCalendars.holidays gives them: local date → name. */
export interface HolidayTable {
  /** The first and the last year held (inclusive), the same for every calendar. */
  first: number;
  last: number;
  calendars: Record<string, Record<string, Record<string, string>>>;
}

/**
 * The years a bundle built in `buildYear` carries: from the year before (a reconcile looks back to the
 * schedule's last transition) to 11 years after. Evaluating a date reads the calendar of its year and
 * of the next (a New Year's Day observed on 31 Dec belongs to the next year's calendar), and an
 * evaluation looks for transitions a month ahead and back (further for a schedule that changes state
 * less often): a bundle serves schedules naming a calendar from about February of buildYear − 1 to
 * November of buildYear + 10. Outside, the evaluation throws HolidaysNotBuiltError.
 */
export const holidayYears = (buildYear: number): { first: number; last: number } => ({
  first: buildYear - 1,
  last: buildYear + 11,
});

/** The table of `codes` for the years `first`…`last`, from a full source of calendars (build time). */
export const tabulateHolidays = (
  source: HolidayCalendars,
  codes: Iterable<string>,
  { first, last }: { first: number; last: number },
): HolidayTable => {
  const calendars: HolidayTable['calendars'] = {};
  for (const code of [...new Set(codes)].sort()) {
    const why = source.check(code);
    if (why) throw new Error(`cannot tabulate holiday calendar ${code}: ${why}`);
    const years: Record<string, Record<string, string>> = {};
    for (let year = first; year <= last; year++) {
      years[year] = Object.fromEntries(source.holidays(code, year));
    }
    calendars[code] = years;
  }
  return { first, last, calendars };
};

/**
 * A schedule asked a bundle for holidays it does not carry: the bundle is older than the years it now
 * evaluates (or the clock is wrong), or the calendar is not built into it.
 */
export class HolidaysNotBuiltError extends Error {
  override name = 'HolidaysNotBuiltError';
  constructor(
    public readonly calendar: string,
    public readonly year: number,
    /** The years the bundle carries; undefined when it does not carry the calendar at all. */
    public readonly years: { first: number; last: number } | undefined,
  ) {
    super(
      `holiday calendar ${calendar}: ` +
        (years
          ? `this bundle carries its holidays for ${years.first}–${years.last} only, not ${year}`
          : `not built into this bundle (asked for ${year})`) +
        `, so no schedule naming ${calendar} can be evaluated: rebuild and redeploy ` +
        '(npm run build computes the holidays again from the build year)',
    );
  }
}

/** HolidayCalendars answered from a table: exactly its calendars, exactly its years. */
export const tableCalendars = (table: HolidayTable): HolidayCalendars => {
  const known = Object.keys(table.calendars);
  const span = { first: table.first, last: table.last };
  return {
    check: (code) =>
      Object.hasOwn(table.calendars, code)
        ? undefined
        : `"${code}" is not among the holiday calendars built into this bundle (${known.join(', ') || 'none'}): ` +
          'rebuild and redeploy with the schedules file that names it',
    holidays: (code, year) => {
      if (!Object.hasOwn(table.calendars, code)) throw new HolidaysNotBuiltError(code, year, undefined);
      if (!Number.isInteger(year) || year < table.first || year > table.last) {
        throw new HolidaysNotBuiltError(code, year, span);
      }
      return new Map(Object.entries(table.calendars[code]![year] ?? {}));
    },
  };
};
