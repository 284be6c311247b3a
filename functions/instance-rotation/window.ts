import { formatAge } from '#shared/duration.ts';
import { formatLocal, runsAfter, runsBefore, type CronSchedule } from '#shared/cron.ts';

/**
 * Rotation windows, from the function's own schedule (ROTATION_SCHEDULE in SCHEDULE_TIMEZONE, the
 * same expression and zone its EventBridge Scheduler schedule uses).
 *
 * - Two scheduled runs are consecutive when the second comes at most WINDOW_GAP_MS after the first
 *   (nominal times, as the schedule names them). A window is a maximal chain of consecutive runs: for
 *   `cron(0/10 1-5 ? * MON-FRI *)`, 01:00 to 05:50 on each weekday.
 * - A run is the last of its window when no scheduled run follows it within WINDOW_GAP_MS. A run (on
 *   demand, or late) at `now` is inside a window when the scheduled runs before and after `now` are
 *   consecutive; otherwise it is a closing run: the last of its window, or outside any window.
 * - The rule: a run may leave processes suspended only when it is inside a window, since the next
 *   run then follows within WINDOW_GAP_MS. A closing run starts nothing and finishes or rolls back
 *   every rotation in flight.
 *
 * Pure: the schedule and `now` in, the facts out.
 */

/** Runs further apart than this are in different windows: the longest a group is left unattended. */
export const WINDOW_GAP_MS = 60 * 60_000;
/**
 * How late the last run of a window may come and still count as that run: Scheduler invokes within
 * the minute and retries for up to 10 minutes (the schedule's RetryPolicy MaximumEventAgeInSeconds 600).
 */
export const LATE_MS = 15 * 60_000;
/** Windows are followed this far back and ahead; beyond, a window is open-ended. */
export const HORIZON_MS = 8 * 86_400_000;

export interface WindowFacts {
  /** True: a scheduled run follows within WINDOW_GAP_MS, so processes may stay suspended until it. */
  open: boolean;
  /** Why a run is closing, for the rows: the last run of a window, outside a window, no schedule. */
  reason?: string;
  /** The scheduled run at or before `now` (nominal time). */
  previous?: Date;
  /** The first scheduled run after `now`. */
  next?: Date;
  /**
   * The first run of the window `now` is in (or, for a closing run, of the window that ended with
   * `previous`). Undefined: more than HORIZON_MS back, or no window.
   */
  start?: Date;
  /** The last run of that window. Undefined: more than HORIZON_MS ahead (open-ended), or no window. */
  last?: Date;
  /** The schedule's zone, for texts. */
  timeZone: string;
}

/** The last run of the chain that continues from `from` (a run), within `until`. */
const chainEnd = (s: CronSchedule, from: Date, until: Date): Date | undefined => {
  let last = from;
  for (const run of runsAfter(s, from, until)) {
    if (run.getTime() - last.getTime() > WINDOW_GAP_MS) return last;
    last = run;
  }
  // The chain reaches the horizon: open-ended, unless the schedule simply ends there.
  return until.getTime() - last.getTime() > WINDOW_GAP_MS ? last : undefined;
};

/** The first run of the chain that leads to `from` (a run), not before `since`. */
const chainStart = (s: CronSchedule, from: Date, since: Date): Date | undefined => {
  let first = from;
  for (const run of runsBefore(s, new Date(from.getTime() - 1), since)) {
    if (first.getTime() - run.getTime() > WINDOW_GAP_MS) return first;
    first = run;
  }
  return first.getTime() - since.getTime() > WINDOW_GAP_MS ? first : undefined;
};

const span = (s: CronSchedule, start: Date | undefined, last: Date) =>
  `${start ? formatLocal(start, s.timeZone) : 'more than 8 days back'} to ${formatLocal(last, s.timeZone)}`;

/**
 * Where `now` stands in the schedule's windows. `enabled` false: the schedule is off, no windows.
 * `runsUntil`: the latest this run can still be changing things (its Lambda deadline). A run that may
 * still hold a group's lease when the window's last run starts is a closing run too: that last run
 * would find the group held and could end nothing, leaving processes suspended until the next window.
 */
export const windowAt = (s: CronSchedule, now: Date, enabled = true, runsUntil?: Date): WindowFacts => {
  if (!enabled) {
    return {
      open: false,
      reason:
        'the rotation schedule is disabled (rotationSchedulesState): no run would follow to finish a rotation',
      timeZone: s.timeZone,
    };
  }
  const t = now.getTime();
  const previous = runsBefore(s, now, new Date(t - HORIZON_MS)).next().value ?? undefined;
  const next = runsAfter(s, now, new Date(t + HORIZON_MS)).next().value ?? undefined;
  const base = { previous, next, timeZone: s.timeZone };
  if (previous && next && next.getTime() - previous.getTime() <= WINDOW_GAP_MS) {
    const start = chainStart(s, previous, new Date(t - HORIZON_MS));
    const last = chainEnd(s, next, new Date(t + HORIZON_MS));
    if (last && runsUntil && runsUntil.getTime() >= last.getTime()) {
      return {
        ...base,
        open: false,
        reason:
          `the window's last run (${formatLocal(last, s.timeZone)}) starts before this run can end ` +
          `(it may run until ${formatLocal(runsUntil, s.timeZone)}), so this run closes the window`,
        ...(start && { start }),
        last,
      };
    }
    return { ...base, open: true, start, last };
  }
  const start = previous && chainStart(s, previous, new Date(t - HORIZON_MS));
  const following = next
    ? `the next run is ${formatLocal(next, s.timeZone)}, ${formatAge(next.getTime() - t)} away`
    : 'no run is scheduled in the next 8 days';
  const reason = !previous
    ? `outside the rotation window: no run in the last 8 days, and ${following}`
    : t - previous.getTime() <= LATE_MS
      ? `this is the last run of its window (${span(s, start, previous)}); ${following}`
      : `outside the rotation window: the last one ended with the run at ${formatLocal(previous, s.timeZone)}; ${following}`;
  return { ...base, open: false, reason, ...(start && { start }), ...(previous && { last: previous }) };
};
