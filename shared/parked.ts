/**
 * "Is this resource parked by nightshift, or about to be?" — what the functions that act on running
 * resources (ssm-restart, instance-rotation) ask before they act, so that nothing restarts or rotates
 * what the schedulers park. Pure: tags, schedules and `now` in, a decision with a reason out.
 *
 * A resource is held when:
 * - it carries `nightshift:stopped` (the saved state ecs-scheduler writes on a service or group it
 *   parked, and rds-scheduler on a database): parked;
 * - an active `nightshift:override` (its own, else the one it follows: a service its cluster's) wants it
 *   stopped (`nightshift sleep`);
 * - it follows `nightshift:schedule` (its own, else its parent's) whose desired state now is `stopped`
 *   and no active override wants it running: the next reconcile parks it (an alarm at 19:01 before the
 *   19:00 stop reached it) — under `enforced: false` only within RECONCILE_REACH_MS of the transition
 *   (later, a running resource was started on purpose, and reconcile leaves it alone).
 * A schedule or override that cannot be read or evaluated never holds anything: the decision then says
 * so in a note, and the caller goes ahead.
 */
import { PARKED_TAG } from './group-tags.ts';
import { decodeOverride, overrideActive, OVERRIDE_TAG, type Override } from './override.ts';
import { evaluate, localLabel, type Evaluation, type Schedule, type Schedules } from './schedules.ts';
import type { TagMap } from './tags.ts';

/** The tag a resource opts in to a schedule with (README "Schedules and reconcile"). Public contract. */
export const SCHEDULE_TAG = 'nightshift:schedule';

/**
 * How long after a stop transition a reconcile (every 10 minutes; rds-scheduler's 5 minutes after
 * ecs-scheduler's) has surely reached a resource. Under `enforced: false`, one still running after that
 * was started by someone on purpose, and is not "about to be parked".
 */
export const RECONCILE_REACH_MS = 20 * 60_000;

/** How long the wake command in a hint asks for: long enough for the restart and a look at it. */
export const WAKE_FOR = '1h';

/** What a `nightshift wake` would name: the CLI flags of each kind of target (README "Overrides"). */
export type WakeTarget =
  { kind: 'ecs-service'; cluster: string; service: string } | { kind: 'autoscaling-group'; group: string };

/** The `nightshift wake` command that brings the target back (for WAKE_FOR) so it can be restarted. */
export const wakeCommand = (t: WakeTarget): string =>
  t.kind === 'ecs-service'
    ? `nightshift wake --cluster ${t.cluster} --service ${t.service} --for ${WAKE_FOR}`
    : `nightshift wake --group ${t.group} --for ${WAKE_FOR}`;

/**
 * The hint of a held target. A group parked as the capacity of an ECS cluster (ecs-scheduler parks it
 * when every service of the cluster rests) comes back when the cluster is woken: that cluster is not
 * named on the group, so the hint says both.
 */
export const wakeHint = (t: WakeTarget, ownSchedule: boolean): string =>
  t.kind === 'autoscaling-group' && !ownSchedule
    ? `to restart it now, wake the ECS cluster whose capacity it is (\`nightshift wake --cluster <cluster> --for ${WAKE_FOR}\`), ` +
      `or the group if it follows a schedule itself (\`${wakeCommand(t)}\`)`
    : `to restart it now, \`${wakeCommand(t)}\` first`;

/** The tags of a resource, and of the one it follows when it has no tag of its own (a service's cluster). */
export interface ParkFacts {
  tags: TagMap;
  parent?: { tags: TagMap; name: string };
}

export type ParkDecision =
  /** Held: parked, or about to be. `reason` says which and why; it always contains `parked`. */
  | { held: true; reason: string }
  /** Not held; `note` says what could not be told (an unreadable override, an unknown schedule). */
  | { held: false; note?: string };

/** The schedules bundled into the function, or why they could not be read. */
export type BundledSchedules = { schedules: Schedules } | { error: string };

const from = (facts: ParkFacts, own: boolean) =>
  own ? 'on it' : facts.parent ? `on ${facts.parent.name}` : 'on it';

