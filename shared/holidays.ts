/**
 * Public-holiday calendars for schedules, from the date-holidays package (offline data, no calls).
 * Kept apart from shared/schedules.ts so only code that names calendars bundles their data.
 *
 * A calendar code is `COUNTRY`, `COUNTRY-STATE` or `COUNTRY-STATE-REGION` (`DE`, `DE-BE`, `DE-BY-A`,
 * `US-NY`), as date-holidays names them. Only holidays of type `public` count: date-holidays also lists
 * bank holidays, observances, optional and school holidays (in DE-BE: Christmas Eve as a bank holiday
 * from 14:00), which are not days off for everyone; name such days in `holidays.dates`.
 */
import Holidays from 'date-holidays';
import type { HolidayCalendars } from './schedules.ts';

const known = new Holidays();

const check = (code: string): string | undefined => {
  const [country, state, region, ...rest] = code.split('-');
  const countries = known.getCountries('en') ?? {};
  if (!country || !(country in countries) || rest.length > 0) {
    return `"${code}" is not a holiday calendar: expected COUNTRY[-STATE[-REGION]] as in date-holidays, e.g. DE, DE-BE, US-NY`;
  }
  if (state === undefined) return undefined;
  const states = known.getStates(country, 'en') ?? {};
  if (!(state in states)) {
    return `"${code}": ${country} has no state or province "${state}" (known: ${Object.keys(states).join(', ') || 'none'})`;
  }
  if (region === undefined) return undefined;
  const regions = known.getRegions(country, state, 'en') ?? {};
  if (!(region in regions)) {
    return `"${code}": ${country}-${state} has no region "${region}" (known: ${Object.keys(regions).join(', ') || 'none'})`;
  }
  return undefined;
};

const calendars = new Map<string, Holidays>();

export const holidayCalendars: HolidayCalendars = {
  check,
  holidays: (code, year) => {
    let calendar = calendars.get(code);
    if (!calendar) {
      const [country = '', state, region] = code.split('-');
      calendar = new Holidays(country, state ?? '', region ?? '', { types: ['public'], languages: ['en'] });
      calendars.set(code, calendar);
    }
    const out = new Map<string, string>();
    for (const h of calendar.getHolidays(year, 'en')) {
      if (h.type !== 'public') continue;
      // `date` is the local start ("2026-12-25 00:00:00"); a holiday spanning days lists each of them.
      const first = Date.UTC(
        Number(h.date.slice(0, 4)),
        Number(h.date.slice(5, 7)) - 1,
        Number(h.date.slice(8, 10)),
      );
      const days = Math.max(1, Math.round((h.end.getTime() - h.start.getTime()) / 86_400_000));
      for (let i = 0; i < days; i++) {
        const date = new Date(first + i * 86_400_000).toISOString().slice(0, 10);
        if (!out.has(date)) out.set(date, h.name);
      }
    }
    return out;
  },
};
