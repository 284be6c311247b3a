/**
 * Schedules (issue 9): the model and the evaluator. Pure: no clock, no I/O, no AWS; time zones come
 * from Intl, public holidays from a `HolidayCalendars` passed in (shared/holidays.ts backs it with
 * the date-holidays package, so only code that needs calendars bundles them).
 *
 * Periods mean what they mean in AWS Instance Scheduler (implementation guide, "Period reference" and
 * "Schedule reference", docs.aws.amazon.com/solutions/latest/instance-scheduler-on-aws/), so schedules
 * written for it work here unchanged:
 * - `begintime`/`endtime` (H:MM or HH:MM, 24 h, in the schedule's zone): running from begintime,
 *   stopped from endtime (begintime <= time < endtime). begintime after endtime is refused (a period
 *   never crosses midnight: use two periods, e.g. 22:00-23:59 and 00:00-06:00).
 * - A one-sided period expresses no wish before its edge: only begintime → `any` before it, `running`
 *   from it to the end of the day; only endtime → `any` before it, `stopped` from it. No times: the
 *   whole day (running on every day the period's days match).
 * - `weekdays` (0=Monday…6=Sunday, or names), `monthdays` (1-31), `months` (1-12 or names): all given
 *   fields must match ("all conditions must be true"; monthdays and weekdays are not OR-ed as in cron).
 *   Lists, ranges (weekday and month ranges may wrap: `sat-mon`), steps (`1-31/2`, `1/7`), `*`/`?`,
 *   `L` (last day of the month; as a weekday, Sunday), `15W` (the weekday nearest the 15th, never
 *   leaving the month), `mon#2` (second Monday; n 1-5), `friL`/`4L` (last Friday of the month).
 *   A day outside a period's days is `stopped` for that period, one-sided or not.
 * - Several periods: running if any says running, else `any` if any says any, else stopped. When that
 *   gives `stopped` while one minute before and one minute after are both running, the schedule is
 *   running: adjacent periods (09:00-12:00 and 12:01-17:00, or 18:00-23:59 and 00:00-06:00 on the next
 *   day) never stop in between. A single period ending at 23:59 stops at 23:59.
 * - The state is a function of the schedule's local wall-clock time: on the day clocks spring forward a
 *   begintime inside the skipped hour takes effect at the first local time after it; on the day they
 *   fall back, the repeated hour is evaluated again as it reads on the clock.
 *
 * Added here: `holidays` (a public-holiday calendar such as `DE-BE` and/or explicit dates), on which
 * the schedule is `stopped` all day in its zone; and the transitions (when the state changes), for
 * reasons, previews and the catch-up of missed runs.
 */

import { zoneFormatter } from './zone.ts';

export type DesiredState = 'running' | 'stopped' | 'any';

export interface ScheduleProblem {
  /** The schedule's name, when the problem is inside one. */
  schedule?: string;
  /** Path of the offending field, e.g. `schedules.office-hours.periods[0].weekdays`. */
  field: string;
  message: string;
}

/** The schedules document is invalid; `problems` lists every problem found, each naming its field. */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
  constructor(
    public readonly problems: ScheduleProblem[],
    source = 'schedules',
  ) {
    super(`${source} is invalid:\n${problems.map((p) => `  ${p.field}: ${p.message}`).join('\n')}`);
  }
}

/** Public-holiday calendars by code (`DE`, `DE-BE`, `US-NY`). */
export interface HolidayCalendars {
  /** Undefined when the code is known, else why it is not. */
  check(code: string): string | undefined;
  /** The calendar's public holidays in a year: local date (YYYY-MM-DD) → name. */
  holidays(code: string, year: number): ReadonlyMap<string, string>;
}

type DayTest = (d: LocalDay) => boolean;

interface LocalDay {
  year: number;
  month: number;
  day: number;
  /** 0 = Monday … 6 = Sunday, as in Instance Scheduler. */
  weekday: number;
  daysInMonth: number;
}

