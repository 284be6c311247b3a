import { describe, expect, it } from 'vitest';
import {
  decodeOverride,
  encodeOverride,
  overrideActive,
  overrideEnd,
  OverrideTagError,
  tagSafe,
  TAG_VALUE_MAX,
} from '#shared/override.ts';
import { nextWallClock } from '#shared/schedules.ts';

const at = (iso: string) => new Date(iso);
// The characters ECS, Auto Scaling and RDS all accept in a tag value.
const TAG_SAFE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

describe('the nightshift:override tag', () => {
  it('encodes the documented shape and reads it back', () => {
    // Act
    const text = encodeOverride({
      state: 'running',
      until: at('2026-11-29T21:00:00.000Z'),
      by: 'assumed-role/Dev/jane@example.com',
      why: 'release test',
    });

    // Assess
    expect(text).toBe(
      'state=running until=2026-11-29T21:00:00Z by=assumed-role/Dev/jane@example.com why=release test',
    );
    expect(decodeOverride(text)).toEqual({
      state: 'running',
      until: at('2026-11-29T21:00:00Z'),
      by: 'assumed-role/Dev/jane@example.com',
      why: 'release test',
    });
  });

  it('cleans a reason to tag-safe characters and cuts it to fit 256 characters', () => {
    // Act
    const text = encodeOverride({
      state: 'stopped',
      until: at('2026-11-29T21:00:00Z'),
      by: 'user/jane',
      why: `QA #42, "urgent" (ticket: OPS-7); ${'x'.repeat(400)}`,
    });

    // Assess
    expect(text.length).toBeLessThanOrEqual(TAG_VALUE_MAX);
    expect(text).toMatch(TAG_SAFE);
    expect(text).toMatch(/ why=QA 42 urgent ticket: OPS-7 x+\.\.\.$/);
    expect(decodeOverride(text).why).toMatch(/^QA 42 urgent/);
  });

  it('keeps an identity with spaces in one word, and leaves out an empty reason', () => {
    // Act
    const text = encodeOverride({
      state: 'running',
      until: at('2026-11-29T21:00:00Z'),
      by: 'odd name',
      why: '  ',
    });

    // Assess
    expect(text).toBe('state=running until=2026-11-29T21:00:00Z by=odd_name');
    expect(decodeOverride(text).why).toBe('');
  });

  it.each([
    ['state=awake until=2026-11-29T21:00:00Z by=x', /state must be running or stopped/],
    ['state=running until=tonight by=x', /until must be a UTC time/],
    ['state=running until=2026-11-29T22:00:00+01:00 by=x', /until must be a UTC time/],
    ['running until 22:00', /state must be running or stopped/],
  ])('refuses a hand-edited value %j, naming what is wrong', (text, message) => {
    expect(() => decodeOverride(text)).toThrow(OverrideTagError);
    expect(() => decodeOverride(text)).toThrow(message);
  });

  it('is active until its end, exactly', () => {
    const o = decodeOverride('state=running until=2026-11-29T21:00:00Z by=x');
    expect(overrideActive(o, at('2026-11-29T20:59:59Z'))).toBe(true);
    expect(overrideActive(o, at('2026-11-29T21:00:00Z'))).toBe(false);
  });

  it('leaves tag-safe text as it is', () => {
    expect(tagSafe('deploy 1.2.3 by ops@example.com: a=b+c/d_e-f')).toBe(
      'deploy 1.2.3 by ops@example.com: a=b+c/d_e-f',
    );
  });
});

describe('when an override ends', () => {
  it.each([
    // [now, --until, zone, end]
    ['2026-11-27T19:00:00Z', '22:00', 'Europe/Berlin', '2026-11-27T21:00:00Z'], // tonight, UTC+1
    ['2026-11-27T22:30:00Z', '22:00', 'Europe/Berlin', '2026-11-28T21:00:00Z'], // past 22:00 local: tomorrow
    ['2026-11-27T21:00:00Z', '22:00', 'Europe/Berlin', '2026-11-28T21:00:00Z'], // exactly at it: tomorrow
    ['2026-11-28T23:30:00Z', '00:30', 'Europe/Berlin', '2026-11-29T23:30:00Z'], // 00:30 local just passed
    ['2026-11-30T22:30:00Z', '00:00', 'Europe/Berlin', '2026-11-30T23:00:00Z'], // midnight, month end
    ['2026-03-29T00:30:00Z', '02:30', 'Europe/Berlin', '2026-03-29T01:00:00Z'], // spring forward: 02:30 never shows; the jump to 03:00
    ['2026-03-29T00:30:00Z', '04:00', 'Europe/Berlin', '2026-03-29T02:00:00Z'], // after the change, UTC+2
    ['2026-10-25T00:00:00Z', '02:30', 'Europe/Berlin', '2026-10-25T00:30:00Z'], // fall back: the first 02:30
    ['2026-10-25T00:45:00Z', '02:30', 'Europe/Berlin', '2026-10-25T01:30:00Z'], // 02:45 CEST: the second 02:30 (CET), 45 min ahead
    ['2026-11-01T04:00:00Z', '01:30', 'America/New_York', '2026-11-01T05:30:00Z'], // fall back in New York: first 01:30 (EDT)
    ['2026-03-08T06:00:00Z', '02:15', 'America/New_York', '2026-03-08T07:00:00Z'], // spring forward in New York
  ])('at %s, --until %s in %s ends at %s', (now, until, zone, end) => {
    expect(overrideEnd({ until }, zone, at(now)).toISOString()).toBe(at(end).toISOString());
  });

  it('takes --for from now, and a full --until with its own offset', () => {
    const now = at('2026-11-29T20:00:00Z');
    expect(overrideEnd({ for: '3h' }, 'Europe/Berlin', now).toISOString()).toBe('2026-11-29T23:00:00.000Z');
    expect(overrideEnd({ for: '30m' }, 'UTC', now).toISOString()).toBe('2026-11-29T20:30:00.000Z');
    expect(overrideEnd({ until: '2026-11-29T22:00:00+01:00' }, 'America/New_York', now).toISOString()).toBe(
      '2026-11-29T21:00:00.000Z',
    );
  });

  it('finds the next wall-clock time in a zone without DST', () => {
    expect(nextWallClock('Asia/Tokyo', 9 * 3600, at('2026-11-29T01:00:00Z')).toISOString()).toBe(
      '2026-11-30T00:00:00.000Z',
    );
  });

  it('cuts a long reason between characters, never inside one', () => {
    // Prepare: characters outside the Basic Multilingual Plane are two UTF-16 units each
    const why = '𝔘'.repeat(300);

    // Act
    const text = encodeOverride({
      state: 'running',
      until: at('2026-11-29T21:00:00Z'),
      by: 'user/jane',
      why,
    });

    // Assess: no lone surrogate, at most 256 characters as AWS counts them
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    expect(Array.from(text).length).toBeLessThanOrEqual(TAG_VALUE_MAX);
  });
});
