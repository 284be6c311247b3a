/**
 * The nightshift CLI loads the full holiday calendars (shared/holidays.ts, date-holidays) only for a
 * schedules file that names a calendar (shared/holiday-loader.ts): every other command, and a file
 * without one, never loads them. Observed here by mocking shared/holidays.ts with a spy on its loading.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { calendarsFor, namesCalendar } from '#shared/holiday-loader.ts';
import { cli } from '#test/support/cli.ts';

const loaded = vi.hoisted(() => ({ count: 0 }));
vi.mock('#shared/holidays.ts', async (original) => {
  loaded.count += 1;
  return original();
});

const scratch = mkdtempSync(join(tmpdir(), 'nightshift-holiday-loader-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
};

describe('namesCalendar', () => {
  it.each([
    [{ schedules: { a: { periods: [{}] }, b: { holidays: { calendar: 'US-NY' } } } }, true],
    [{ schedules: { a: { holidays: { dates: ['2026-12-24'] } } } }, false],
    [{ schedules: { a: { periods: [{}], holidays: null } } }, false],
    [{ schedules: 'none' }, false],
    [null, false],
  ])('%j: %s', (doc, expected) => {
    expect(namesCalendar(doc)).toBe(expected);
  });
});

describe('loading the holiday calendars on demand', () => {
  it('loads them for the first schedules file that names a calendar, and not before', async () => {
    // Prepare
    const plain = file('plain.yml', 'schedules:\n  nights:\n    periods: [{ endtime: "20:00" }]\n');
    const newYork = file(
      'new-york.yml',
      [
        'schedules:',
        '  ny-office:',
        '    timezone: America/New_York',
        '    periods: [{ begintime: "08:00", endtime: "18:00", weekdays: mon-fri }]',
        '    holidays: { calendar: US-NY, dates: ["2026-11-27"] }',
        '',
      ].join('\n'),
    );

    // Act and assess: help, a file without a calendar, a parse that needs none
    expect((await cli(['--help'])).code).toBe(0);
    const nights = await cli([
      'schedule',
      'check',
      '--file',
      plain,
      '--at',
      '2026-11-26T21:00:00Z',
      '--json',
    ]);
    expect(nights.code).toBe(0);
    expect(JSON.parse(nights.out)[0]).toMatchObject({ schedule: 'nights', state: 'stopped' });
    expect(await calendarsFor({ schedules: { a: { periods: [{}] } } })).toBeUndefined();
    expect(loaded.count).toBe(0);

    // Act and assess: a file naming US-NY (Thanksgiving, Thursday 26 November 2026)
    const ny = await cli(['schedule', 'check', '--file', newYork, '--at', '2026-11-26T15:00:00Z', '--json']);
    const next = await cli([
      'schedule',
      'next',
      '--file',
      newYork,
      '--from',
      '2026-11-25T12:00:00Z',
      '--days',
      '6',
      '--json',
    ]);

    expect(ny.code).toBe(0);
    expect(JSON.parse(ny.out)).toEqual([
      {
        schedule: 'ny-office',
        at: '2026-11-26T15:00:00Z',
        state: 'stopped',
        reason:
          'ny-office: stopped since Wed 18:00 America/New_York (holiday: Thanksgiving Day (US-NY)); next start Mon 08:00',
      },
    ]);
    expect(next.code).toBe(0);
    expect(JSON.parse(next.out).map((r: { local: string; to: string }) => `${r.local} ${r.to}`)).toEqual([
      '2026-11-25T08:00:00-05:00 running',
      '2026-11-25T18:00:00-05:00 stopped',
      '2026-11-30T08:00:00-05:00 running',
      '2026-11-30T18:00:00-05:00 stopped',
    ]);
    expect(loaded.count).toBe(1);
  });
});