interface LocalTime extends LocalDay {
  /** Seconds since local midnight, as the clock reads. */
  seconds: number;
}

export interface Period {
  /** 1-based, as reasons name it. */
  readonly number: number;
  readonly begin?: number;
  readonly end?: number;
  readonly matchesDay: DayTest;
}

export interface Schedule {
  readonly name: string;
  readonly timezone: string;
  readonly periods: readonly Period[];
  readonly enforced: boolean;
  readonly calendar?: string;
  readonly dates: ReadonlySet<string>;
  /** Holiday name on a local date, or undefined. */
  readonly holidayOn: (date: string) => string | undefined;
}

export type Schedules = ReadonlyMap<string, Schedule>;

// ---------------------------------------------------------------------------------------------
// Parsing and validation

const WEEKDAY_NAMES = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const MONTH_NAMES = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

/** Schedule names go into the tag value `nightshift:schedule=<name>`: tag-safe characters, no spaces. */
const NAME = /^[A-Za-z0-9_.:/=+\-@]{1,128}$/;
const TIME = /^(\d{1,2}):(\d{2})$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const SCHEDULE_KEYS = new Set(['timezone', 'periods', 'holidays', 'enforced', 'description']);
const PERIOD_KEYS = new Set(['begintime', 'endtime', 'weekdays', 'monthdays', 'months', 'description']);
const HOLIDAY_KEYS = new Set(['calendar', 'dates']);

class FieldError extends Error {}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** A list given as a YAML list or a comma string; numbers may be numbers or strings. */
const tokens = (value: unknown): string[] => {
  const items = Array.isArray(value) ? value : [value];
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string' && typeof item !== 'number') {
      throw new FieldError(`expected a list or a comma-separated string, got ${JSON.stringify(item)}`);
    }
    for (const part of String(item).split(',')) {
      const token = part.trim().toLowerCase();
      if (token === '') throw new FieldError(`has an empty item in ${JSON.stringify(value)}`);
      out.push(token);
    }
  }
  if (out.length === 0) throw new FieldError('is an empty list (leave the field out to mean every day)');
  return out;
};

interface Domain {
  what: string;
  min: number;
  max: number;
  names: readonly string[];
  /** Value of the first name. */
  base: number;
  wraps: boolean;
}

const WEEKDAYS: Domain = { what: 'weekday', min: 0, max: 6, names: WEEKDAY_NAMES, base: 0, wraps: true };
const MONTHDAYS: Domain = { what: 'day of the month', min: 1, max: 31, names: [], base: 1, wraps: false };
const MONTHS: Domain = { what: 'month', min: 1, max: 12, names: MONTH_NAMES, base: 1, wraps: true };

/** A number, a full name or its first three letters, in the domain. */
const value = (text: string, d: Domain): number => {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < d.min || n > d.max) {
      throw new FieldError(
        `${text} is not a ${d.what} (${d.min}-${d.max}${d === WEEKDAYS ? ', 0 is Monday' : ''})`,
      );
    }
    return n;
  }
  const i = d.names.findIndex((name) => name === text || name.slice(0, 3) === text);
  if (i < 0) throw new FieldError(`"${text}" is not a ${d.what}`);
  return i + d.base;
};

