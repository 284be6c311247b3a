import {
  desiredState,
  evaluate,
  localLabel,
  type DesiredState,
  type Evaluation,
  type Schedule,
  type Schedules,
} from '#shared/schedules.ts';
import { otherStage } from '#shared/tags.ts';
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
  type: 'ecs-service' | 'ecs-cluster';
  name: string;
  /** The tag value as read: removed only if it still holds this. */
  text: string;
  override: Override;
  active: boolean;
}

const savedAt = (s: ServiceState): Date | undefined => {
  const text = s.tags[SAVED_STATE_TAG];
  const at = text?.match(/(?:^| )at=(\S+)/)?.[1];
  const ms = at === undefined ? NaN : Date.parse(at);
  return Number.isNaN(ms) ? undefined : new Date(ms);
};

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

/**
 * The override a service follows: its own `nightshift:override` wins over its cluster's. An unreadable
 * one is returned as an error (a person edited it): the service is then not touched.
 */
export const overrideOf = (
  s: ServiceState,
  cluster: ClusterState,
  now: Date,
): OverrideRef | { error: string } | undefined => {
  const own = s.tags[OVERRIDE_TAG];
  const [text, ref] =
    own !== undefined
      ? [own, { arn: s.arn, type: 'ecs-service' as const, name: s.name }]
      : [cluster.tags[OVERRIDE_TAG], { arn: cluster.arn, type: 'ecs-cluster' as const, name: cluster.name }];
  if (text === undefined) return undefined;
  try {
    const override = decodeOverride(text);
    return { ...ref, text, override, active: overrideActive(override, now) };
  } catch (error) {
    const where = ref.type === 'ecs-service' ? 'on the service' : `on cluster ${cluster.name}`;
    return { error: `${(error as Error).message} (${where})` };
  }
};

const describeOverride = (o: Override, timeZone: string, now: Date) =>
  `override by ${o.by} until ${localLabel(timeZone, o.until, now)} ${timeZone}` +
  (o.why ? ` (why: ${o.why})` : '');

/**
 * Whether nightshift acted on the service since `since` (the schedule's last transition), toward
 * `state`. A stop saves `nightshift:stopped` with `at=<its time>` before it parks, so a tag stamped
 * at or after the transition says a stop ran since. A start removes that tag, so for a service without
 * it the lease-table record of the last start (`startedAt`) says whether a start ran since (a person's
 * `nightshift start` after the evening stop, say). Tags a person changed by hand do not count.
 */
const actedSince = (
  s: ServiceState,
  since: Date | undefined,
  started: StartRecord | undefined,
  now: Date,
) => {
  const t = since?.getTime() ?? -Infinity;
  const stopped = savedAt(s);
  if (stopped) return stopped.getTime() >= t ? { by: 'stop' as const, at: stopped } : undefined;
  if (s.tags[SAVED_STATE_TAG] !== undefined) return undefined;
  // A start an override asked for stops counting when the override ends, tag or no tag.
  if (started?.until && now.getTime() >= started.until.getTime()) return undefined;
  return started && started.at.getTime() >= t ? { by: 'start' as const, at: started.at } : undefined;
};

