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
import { localLabel, nextTransition, type Schedule, type Schedules } from '#shared/schedules.ts';
import { InputError } from '#shared/errors.ts';
import { otherStage, protectedBy, type TagMap, type TagRule } from '#shared/tags.ts';
import type { OverrideInput } from '#events/ecs-scheduler/schema.ts';
import type { ClusterState, Estate, Held, ServiceState } from './inventory.ts';
import type { StandaloneGroup } from './groups.ts';
import { protection, select, type PlannedAction } from './plan.ts';
import { scheduleOf, SCHEDULE_TAG } from './reconcile.ts';

export interface OverrideOptions {
  schedules: Schedules;
  protectedTags: readonly TagRule[];
  now: Date;
  /** OVERRIDE_MAX_HOURS in ms. */
  maxMs: number;
  /** NIGHTSHIFT_STAGE: a target tagged nightshift:stage for another stage is that stage's to override. */
  stage?: string;
}

/** An override that would last longer than the cap: the whole request is refused, nothing is written. */
export class OverrideCapError extends InputError {
  override name = 'OverrideCapError';
}

/**
 * Refuses, before any AWS call, what can be told from the input alone: `for`, or a full `until`, longer
 * than the cap or not in the future. (`until 22:00` depends on each target's zone: planOverride.)
 */
export const refuseLength = (input: OverrideInput, now: Date, maxMs: number): void => {
  const length = lengthOf(input);
  if (!length || ('until' in length && untilIsClock(length.until))) return;
  const field = 'for' in length ? 'for' : 'until';
  const until = overrideEnd(length, 'UTC', now);
  if (until.getTime() <= now.getTime()) {
    throw new InputError(`until: ${iso(until)} is not in the future`, 'until');
  }
  if (until.getTime() - now.getTime() > maxMs) {
    throw new OverrideCapError(
      `${field}: refused: an override may last at most ${hours(maxMs)} (OVERRIDE_MAX_HOURS, the stage's overrideMaxHours); ` +
        `asked ${hours(until.getTime() - now.getTime())}. Nothing changed.`,
      field,
    );
  }
};

export interface OverridePlan {
  /** One row per target: the tag to write (`set-override`), or why not. */
  rows: PlannedAction[];
  /** The estate as it is once every planned tag is written: what the reconcile at once plans from. */
  estate: Estate;
  /** The tag each standalone group gets (by ARN), for the reconcile at once. */
  groupTags: Map<string, Record<string, string>>;
}