/** `a-b`, `a-b/n`, `a/n` (from a to the end); `L` may end a range of days of the month. */
const range = (text: string, d: Domain): ((v: number, last: number) => boolean) | undefined => {
  const m = /^([^/-]+)(?:-([^/-]+))?(?:\/(\d+))?$/.exec(text);
  if (!m || (m[2] === undefined && m[3] === undefined)) return undefined;
  const [, a = '', b, stepText] = m;
  if (a === 'l') throw new FieldError(`"${text}": a range cannot start at L`);
  const start = value(a, d);
  const step = stepText === undefined ? 1 : Number(stepText);
  if (step < 1) throw new FieldError(`"${text}": the step must be at least 1`);
  const endL = b === undefined || (b === 'l' && d === MONTHDAYS);
  const fixedEnd = endL ? undefined : value(b, d);
  if (fixedEnd !== undefined && fixedEnd < start && !d.wraps) {
    throw new FieldError(
      `"${text}": a range of days of the month cannot wrap around (${start} > ${fixedEnd})`,
    );
  }
  return (v, last) => {
    const end = fixedEnd ?? (d === MONTHDAYS ? last : d.max);
    if (end >= start) return v >= start && v <= end && (v - start) % step === 0;
    // A wrapping range (sat-mon, nov-feb) counts on through the end of the domain.
    const width = d.max - d.min + 1;
    const offset = (v - start + width) % width;
    return offset <= (end - start + width) % width && offset % step === 0;
  };
};

const weekdayTerm = (token: string): DayTest => {
  if (token === '*' || token === '?') return () => true;
  // Instance Scheduler reads a lone L in weekdays as the last day of the week, Sunday.
  if (token === 'l') return (d) => d.weekday === 6;
  const nth = /^([a-z0-9]+)#(\d+)$/.exec(token);
  if (nth) {
    const day = value(nth[1]!, WEEKDAYS);
    const n = Number(nth[2]);
    if (n < 1 || n > 5) throw new FieldError(`"${token}": the occurrence after # must be 1-5`);
    return (d) => d.weekday === day && Math.ceil(d.day / 7) === n;
  }
  const last = /^([a-z0-9]+)l$/.exec(token);
  if (last && !range(last[1]!, WEEKDAYS)) {
    const day = value(last[1]!, WEEKDAYS);
    return (d) => d.weekday === day && d.day + 7 > d.daysInMonth;
  }
  const r = range(token, WEEKDAYS);
  if (r) return (d) => r(d.weekday, WEEKDAYS.max);
  const day = value(token, WEEKDAYS);
  return (d) => d.weekday === day;
};

/** The weekday (Mon-Fri) nearest the given day of the month, without leaving the month. */
const nearestWeekday = (want: number, d: LocalDay): number | undefined => {
  if (want > d.daysInMonth) return undefined;
  const weekday = (d.weekday + (want - d.day) + 7 * 10) % 7;
  if (weekday === 5) return want === 1 ? 3 : want - 1; // Saturday: Friday before, or Monday the 3rd
  if (weekday === 6) return want === d.daysInMonth ? want - 2 : want + 1; // Sunday: Monday after, or Friday
  return want;
};

const monthdayTerm = (token: string): DayTest => {
  if (token === '*' || token === '?') return () => true;
  if (token === 'l') return (d) => d.day === d.daysInMonth;
  const w = /^(\d+)w$/.exec(token);
  if (w) {
    const want = value(w[1]!, MONTHDAYS);
    return (d) => nearestWeekday(want, d) === d.day;
  }
  if (/[#]|^[a-z]+l$/.test(token)) throw new FieldError(`"${token}" belongs in weekdays, not monthdays`);
  const r = range(token, MONTHDAYS);
  if (r) return (d) => r(d.day, d.daysInMonth);
  const day = value(token, MONTHDAYS);
  return (d) => d.day === day;
};

const monthTerm = (token: string): DayTest => {
  if (token === '*' || token === '?') return () => true;
  if (token === 'l' || token.endsWith('w') || token.includes('#')) {
    throw new FieldError(`"${token}" is not allowed in months`);
  }
  const r = range(token, MONTHS);
  if (r) return (d) => r(d.month, MONTHS.max);
  const month = value(token, MONTHS);
  return (d) => d.month === month;
};

const dayField = (raw: unknown, term: (token: string) => DayTest): DayTest | undefined => {
  if (raw === undefined || raw === null) return undefined;
  const tests = tokens(raw).map(term);
  return (d) => tests.some((t) => t(d));
};

const timeOfDay = (raw: unknown): number | undefined => {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string') {
    throw new FieldError(`expected a time "HH:MM" (quote it in YAML), got ${JSON.stringify(raw)}`);
  }
  const m = TIME.exec(raw.trim());
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) {
    throw new FieldError(`"${raw}" is not a time HH:MM from 00:00 to 23:59 (end a day with 23:59)`);
  }
  return Number(m[1]) * 3600 + Number(m[2]) * 60;
};