const decideService = (
  s: ServiceState,
  cluster: ClusterState,
  opts: ReconcileOptions,
  evaluations: Map<string, Evaluation>,
): ServiceDecision | undefined => {
  const tag = scheduleOf(s, cluster);
  if (!tag) return undefined;
  // Another stage's (nightshift:stage): its reconcile acts on it, with its own leases and records.
  if (otherStage(opts.stage, s.tags, cluster.tags) !== undefined) return undefined;
  const schedule: Schedule | undefined = opts.schedules.get(tag.name);
  if (!schedule) {
    const known = [...opts.schedules.keys()].join(', ') || 'none';
    const why = `schedule "${tag.name}" (tag ${SCHEDULE_TAG} ${tag.from}) is not defined in infra/schedules.yml (known: ${known})`;
    return {
      service: s,
      why,
      row: idle(s, 'failed', `${why}; nothing changed — fix the tag or add the schedule and deploy`),
    };
  }
  // One evaluation per schedule and run (it searches the transitions: milliseconds each, for every service).
  let ev = evaluations.get(schedule.name);
  if (!ev) {
    try {
      ev = evaluate(schedule, opts.now);
    } catch (error) {
      // A schedule that cannot be evaluated (a bundle past the years of holidays it carries) fails its
      // own services' rows; the other schedules run on.
      return {
        service: s,
        why: schedule.name,
        row: idle(s, 'failed', `${schedule.name}: ${(error as Error).message}; nothing changed`),
      };
    }
    evaluations.set(schedule.name, ev);
  }
  const why = tag.from === 'on the service' ? ev.reason : `${ev.reason} (tag ${tag.from})`;
  const base = { service: s, why, schedule: schedule.name, state: ev.state, timezone: schedule.timezone };
  if (s.createdAt && opts.now.getTime() - s.createdAt.getTime() < opts.graceMs) {
    const from = new Date(s.createdAt.getTime() + opts.graceMs);
    return {
      ...base,
      row: idle(
        s,
        'skipped',
        `${why}; created at ${localLabel(schedule.timezone, s.createdAt, opts.now)}, less than ${Math.round(opts.graceMs / 60_000)} min ago ` +
          `(SCHEDULE_GRACE_MINUTES): left alone until ${localLabel(schedule.timezone, from, opts.now)} ${schedule.timezone}`,
      ),
    };
  }
  const ov = overrideOf(s, cluster, opts.now);
  if (ov && 'error' in ov) {
    return {
      ...base,
      row: idle(
        s,
        'failed',
        `${why}; ${ov.error}; nothing changed — fix or remove the tag (nightshift wake --cancel)`,
      ),
    };
  }
  const slack = 5 * 60_000;
  if (
    ov?.active &&
    opts.overrideMaxMs !== undefined &&
    ov.override.until.getTime() - opts.now.getTime() > opts.overrideMaxMs + slack
  ) {
    const hours = Math.round((opts.overrideMaxMs / 3_600_000) * 100) / 100;
    return {
      ...base,
      row: idle(
        s,
        'failed',
        `${why}; ${OVERRIDE_TAG} "${ov.text}" (${ov.type === 'ecs-service' ? 'on the service' : `on cluster ${cluster.name}`}) ` +
          `lasts longer than the cap of ${hours} h (OVERRIDE_MAX_HOURS): not obeyed, nothing changed — ` +
          'end it with nightshift wake --cancel, or set a shorter one',
      ),
    };
  }
  if (ov?.active) {
    // An override wins over the schedule until it expires, on every run (enforced: a person asked for it).
    const want = ov.override.state === 'stopped' ? 'stop' : 'start';
    const owhy = `${describeOverride(ov.override, schedule.timezone, opts.now)}, over ${why}`;
    const decided = { ...base, why: owhy, state: ov.override.state, override: ov };
    if (want === 'start' && s.tags[SAVED_STATE_TAG] === undefined) {
      return {
        ...decided,
        row: idle(s, 'unchanged', `${owhy}; running (no saved state: not stopped by nightshift)`),
      };
    }
    return { ...decided, want };
  }
  if (ov) {
    // Expired: back to the schedule at once, whatever was done since its last transition (the override
    // was), then the tag goes. It stays until the service is on schedule, so a failed run is retried.
    const expired = `override by ${ov.override.by} ended at ${localLabel(schedule.timezone, ov.override.until, opts.now)} ${schedule.timezone}`;
    const decided = { ...base, why: `${why} (${expired})`, override: ov };
    if (ev.state === 'any') return { ...decided, row: idle(s, 'unchanged', `${decided.why}; no action`) };
    const want = ev.state === 'stopped' ? 'stop' : 'start';
    if (want === 'start' && s.tags[SAVED_STATE_TAG] === undefined) {
      return {
        ...decided,
        row: idle(s, 'unchanged', `${decided.why}; not stopped by nightshift (no saved state)`),
      };
    }
    return { ...decided, want };
  }
  if (ev.state === 'any') return { ...base, row: idle(s, 'unchanged', `${why}; no action`) };
  const want = ev.state === 'stopped' ? 'stop' : 'start';
  if (want === 'start' && s.tags[SAVED_STATE_TAG] === undefined) {
    // Nothing saved: nightshift did not stop it (or already started it); a start has nothing to restore.
    return { ...base, row: idle(s, 'unchanged', `${why}; not stopped by nightshift (no saved state)`) };
  }
  const acted = actedSince(s, ev.since?.at, opts.startedAt.get(s.arn), opts.now);
  if (schedule.enforced || !acted) return { ...base, want };
  const until = ev.next
    ? `until ${localLabel(schedule.timezone, ev.next.at, opts.now)}`
    : 'until the next transition';
  const what =
    acted.by === want
      ? `nightshift ${want === 'stop' ? 'stopped' : 'started'} it at ${localLabel(schedule.timezone, acted.at, opts.now)}, since the transition`
      : `${acted.by === 'stop' ? 'stopped' : 'started'} on demand at ${localLabel(schedule.timezone, acted.at, opts.now)}, after the transition`;
  return {
    ...base,
    row: idle(
      s,
      'unchanged',
      `${why}; ${what}: left as it is ${until} (enforced: false acts on transitions only)`,
    ),
  };
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

/** The clusters a reconcile has work in: the ones a mutating run leases and reads again. */
export const clustersWithWork = (decisions: readonly ServiceDecision[]): string[] => [
  ...new Set(decisions.filter((d) => d.want).map((d) => d.service.clusterArn)),
];

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
  const clearing = (p: PlannedAction): PlannedAction => {
    const ov = p.type === 'ecs-service' ? expired.get(p.arn) : undefined;
    if (!ov) return p;
    const step = { op: 'clear-override' as const, expected: ov.text };
    if (p.steps.length > 0)
      return {
        ...p,
        steps: [...p.steps, step],
        detail: `${p.detail}; then removes the expired ${OVERRIDE_TAG}`,
      };
    if (p.outcome !== 'unchanged') return p;
    return {
      ...p,
      outcome: undefined,
      steps: [step],
      detail: `${p.detail}; removes the expired ${OVERRIDE_TAG}`,
    };
  };
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
