import {
  desiredState,
  evaluate,
  localLabel,
  type DesiredState,
  type Evaluation,
  type Schedule,
  type Schedules,
} from '#shared/schedules.ts';
import { otherStage, type TagMap } from '#shared/tags.ts';
import { PARKED_TAG } from '#shared/group-tags.ts';
import { decodeOverride, overrideActive, OVERRIDE_TAG, type Override } from '#shared/override.ts';
import type { ClusterState, Estate, ServiceState } from './inventory.ts';
import type { StartRecord } from './started.ts';
import { planSchedule, startedByHand, type Plan, type PlannedAction, type PlanOptions } from './plan.ts';
import { PARKED_LIMITS, SAVED_STATE_TAG, sameScaling } from './saved.ts';

/** The tag a service or cluster opts in with: `nightshift:schedule=<name>`. Public contract. */
export const SCHEDULE_TAG = 'nightshift:schedule';

export interface ReconcileOptions extends PlanOptions {
  schedules: Schedules;
  /** SCHEDULE_GRACE_MINUTES in ms: a service younger than this is not acted on. */
  graceMs: number;
  /** When a nightshift start last restored each service (the lease-table record), by service ARN. */
  startedAt: ReadonlyMap<string, StartRecord>;
  /**
   * OVERRIDE_MAX_HOURS in ms: an override read with more time left than this (written by hand, or
   * before the cap was lowered) is not obeyed. Undefined: no check (tests of other rules).
   */
  overrideMaxMs?: number;
  /** NIGHTSHIFT_STAGE: resources tagged nightshift:stage for another stage are that stage's. */
  stage?: string;
}

/** What the schedule asks of one opted-in service, and why, before the stop and start planners run. */
export interface ServiceDecision {
  service: ServiceState;
  /** Undefined: nothing to do now; `row` says why. */
  want?: 'stop' | 'start';
  /** The schedule's reason in the resource's local time, which prefixes every row of the service. */
  why: string;
  schedule?: string;
  /** The schedule's desired state now; undefined for an unknown schedule. */
  state?: DesiredState;
  row?: PlannedAction;
  /** The override that decided (active), or an expired one to remove once the service is on schedule. */
  override?: OverrideRef;
  /** The schedule's zone, for times in rows. */
  timezone?: string;
}

/** An override tag on a service or a cluster, as read. */
export interface OverrideRef {
  arn: string;
  type: 'ecs-service' | 'ecs-cluster' | 'autoscaling-group';
  name: string;
  /** The tag value as read: removed only if it still holds this. */
  text: string;
  override: Override;
  active: boolean;
}

const idle = (
  s: ServiceState,
  outcome: 'unchanged' | 'skipped' | 'failed',
  detail: string,
): PlannedAction => ({
  arn: s.arn,
  type: 'ecs-service',
  name: s.name,
  cluster: s.clusterName,
  steps: [],
  outcome,
  detail,
});

/** The schedule a service follows: its own tag wins; without one, its cluster's. */
export const scheduleOf = (
  s: ServiceState,
  cluster: ClusterState,
): { name: string; from: string } | undefined => {
  const own = s.tags[SCHEDULE_TAG];
  if (own !== undefined) return { name: own, from: 'on the service' };
  const inherited = cluster.tags[SCHEDULE_TAG];
  return inherited !== undefined ? { name: inherited, from: `on cluster ${cluster.name}` } : undefined;
};

/** A resource a reconcile decides for: an ECS service (under its cluster) or an Auto Scaling group. */
export interface Subject {
  arn: string;
  name: string;
  type: 'ecs-service' | 'autoscaling-group';
  tags: TagMap;
  /** The service's cluster: its schedule, override and stage tags apply when the service has none. */
  parent?: { arn: string; name: string; tags: TagMap };
  /** When AWS created it: the grace period. */
  createdAt?: Date;
}

/** What the schedule or an override asks of a subject now, before any planner runs. */
export interface Decided {
  want?: 'stop' | 'start';
  why: string;
  schedule?: string;
  state?: DesiredState;
  timezone?: string;
  override?: OverrideRef;
  /** Nothing to do now (or a failure): the row's outcome and detail. */
  idle?: { outcome: 'unchanged' | 'skipped' | 'failed'; detail: string };
}

const parentWord = (subj: Subject) => (subj.parent ? `on cluster ${subj.parent.name}` : '');

