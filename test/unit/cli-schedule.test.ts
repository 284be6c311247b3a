/**
 * `nightshift schedule check` and `nightshift schedule next` (issue 9, "Preview"): offline, no AWS, the
 * `--json` shapes are a public contract. Runs the CLI in-process on the project's infra/schedules.yml
 * and on scratch files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';

const scratch = mkdtempSync(join(tmpdir(), 'nightshift-schedules-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
};

describe('nightshift schedule check', () => {
  it('prints, per schedule and time, the desired state and the reason as JSON, the time as given', async () => {
    const run = await cli([
      'schedule',
      'check',
      '--at',
      '2026-11-30T08:00:00Z',
      '--at',
      '2026-12-25T11:00+01:00',
      '--json',
    ]);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.out)).toEqual([
      {
        schedule: 'office-hours',
        at: '2026-11-30T08:00:00Z',
        state: 'running',
        reason: 'office-hours: running since Mon 07:00 Europe/Berlin (period 1); next stop Mon 19:00',
      },
      {
        schedule: 'office-hours',
        at: '2026-12-25T11:00+01:00',
        state: 'stopped',
        reason:
          'office-hours: stopped since Wed 19:00 Europe/Berlin (holiday: Christmas Day (DE-BE)); next start Mon 07:00',
      },
      {
        schedule: 'stage-nights',
        at: '2026-11-30T08:00:00Z',
        state: 'any',
        reason:
          'stage-nights: any since Mon 00:00 UTC (period 1 has no wish before 20:00); next stop Mon 20:00',
      },
      {
        schedule: 'stage-nights',
        at: '2026-12-25T11:00+01:00',
        state: 'any',
        reason:
          'stage-nights: any since Fri 00:00 UTC (period 1 has no wish before 20:00); next stop Fri 20:00',
      },
    ]);
  });

  it('prints one line per schedule and time without --json, and takes --json before the command too', async () => {
    const text = await cli(['schedule', 'check', '--at', '2026-11-28T12:00:00Z']);
    const json = await cli(['--json', 'schedule', 'check', '--at', '2026-11-28T12:00:00Z']);

    expect(text.code).toBe(0);
    expect(text.out.split('\n')).toEqual([
      '2026-11-28T12:00:00Z  stopped  office-hours: stopped since Fri 19:00 Europe/Berlin (outside every period); next start Mon 07:00',
      '2026-11-28T12:00:00Z  stopped  stage-nights: stopped since Fri 20:00 UTC (outside every period); no wish from Mon 00:00',
    ]);
    expect(JSON.parse(json.out)).toHaveLength(2);
  });

  it('reads --file', async () => {
    const path = file(
      'one.yml',
      'schedules:\n  nights: { timezone: America/New_York, periods: [{ begintime: "20:00" }] }\n',
    );

    const run = await cli(['schedule', 'check', '--file', path, '--at', '2026-11-02T01:30:00Z', '--json']);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.out)).toEqual([
      {
        schedule: 'nights',
        at: '2026-11-02T01:30:00Z',
        state: 'running',
        reason: 'nights: running since Sun 20:00 America/New_York (period 1); no wish from Mon 00:00',
      },
    ]);
  });

  it.each([
    [['--at', '2026-11-30T08:00:00'], '--at expects an ISO time with its offset'],
    [['--at', 'tomorrow'], '--at expects an ISO time with its offset'],
    [
      ['--at', '2026-11-30T08:00:00Z', '--file', join(tmpdir(), 'nightshift-no-such-file.yml')],
      'cannot read it',
    ],
  ])('refuses %j with exit 2 and, with --json, one error document', async (args, message) => {
    const run = await cli(['schedule', 'check', ...args, '--json']);

    expect(run.code).toBe(2);
    expect(run.err).toContain(message);
    expect(JSON.parse(run.out)).toMatchObject({ error: { type: 'Refused', exitCode: 2 } });
  });

  it('refuses an invalid schedules file naming the schedule and the field', async () => {
    const path = file(
      'bad.yml',
      'schedules:\n  office-hours:\n    periods: [{ begintime: "07:00", weekdays: "mon#9" }]\n',
    );

    const run = await cli(['schedule', 'check', '--file', path, '--at', '2026-11-30T08:00:00Z']);

    expect(run.code).toBe(2);
    expect(run.err).toContain(`${path} is invalid:`);
    expect(run.err).toContain(
      'schedules.office-hours.periods[0].weekdays: "mon#9": the occurrence after # must be 1-5',
    );
  });

  it('needs --at', async () => {
    const run = await cli(['schedule', 'check']);

    expect(run.code).toBe(2);
    expect(run.err).toContain("required option '--at <time>' not specified");
  });
});

describe('nightshift schedule next', () => {
  it('lists the coming transitions of each schedule in its zone, across the DST change, as JSON', async () => {
    const run = await cli([
      'schedule',
      'next',
      'office-hours',
      '--from',
      '2026-10-23T12:00:00Z',
      '--days',
      '3',
      '--json',
    ]);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.out)).toEqual([
      {
        schedule: 'office-hours',
        timezone: 'Europe/Berlin',
        at: '2026-10-23T17:00:00.000Z',
        local: '2026-10-23T19:00:00+02:00',
        from: 'running',
        to: 'stopped',
        reason: 'period 1 ended at 19:00',
      },
      {
        schedule: 'office-hours',
        timezone: 'Europe/Berlin',
        at: '2026-10-26T06:00:00.000Z',
        local: '2026-10-26T07:00:00+01:00',
        from: 'stopped',
        to: 'running',
        reason: 'period 1',
      },
    ]);
  });

  it('lists every schedule by default, 7 days ahead, as text', async () => {
    const run = await cli(['schedule', 'next', '--from', '2026-12-23T00:00:00Z']);

    expect(run.code).toBe(0);
    expect(run.out.split('\n')).toEqual([
      'office-hours (Europe/Berlin), Wed 2026-12-23 01:00 to Wed 2026-12-30 01:00:',
      '  Wed 2026-12-23 07:00  start    running (period 1)',
      '  Wed 2026-12-23 19:00  stop     stopped (period 1 ended at 19:00)',
      '  Mon 2026-12-28 07:00  start    running (period 1)',
      '  Mon 2026-12-28 19:00  stop     stopped (period 1 ended at 19:00)',
      '  Tue 2026-12-29 07:00  start    running (period 1)',
      '  Tue 2026-12-29 19:00  stop     stopped (period 1 ended at 19:00)',
      'stage-nights (UTC), Wed 2026-12-23 00:00 to Wed 2026-12-30 00:00:',
      '  Wed 2026-12-23 20:00  stop     stopped (period 1 ended at 20:00)',
      '  Thu 2026-12-24 00:00  no wish  any (period 1 has no wish before 20:00)',
      '  Thu 2026-12-24 20:00  stop     stopped (period 1 ended at 20:00)',
      '  Fri 2026-12-25 00:00  no wish  any (period 1 has no wish before 20:00)',
      '  Fri 2026-12-25 20:00  stop     stopped (period 1 ended at 20:00)',
      '  Mon 2026-12-28 00:00  no wish  any (period 1 has no wish before 20:00)',
      '  Mon 2026-12-28 20:00  stop     stopped (period 1 ended at 20:00)',
      '  Tue 2026-12-29 00:00  no wish  any (period 1 has no wish before 20:00)',
      '  Tue 2026-12-29 20:00  stop     stopped (period 1 ended at 20:00)',
      // The window ends at --from + 7 days, that instant included.
      '  Wed 2026-12-30 00:00  no wish  any (period 1 has no wish before 20:00)',
    ]);
  });

  it('says so when a schedule does not change in the window', async () => {
    const path = file('always.yml', 'schedules:\n  always: { periods: [{}] }\n');

    const run = await cli([
      'schedule',
      'next',
      '--file',
      path,
      '--from',
      '2026-11-30T00:00:00Z',
      '--days',
      '1',
    ]);

    expect(run.code).toBe(0);
    expect(run.out).toBe(
      'always (UTC): no transition from Mon 2026-11-30 00:00 to Tue 2026-12-01 00:00; always: running for over 400 days, UTC (period 1); no change in the next 400 days',
    );
  });

  it.each([
    [['nope'], 'no schedule "nope" in infra/schedules.yml (it has: office-hours, stage-nights)'],
    [['--days', '0'], '--days expects a whole number of days from 1 to 366'],
    [['--days', '1.5'], '--days expects a whole number of days from 1 to 366'],
    [['--from', '30.11.2026'], '--from expects an ISO time with its offset'],
  ])('refuses %j with exit 2', async (args, message) => {
    const run = await cli(['schedule', 'next', ...args]);

    expect(run.code).toBe(2);
    expect(run.err).toContain(message);
  });
});
