import { describe, expect, it } from 'vitest';
import { parseCron } from '#shared/cron.ts';
import { windowAt } from '#functions/instance-rotation/window.ts';

const BERLIN = 'Europe/Berlin';
const weekdays = parseCron('cron(0/10 1-5 ? * MON-FRI *)', BERLIN);
const everyNight = parseCron('cron(0/10 1-5 * * ? *)', BERLIN);
const iso = (d: Date | undefined) => d?.toISOString().replace(':00.000Z', 'Z');
const at = (text: string) => new Date(text);

describe('rotation windows: consecutive scheduled runs (at most 60 minutes apart)', () => {
  it('is open between two runs of the window, which runs from its first to its last run', () => {
    // Tuesday 2026-11-24 03:00:20 CET, a scheduled run 20 s late
    const w = windowAt(weekdays, at('2026-11-24T02:00:20Z'));

    expect(w).toMatchObject({ open: true, timeZone: BERLIN });
    expect([iso(w.previous), iso(w.next), iso(w.start), iso(w.last)]).toEqual([
      '2026-11-24T02:00Z',
      '2026-11-24T02:10Z',
      '2026-11-24T00:00Z',
      '2026-11-24T04:50Z',
    ]);
  });

  it('is still open at the run just before the last one', () => {
    const w = windowAt(weekdays, at('2026-11-24T04:40:30Z'));

    expect(w.open).toBe(true);
    expect(iso(w.last)).toBe('2026-11-24T04:50Z');
  });

  it('closes at the last run of the window', () => {
    const w = windowAt(weekdays, at('2026-11-24T04:50:30Z'));

    expect(w.open).toBe(false);
    expect(w.reason).toBe(
      'this is the last run of its window (Tue 2026-11-24 01:00 Europe/Berlin to Tue 2026-11-24 05:50 Europe/Berlin); ' +
        'the next run is Wed 2026-11-25 01:00 Europe/Berlin, 19h 9m away',
    );
    expect([iso(w.start), iso(w.last)]).toEqual(['2026-11-24T00:00Z', '2026-11-24T04:50Z']);
  });

  it('closes the window at a run that may still be running when the last run starts (its deadline)', () => {
    // 05:49:30 Berlin, on demand, 120 s to run: the 05:50 run would find the groups held.
    const onDemand = at('2026-11-24T04:49:30Z');
    const w = windowAt(weekdays, onDemand, true, new Date(onDemand.getTime() + 120_000));

    expect(w.open).toBe(false);
    expect(w.reason).toBe(
      "the window's last run (Tue 2026-11-24 05:50 Europe/Berlin) starts before this run can end " +
        '(it may run until Tue 2026-11-24 05:51 Europe/Berlin), so this run closes the window',
    );
    expect(iso(w.last)).toBe('2026-11-24T04:50Z');

    // The 05:40 run, 120 s to run, ends well before 05:50: still inside the window.
    const scheduled = at('2026-11-24T04:40:05Z');
    expect(windowAt(weekdays, scheduled, true, new Date(scheduled.getTime() + 120_000)).open).toBe(true);
  });

  it("counts a retry of the last run up to 15 minutes late as the last run, and Friday's last run looks to Monday", () => {
    const w = windowAt(weekdays, at('2026-11-27T05:02:00Z'));

    expect(w.reason).toMatch(
      /^this is the last run of its window .*; the next run is Mon 2026-11-30 01:00 Europe\/Berlin, 2d 18h away$/,
    );
  });

  it('is outside any window for an on-demand run in the day, and before the first run', () => {
    expect(windowAt(weekdays, at('2026-11-24T11:00:00Z')).reason).toBe(
      'outside the rotation window: the last one ended with the run at Tue 2026-11-24 05:50 Europe/Berlin; ' +
        'the next run is Wed 2026-11-25 01:00 Europe/Berlin, 13h away',
    );
    expect(windowAt(weekdays, at('2026-11-24T23:59:30Z')).open).toBe(false);
  });

  it('keeps a window whole across the hour that clocks skip (last Sunday of March)', () => {
    // 01:50 CET; the next run is 03:00 CEST, 10 minutes later
    const w = windowAt(everyNight, at('2026-03-29T00:50:10Z'));

    expect(w.open).toBe(true);
    expect([iso(w.next), iso(w.start), iso(w.last)]).toEqual([
      '2026-03-29T01:00Z',
      '2026-03-29T00:00Z',
      '2026-03-29T03:50Z',
    ]);
  });

  it('splits a window at the hour clocks repeat, which runs once: 70 minutes pass without a run', () => {
    // 02:50 CEST is followed by 03:00 CET, 70 minutes later (02:00-02:50 CET do not run again)
    const before = windowAt(everyNight, at('2026-10-25T00:50:10Z'));
    const after = windowAt(everyNight, at('2026-10-25T02:00:10Z'));

    expect(before.open).toBe(false);
    expect(before.reason).toBe(
      'this is the last run of its window (Sun 2026-10-25 01:00 Europe/Berlin to Sun 2026-10-25 02:50 Europe/Berlin); ' +
        'the next run is Sun 2026-10-25 03:00 Europe/Berlin, 1h 9m away',
    );
    expect(after.open).toBe(true);
    expect([iso(after.start), iso(after.last)]).toEqual(['2026-10-25T02:00Z', '2026-10-25T04:50Z']);
  });

  it('runs a window across midnight when the runs on both sides are consecutive', () => {
    const lateShift = parseCron('cron(0/10 22-23,0-1 ? * MON-FRI *)', BERLIN);
    // Monday 23:50 CET: the window goes on until Tuesday 01:50
    const monday = windowAt(lateShift, at('2026-11-23T22:50:05Z'));
    // Friday 23:50: Saturday is no weekday, so this is the last run
    const friday = windowAt(lateShift, at('2026-11-27T22:50:05Z'));

    expect(monday.open).toBe(true);
    expect([iso(monday.start), iso(monday.last)]).toEqual(['2026-11-23T21:00Z', '2026-11-24T00:50Z']);
    expect(friday.open).toBe(false);
  });

  it('has no window when the schedule is disabled', () => {
    expect(windowAt(weekdays, at('2026-11-24T02:00:20Z'), false)).toEqual({
      open: false,
      reason:
        'the rotation schedule is disabled (rotationSchedulesState): no run would follow to finish a rotation',
      timeZone: BERLIN,
    });
  });

  it('leaves a window that never ends open-ended, and one run a day its own window', () => {
    const always = windowAt(parseCron('cron(0/10 * * * ? *)', 'UTC'), at('2026-11-24T02:00:20Z'));
    const daily = windowAt(parseCron('cron(0 2 * * ? *)', 'UTC'), at('2026-11-24T02:00:20Z'));

    expect(always).toMatchObject({ open: true });
    expect(always.start).toBeUndefined();
    expect(always.last).toBeUndefined();
    expect(daily.open).toBe(false);
    expect(daily.reason).toMatch(
      /^this is the last run of its window \(Tue 2026-11-24 02:00 UTC to Tue 2026-11-24 02:00 UTC\)/,
    );
  });
});