/**
 * The override a subject follows: its own `nightshift:override` wins over its cluster's. An unreadable
 * one is returned as an error (a person edited it): the subject is then not touched.
 */
export const overrideOfSubject = (subj: Subject, now: Date): OverrideRef | { error: string } | undefined => {
  const own = subj.tags[OVERRIDE_TAG];
  const parent = subj.parent;
  const [text, ref] =
    own !== undefined || !parent
      ? [own, { arn: subj.arn, type: subj.type, name: subj.name }]
      : [parent.tags[OVERRIDE_TAG], { arn: parent.arn, type: 'ecs-cluster' as const, name: parent.name }];
  if (text === undefined) return undefined;
  try {
    const override = decodeOverride(text);
    return { ...ref, text, override, active: overrideActive(override, now) };
  } catch (error) {
    const where =
      ref.type === 'ecs-cluster'
        ? parentWord(subj)
        : `on the ${subj.type === 'ecs-service' ? 'service' : 'group'}`;
    return { error: `${(error as Error).message} (${where})` };
  }
};

const serviceSubject = (s: ServiceState, cluster: ClusterState): Subject => ({
  arn: s.arn,
  name: s.name,
  type: 'ecs-service',
  tags: s.tags,
  parent: { arn: cluster.arn, name: cluster.name, tags: cluster.tags },
  ...(s.createdAt && { createdAt: s.createdAt }),
});

/** The override a service follows: its own wins over its cluster's. */
export const overrideOf = (s: ServiceState, cluster: ClusterState, now: Date) =>
  overrideOfSubject(serviceSubject(s, cluster), now);

const describeOverride = (o: Override, timeZone: string, now: Date) =>
  `override by ${o.by} until ${localLabel(timeZone, o.until, now)} ${timeZone}` +
  (o.why ? ` (why: ${o.why})` : '');

const savedAtOf = (tags: TagMap): Date | undefined => {
  const at = tags[SAVED_STATE_TAG]?.match(/(?:^| )at=(\S+)/)?.[1];
  const ms = at === undefined ? NaN : Date.parse(at);
  return Number.isNaN(ms) ? undefined : new Date(ms);
};

/**
 * Whether nightshift acted on the subject since `since` (the schedule's last transition). A stop saves
 * `nightshift:stopped` with `at=<its time>` before it parks, so a tag stamped at or after the transition
 * says a stop ran since. A start removes that tag, so without it the lease-table record of the last
 * start says whether a start ran since (a person's `nightshift start` after the evening stop, say).
 * Tags a person changed by hand do not count.
 */
const actedSince = (tags: TagMap, since: Date | undefined, started: StartRecord | undefined, now: Date) => {
  const t = since?.getTime() ?? -Infinity;
  const stopped = savedAtOf(tags);
  if (stopped) return stopped.getTime() >= t ? { by: 'stop' as const, at: stopped } : undefined;
  if (tags[SAVED_STATE_TAG] !== undefined) return undefined;
  // A start an override asked for stops counting when the override ends, tag or no tag.
  if (started?.until && now.getTime() >= started.until.getTime()) return undefined;
  return started && started.at.getTime() >= t ? { by: 'start' as const, at: started.at } : undefined;
};

/** The schedule a subject follows: its own tag wins; without one, its cluster's. */
const scheduleOfSubject = (subj: Subject): { name: string; from: string } | undefined => {
  const own = subj.tags[SCHEDULE_TAG];
  if (own !== undefined)
    return { name: own, from: `on the ${subj.type === 'ecs-service' ? 'service' : 'group'}` };
  const inherited = subj.parent?.tags[SCHEDULE_TAG];
  return inherited !== undefined ? { name: inherited, from: parentWord(subj) } : undefined;
};

/**
 * What the schedule (or an override) asks of one subject now. Undefined: it is not opted in, or is
 * another stage's. Pure.
 */
