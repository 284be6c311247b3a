/**
 * Self-service overrides of a schedule (`nightshift wake|sleep`), recorded on the resource itself as the
 * tag `nightshift:override` = `state=running until=2026-11-29T21:00:00Z by=<identity> why=<reason>`.
 * Public contract: people read it in the console, `nightshift status` shows it, and every function that
 * asks whether a resource is parked reads it. Pure.
 */
import { parseDuration } from './duration.ts';
import { nextWallClock } from './schedules.ts';

export const OVERRIDE_TAG = 'nightshift:override';

/** Overrides are capped: OVERRIDE_MAX_HOURS when unset or empty. */
export const DEFAULT_OVERRIDE_MAX_HOURS = 24;

export type OverrideState = 'running' | 'stopped';

export interface Override {
  state: OverrideState;
  until: Date;
  /** Who asked: the caller's identity as STS names it. */
  by: string;
  /** Why, as given (cleaned to tag-safe characters); empty when none was given. */
  why: string;
}

/**
 * The characters ECS, EC2 Auto Scaling and RDS all accept in a tag value: letters, digits, white space
 * and `_ . : / = + - @` (RDS: `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`; ECS names the same set). A value holds
 * at most 256 characters.
 */
const UNSAFE = /[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu;
export const TAG_VALUE_MAX = 256;

/** Text made tag-safe: other characters become spaces, runs of white space one space. */
export const tagSafe = (text: string): string => text.replace(UNSAFE, ' ').replace(/\s+/g, ' ').trim();

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The tag value; `why` is cut (ending in `...`) to fit the 256 characters of a tag value. */
export const encodeOverride = (o: Override): string => {
  const head = `state=${o.state} until=${iso(o.until)} by=${tagSafe(o.by).replace(/ /g, '_')}`.slice(
    0,
    TAG_VALUE_MAX,
  );
  const why = tagSafe(o.why);
  const room = TAG_VALUE_MAX - Array.from(head).length - ' why='.length;
  if (why === '' || room < 4) return head;
  // By code point: a cut through a surrogate pair would leave a character TagResource refuses. AWS counts
  // a tag value's length in Unicode characters.
  const chars = Array.from(why);
  return `${head} why=${
    chars.length > room
      ? `${chars
          .slice(0, room - 3)
          .join('')
          .trimEnd()}...`
      : why
  }`;
};

export class OverrideTagError extends Error {
  override name = 'OverrideTagError';
}

/**
 * Reads the tag value. `why=` takes the rest of the value (a reason has spaces); the other fields are
 * single words. Throws OverrideTagError naming what is wrong: a person may have edited the tag by hand.
 */
export const decodeOverride = (text: string): Override => {
  const whyAt = text.search(/(?:^| )why=/);
  const head = whyAt < 0 ? text : text.slice(0, whyAt);
  const why =
    whyAt < 0
      ? ''
      : text
          .slice(whyAt)
          .replace(/^ ?why=/, '')
          .trim();
  const fields = new Map<string, string>();
  for (const part of head.trim().split(/ +/)) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const state = fields.get('state');
  if (state !== 'running' && state !== 'stopped') {
    throw new OverrideTagError(`${OVERRIDE_TAG} "${text}": state must be running or stopped`);
  }
  const untilText = fields.get('until') ?? '';
  const until = Date.parse(untilText);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?Z$/.test(untilText) || Number.isNaN(until)) {
    throw new OverrideTagError(
      `${OVERRIDE_TAG} "${text}": until must be a UTC time such as 2026-11-29T21:00:00Z`,
    );
  }
  return { state, until: new Date(until), by: fields.get('by') ?? 'unknown', why };
};

/** An override wins over the schedule until it expires (at `until`, exactly). */
export const overrideActive = (o: Override, now: Date): boolean => now.getTime() < o.until.getTime();

/** How long an override lasts, as asked: `--for 3h` or `--until 22:00` (or a full ISO time). */
export type OverrideLength = { for: string } | { until: string };

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** `--for`: 30m, 3h, 1d. Undefined when it is not a duration. */
export const overrideDuration = (text: string): number | undefined => {
  const ms = parseDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
};

/** Whether `--until` is a clock time (in the zone of each resource's schedule) or a full time. */
export const untilIsClock = (text: string): boolean => CLOCK.test(text);

export const validUntil = (text: string): boolean =>
  CLOCK.test(text) || (ISO_WITH_ZONE.test(text) && !Number.isNaN(Date.parse(text)));

/**
 * When an override asked at `now` ends. `--until 22:00` is the next 22:00 in `timeZone` (the zone of the
 * resource's schedule); a full ISO time carries its own offset.
 */
export const overrideEnd = (length: OverrideLength, timeZone: string, now: Date): Date => {
  if ('for' in length) {
    const ms = overrideDuration(length.for);
    if (ms === undefined)
      throw new OverrideTagError(`for: "${length.for}" is not a duration such as 30m, 3h or 1d`);
    return new Date(now.getTime() + ms);
  }
  const clock = CLOCK.exec(length.until);
  if (clock) return nextWallClock(timeZone, Number(clock[1]) * 3600 + Number(clock[2]) * 60, now);
  return new Date(Date.parse(length.until));
};
