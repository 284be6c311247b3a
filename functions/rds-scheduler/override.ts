/**
 * `nightshift wake|sleep --db <id> --db-cluster <id>`: overrides of a database's schedule, recorded on the
 * DB instance or Aurora cluster itself as the tag `nightshift:override` (shared/override.ts), then
 * reconciled at once with the same decision as every reconcile (plan.ts `planReconcile`, which obeys an
 * active override and returns a database to its schedule, then removes the tag, once it expired).
 * The same rules as ecs-scheduler's overrides: the cap (OVERRIDE_MAX_HOURS), production never
 * overridden, `--until 22:00` in the zone of the database's schedule, `sleep` without an end lasting
 * until the schedule's next transition, `cancel` ending it now. Pure.
 */
import {
  decodeOverride,
  encodeOverride,
  OVERRIDE_TAG,
  overrideEnd,
  untilIsClock,
  type Override,
  type OverrideLength,
  type OverrideState,
} from '#shared/override.ts';
import { InputError } from '#shared/errors.ts';
import { localLabel, nextTransition, type Schedule, type Schedules } from '#shared/schedules.ts';
import { otherStage, protectedBy, type TagRule } from '#shared/tags.ts';
import type { RdsOverrideInput } from '#events/rds-scheduler/schema.ts';
import type { Database, Estate } from './inventory.ts';
import {
  SCHEDULE_TAG,
  selectDatabases,
  TYPE,
  unstoppable,
  type PlannedDb,
  type ReconcilePlan,
  type Step,
} from './plan.ts';

export interface OverrideOptions {
  schedules: Schedules;
  protectedTags: readonly TagRule[];
  now: Date;
  /** OVERRIDE_MAX_HOURS in ms. */
  maxMs: number;
  /** NIGHTSHIFT_STAGE: a database tagged nightshift:stage for another stage is that stage's to override. */
  stage?: string;
}