/** The standalone groups an override names (`"groups"`, CLI `--group`), as read under their leases. */
export interface OverrideGroups {
  groups: readonly StandaloneGroup[];
  /** Names not found. */
  missing: readonly string[];
  /** Groups another run holds (or no lease table): nothing is written on them. */
  held: readonly Held[];
  /** Capacity providers by group ARN: their groups follow their cluster, never an override of their own. */
  providers: ReadonlyMap<string, string>;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const hours = (ms: number) => `${Math.round((ms / 3_600_000) * 100) / 100} h`;

interface Target {
  arn: string;
  type: 'ecs-service' | 'ecs-cluster' | 'autoscaling-group';
  name: string;
  /** Services and clusters. */
  cluster?: ClusterState;
  service?: ServiceState;
  /** Standalone groups. */
  group?: StandaloneGroup;
}

const row = (
  t: Target,
  outcome: PlannedAction['outcome'] | undefined,
  detail: string,
  value?: string,
  fromNow?: boolean,
): PlannedAction => ({
  arn: t.arn,
  type: t.type,
  name: t.name,
  ...(t.service && t.cluster && { cluster: t.cluster.name }),
  steps:
    value === undefined ? [] : [{ op: 'set-override', value, ...(fromNow && { fromNow: true as const }) }],
  ...(outcome && { outcome }),
  detail,
});

/**
 * The schedules a target follows: a service's own or its cluster's; a cluster's own, or, without one,
 * those of its services (each follows its own tag).
 */
const schedulesOf = (t: Target, schedules: Schedules): { found: Schedule[]; unknown: string[] } => {
  const c = t.cluster;
  const names = t.group
    ? [t.group.tags[SCHEDULE_TAG]]
    : !c
      ? []
      : t.service
        ? [scheduleOf(t.service, c)?.name]
        : c.tags[SCHEDULE_TAG] !== undefined
          ? [c.tags[SCHEDULE_TAG]]
          : c.services.filter((s) => s.status === 'ACTIVE').map((s) => scheduleOf(s, c)?.name);
  const unique = [...new Set(names.filter((n): n is string => n !== undefined))];
  return {
    found: unique.flatMap((n) => schedules.get(n) ?? []),
    unknown: unique.filter((n) => !schedules.has(n)),
  };
};

/**
 * The targets of `wake|sleep <target>`: a cluster named whole (by --cluster, or whose own tags match
 * --tag) carries the override itself, so every service in it follows, those added later too; otherwise
 * each selected service carries its own. `--cancel` also takes the services of a selected cluster that
 * carry their own override.
 */
const targetsOf = (input: OverrideInput, estate: Estate): Target[] => {
  const selection = select({ action: 'start', ...scopeOf(input) }, estate.clusters);
  const out: Target[] = [];
  for (const c of estate.clusters) {
    const chosen = selection.selected.filter((s) => s.clusterArn === c.arn);
    const whole = !input.services && selection.fully.has(c.arn);
    if (whole) out.push({ arn: c.arn, type: 'ecs-cluster', name: c.name, cluster: c });
    for (const s of chosen) {
      if (whole && !(input.cancel && s.tags[OVERRIDE_TAG] !== undefined)) continue;
      out.push({ arn: s.arn, type: 'ecs-service', name: s.name, cluster: c, service: s });
    }
  }
  return out;
};

export const scopeOf = (input: OverrideInput) => ({
  ...(input.clusters && { clusters: input.clusters }),
  ...(input.services && { services: input.services }),
  ...(input.tags && { tags: input.tags }),
});

export const lengthOf = (input: OverrideInput): OverrideLength | undefined =>
  input.for !== undefined
    ? { for: input.for }
    : input.until !== undefined
      ? { until: input.until }
      : undefined;

/**
 * Plans `wake` (state running) or `sleep` (stopped) on each target, or `--cancel`. Refuses the whole
 * request (OverrideCapError) when any target's override would outlast the cap. Pure.
 */
export const planOverride = (
  input: OverrideInput,
  estate: Estate,
  opts: OverrideOptions,
  named?: OverrideGroups,
): OverridePlan => {
  const state: OverrideState = input.action === 'wake' ? 'running' : 'stopped';
  const { now } = opts;
  const tags = new Map<string, Record<string, string>>();
  const rows: PlannedAction[] = [];
  const length = lengthOf(input);
  const tooLong: string[] = [];
  const groupRow = (g: { arn: string; name: string }, outcome: PlannedAction['outcome'], detail: string) =>
    row({ arn: g.arn, type: 'autoscaling-group', name: g.name }, outcome, detail);
  const groupTargets: Target[] = [];
  for (const name of named?.missing ?? [])
    rows.push(groupRow({ arn: name, name }, 'failed', 'Auto Scaling group not found; nothing done for it'));
  for (const h of named?.held ?? []) rows.push(groupRow(h, h.outcome, h.reason));
  for (const g of named?.groups ?? []) {
    const provider = named?.providers.get(g.arn);
    if (provider) {
      rows.push(
        groupRow(
          g,
          'skipped',
          `capacity provider ${provider} of an ECS cluster: it follows its cluster's services — override the cluster or its services instead; nothing changed`,
        ),
      );
      continue;
    }
    groupTargets.push({ arn: g.arn, type: 'autoscaling-group', name: g.name, group: g });
  }

  for (const t of [...targetsOf(input, estate), ...groupTargets]) {
    const own = (where: string, tagsOf: TagMap) => {
      const rule = protectedBy(tagsOf, opts.protectedTags);
      return rule && `protected by tag ${rule} on the ${where}`;
    };
    const prod = t.group
      ? own('group', t.group.tags)
      : t.service
        ? protection(t.service, t.cluster, opts.protectedTags)
        : own('cluster', t.cluster?.tags ?? {});
    if (prod) {
      rows.push(
        row(t, 'skipped', `${prod}: production is never woken or slept by an override; nothing changed`),
      );
      continue;
    }
    const other = otherStage(opts.stage, t.group?.tags ?? t.service?.tags ?? {}, t.cluster?.tags ?? {});
    if (other !== undefined) {
      rows.push(
        row(
          t,
          'skipped',
          `tagged nightshift:stage=${other}: that stage's to override (--stage ${other}); nothing changed`,
        ),
      );
      continue;
    }
    const current = (t.group ?? t.service ?? t.cluster)?.tags[OVERRIDE_TAG];
    if (input.cancel) {
      if (current === undefined) {
        rows.push(row(t, 'unchanged', `no ${OVERRIDE_TAG} on it: nothing to cancel`));
        continue;
      }
      // Cancelling ends it now: the reconcile that follows returns the resource to its schedule and then
      // removes the tag (a later reconcile, if that fails), as for any override that expired.
      const was = readable(current);
      const value = encodeOverride({
        state: was?.state ?? state,
        until: now,
        by: input.by,
        why: input.reason ?? `cancelled${was ? ` (was: until ${iso(was.until)} by ${was.by})` : ''}`,
      });
      tags.set(t.arn, { [OVERRIDE_TAG]: value });
      rows.push(
        row(t, undefined, `cancels ${OVERRIDE_TAG} "${current}": back to its schedule now`, value, true),
      );
      continue;
    }
    const { found, unknown } = schedulesOf(t, opts.schedules);
    if (unknown.length > 0) {
      rows.push(
        row(
          t,
          'failed',
          `schedule ${unknown.map((n) => `"${n}"`).join(', ')} is not defined in infra/schedules.yml; nothing changed`,
        ),
      );
      continue;
    }
    if (found.length === 0) {
      rows.push(
        row(
          t,
          'skipped',
          `follows no schedule (tag ${SCHEDULE_TAG}): an override needs one to return to; nothing changed — use nightshift ${input.action === 'wake' ? 'start' : 'stop'}`,
        ),
      );
      continue;
    }
    const zones = [...new Set(found.map((s) => s.timezone))];
    if (length && 'until' in length && untilIsClock(length.until) && zones.length > 1) {
      rows.push(
        row(
          t,
          'failed',
          `its services follow schedules in several zones (${zones.join(', ')}): give --until as a full time (2026-11-29T22:00:00+01:00); nothing changed`,
        ),
      );
      continue;
    }
    const zone = zones[0]!;
    const until = length ? overrideEnd(length, zone, now) : sleepEnd(found, now, opts.maxMs);
    if (until.getTime() <= now.getTime()) {
      rows.push(row(t, 'failed', `until ${iso(until)} is not in the future; nothing changed`));
      continue;
    }
    if (until.getTime() - now.getTime() > opts.maxMs) {
      tooLong.push(
        `${t.name} until ${localLabel(zone, until, now)} ${zone} (${hours(until.getTime() - now.getTime())})`,
      );
      continue;
    }
    const value = encodeOverride({ state, until, by: input.by, why: input.reason ?? '' });
    tags.set(t.arn, { [OVERRIDE_TAG]: value });
    rows.push(
      row(
        t,
        undefined,
        `override: ${state} until ${localLabel(zone, until, now)} ${zone} (${iso(until)}) by ${input.by}` +
          (current !== undefined ? `, replacing "${current}"` : ''),
        value,
        // `--for`, or a sleep's default end (capped from now): the end moves with the clock.
        length === undefined || 'for' in length,
      ),
    );
  }
  if (tooLong.length > 0) {
    throw new OverrideCapError(
      `until: refused: an override may last at most ${hours(opts.maxMs)} (OVERRIDE_MAX_HOURS, the stage's overrideMaxHours); ` +
        `asked: ${tooLong.join('; ')}. Nothing changed.`,
      'until',
    );
  }
  return {
    rows,
    estate: withTags(estate, tags),
    groupTags: new Map([...tags].filter(([arn]) => groupTargets.some((t) => t.arn === arn))),
  };
};

/**
 * `sleep` without --for or --until: until the next transition of its schedule (when the schedule
 * takes over again), at most the cap.
 */
const sleepEnd = (schedules: readonly Schedule[], now: Date, maxMs: number): Date => {
  const cap = now.getTime() + maxMs;
  const next = Math.min(...schedules.map((s) => nextTransition(s, now)?.at.getTime() ?? Infinity));
  return new Date(Math.min(next, cap));
};

const readable = (text: string): Override | undefined => {
  try {
    return decodeOverride(text);
  } catch {
    return undefined;
  }
};

/** The estate with tags written (in memory): what a reconcile right after the writes sees. */
export const withTags = (estate: Estate, tags: ReadonlyMap<string, Record<string, string>>): Estate => ({
  ...estate,
  clusters: estate.clusters.map((c) => ({
    ...c,
    tags: { ...c.tags, ...tags.get(c.arn) },
    services: c.services.map((s) => ({ ...s, tags: { ...s.tags, ...tags.get(s.arn) } })),
  })),
});
