/**
 * EventBridge Scheduler cron expressions, evaluated in an IANA time zone: when does a schedule run?
 * Pure (no clock, no I/O, no dependency): the zone's offsets come from Intl.
 *
 * Syntax (EventBridge "Cron expressions reference"): `cron(minutes hours day-of-month month day-of-week
 * year)`, six fields. Minutes 0-59, hours 0-23, month 1-12 or JAN-DEC, year 1970-2199: `, - * /`.
 * Day-of-month 1-31: `, - * ? / L W`. Day-of-week 1-7 or SUN-SAT (1 is Sunday): `, - * ? L #`. One of
 * day-of-month and day-of-week must be `?`: a value or `*` in one needs `?` in the other. `#` stands
 * alone in its field ("3#1,6#3" is refused by AWS as two expressions).
 *
 * Time zones and daylight saving time (EventBridge Scheduler user guide, "Schedule types", and AWS
 * re:Post "eventbridge-scheduler-adjust-dst"): the expression is evaluated in the schedule's zone.
 * "When the time shifts forward in Spring, your schedule invocation gets skipped if the cron
 * expression falls on a non-existent date and time. When the time shifts back in the Fall, your
 * schedule runs only once and doesn't repeat its invocation." A local time that does not exist is
 * therefore no run; a local time that exists twice is one run, at its first occurrence (AWS does not
 * say which occurrence: the first is what a scheduler that walks local time forward produces, and the
 * one assumed here).
 *
 * What this evaluator refuses rather than guess (AWS documents none of them): ranges that wrap around
 * (`FRI-MON`, `22-2`), `L-n`, and `L`/`W`/`#` inside a list or a range. EventBridge may accept some of
 * them (its parser descends from Quartz, where `L-3` is the third-to-last day of the month), but its
 * cron reference defines `L` only as "the last day of the month or week": a schedule using them fails
 * the configuration that evaluates it (instance-rotation's ROTATION_SCHEDULE), naming the field.
 */

import { zoneFormatter } from './zone.ts';

export class CronError extends Error {
  override name = 'CronError';
}

type DayRule = (year: number, month: number, day: number) => boolean;

export interface CronSchedule {
  /** The expression as given, e.g. `cron(0/10 1-5 ? * MON-FRI *)`. */
  readonly expression: string;
  /** The IANA zone it is evaluated in, e.g. `Europe/Berlin`. */
  readonly timeZone: string;
  /** Sorted minutes and hours of the day the schedule runs at. */
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly months: ReadonlySet<number>;
  readonly years: ReadonlySet<number>;
  readonly dayMatches: DayRule;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const FIRST_YEAR = 1970;
const LAST_YEAR = 2199;

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS = {
  minutes: { name: 'minutes', min: 0, max: 59 },
  hours: { name: 'hours', min: 0, max: 23 },
  dayOfMonth: { name: 'day-of-month', min: 1, max: 31 },
  month: { name: 'month', min: 1, max: 12, names: MONTHS },
  dayOfWeek: { name: 'day-of-week', min: 1, max: 7, names: WEEKDAYS },
  year: { name: 'year', min: FIRST_YEAR, max: LAST_YEAR },
} satisfies Record<string, FieldSpec>;

const valueOf = (text: string, spec: FieldSpec): number => {
  const upper = text.toUpperCase();
  const named = spec.names?.indexOf(upper) ?? -1;
  const value = named >= 0 ? named + 1 : /^\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < spec.min || value > spec.max) {
    throw new CronError(
      `${spec.name}: "${text}" is not a value from ${spec.min} to ${spec.max}` +
        (spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : ''),
    );
  }
  return value;
};