export const decideSubject = (
  subj: Subject,
  opts: ReconcileOptions,
  evaluations: Map<string, Evaluation>,
): Decided | undefined => {
  const tag = scheduleOfSubject(subj);
  if (!tag) return undefined;
  // Another stage's (nightshift:stage): its reconcile acts on it, with its own leases and records.
  if (otherStage(opts.stage, subj.tags, subj.parent?.tags ?? {}) !== undefined) return undefined;
  const own = tag.from.startsWith('on the ');
  const schedule: Schedule | undefined = opts.schedules.get(tag.name);
  if (!schedule) {
    const known = [...opts.schedules.keys()].join(', ') || 'none';
    const why = `schedule "${tag.name}" (tag ${SCHEDULE_TAG} ${tag.from}) is not defined in infra/schedules.yml (known: ${known})`;
    return {
      why,
      idle: {
        outcome: 'failed',
        detail: `${why}; nothing changed — fix the tag or add the schedule and deploy`,
      },
    };
  }
  // One evaluation per schedule and run (it searches the transitions: milliseconds each, for every service).
  let ev = evaluations.get(schedule.name);
  if (!ev) {
    try {
      ev = evaluate(schedule, opts.now);
    } catch (error) {
      // A schedule that cannot be evaluated (a bundle past the years of holidays it carries) fails its
      // own rows; the other schedules run on.
      return {
        why: schedule.name,
        idle: { outcome: 'failed', detail: `${schedule.name}: ${(error as Error).message}; nothing changed` },
      };
    }
    evaluations.set(schedule.name, ev);
  }
  const why = own ? ev.reason : `${ev.reason} (tag ${tag.from})`;
  const base = { why, schedule: schedule.name, state: ev.state, timezone: schedule.timezone };
  const zone = schedule.timezone;
  if (subj.createdAt && opts.now.getTime() - subj.createdAt.getTime() < opts.graceMs) {
    const from = new Date(subj.createdAt.getTime() + opts.graceMs);
    return {
      ...base,
      idle: {
        outcome: 'skipped',
        detail:
          `${why}; created at ${localLabel(zone, subj.createdAt, opts.now)}, less than ${Math.round(opts.graceMs / 60_000)} min ago ` +
          `(SCHEDULE_GRACE_MINUTES): left alone until ${localLabel(zone, from, opts.now)} ${zone}`,
      },
    };
  }
  const ov = overrideOfSubject(subj, opts.now);
  if (ov && 'error' in ov) {
    return {
      ...base,
      idle: {
        outcome: 'failed',
        detail: `${why}; ${ov.error}; nothing changed — fix or remove the tag (nightshift wake --cancel)`,
      },
    };
  }
  const slack = 5 * 60_000;
  if (
    ov?.active &&
    opts.overrideMaxMs !== undefined &&
    ov.override.until.getTime() - opts.now.getTime() > opts.overrideMaxMs + slack
  ) {
    const hours = Math.round((opts.overrideMaxMs / 3_600_000) * 100) / 100;
    const where =
      ov.type === 'ecs-cluster'
        ? parentWord(subj)
        : `on the ${subj.type === 'ecs-service' ? 'service' : 'group'}`;
    return {
      ...base,
      idle: {
        outcome: 'failed',
        detail:
          `${why}; ${OVERRIDE_TAG} "${ov.text}" (${where}) lasts longer than the cap of ${hours} h (OVERRIDE_MAX_HOURS): ` +
          'not obeyed, nothing changed — end it with nightshift wake --cancel, or set a shorter one',
      },
    };
  }
  const saved = subj.tags[SAVED_STATE_TAG] !== undefined;
  if (ov?.active) {
    // An override wins over the schedule until it expires, on every run (enforced: a person asked for it).
    const want = ov.override.state === 'stopped' ? 'stop' : 'start';
    const owhy = `${describeOverride(ov.override, zone, opts.now)}, over ${why}`;
    const decided = { ...base, why: owhy, state: ov.override.state, override: ov };
    if (want === 'start' && !saved) {
      return {
        ...decided,
        idle: {
          outcome: 'unchanged',
          detail: `${owhy}; running (no saved state: not stopped by nightshift)`,
        },
      };
    }
    return { ...decided, want };
  }
  if (ov) {
    // Expired: back to the schedule at once, whatever was done since its last transition (the override
    // was), then the tag goes. It stays until the subject is on schedule, so a failed run is retried.
    const expired = `override by ${ov.override.by} ended at ${localLabel(zone, ov.override.until, opts.now)} ${zone}`;
    const decided = { ...base, why: `${why} (${expired})`, override: ov };
    if (ev.state === 'any')
      return { ...decided, idle: { outcome: 'unchanged', detail: `${decided.why}; no action` } };
    const want = ev.state === 'stopped' ? 'stop' : 'start';
    if (want === 'start' && !saved) {
      return {
        ...decided,
        idle: { outcome: 'unchanged', detail: `${decided.why}; not stopped by nightshift (no saved state)` },
      };
    }
    return { ...decided, want };
  }
  if (ev.state === 'any') return { ...base, idle: { outcome: 'unchanged', detail: `${why}; no action` } };
  const want = ev.state === 'stopped' ? 'stop' : 'start';
  if (want === 'start' && !saved) {
    // Nothing saved: nightshift did not stop it (or already started it); a start has nothing to restore.
    return {
      ...base,
      idle: { outcome: 'unchanged', detail: `${why}; not stopped by nightshift (no saved state)` },
    };
  }
  const acted = actedSince(subj.tags, ev.since?.at, opts.startedAt.get(subj.arn), opts.now);
  if (schedule.enforced || !acted) return { ...base, want };
  const until = ev.next ? `until ${localLabel(zone, ev.next.at, opts.now)}` : 'until the next transition';
  const what =
    acted.by === want
      ? `nightshift ${want === 'stop' ? 'stopped' : 'started'} it at ${localLabel(zone, acted.at, opts.now)}, since the transition`
      : `${acted.by === 'stop' ? 'stopped' : 'started'} on demand at ${localLabel(zone, acted.at, opts.now)}, after the transition`;
  return {
    ...base,
    idle: {
      outcome: 'unchanged',
      detail: `${why}; ${what}: left as it is ${until} (enforced: false acts on transitions only)`,
    },
  };
};

