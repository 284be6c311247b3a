/**
 * `npm run build` validates infra/schedules.yml before it builds anything: an invalid schedule fails the
 * build naming the schedule and the field (issue 9). The build runs in a scratch directory holding only
 * the schedules file, so a failing build cannot touch this checkout's dist/.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSchedulesFile } from '#scripts/cli/schedule.ts';

const BUILD = resolve('scripts', 'build.ts');
const TSX = resolve('node_modules', '.bin', 'tsx');
let dir: string | undefined;

const buildWith = (schedules: string) => {
  dir = mkdtempSync(join(tmpdir(), 'nightshift-build-'));
  mkdirSync(join(dir, 'infra'));
  writeFileSync(join(dir, 'infra', 'schedules.yml'), schedules);
  return spawnSync(TSX, [BUILD], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
};

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('build-time validation of infra/schedules.yml', () => {
  it('fails the build on an invalid schedule, naming the schedule and the field, before building anything', () => {
    const result = buildWith(
      [
        'schedules:',
        '  office-hours:',
        '    timezone: Europe/Berlin',
        '    periods:',
        "      - { begintime: '07:00', endtime: '19:00', weekdays: [mon-funday] }",
        '    holidays: { calendar: DE-XX }',
        '',
      ].join('\n'),
    );

    expect(result.status).toBe(1);
    expect(result.stderr).toContain('build failed: infra/schedules.yml is invalid:');
    expect(result.stderr).toContain('schedules.office-hours.periods[0].weekdays: "funday" is not a weekday');
    expect(result.stderr).toContain('schedules.office-hours.holidays.calendar: "DE-XX": DE has no state');
    expect(existsSync(join(dir!, 'dist'))).toBe(false);
  });

  it('fails on a YAML syntax error with its line', () => {
    const result = buildWith('schedules:\n  office-hours:\n    periods: [ {begintime: "07:00" }\n');

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /build failed: infra\/schedules\.yml is invalid:\n {2}infra\/schedules\.yml: Flow sequence .*at line 4, column 1/,
    );
  });

  it("accepts the project's own schedules file, with the issue's example schedules", async () => {
    const schedules = await loadSchedulesFile('infra/schedules.yml');

    expect([...schedules.keys()]).toEqual(['office-hours', 'stage-nights']);
    expect(schedules.get('office-hours')).toMatchObject({
      timezone: 'Europe/Berlin',
      calendar: 'DE-BE',
      enforced: false,
    });
    expect([...schedules.get('office-hours')!.dates]).toEqual(['2026-12-24', '2026-12-31']);
  });
});

describe('the built nightshift bin', () => {
  const bin = resolve('dist', 'cli', 'nightshift.mjs');
  const node = (args: string[], file = bin) =>
    spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  /** The chunk(s) of dist/cli holding date-holidays: its data names Switzerland's national day. */
  const holidayChunks = () =>
    readdirSync(resolve('dist', 'cli', 'chunks')).filter((f) =>
      readFileSync(resolve('dist', 'cli', 'chunks', f), 'utf8').includes('Bundesfeiertag'),
    );

  it('previews schedules offline, with their holiday calendars', () => {
    expect(existsSync(bin), `${bin} missing: run npm run build`).toBe(true);

    const run = node(['schedule', 'check', '--at', '2026-12-25T10:00:00Z', '--json']);

    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)[0]).toEqual({
      schedule: 'office-hours',
      at: '2026-12-25T10:00:00Z',
      state: 'stopped',
      reason:
        'office-hours: stopped since Wed 19:00 Europe/Berlin (holiday: Christmas Day (DE-BE)); next start Mon 07:00',
    });
  });

  it('evaluates any calendar in a file given with --file, for any year', () => {
    // Prepare: US-NY is not in infra/schedules.yml, so it is in no table built into the bin
    dir = mkdtempSync(join(tmpdir(), 'nightshift-ny-'));
    const file = join(dir, 'ny.yml');
    writeFileSync(
      file,
      [
        'schedules:',
        '  ny-office:',
        '    timezone: America/New_York',
        '    periods: [{ begintime: "08:00", endtime: "18:00", weekdays: mon-fri }]',
        '    holidays: { calendar: US-NY }',
        '',
      ].join('\n'),
    );

    // Act: Thanksgiving 2026 and 2090 (Thursday 23 November)
    const run = node([
      'schedule',
      'check',
      '--file',
      file,
      '--at',
      '2026-11-26T15:00:00Z',
      '--at',
      '2090-11-23T15:00:00Z',
      '--json',
    ]);

    // Assess
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).map((r: { reason: string }) => r.reason)).toEqual([
      'ny-office: stopped since Wed 18:00 America/New_York (holiday: Thanksgiving Day (US-NY)); next start Fri 08:00',
      'ny-office: stopped since Wed 18:00 America/New_York (holiday: Thanksgiving Day (US-NY)); next start Fri 08:00',
    ]);
  });

  it('keeps date-holidays out of the bin itself, in a chunk that --help and files without a calendar never load', () => {
    // Prepare: a copy of dist/cli without the chunk that holds date-holidays
    expect(readFileSync(bin, 'utf8')).not.toContain('Bundesfeiertag');
    expect(holidayChunks()).toHaveLength(1);
    dir = mkdtempSync(join(tmpdir(), 'nightshift-bin-'));
    const copy = join(dir, 'cli');
    cpSync(resolve('dist', 'cli'), copy, { recursive: true });
    rmSync(join(copy, 'chunks', holidayChunks()[0]!));
    const plain = join(dir, 'plain.yml');
    writeFileSync(plain, 'schedules:\n  nights:\n    periods: [{ endtime: "20:00" }]\n');

    // Act
    const help = node(['--help'], join(copy, 'nightshift.mjs'));
    const nights = node(
      ['schedule', 'check', '--file', plain, '--at', '2026-11-26T21:00:00Z', '--json'],
      join(copy, 'nightshift.mjs'),
    );
    const office = node(
      ['schedule', 'check', '--at', '2026-12-25T10:00:00Z', '--json'],
      join(copy, 'nightshift.mjs'),
    );

    // Assess: only the file that names a calendar needed the chunk
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('schedule');
    expect(nights.status).toBe(0);
    expect(JSON.parse(nights.stdout)[0]).toMatchObject({ schedule: 'nights', state: 'stopped' });
    expect(office.status).not.toBe(0);
    expect(office.stderr).toMatch(/Cannot find module .*chunks\/holidays-/);
  });
});