const validDate = (text: string): boolean => {
  const m = DATE.exec(text);
  if (!m) return false;
  const t = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return t.getUTCMonth() === Number(m[2]) - 1 && t.getUTCDate() === Number(m[3]);
};

/** Throws unless `timezone` is a zone Intl knows (IANA names such as Europe/Berlin, or UTC). */
const checkZone = (timezone: string) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new FieldError(
      `"${timezone}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`,
    );
  }
};

export interface ParseOptions {
  /** Needed only when a schedule names a holiday calendar. */
  calendars?: HolidayCalendars;
  /** Names the document in the error message, e.g. `infra/schedules.yml`. */
  source?: string;
}

/**
 * Parses and validates a schedules document (`{ schedules: { <name>: { timezone?, periods,
 * holidays?, enforced? } } }`). Throws ScheduleError listing every problem, each naming the schedule
 * and the field.
 */
export const parseSchedules = (doc: unknown, options: ParseOptions = {}): Schedules => {
  const problems: ScheduleProblem[] = [];
  const out = new Map<string, Schedule>();
  if (!isRecord(doc) || !isRecord(doc.schedules)) {
    throw new ScheduleError(
      [{ field: 'schedules', message: 'expected a mapping `schedules: { <name>: { periods: [...] } }`' }],
      options.source,
    );
  }
  for (const key of Object.keys(doc)) {
    if (key !== 'schedules') problems.push({ field: key, message: 'unknown field (only `schedules`)' });
  }
  for (const [name, raw] of Object.entries(doc.schedules)) {
    const at = `schedules.${name}`;
    const fail = (field: string, message: string) => problems.push({ schedule: name, field, message });
    const attempt = <T>(field: string, fn: () => T): T | undefined => {
      try {
        return fn();
      } catch (error) {
        if (!(error instanceof FieldError)) throw error;
        fail(field, error.message);
        return undefined;
      }
    };
    if (!NAME.test(name)) {
      fail(at, 'a schedule name is 1-128 letters, digits and _ . : / = + - @ (it is a tag value)');
    }
    if (!isRecord(raw)) {
      fail(at, 'expected a mapping with `periods`');
      continue;
    }
    for (const key of Object.keys(raw)) {
      if (!SCHEDULE_KEYS.has(key)) {
        fail(`${at}.${key}`, 'unknown field (timezone, periods, holidays, enforced, description)');
      }
    }
    const timezone =
      attempt(`${at}.timezone`, () => {
        if (raw.timezone === undefined) return 'UTC';
        if (typeof raw.timezone !== 'string') throw new FieldError('expected an IANA time zone name');
        checkZone(raw.timezone);
        return raw.timezone;
      }) ?? 'UTC';
    const enforced = attempt(`${at}.enforced`, () => {
      if (raw.enforced === undefined) return false;
      if (typeof raw.enforced === 'boolean') return raw.enforced;
      if (raw.enforced === 'true' || raw.enforced === 'false') return raw.enforced === 'true';
      throw new FieldError(`expected true or false, got ${JSON.stringify(raw.enforced)}`);
    });
    const periods: Period[] = [];
    if (!Array.isArray(raw.periods) || raw.periods.length === 0) {
      fail(`${at}.periods`, 'expected a list of at least one period');
    } else {
      raw.periods.forEach((p: unknown, i: number) => {
        const pat = `${at}.periods[${i}]`;
        if (!isRecord(p)) {
          fail(pat, 'expected a mapping (begintime, endtime, weekdays, monthdays, months)');
          return;
        }
        for (const key of Object.keys(p)) {
          if (!PERIOD_KEYS.has(key)) {
            fail(`${pat}.${key}`, 'unknown field (begintime, endtime, weekdays, monthdays, months)');
          }
        }
        const begin = attempt(`${pat}.begintime`, () => timeOfDay(p.begintime));
        const end = attempt(`${pat}.endtime`, () => timeOfDay(p.endtime));
        if (begin !== undefined && end !== undefined && begin > end) {
          fail(
            `${pat}.endtime`,
            `endtime ${p.endtime} is before begintime ${p.begintime}: a period cannot cross midnight; ` +
              'use two periods (e.g. begintime to 23:59, and 00:00 to endtime on the next days)',
          );
        }
        const tests = [
          attempt(`${pat}.weekdays`, () => dayField(p.weekdays, weekdayTerm)),
          attempt(`${pat}.monthdays`, () => dayField(p.monthdays, monthdayTerm)),
          attempt(`${pat}.months`, () => dayField(p.months, monthTerm)),
        ].filter((t): t is DayTest => t !== undefined);
        periods.push({
          number: i + 1,
          ...(begin !== undefined && { begin }),
          ...(end !== undefined && { end }),
          matchesDay: (d) => tests.every((t) => t(d)),
        });
      });
    }
    let calendar: string | undefined;
    const dates = new Set<string>();
    if (raw.holidays !== undefined && raw.holidays !== null) {
      const h = raw.holidays;
      if (!isRecord(h)) {
        fail(`${at}.holidays`, 'expected a mapping { calendar?, dates? }');
      } else {
        for (const key of Object.keys(h)) {
          if (!HOLIDAY_KEYS.has(key)) fail(`${at}.holidays.${key}`, 'unknown field (calendar, dates)');
        }
        if (h.calendar !== undefined) {
          attempt(`${at}.holidays.calendar`, () => {
            if (typeof h.calendar !== 'string' || h.calendar.trim() === '') {
              throw new FieldError('expected a calendar code such as DE, DE-BE or US-NY');
            }
            const code = h.calendar.trim().toUpperCase();
            if (!options.calendars) throw new FieldError('no holiday calendars are available to check it');
            const why = options.calendars.check(code);
            if (why) throw new FieldError(why);
            calendar = code;
          });
        }
        if (h.dates !== undefined) {
          attempt(`${at}.holidays.dates`, () => {
            for (const d of tokens(h.dates)) {
              if (!validDate(d)) throw new FieldError(`"${d}" is not a date YYYY-MM-DD`);
              dates.add(d);
            }
          });
        }
      }
    }
    const calendars = options.calendars;
    const byYear = new Map<number, ReadonlyMap<string, string>>();
    const code = calendar;
    out.set(name, {
      name,
      timezone,
      periods,
      enforced: enforced ?? false,
      ...(code !== undefined && { calendar: code }),
      dates,
      holidayOn: (date) => {
        if (dates.has(date)) return `${date} (holidays.dates)`;
        if (code === undefined || !calendars) return undefined;
        const inYear = (year: number) => {
          let days = byYear.get(year);
          if (!days) {
            days = calendars.holidays(code, year);
            byYear.set(year, days);
          }
          return days.get(date);
        };
        // A holiday of next year may be observed on 31 Dec (a New Year's Day that falls on a Saturday).
        const year = Number(date.slice(0, 4));
        const holiday = inYear(year) ?? inYear(year + 1);
        return holiday === undefined ? undefined : `${holiday} (${code})`;
      },
    });
  }
  if (problems.length > 0) throw new ScheduleError(problems, options.source);
  return out;
};