const decideService = (
  s: ServiceState,
  cluster: ClusterState,
  opts: ReconcileOptions,
  evaluations: Map<string, Evaluation>,
): ServiceDecision | undefined => {
  const d = decideSubject(serviceSubject(s, cluster), opts, evaluations);
  if (!d) return undefined;
  const { idle: rest, ...decided } = d;
  return { ...decided, service: s, ...(rest && { row: idle(s, rest.outcome, rest.detail) }) };
};

/**
 * A start due on a service someone started by hand since nightshift parked it: nothing to start, and the
 * saved state is stale (a start would refuse it on every run): the row removes it instead.
 */
const handStarted = (d: ServiceDecision, now: Date): ServiceDecision => {
  if (d.want !== 'start') return d;
  const hand = startedByHand(d.service, now);
  if (!hand) return d;
  return {
    ...d,
    want: undefined,
    row: {
      ...idle(d.service, 'unchanged', `${d.why}; ${hand.reason}`),
      outcome: undefined,
      steps: [{ op: 'clear-service-state', expected: hand.text }],
    },
  };
};

/** Every opted-in ACTIVE service of the estate, and what its schedule asks now. Pure. */
export const decideReconcile = (estate: Estate, opts: ReconcileOptions): ServiceDecision[] => {
  const evaluations = new Map<string, Evaluation>();
  return estate.clusters.flatMap((c) =>
    c.services
      .filter((s) => s.status === 'ACTIVE')
      .flatMap((s) => {
        const d = decideService(s, c, opts, evaluations);
        return d ? [handStarted(d, opts.now)] : [];
      }),
  );
};

/**
 * The services whose lease-table start record a reconcile needs: opted in, their schedule stopped
 * now, and no saved state (whether a start ran since the stop transition decides). Pure.
 */
export const startRecordCandidates = (estate: Estate, schedules: Schedules, now: Date): string[] =>
  estate.clusters.flatMap((c) =>
    c.services.flatMap((s) => {
      if (s.status !== 'ACTIVE' || s.tags[SAVED_STATE_TAG] !== undefined) return [];
      const schedule = schedules.get(scheduleOf(s, c)?.name ?? '');
      if (!schedule) return [];
      try {
        return desiredState(schedule, now) === 'stopped' ? [s.arn] : [];
      } catch {
        return []; // its row fails (decideService)
      }
    }),
  );

/**
 * The standalone groups (tag on the group) whose start record a reconcile reads: without saved state,
 * and whose schedule wants them stopped now. decideSubject reads a start record only then (a group
 * the schedule wants running and nightshift did not stop is left alone without one); reading it for
 * every running group would make each daytime reconcile read the lease table for nothing.
 */
export const groupStartRecordCandidates = (
  groups: ReadonlyArray<{ arn: string; tags: TagMap }>,
  schedules: Schedules,
  now: Date,
): string[] =>
  groups.flatMap((g) => {
    if (g.tags[PARKED_TAG] !== undefined) return [];
    const schedule = schedules.get(g.tags[SCHEDULE_TAG] ?? '');
    if (!schedule) return [];
    try {
      return desiredState(schedule, now) === 'stopped' ? [g.arn] : [];
    } catch {
      return []; // its row fails (decideSubject)
    }
  });