/** The values of a field made of `,`-separated `*`, `n`, `a-b`, `a/s`, `*\/s` and `a-b/s` items. */
const listValues = (field: string, spec: FieldSpec): number[] => {
  const values = new Set<number>();
  for (const item of field.split(',')) {
    if (item === '') throw new CronError(`${spec.name}: empty item in "${field}"`);
    const [range = '', stepText, extra] = item.split('/');
    if (extra !== undefined) throw new CronError(`${spec.name}: "${item}" has more than one "/"`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!/^\d+$/.test(stepText ?? '1') || step < 1)
      throw new CronError(`${spec.name}: "${item}" needs a whole step of 1 or more after "/"`);
    let from: number;
    let to: number;
    if (range === '*') {
      from = spec.min;
      to = spec.max;
    } else if (range.includes('-')) {
      const [a = '', b = '', more] = range.split('-');
      if (more !== undefined) throw new CronError(`${spec.name}: "${item}" is not a range`);
      from = valueOf(a, spec);
      to = valueOf(b, spec);
      if (from > to)
        throw new CronError(
          `${spec.name}: "${item}" wraps around; write it as two ranges (for example "FRI-SAT,SUN-MON")`,
        );
    } else {
      from = valueOf(range, spec);
      // `a/s` runs from a to the end of the field; a lone `a` is just a.
      to = stepText === undefined ? from : spec.max;
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return [...values].sort((a, b) => a - b);
};

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
/** 1 (Sunday) to 7 (Saturday), as the day-of-week field counts. */
const weekdayOf = (year: number, month: number, day: number) =>
  new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;

/**
 * The weekday (Monday to Friday) nearest to `day`, never leaving the month (Quartz's `W`); undefined
 * in a month without that day.
 */
const nearestWeekday = (year: number, month: number, day: number) => {
  const last = daysInMonth(year, month);
  if (day > last) return undefined;
  const weekday = weekdayOf(year, month, day);
  if (weekday === 7) return day === 1 ? day + 2 : day - 1;
  if (weekday === 1) return day === last ? day - 2 : day + 1;
  return day;
};

const dayOfMonthRule = (field: string): DayRule => {
  const spec = FIELDS.dayOfMonth;
  if (field === 'L') return (y, m, d) => d === daysInMonth(y, m);
  if (field === 'LW') return (y, m, d) => d === nearestWeekday(y, m, daysInMonth(y, m));
  const w = /^(\d{1,2})W$/.exec(field);
  if (w) {
    const target = valueOf(w[1] ?? '', spec);
    return (y, m, d) => d === nearestWeekday(y, m, target);
  }
  if (/^L-\d+$/i.test(field))
    throw new CronError(
      `day-of-month: "${field}" (days before the last day of the month) is not in the EventBridge cron reference, ` +
        'where L is the last day of the month alone: its runs cannot be told for sure; use L, LW, 15W or days',
    );
  if (/[LW#]/i.test(field)) throw new CronError(`day-of-month: "${field}": L and W stand alone (L, LW, 15W)`);
  const days = new Set(listValues(field, spec));
  return (_y, _m, d) => days.has(d);
};

const dayOfWeekRule = (field: string): DayRule => {
  const spec = FIELDS.dayOfWeek;
  // `L` alone is the last day of the week, Saturday.
  if (field === 'L') return (y, m, d) => weekdayOf(y, m, d) === 7;
  const last = /^([A-Za-z]{3}|\d)L$/.exec(field);
  if (last) {
    const weekday = valueOf(last[1] ?? '', spec);
    return (y, m, d) => weekdayOf(y, m, d) === weekday && d + 7 > daysInMonth(y, m);
  }
  const nth = /^([A-Za-z]{3}|\d)#(\d)$/.exec(field);
  if (nth) {
    const weekday = valueOf(nth[1] ?? '', spec);
    const n = Number(nth[2]);
    if (n < 1 || n > 5) throw new CronError(`day-of-week: "${field}": the week after # is 1 to 5`);
    return (y, m, d) => weekdayOf(y, m, d) === weekday && Math.ceil(d / 7) === n;
  }
  if (/[L#]/i.test(field.replace(/[A-Za-z]{3}/g, (n) => (WEEKDAYS.includes(n.toUpperCase()) ? '' : n))))
    throw new CronError(`day-of-week: "${field}": L and # stand alone (L, 6L, 3#2)`);
  const weekdays = new Set(listValues(field, spec));
  return (y, m, d) => weekdays.has(weekdayOf(y, m, d));
};

/** Throws CronError unless `timeZone` is an IANA zone Intl knows. */
export const assertTimeZone = (timeZone: string): void => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new CronError(`"${timeZone}" is not an IANA time zone such as Europe/Berlin`);
  }
  if (timeZone.trim() === '') throw new CronError('the time zone is empty');
};

/**
 * Parses `cron(m h dom mon dow year)` to be evaluated in `timeZone`, or throws CronError naming the
 * field. Rate and one-time expressions are refused: they have no windows.
 */
export const parseCron = (expression: string, timeZone: string): CronSchedule => {
  const match = /^cron\((.*)\)$/.exec(expression.trim());
  if (!match)
    throw new CronError(
      `"${expression}" is not a cron(...) expression (rate() and at() schedules are not supported here)`,
    );
  const fields = (match[1] ?? '').trim().split(/\s+/);
  if (fields.length !== 6)
    throw new CronError(
      `"${expression}" has ${fields.length} fields; cron() needs 6: minutes hours day-of-month month day-of-week year`,
    );
  const [minutes, hours, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  assertTimeZone(timeZone);
  if ((dom === '?') === (dow === '?'))
    throw new CronError(
      `"${expression}": one of day-of-month and day-of-week must be "?", and only one (a value or * in one needs ? in the other)`,
    );
  for (const [text, spec] of [
    [minutes, FIELDS.minutes],
    [hours, FIELDS.hours],
    [month, FIELDS.month],
    [year, FIELDS.year],
  ] as const) {
    if (/[?LW#]/i.test(text.replace(/[A-Za-z]{3}/g, (n) => (MONTHS.includes(n.toUpperCase()) ? '' : n))))
      throw new CronError(`${spec.name}: "${text}" may use only , - * /`);
  }
  return {
    expression: expression.trim(),
    timeZone,
    minutes: listValues(minutes, FIELDS.minutes),
    hours: listValues(hours, FIELDS.hours),
    months: new Set(listValues(month, FIELDS.month)),
    years: new Set(listValues(year, FIELDS.year)),
    dayMatches: dom === '?' ? dayOfWeekRule(dow) : dayOfMonthRule(dom),
  };
};

// ---- Time zones, from Intl ----

const formatterFor = zoneFormatter;

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The wall-clock time in `timeZone` at an instant. */
export const wallTime = (instant: number, timeZone: string): WallTime => {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    year: parts.year ?? 0,
    month: parts.month ?? 0,
    day: parts.day ?? 0,
    hour: (parts.hour ?? 0) % 24,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
  };
};

/** The zone's offset from UTC at an instant, in ms (Europe/Berlin in winter: +3,600,000). */
export const offsetAt = (instant: number, timeZone: string): number => {
  const w = wallTime(instant, timeZone);
  const whole = instant - (((instant % 1000) + 1000) % 1000);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - whole;
};

const HOUR = 3_600_000;
const DAY = 86_400_000;

/**
 * The instant a local wall time happens at: undefined when it does not exist (skipped by a DST shift
 * forward), the first of two when it exists twice (a shift back).
 */
export const instantOf = (
  timeZone: string,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
): number | undefined => {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  // Offsets lie within ±14 h: those in force 14 h either side cover every candidate.
  const offsets = new Set([offsetAt(wall - 14 * HOUR, timeZone), offsetAt(wall + 14 * HOUR, timeZone)]);
  offsets.add(offsetAt(wall, timeZone));
  const found = [...offsets]
    .map((offset) => wall - offset)
    .filter((instant) => offsetAt(instant, timeZone) === wall - instant)
    .sort((a, b) => a - b);
  return found[0];
};

/** The local date (year, month, day) `days` after the one given, by calendar arithmetic. */
const addDays = (date: { year: number; month: number; day: number }, days: number) => {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
};

/** The instants a schedule runs at on one local date, in order (one lookup per run only around a shift). */
const runsOnDate = (s: CronSchedule, date: { year: number; month: number; day: number }): number[] => {
  if (!s.years.has(date.year) || !s.months.has(date.month) || !s.dayMatches(date.year, date.month, date.day))
    return [];
  const midnight = Date.UTC(date.year, date.month - 1, date.day);
  const before = offsetAt(midnight - 14 * HOUR, s.timeZone);
  const steady = before === offsetAt(midnight + DAY + 14 * HOUR, s.timeZone);
  const out: number[] = [];
  for (const hour of s.hours) {
    for (const minute of s.minutes) {
      const instant = steady
        ? midnight + hour * HOUR + minute * 60_000 - before
        : instantOf(s.timeZone, date.year, date.month, date.day, hour, minute);
      if (instant !== undefined) out.push(instant);
    }
  }
  return out.sort((a, b) => a - b);
};

const dateOf = (instant: number, timeZone: string) => {
  const w = wallTime(instant, timeZone);
  return { year: w.year, month: w.month, day: w.day };
};

/**
 * The schedule's runs strictly after `after`, in order, up to `until` (inclusive) or the last year a
 * cron expression can name.
 */
export function* runsAfter(s: CronSchedule, after: Date, until?: Date): Generator<Date> {
  const end = until?.getTime() ?? Date.UTC(LAST_YEAR + 1, 0, 2);
  let last = after.getTime();
  // Start a day early: the local date of `after` may begin before it in another offset.
  for (let date = addDays(dateOf(last, s.timeZone), -1); date.year <= LAST_YEAR; date = addDays(date, 1)) {
    if (Date.UTC(date.year, date.month - 1, date.day) - 14 * HOUR > end) return;
    // Whole years and months the schedule never runs in are skipped at once.
    if (!s.years.has(date.year)) {
      date = { year: date.year, month: 12, day: 31 };
      continue;
    }
    if (!s.months.has(date.month)) {
      date = { ...date, day: daysInMonth(date.year, date.month) };
      continue;
    }
    for (const instant of runsOnDate(s, date)) {
      if (instant > end) return;
      if (instant > last) {
        last = instant;
        yield new Date(instant);
      }
    }
  }
}

/** The schedule's runs at or before `atOrBefore`, newest first, down to `since` (inclusive). */
export function* runsBefore(s: CronSchedule, atOrBefore: Date, since?: Date): Generator<Date> {
  const start = since?.getTime() ?? Date.UTC(FIRST_YEAR, 0, 1);
  let last = atOrBefore.getTime() + 1;
  for (let date = addDays(dateOf(last, s.timeZone), 1); date.year >= FIRST_YEAR; date = addDays(date, -1)) {
    if (Date.UTC(date.year, date.month - 1, date.day + 1) + 14 * HOUR < start) return;
    if (!s.years.has(date.year)) {
      date = { year: date.year, month: 1, day: 1 };
      continue;
    }
    if (!s.months.has(date.month)) {
      date = { ...date, day: 1 };
      continue;
    }
    for (const instant of runsOnDate(s, date).reverse()) {
      if (instant < start) return;
      if (instant < last) {
        last = instant;
        yield new Date(instant);
      }
    }
  }
}

/** The first run strictly after `after` (within `until`), or undefined. */
export const nextRun = (s: CronSchedule, after: Date, until?: Date): Date | undefined =>
  runsAfter(s, after, until).next().value ?? undefined;

/** The last run at or before `atOrBefore` (not before `since`), or undefined. */
export const previousRun = (s: CronSchedule, atOrBefore: Date, since?: Date): Date | undefined =>
  runsBefore(s, atOrBefore, since).next().value ?? undefined;

const pad = (n: number) => String(n).padStart(2, '0');

/** `Fri 2026-11-27 05:50 Europe/Berlin`: an instant as the schedule's zone reads it, for reports. */
export const formatLocal = (instant: Date, timeZone: string): string => {
  const w = wallTime(instant.getTime(), timeZone);
  const weekday = WEEKDAYS[weekdayOf(w.year, w.month, w.day) - 1] ?? '';
  return `${weekday.charAt(0)}${weekday.slice(1).toLowerCase()} ${w.year}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)} ${timeZone}`;
};