// ---------------------------------------------------------------------------------------------
// Time zones (Intl only)

const formatter = zoneFormatter;

const MINUTE = 60_000;
const DAY = 86_400_000;

/** The wall clock in `timeZone` at instant `ms`, as if it were UTC (whole seconds). */
const wallMs = (timeZone: string, ms: number): number => {
  const p: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
};

const localTime = (timeZone: string, ms: number): LocalTime => {
  const w = new Date(wallMs(timeZone, ms));
  const year = w.getUTCFullYear();
  const month = w.getUTCMonth() + 1;
  return {
    year,
    month,
    day: w.getUTCDate(),
    weekday: (w.getUTCDay() + 6) % 7,
    daysInMonth: new Date(Date.UTC(year, month, 0)).getUTCDate(),
    seconds: w.getUTCHours() * 3600 + w.getUTCMinutes() * 60 + w.getUTCSeconds(),
  };
};

const offsetAt = (timeZone: string, ms: number) => wallMs(timeZone, ms) - Math.floor(ms / 1000) * 1000;

/** The instants at which the clock in `timeZone` reads `wall`: none in a gap, two in a repeated hour. */
const instantsOf = (timeZone: string, wall: number): number[] => {
  const offsets = new Set([offsetAt(timeZone, wall - DAY), offsetAt(timeZone, wall + DAY)]);
  return [...offsets].map((o) => wall - o).filter((t) => wallMs(timeZone, t) === wall);
};