/** The clusters a reconcile has work in: the ones a mutating run leases and reads again. */
export const clustersWithWork = (decisions: readonly ServiceDecision[]): string[] => [
  ...new Set(decisions.filter((d) => d.want).map((d) => d.service.clusterArn)),
];

/**
 * A row that also removes an expired override (`expected`: the tag as read) as its last step, so the tag
 * stays when a step before it fails; a row with nothing else to do gets the removal alone.
 */
export const withOverrideClear = (p: PlannedAction, expected: string | undefined): PlannedAction => {
  if (expected === undefined) return p;
  const step = { op: 'clear-override' as const, expected };
  if (p.steps.length > 0) {
    return {
      ...p,
      steps: [...p.steps, step],
      detail: `${p.detail}; then removes the expired ${OVERRIDE_TAG}`,
    };
  }
  if (p.outcome !== 'unchanged') return p;
  return {
    ...p,
    outcome: undefined,
    steps: [step],
    detail: `${p.detail}; removes the expired ${OVERRIDE_TAG}`,
  };
};

/** An expired override on a cluster: removed once every service that followed it is on schedule. */
export interface ClusterClear {
  arn: string;
  name: string;
  text: string;
  override: Override;
  /** The schedule the cluster's services follow, and its zone, for the row. */
  schedule?: string;
  timezone: string;
  /** The services that followed it. */
  governs: string[];
}

export interface ReconcilePlan {
  /** The rows no stop or start is planned for (failed, in grace, nothing due), first. */
  idle: PlannedAction[];
  stop?: Plan;
  start?: Plan;
  clusterClears: ClusterClear[];
  /** The services the start brings back because an override asks for it: when that override ends. */
  overrideStarts: ReadonlyMap<string, Date>;
}

const prefix = (p: PlannedAction, why: ReadonlyMap<string, string>, groupWhy: string): PlannedAction => {
  const reason = why.get(p.arn) ?? (p.type === 'autoscaling-group' ? groupWhy : undefined);
  return reason ? { ...p, detail: `${reason}: ${p.detail}` } : p;
};

/**
 * Decides, from the estate and the time, what a reconcile does, and builds the stop and the start with
 * the existing planners (planSchedule): the same saved state, scaling, capacity groups, protection
 * and leases as an explicit stop or start. A stop takes, besides the services that are due, the parked
 * services of the same clusters that follow a stopped schedule, so a cluster whose services all rest
 * parks its capacity group as an explicit stop of the whole cluster would. Pure.
 */