/** An override that would last longer than the cap: the whole request is refused, nothing is written. */
export class OverrideCapError extends InputError {
  override name = 'OverrideCapError';
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const hours = (ms: number) => `${Math.round((ms / 3_600_000) * 100) / 100} h`;

export const lengthOf = (input: RdsOverrideInput): OverrideLength | undefined =>
  input.for !== undefined
    ? { for: input.for }
    : input.until !== undefined
      ? { until: input.until }
      : undefined;

/**
 * Refuses, before any AWS call, what can be told from the input alone: `for`, or a full `until`, longer
 * than the cap or not in the future. (`until 22:00` depends on the database's zone: planOverride.)
 */
export const refuseLength = (input: RdsOverrideInput, now: Date, maxMs: number): void => {
  const length = lengthOf(input);
  if (!length || ('until' in length && untilIsClock(length.until))) return;
  const field = 'for' in length ? 'for' : 'until';
  const until = overrideEnd(length, 'UTC', now);
  if (until.getTime() <= now.getTime())
    throw new InputError(`until: ${iso(until)} is not in the future`, 'until');
  if (until.getTime() - now.getTime() > maxMs)
    throw new OverrideCapError(
      `${field}: refused: an override may last at most ${hours(maxMs)} (OVERRIDE_MAX_HOURS, the stage's overrideMaxHours); ` +
        `asked ${hours(until.getTime() - now.getTime())}. Nothing changed.`,
      field,
    );
};

export interface OverridePlan {
  /** One row per database: the tag to write (a `set-override` step), or why not. */
  rows: PlannedDb[];
  /** The estate as it is once every planned tag is written: what the reconcile at once plans from. */
  estate: Estate;
}

const idle = (db: Database, outcome: 'unchanged' | 'skipped' | 'failed', detail: string): PlannedDb => ({
  arn: db.arn,
  type: TYPE[db.kind],
  kind: db.kind,
  id: db.id,
  steps: [],
  hasWork: false,
  outcome,
  detail,
});

const setting = (db: Database, value: string, fromNow: boolean, detail: string): PlannedDb => ({
  arn: db.arn,
  type: TYPE[db.kind],
  kind: db.kind,
  id: db.id,
  steps: [{ op: 'set-override', value, ...(fromNow && { fromNow: true as const }) }],
  hasWork: true,
  detail,
});

const readable = (text: string): Override | undefined => {
  try {
    return decodeOverride(text);
  } catch {
    return undefined;
  }
};

/**
 * `sleep` without --for or --until: until the next transition of its schedule (when the schedule takes
 * over again), at most the cap.
 */
const sleepEnd = (schedule: Schedule, now: Date, maxMs: number): Date =>
  new Date(Math.min(nextTransition(schedule, now)?.at.getTime() ?? Infinity, now.getTime() + maxMs));

/**
 * Plans `wake` (state running) or `sleep` (stopped) on each database of the scope, or `cancel`. An
 * instance of a cluster is skipped (the cluster carries the override), and so is what AWS cannot stop
 * (plan.ts `unstoppable`), production, a database tagged for another stage and one that follows no
 * schedule. Refuses the whole request (OverrideCapError) when any override would outlast the cap. Pure.
 */
export const planOverride = (
  input: RdsOverrideInput,
  estate: Estate,
  opts: OverrideOptions,
): OverridePlan => {
  const state: OverrideState = input.action === 'wake' ? 'running' : 'stopped';
  const { now } = opts;
  const length = lengthOf(input);
  const { missing, targets } = selectDatabases(
    {
      ...(input.instances && { instances: input.instances }),
      ...(input.clusters && { clusters: input.clusters }),
      ...(input.tags && { tags: input.tags }),
    },
    estate,
  );
  const rows: PlannedDb[] = [...missing];
  const tags = new Map<string, Record<string, string>>();
  const tooLong: string[] = [];
  for (const db of targets) {
    const prod = protectedBy(db.tags, opts.protectedTags);
    if (prod) {
      rows.push(
        idle(
          db,
          'skipped',
          `protected (${prod}): production is never woken or slept by an override; nothing changed`,
        ),
      );
      continue;
    }
    if (db.kind === 'instance' && db.memberOf) {
      rows.push(
        idle(
          db,
          'skipped',
          `member of cluster ${db.memberOf}: the cluster carries the override (--db-cluster ${db.memberOf}), never its instances; nothing changed`,
        ),
      );
      continue;
    }
    const other = otherStage(opts.stage, db.tags);
    if (other !== undefined) {
      rows.push(
        idle(
          db,
          'skipped',
          `tagged nightshift:stage=${other}: that stage's to override (--stage ${other}); nothing changed`,
        ),
      );
      continue;
    }
    const current = db.tags[OVERRIDE_TAG];
    if (input.cancel) {
      if (current === undefined) {
        rows.push(idle(db, 'unchanged', `no ${OVERRIDE_TAG} on it: nothing to cancel`));
        continue;
      }
      if (db.tags[SCHEDULE_TAG] === undefined) {
        // No reconcile reads it back to a schedule (only the RDS auto-start event reads it): removed now,
        // if it is still the one read (RDS has no conditional untag: read again right before).
        rows.push({
          ...setting(db, '', false, `removes ${OVERRIDE_TAG} "${current}": it follows no schedule`),
          steps: [{ op: 'clear-override', expected: current }],
        });
        continue;
      }
      // Cancelling ends it now: the reconcile that follows returns the database to its schedule and then
      // removes the tag (a later reconcile, if that fails), as for any override that expired.
      const was = readable(current);
      const value = encodeOverride({
        state: was?.state ?? state,
        until: now,
        by: input.by,
        why: input.reason ?? `cancelled${was ? ` (was: until ${iso(was.until)} by ${was.by})` : ''}`,
      });
      tags.set(db.arn, { [OVERRIDE_TAG]: value });
      rows.push(setting(db, value, true, `cancels ${OVERRIDE_TAG} "${current}": back to its schedule now`));
      continue;
    }
    const refused = unstoppable(db);
    if (refused) {
      rows.push(idle(db, 'skipped', `${refused}: nothing to wake or put to sleep; nothing changed`));
      continue;
    }
    const name = db.tags[SCHEDULE_TAG];
    const schedule = name === undefined ? undefined : opts.schedules.get(name);
    if (name === undefined) {
      rows.push(
        idle(
          db,
          'skipped',
          `follows no schedule (tag ${SCHEDULE_TAG}): an override needs one to return to; nothing changed — use nightshift ${input.action === 'wake' ? 'start' : 'stop'} --db`,
        ),
      );
      continue;
    }
    if (!schedule) {
      rows.push(
        idle(db, 'failed', `schedule "${name}" is not defined in infra/schedules.yml; nothing changed`),
      );
      continue;
    }
    const zone = schedule.timezone;
    let until: Date;
    try {
      until = length ? overrideEnd(length, zone, now) : sleepEnd(schedule, now, opts.maxMs);
    } catch (error) {
      rows.push(idle(db, 'failed', `${schedule.name}: ${(error as Error).message}; nothing changed`));
      continue;
    }
    if (until.getTime() <= now.getTime()) {
      rows.push(idle(db, 'failed', `until ${iso(until)} is not in the future; nothing changed`));
      continue;
    }
    if (until.getTime() - now.getTime() > opts.maxMs) {
      tooLong.push(
        `${db.id} until ${localLabel(zone, until, now)} ${zone} (${hours(until.getTime() - now.getTime())})`,
      );
      continue;
    }
    const value = encodeOverride({ state, until, by: input.by, why: input.reason ?? '' });
    tags.set(db.arn, { [OVERRIDE_TAG]: value });
    rows.push(
      setting(
        db,
        value,
        // `--for`, or a sleep's default end (capped from now): the end moves with the clock.
        length === undefined || 'for' in length,
        `override: ${state} until ${localLabel(zone, until, now)} ${zone} (${iso(until)}) by ${input.by}` +
          (current !== undefined ? `, replacing "${current}"` : ''),
      ),
    );
  }
  if (tooLong.length > 0)
    throw new OverrideCapError(
      `until: refused: an override may last at most ${hours(opts.maxMs)} (OVERRIDE_MAX_HOURS, the stage's overrideMaxHours); ` +
        `asked: ${tooLong.join('; ')}. Nothing changed.`,
      'until',
    );
  return { rows, estate: withTags(estate, tags) };
};

/** The estate with tags written (in memory): what a reconcile right after the writes sees. */
export const withTags = (estate: Estate, tags: ReadonlyMap<string, Record<string, string>>): Estate => ({
  instances: estate.instances.map((db) =>
    tags.has(db.arn) ? { ...db, tags: { ...db.tags, ...tags.get(db.arn) } } : db,
  ),
  clusters: estate.clusters.map((db) =>
    tags.has(db.arn) ? { ...db, tags: { ...db.tags, ...tags.get(db.arn) } } : db,
  ),
});

/**
 * What the digest counts of an override's tag: its value, without the end when that moves with the clock
 * (`--for 3h`, a cancel's "now", a sleep's default end); `--until 22:00` stays, unless 22:00 passed
 * between the dry run and the apply (then it is tomorrow's: a new plan).
 */
const digestOf = (step: Extract<Step, { op: 'set-override' }>) =>
  `set-override ${step.fromNow ? step.value.replace(/(^| )until=\S+/, '') : step.value}`;

/**
 * One row per database: the override's tag, then what the reconcile at once does with it (its stop or
 * start, the removal of a cancelled override), so one lease covers both and a run cut short between the
 * two leaves the override recorded for the next reconcile. A database whose reconcile fails to plan (its
 * schedule cannot be evaluated) gets no tag either. Pure.
 */
export const withReconcile = (overrides: readonly PlannedDb[], reconcile: ReconcilePlan): ReconcilePlan => {
  const planned = new Map(reconcile.rows.map((r) => [r.arn, r]));
  const rows = overrides.map((o): PlannedDb => {
    const set = o.steps.find((s): s is Extract<Step, { op: 'set-override' }> => s.op === 'set-override');
    if (!set) return o.hasWork ? { ...o, digestKey: o.steps.map((s) => s.op).join(', ') } : o;
    const r = planned.get(o.arn);
    if (!r) return { ...o, digestKey: digestOf(set) };
    if (r.outcome === 'failed' && r.steps.length === 0)
      return { ...r, detail: `${o.detail}: not recorded, ${r.detail}` };
    const merged: PlannedDb = {
      ...o,
      steps: [set, ...r.steps],
      hasWork: true,
      detail: `${o.detail}; then ${r.detail}`,
      digestKey: r.hasWork ? `${digestOf(set)}, ${r.digestKey ?? r.detail}` : digestOf(set),
    };
    return merged;
  });
  const arns = new Set(rows.filter((r) => r.steps.some((s) => s.op === 'start')).map((r) => r.arn));
  return {
    rows,
    overrideStarts: new Map([...reconcile.overrideStarts].filter(([arn]) => arns.has(arn))),
  };
};