/**
 * The first instant after `after` at which the clock in `timeZone` reads `seconds` past midnight
 * (`--until 22:00`): today's if it is still ahead, else tomorrow's. On a day whose clock skips that
 * time (spring forward), the instant the clock jumps past it; in a repeated hour, the first one ahead.
 */
export const nextWallClock = (timeZone: string, seconds: number, after: Date): Date => {
  const l = localTime(timeZone, after.getTime());
  for (let day = 0; day < 3; day++) {
    const wall = Date.UTC(l.year, l.month - 1, l.day + day) + seconds * 1000;
    const found = instantsOf(timeZone, wall);
    // In a gap the clock passes `wall` at the change, which lies between `wall` read in the offset after
    // it and in the offset before it.
    // In a repeated hour, the first occurrence still ahead (the second 02:30 when the first has passed).
    const ahead = found.filter((t) => t > after.getTime());
    const at =
      found.length > 0
        ? Math.min(...(ahead.length > 0 ? ahead : found))
        : (offsetChanges(
            timeZone,
            wall - offsetAt(timeZone, wall + DAY),
            wall - offsetAt(timeZone, wall - DAY),
          )[0] ?? wall - offsetAt(timeZone, wall - DAY));
    if (at > after.getTime()) return new Date(at);
  }
  throw new Error(`no ${clock(seconds)} in ${timeZone} within two days of ${after.toISOString()}`);
};