export const planReconcile = (estate: Estate, opts: ReconcileOptions): ReconcilePlan => {
  const decisions = decideReconcile(estate, opts);
  const why = new Map(decisions.map((d) => [d.service.arn, d.why]));
  const dueStop = decisions.filter((d) => d.want === 'stop');
  const dueStart = decisions.filter((d) => d.want === 'start');
  const stopClusters = new Set(dueStop.map((d) => d.service.clusterArn));
  const resting = decisions.filter(
    (d) =>
      !d.want &&
      d.row?.outcome === 'unchanged' &&
      stopClusters.has(d.service.clusterArn) &&
      d.service.desiredCount === 0 &&
      (!d.service.scaling || sameScaling(d.service.scaling, PARKED_LIMITS)) &&
      d.service.tags[SAVED_STATE_TAG] !== undefined &&
      d.state === 'stopped',
  );
  const restingArns = new Set(resting.map((d) => d.service.arn));
  const idleRows = decisions.flatMap((d) => (d.row && !restingArns.has(d.service.arn) ? [d.row] : []));
  const clustersOf = (ds: readonly ServiceDecision[]) => [...new Set(ds.map((d) => d.service.clusterArn))];
  const namesOf = (ds: readonly ServiceDecision[]) =>
    [...new Set(ds.flatMap((d) => d.schedule ?? []))].join(', ');

  const stopSet = [...dueStop, ...resting];
  const stop =
    stopSet.length > 0
      ? planSchedule(
          { action: 'stop', clusters: clustersOf(stopSet), services: stopSet.map((d) => d.service.arn) },
          estate,
          opts,
        )
      : undefined;
  const start =
    dueStart.length > 0
      ? planSchedule(
          { action: 'start', clusters: clustersOf(dueStart), services: dueStart.map((d) => d.service.arn) },
          // Clusters not found or held by another run are reported once, by the stop (or here, without one).
          stop ? { ...estate, missingClusters: [], heldClusters: [] } : estate,
          opts,
        )
      : undefined;
  // A group both plans touch (clusters sharing it, or one cluster's services, on different schedules)
  // is the start's: it keeps or brings back capacity for the services it starts. The stop, run first,
  // never parks it under them (the start planned from the group as it was before the stop).
  const startGroups = new Set(
    (start?.phases.flat() ?? []).filter((p) => p.type === 'autoscaling-group').map((p) => p.arn),
  );
  const stopPlan = stop && {
    ...stop,
    phases: stop.phases.map((phase) =>
      phase.filter((p) => p.type !== 'autoscaling-group' || !startGroups.has(p.arn)),
    ),
  };
  const withWhy = (plan: Plan | undefined, ds: readonly ServiceDecision[]) =>
    plan && {
      ...plan,
      phases: plan.phases.map((phase) =>
        phase.map((p) => prefix(p, why, `reconcile ${plan.action} for schedule ${namesOf(ds)}`)),
      ),
    };
  // Without a stop or start to report them, clusters not found or held by another run get their rows here.
  const unplanned: PlannedAction[] =
    stop || start
      ? []
      : (estate.heldClusters ?? []).map((h) => ({
          arn: h.arn,
          type: 'ecs-cluster' as const,
          name: h.name,
          steps: [],
          outcome: h.outcome,
          detail: h.reason,
        }));
  // An expired override on a service goes with the service's last step, so it stays if that fails.
  const expired = new Map(
    decisions.flatMap((d) =>
      d.override && !d.override.active && d.override.type === 'ecs-service'
        ? [[d.service.arn, d.override]]
        : [],
    ),
  );
  const clearing = (p: PlannedAction): PlannedAction =>
    withOverrideClear(p, p.type === 'ecs-service' ? expired.get(p.arn)?.text : undefined);
  const withClears = (plan: Plan | undefined) =>
    plan && { ...plan, phases: plan.phases.map((phase) => phase.map(clearing)) };
  const clusterClears = new Map<string, ClusterClear>();
  for (const d of decisions) {
    const ov = d.override;
    if (!ov || ov.active || ov.type !== 'ecs-cluster') continue;
    const c = clusterClears.get(ov.arn) ?? {
      arn: ov.arn,
      name: ov.name,
      text: ov.text,
      override: ov.override,
      ...(d.schedule && { schedule: d.schedule }),
      timezone: d.timezone ?? 'UTC',
      governs: [],
    };
    c.governs.push(d.service.arn);
    clusterClears.set(ov.arn, c);
  }
  return {
    idle: [...unplanned, ...idleRows.map(clearing)],
    stop: withClears(withWhy(stopPlan, stopSet)),
    start: withClears(withWhy(start, dueStart)),
    clusterClears: [...clusterClears.values()],
    overrideStarts: new Map(
      dueStart.flatMap((d) =>
        d.override?.active ? [[d.service.arn, d.override.override.until] as const] : [],
      ),
    ),
  };
};

const SETTLED = new Set(['changed', 'unchanged', 'planned', 'skipped']);

/**
 * The rows that remove expired cluster overrides, once the services that followed them ran: a service
 * that failed or was left undone keeps the override (and so the next run returns it to its schedule
 * at once too). Pure.
 */
export const clusterClearRows = (
  clears: readonly ClusterClear[],
  results: ReadonlyArray<{ arn: string; outcome: string }>,
  now: Date,
): PlannedAction[] => {
  const outcome = new Map(results.map((r) => [r.arn, r.outcome]));
  return clears.map((c) => {
    const ended =
      `${c.schedule ? `${c.schedule}: ` : ''}${OVERRIDE_TAG} (by ${c.override.by}) ended at ` +
      `${localLabel(c.timezone, c.override.until, now)} ${c.timezone}`;
    const waiting = c.governs.filter((arn) => !SETTLED.has(outcome.get(arn) ?? 'unchanged'));
    const row = { arn: c.arn, type: 'ecs-cluster' as const, name: c.name };
    if (waiting.length > 0) {
      return {
        ...row,
        steps: [],
        outcome: 'skipped' as const,
        detail: `${ended}; kept until its services are back on schedule (not yet: ${waiting.length} of ${c.governs.length})`,
      };
    }
    return {
      ...row,
      steps: [{ op: 'clear-override' as const, expected: c.text }],
      detail: `${ended}; its ${c.governs.length} service(s) are back on schedule: removes the tag`,
    };
  });
};