/** The override a resource follows (its own wins over its parent's), or why it cannot be read. */
const overrideOf = (
  facts: ParkFacts,
): { override: Override; where: string } | { error: string } | undefined => {
  const own = facts.tags[OVERRIDE_TAG];
  const text = own ?? facts.parent?.tags[OVERRIDE_TAG];
  if (text === undefined) return undefined;
  const where = from(facts, own !== undefined);
  try {
    return { override: decodeOverride(text), where };
  } catch (error) {
    return { error: `${(error as Error).message} (${where})` };
  }
};

const describeOverride = (o: Override, where: string, timeZone: string, now: Date) =>
  `override ${where} by ${o.by} until ${localLabel(timeZone, o.until, now)} ${timeZone}` +
  (o.why ? ` (why: ${o.why})` : '');

/**
 * The last evaluation of each schedule, by instant: a run asks about every target at the same `now`, and
 * an evaluation searches the schedule's transitions (milliseconds each). The result is the same either way.
 */
const evaluations = new WeakMap<Schedule, { at: number; ev: Evaluation }>();
const evaluateOnce = (schedule: Schedule, now: Date): Evaluation => {
  const last = evaluations.get(schedule);
  if (last?.at === now.getTime()) return last.ev;
  const ev = evaluate(schedule, now);
  evaluations.set(schedule, { at: now.getTime(), ev });
  return ev;
};

/**
 * Whether nightshift parked the resource, or is about to: see the module comment. `schedules` are the
 * function's bundled ones; `now` the run's time.
 */
export const parkDecision = (facts: ParkFacts, bundled: BundledSchedules, now: Date): ParkDecision => {
  const saved = facts.tags[PARKED_TAG];
  if (saved !== undefined) return { held: true, reason: `parked by nightshift (${PARKED_TAG} ${saved})` };
  const ov = overrideOf(facts);
  const notes: string[] = [];
  if (ov && 'error' in ov) notes.push(`${ov.error}: not obeyed here`);
  const active = ov && 'override' in ov && overrideActive(ov.override, now) ? ov : undefined;
  const ownSchedule = facts.tags[SCHEDULE_TAG];
  const name = ownSchedule ?? facts.parent?.tags[SCHEDULE_TAG];
  const schedule = name === undefined || 'error' in bundled ? undefined : bundled.schedules.get(name);
  const zone = schedule?.timezone ?? 'UTC';
  if (active?.override.state === 'stopped') {
    return {
      held: true,
      reason: `parked by nightshift sleep: ${describeOverride(active.override, active.where, zone, now)}`,
    };
  }
  if (active) {
    // A person asked for it to run: the schedule does not hold it.
    return {
      held: false,
      note: `kept running by ${describeOverride(active.override, active.where, zone, now)}`,
    };
  }
  const note = () => (notes.length > 0 ? { note: notes.join('; ') } : {});
  if (name === undefined) return { held: false, ...note() };
  const tag = `${SCHEDULE_TAG}=${name} ${from(facts, ownSchedule !== undefined)}`;
  if ('error' in bundled) {
    notes.push(`its schedule (${tag}) was not checked: ${bundled.error}`);
    return { held: false, ...note() };
  }
  if (!schedule) {
    notes.push(`its schedule (${tag}) is not defined in this function's schedules: not checked`);
    return { held: false, ...note() };
  }
  try {
    const ev = evaluateOnce(schedule, now);
    const since = ev.since?.at;
    if (
      ev.state === 'stopped' &&
      !schedule.enforced &&
      since !== undefined &&
      now.getTime() - since.getTime() >= RECONCILE_REACH_MS
    ) {
      // enforced: false acts on transitions only: running this long after the stop transition, it was
      // started on purpose (or stopped and started again) and reconcile leaves it until the next one.
      notes.push(
        `its schedule (${tag}) wants it stopped since ${localLabel(zone, since, now)} ${zone}, but with enforced: false a ` +
          `resource still running ${Math.round(RECONCILE_REACH_MS / 60_000)} min after the transition is left running: not held`,
      );
      return { held: false, ...note() };
    }
    if (ev.state === 'stopped') {
      return {
        held: true,
        reason: `to be parked: ${ev.reason} (tag ${tag}); nightshift parks it at its next reconcile`,
      };
    }
    return { held: false, ...note() };
  } catch (error) {
    notes.push(`its schedule (${tag}) could not be evaluated (${(error as Error).message}): not checked`);
    return { held: false, ...note() };
  }
};