/** Instants in (from, to] at which the zone's offset changes (DST). */
const offsetChanges = (timeZone: string, from: number, to: number): number[] => {
  const out: number[] = [];
  for (let a = from; a < to; a += DAY / 2) {
    const b = Math.min(a + DAY / 2, to);
    if (offsetAt(timeZone, a) === offsetAt(timeZone, b)) continue;
    let lo = a;
    let hi = b;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (offsetAt(timeZone, mid) === offsetAt(timeZone, a)) lo = mid;
      else hi = mid;
    }
    out.push(hi);
  }
  return out;
};

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const clock = (seconds: number) => `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}`;
const isoDate = (d: LocalDay) => `${d.year}-${pad(d.month)}-${pad(d.day)}`;
const WEEKDAY_SHORT = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** `2026-11-30T07:00:00+01:00`: the instant in the zone's local time. */
export const localIso = (timeZone: string, at: Date): string => {
  const ms = at.getTime();
  const l = localTime(timeZone, ms);
  const offset = Math.round(offsetAt(timeZone, ms) / MINUTE);
  const sign = offset < 0 ? '-' : '+';
  const hhmmss = `${pad(Math.floor(l.seconds / 3600))}:${pad(Math.floor(l.seconds / 60) % 60)}:${pad(l.seconds % 60)}`;
  return `${isoDate(l)}T${hhmmss}${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
};

/** `Mon 07:00`, or `Mon 2026-12-28 07:00` when more than six days from `near`. */
export const localLabel = (timeZone: string, at: Date, near?: Date): string => {
  const l = localTime(timeZone, at.getTime());
  const hhmm = clock(l.seconds);
  const far = near === undefined || Math.abs(at.getTime() - near.getTime()) >= 6 * DAY;
  return `${WEEKDAY_SHORT[l.weekday]}${far ? ` ${isoDate(l)}` : ''} ${hhmm}`;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

interface Decision {
  state: DesiredState;
  /** The period that decided (running: the one that began last; any: the first one-sided). */
  period?: number;
  holiday?: string;
  /** Running only because periods before and after are adjacent. */
  adjacent?: boolean;
  /** Stopped: the period whose endtime passed today. */
  ended?: number;
}

const periodState = (p: Period, t: LocalTime): DesiredState => {
  if (!p.matchesDay(t)) return 'stopped';
  if (p.begin === undefined && p.end === undefined) return 'running';
  if (p.begin === undefined) return t.seconds >= p.end! ? 'stopped' : 'any';
  if (p.end === undefined) return t.seconds >= p.begin ? 'running' : 'any';
  return t.seconds >= p.begin && t.seconds < p.end ? 'running' : 'stopped';
};

const decideAt = (s: Schedule, ms: number): Decision => {
  const t = localTime(s.timezone, ms);
  const holiday = s.holidayOn(isoDate(t));
  if (holiday !== undefined) return { state: 'stopped', holiday };
  let running: Period | undefined;
  let any: Period | undefined;
  let ended: Period | undefined;
  for (const p of s.periods) {
    const state = periodState(p, t);
    if (state === 'stopped' && p.end !== undefined && t.seconds >= p.end && p.matchesDay(t)) ended ??= p;
    // Of several running periods, the one that began last decides (as Instance Scheduler names it).
    if (state === 'running' && (!running || (p.begin ?? -1) > (running.begin ?? -1))) running = p;
    if (state === 'any' && !any) any = p;
  }
  if (running) return { state: 'running', period: running.number };
  if (any) return { state: 'any', period: any.number };
  return { state: 'stopped', ...(ended && { ended: ended.number }) };
};

const decide = (s: Schedule, ms: number): Decision => {
  const d = decideAt(s, ms);
  if (d.state !== 'stopped' || d.holiday !== undefined || s.periods.length < 2) return d;
  const before = decideAt(s, ms - MINUTE);
  const after = decideAt(s, ms + MINUTE);
  if (before.state === 'running' && after.state === 'running') {
    return { state: 'running', period: after.period!, adjacent: true };
  }
  return d;
};

export interface Transition {
  schedule: string;
  at: Date;
  from: DesiredState;
  to: DesiredState;
  /** Why the schedule is in `to` from then on. */
  why: string;
}

const why = (s: Schedule, d: Decision): string => {
  if (d.holiday !== undefined) return `holiday: ${d.holiday}`;
  if (d.state === 'running') return `period ${d.period}${d.adjacent ? ', adjacent periods' : ''}`;
  if (d.state === 'any') {
    const p = s.periods[d.period! - 1]!;
    return `period ${d.period} has no wish before ${clock(p.begin ?? p.end!)}`;
  }
  if (d.ended !== undefined) return `period ${d.ended} ended at ${clock(s.periods[d.ended - 1]!.end!)}`;
  return 'outside every period';
};

/** The transitions in (from, to], in order: each instant the desired state changes. */
const transitionsIn = (s: Schedule, from: number, to: number): Transition[] => {
  const first = localTime(s.timezone, from);
  const candidates = new Set<number>();
  const edges = [
    0,
    ...s.periods.flatMap((p) => [p.begin, p.end].filter((e): e is number => e !== undefined)),
  ];
  for (
    let day = Date.UTC(first.year, first.month - 1, first.day) - DAY;
    day <= Date.UTC(first.year, first.month - 1, first.day) + (to - from) + 2 * DAY;
    day += DAY
  ) {
    for (const edge of edges) for (const t of instantsOf(s.timezone, day + edge * 1000)) candidates.add(t);
  }
  for (const t of offsetChanges(s.timezone, from - DAY, to + DAY)) candidates.add(t);
  // Adjacent periods: the state at t also depends on t ± 1 minute.
  const all = [...candidates].flatMap((t) => [t - MINUTE, t, t + MINUTE]).filter((t) => t > from && t <= to);
  const sorted = [...new Set(all)].sort((a, b) => a - b);
  const out: Transition[] = [];
  let previous = decide(s, from);
  for (const t of sorted) {
    const d = decide(s, t);
    if (d.state !== previous.state) {
      out.push({ schedule: s.name, at: new Date(t), from: previous.state, to: d.state, why: why(s, d) });
    }
    previous = d;
  }
  return out;
};

const HORIZON_DAYS = 400;
const CHUNK = 31 * DAY;

/** The coming transitions after `from` (exclusive) up to `until` (inclusive). */
export const transitionsBetween = (s: Schedule, from: Date, until: Date): Transition[] =>
  transitionsIn(s, from.getTime(), until.getTime());

/** The first transition after `at`, within 400 days. */
export const nextTransition = (s: Schedule, at: Date): Transition | undefined => {
  for (let a = at.getTime(); a < at.getTime() + HORIZON_DAYS * DAY; a += CHUNK) {
    const found = transitionsIn(s, a, a + CHUNK)[0];
    if (found) return found;
  }
  return undefined;
};

/**
 * The last transition at or before `at`, within 400 days: the moment the schedule entered the state
 * it is in at `at`. A resource nightshift has not acted on since then is due (missed-run catch-up).
 */
export const lastTransition = (s: Schedule, at: Date): Transition | undefined => {
  for (let b = at.getTime(); b > at.getTime() - HORIZON_DAYS * DAY; b -= CHUNK) {
    const found = transitionsIn(s, b - CHUNK, b).at(-1);
    if (found) return found;
  }
  return undefined;
};

export interface Evaluation {
  schedule: string;
  state: DesiredState;
  /** `office-hours: running since Mon 07:00 Europe/Berlin (period 1); next stop Mon 19:00` */
  reason: string;
  /** The period that decided, 1-based. */
  period?: number;
  holiday?: string;
  since?: Transition;
  next?: Transition;
}

const VERB: Record<DesiredState, string> = {
  running: 'next start',
  stopped: 'next stop',
  any: 'no wish from',
};

/** The desired state of `s` at `at`, with a reason in the schedule's local time. */
export const evaluate = (s: Schedule, at: Date): Evaluation => {
  const d = decide(s, at.getTime());
  const since = lastTransition(s, at);
  const next = nextTransition(s, at);
  const sinceText = since
    ? ` since ${localLabel(s.timezone, since.at, at)} ${s.timezone}`
    : ` for over ${HORIZON_DAYS} days, ${s.timezone}`;
  const nextText = next
    ? `${VERB[next.to]} ${localLabel(s.timezone, next.at, at)}`
    : `no change in the next ${HORIZON_DAYS} days`;
  return {
    schedule: s.name,
    state: d.state,
    reason: `${s.name}: ${d.state}${sinceText} (${why(s, d)}); ${nextText}`,
    ...(d.period !== undefined && { period: d.period }),
    ...(d.holiday !== undefined && { holiday: d.holiday }),
    ...(since && { since }),
    ...(next && { next }),
  };
};

/** The desired state of `s` at `at`, without the reason (cheaper: no search for transitions). */
export const desiredState = (s: Schedule, at: Date): DesiredState => decide(s, at.getTime()).state;
