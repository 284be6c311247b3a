import { ecsClient } from '#shared/aws/ecs.ts';
import { applicationAutoScalingClient } from '#shared/aws/application-autoscaling.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { parseEnv } from '#shared/env.ts';
import { parseInput } from '#shared/input.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import type { Schedules } from '#shared/schedules.ts';
import {
  EcsSchedulerInput,
  type OverrideInput,
  type ReconcileInput,
  type SchedulerInput,
} from '#events/ecs-scheduler/schema.ts';
import { DEFAULT_OVERRIDE_MAX_HOURS, OVERRIDE_TAG } from '#shared/override.ts';
import { readClaimedEstate } from './claim.ts';
import { DEFAULT_GRACE_MINUTES, SchedulerConfig } from './config.ts';
import { executePlan, plannedWork } from './execute.ts';
import { readEstate, type Clients, type Estate, type Held } from './inventory.ts';
import { DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES } from '#shared/environment.ts';
import { alarmRows, awakeResources, sweepRows } from './alarms.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { planSchedule, type Plan, type PlannedAction } from './plan.ts';
import {
  capacityProviderGroups,
  planGroupReconcile,
  planStandaloneGroups,
  readScheduledGroups,
  readStandaloneGroups,
  type GroupReconcile,
} from './groups.ts';
import { groupLeaseScope, PARKED_TAG } from '#shared/group-tags.ts';
import type { OverrideGroups } from './override.ts';
import {
  clusterClearRows,
  groupStartRecordCandidates,
  planReconcile,
  startRecordCandidates,
  type ReconcileOptions,
  type ReconcilePlan,
} from './reconcile.ts';
import { bundledSchedules } from './schedules.ts';
import { readStarted, recordStarted } from './started.ts';

export interface Deps {
  clients: Clients;
  config: SchedulerConfig;
  now: () => Date;
  /** The stage's schedules; by default the ones bundled at build time (infra/schedules.yml). */
  schedules?: () => Schedules;
}

let bundled: Schedules | undefined;
const stageSchedules = (d: Deps): Schedules => d.schedules?.() ?? (bundled ??= bundledSchedules());

let deps: Deps | undefined;
/**
 * Issue 10 (scheduled tasks): the stop report warns about scheduled tasks in the clusters it parked.
 * Imported on demand with the EventBridge and Scheduler clients (a chunk of its own): only a stop loads it.
 */
const scheduledTasks = () => import('./scheduled-tasks.ts');

/**
 * The start gate (environment.ts): imported by the runs that plan a start, not by a reconcile that finds
 * everything as its schedule wants it. The override planner (override.ts) likewise, by `wake` and `sleep`.
 */
const environmentGate = () => import('./environment.ts');

/** The RDS client (one per cold start, or per fleet target), imported by the starts that gate on databases. */
const rdsOnDemand = (scope?: ClientScope) => async () =>
  (await import('#shared/aws/rds.ts')).rdsClient(undefined, scope);

/**
 * The clients of a run: where the function runs, or a fleet target's (RunContext.target). Those of the
 * rarer paths are made on first use (OnDemand, inventory.ts), each still once per cold start or target.
 */
const clientsFor = (scope?: ClientScope): Clients => ({
  ecs: ecsClient(scope),
  scaling: applicationAutoScalingClient(scope),
  autoscaling: autoScalingClient(scope),
  rds: rdsOnDemand(scope), // an environment's databases (environment.ts, databases.ts)
  cloudwatch: cloudWatchClient(scope),
  events: async () => (await scheduledTasks()).eventBridgeClient(scope), // scheduled tasks
  scheduler: async () => (await scheduledTasks()).schedulerClient(scope), // scheduled tasks
});

const defaultDeps = (): Deps =>
  (deps ??= {
    clients: clientsFor(),
    config: parseEnv(SchedulerConfig),
    now: () => new Date(),
  });

/** The services and groups a start plan brings back (rows with steps): what it records first (started.ts). */
const startingServices = (plan: Plan | undefined) =>
  (plan?.phases.flat() ?? []).filter((p) => p.type !== 'ecs-cluster' && p.steps.length > 0).map((p) => p.arn);

/**
 * Records, before the start, each service it brings back (with the end of the override that asked for
 * it), so a reconcile leaves it alone until the next transition (or the override's end). Returns the
 * records that could not be written, by ARN.
 */
const recordStarts = (
  plan: Plan | undefined,
  ctx: RunContext,
  d: Deps,
  until: ReadonlyMap<string, Date> = new Map(),
) =>
  recordStarted(
    ctx.leases.leaseStore,
    startingServices(plan).map((arn) => ({ arn, ...(until.has(arn) && { until: until.get(arn)! }) })),
    ctx.leases.runOwner,
    d.now(),
  );

/** Says on a started service's row that its start record could not be written, and what that means. */
const withRecordProblems = (rows: Report['resources'], problems: ReadonlyMap<string, string>) =>
  problems.size === 0
    ? rows
    : rows.map((r) =>
        problems.has(r.arn) && r.outcome === 'changed'
          ? {
              ...r,
              detail:
                `${r.detail}; its start record could not be written to the lease table (${problems.get(r.arn)}): ` +
                "a reconcile may stop it again before the schedule's next transition",
            }
          : r,
      );

/** The warning rows of a stop about scheduled tasks in what it parked (scheduled-tasks.ts, on demand). */
const scheduledTaskRows = async (
  rows: Report['resources'],
  dryRun: boolean,
  ctx: RunContext,
  d: Deps,
): Promise<Report['resources']> => {
  const { events, scheduler } = d.clients;
  if (!events && !scheduler) return [];
  return (await scheduledTasks()).scheduledTaskRows(rows, {
    dryRun,
    hasTime: ctx.hasTime,
    ...(events && { events }),
    ...(scheduler && { scheduler }),
  });
};

const NO_ESTATE: Estate = { clusters: [], missingClusters: [], sharers: [], groups: [], groupUsers: {} };

const isOverride = (input: SchedulerInput | OverrideInput): input is OverrideInput =>
  input.action === 'wake' || input.action === 'sleep';

export const run = async (
  input: EcsSchedulerInput,
  ctx: RunContext,
  d: Deps = defaultDeps(),
): Promise<Report> => {
  if (input.action === 'reconcile') return runReconcile(input, ctx, d);
  if (isOverride(input)) return runOverride(input, ctx, d);
  return runAction(input, ctx, d);
};

/**
 * The named standalone groups, and every capacity provider's group. A mutating run takes each group's
 * lease (the scope instance-rotation takes too), then reads the groups again under it.
 */
const readNamedGroups = async (
  names: readonly string[],
  dryRun: boolean,
  ctx: RunContext,
  d: Deps,
): Promise<OverrideGroups> => {
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  const providers = await capacityProviderGroups(reader);
  let read = await readStandaloneGroups(reader, names);
  let held: Held[] = [];
  if (!dryRun) {
    const refused = await ctx.leases.takeEach(read.groups.map((g) => groupLeaseScope(g.arn)));
    held = read.groups.flatMap((g) => {
      const r = refused.get(groupLeaseScope(g.arn));
      return r ? [{ arn: g.arn, name: g.name, ...r }] : [];
    });
    const leased = read.groups.filter((g) => !refused.has(groupLeaseScope(g.arn))).map((g) => g.name);
    read = { ...(await readStandaloneGroups(reader, leased)), missing: read.missing };
  }
  return { ...read, held, providers };
};

/**
 * The rows of the standalone groups an explicit run names (groups.ts). A mutating run takes each group's
 * lease (the scope instance-rotation takes too), then reads the groups again under it.
 */
const standaloneRows = async (
  input: SchedulerInput,
  dryRun: boolean,
  ctx: RunContext,
  d: Deps,
): Promise<PlannedAction[]> => {
  if (!input.groups) return [];
  const { providers, ...read } = await readNamedGroups(input.groups, dryRun, ctx, d);
  return planStandaloneGroups(input.action, read, providers, {
    protectedTags: d.config.PROTECTED_TAGS,
    now: d.now(),
  });
};

const runAction = async (input: SchedulerInput, ctx: RunContext, d: Deps): Promise<Report> => {
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  // Clusters (and their services and capacity) when named or scoped by tags; standalone groups apart.
  const withClusters = input.clusters !== undefined || input.tags !== undefined;
  // A dry run takes no leases; a mutating run reads the state it plans from only under its leases.
  const estate = !withClusters
    ? undefined
    : dryRun
      ? await readEstate(reader, input, { withSharers: input.action === 'stop' })
      : await readClaimedEstate(reader, input, ctx.leases);
  const planned = estate
    ? planSchedule(input, estate, { protectedTags: d.config.PROTECTED_TAGS, now: d.now() })
    : { action: input.action, phases: [] };
  const groups = await standaloneRows(input, dryRun, ctx, d);
  // Standalone groups start before the services (their environment's services wait for them) and stop after.
  const whole =
    groups.length === 0
      ? planned
      : {
          ...planned,
          phases: input.action === 'start' ? [groups, ...planned.phases] : [...planned.phases, groups],
        };
  const plan =
    input.action === 'start' && !input.force ? await gated(whole, estate ?? NO_ESTATE, ctx, d) : whole;
  const works = plan.phases.flat().map(plannedWork);
  if (!dryRun) {
    const refused = refuseChangedPlan(input.planDigest, works);
    if (refused) {
      // Rows without work keep their own reason too (another run holds the lease, say): often the why.
      const idle = new Map(works.filter((w) => !w.hasWork).map((w) => [w.arn, w.detail]));
      return buildReport(
        plan.action,
        false,
        refused.map((r) => (idle.has(r.arn) ? { ...r, detail: `${r.detail} (now: ${idle.get(r.arn)})` } : r)),
      );
    }
  }
  // Read (and so, once this run leaves nothing undone, cleared) only by a run that has work to order.
  const first = dryRun || !works.some((w) => w.hasWork) ? undefined : await ctx.carriedOver(input.action);
  const problems =
    !dryRun && plan.action === 'start' ? await recordStarts(plan, ctx, d) : new Map<string, string>();
  const executed = await executePlan(plan, d.clients, { dryRun, hasTime: ctx.hasTime, first });
  const alarms = await alarmRows(plan.action === 'stop' ? 'silence' : 'unsilence', executed.resources, {
    dryRun,
    hasTime: ctx.hasTime,
    now: d.now(),
    reader,
    ...(d.clients.cloudwatch && { cloudwatch: d.clients.cloudwatch }),
  });
  // Scheduled tasks (scheduled-tasks.ts): a stop warns about those targeting the clusters it parked.
  const tasks = plan.action === 'stop' ? await scheduledTaskRows(executed.resources, dryRun, ctx, d) : [];
  const report = buildReport(executed.action, dryRun, [
    ...withRecordProblems(executed.resources, problems),
    ...alarms,
    ...tasks,
  ]);
  return dryRun ? { ...report, planDigest: planDigest(works) } : report;
};

const gateIO = (ctx: RunContext, d: Deps) => ({
  reader: { clients: d.clients, hasTime: ctx.hasTime },
  rds: d.clients.rds ?? rdsOnDemand(),
  store: ctx.leases.leaseStore,
  timeoutMs:
    (d.config.ENVIRONMENT_START_TIMEOUT_MINUTES ?? DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES) * 60_000,
  now: d.now(),
});

/**
 * A start plan gated on the tier before each row (environment.ts): groups and services on the databases
 * of their environment, services on its standalone groups. Read only when a row with work belongs to an
 * environment (or is a standalone group). Laggard groups no row names get a row of their own, first.
 */
const gated = async (plan: Plan, estate: Estate, ctx: RunContext, d: Deps): Promise<Plan> => {
  const { gateStart } = await environmentGate();
  const out = await gateStart(plan.phases, estate, gateIO(ctx, d));
  return { ...plan, phases: out.extra.length > 0 ? [out.extra, ...out.phases] : out.phases };
};

/** The reconcile plan with its start gated (gated); its idle rows can say a group lags. */
const gatedReconcile = async (
  plan: ReconcilePlan,
  estate: Estate,
  ctx: RunContext,
  d: Deps,
  force = false,
): Promise<ReconcilePlan> => {
  if (!plan.start || force) return plan;
  const { gateStart } = await environmentGate();
  const out = await gateStart(plan.start.phases, estate, gateIO(ctx, d), plan.idle);
  return { ...plan, idle: [...out.idle, ...out.extra], start: { ...plan.start, phases: out.phases } };
};

/** The clusters a reconcile plan changes something in: leased and read again by a mutating run. */
const clusterNames = (plan: ReconcilePlan) =>
  new Set(
    [
      // Every service of a stop or start (their groups too), and idle rows with a step (an expired override).
      ...[plan.stop, plan.start].flatMap((p) => p?.phases.flat() ?? []),
      ...plan.idle.filter((a) => a.steps.length > 0),
    ]
      .flatMap((a) => (a.type === 'ecs-service' && a.cluster ? [a.cluster] : []))
      .concat(plan.clusterClears.map((c) => c.name)),
  );

const reconcilePlans = (plan: ReconcilePlan): Plan[] => [
  { action: 'stop', phases: [plan.idle] },
  ...(plan.stop ? [plan.stop] : []),
  ...(plan.start ? [plan.start] : []),
];

/** Everything a reconcile plan would do, for the plan digest: the cluster overrides' removal included. */
const reconcileWorks = (plan: ReconcilePlan) =>
  [
    ...reconcilePlans(plan).flatMap((p) => p.phases.flat()),
    ...clusterClearRows(plan.clusterClears, [], new Date(0)),
  ].map(plannedWork);

/** Runs a reconcile plan: idle rows, stop, start, then the expired cluster overrides it settled. */
const executeReconcile = async (
  plan: ReconcilePlan,
  ctx: RunContext,
  d: Deps,
  options: { dryRun: boolean; first?: ReadonlySet<string> },
): Promise<Report['resources']> => {
  const results: Report['resources'] = [];
  for (const p of reconcilePlans(plan)) {
    const problems =
      p === plan.start && !options.dryRun
        ? await recordStarts(p, ctx, d, plan.overrideStarts)
        : new Map<string, string>();
    const report = await executePlan(p, d.clients, { ...options, hasTime: ctx.hasTime });
    results.push(...withRecordProblems(report.resources, problems));
    if (p === plan.stop || p === plan.start) {
      results.push(
        ...(await alarmRows(p === plan.stop ? 'silence' : 'unsilence', report.resources, {
          dryRun: options.dryRun,
          hasTime: ctx.hasTime,
          now: d.now(),
          reader: { clients: d.clients, hasTime: ctx.hasTime },
          ...(d.clients.cloudwatch && { cloudwatch: d.clients.cloudwatch }),
        })),
      );
    }
    // Scheduled tasks (scheduled-tasks.ts): the stop of a reconcile warns about those in what it parked.
    if (p === plan.stop) {
      results.push(...(await scheduledTaskRows(report.resources, options.dryRun, ctx, d)));
    }
  }
  const clears = clusterClearRows(plan.clusterClears, results, d.now());
  if (clears.length > 0) {
    const report = await executePlan({ action: 'stop', phases: [clears] }, d.clients, {
      dryRun: options.dryRun,
      hasTime: ctx.hasTime,
    });
    results.push(...report.resources);
  }
  return results;
};

const reconcileOptions = async (
  estate: Estate,
  ctx: RunContext,
  d: Deps,
  now: Date,
  /** More resources whose start records the decision needs (standalone groups). */
  more: readonly string[] = [],
): Promise<ReconcileOptions> => {
  const schedules = stageSchedules(d);
  return {
    protectedTags: d.config.PROTECTED_TAGS,
    now,
    schedules,
    graceMs: (d.config.SCHEDULE_GRACE_MINUTES ?? DEFAULT_GRACE_MINUTES) * 60_000,
    overrideMaxMs: (d.config.OVERRIDE_MAX_HOURS ?? DEFAULT_OVERRIDE_MAX_HOURS) * 3_600_000,
    ...(d.config.NIGHTSHIFT_STAGE && { stage: d.config.NIGHTSHIFT_STAGE }),
    startedAt: await readStarted(
      ctx.leases.leaseStore,
      [...startRecordCandidates(estate, schedules, now), ...more],
      ctx.hasTime,
    ),
  };
};

/**
 * `{"action": "reconcile"}`: reads every cluster and service, decides from each opted-in service's
 * schedule (or override) what is due (reconcile.ts), and stops and starts those with the same planners
 * and executor as an explicit stop or start. A mutating run then leases the clusters with work (and
 * their groups), reads them again and plans from that; the other rows come from the first read.
 */
/**
 * The standalone groups a reconcile acts on (tag `nightshift:schedule` on the group; groups.ts). A
 * mutating run leases the groups with work and plans them again from a read under their leases.
 */
const reconcileGroups = async (
  ctx: RunContext,
  d: Deps,
  now: Date,
  dryRun: boolean,
): Promise<GroupReconcile | undefined> => {
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  const scheduled = await readScheduledGroups(reader);
  if (scheduled.length === 0) return undefined;
  const providers = await capacityProviderGroups(reader);
  const noEstate = NO_ESTATE;
  // Start records matter only for groups without saved state that the schedule wants stopped now.
  const candidates = groupStartRecordCandidates(scheduled, stageSchedules(d), now);
  const opts = await reconcileOptions(noEstate, ctx, d, now, candidates);
  const seen = planGroupReconcile(scheduled, providers, opts, new Map());
  if (dryRun || seen.withWork.length === 0) return seen;
  const work = scheduled.filter((g) => seen.withWork.includes(g.name));
  const refused = await ctx.leases.takeEach(work.map((g) => groupLeaseScope(g.arn)));
  const held = work.flatMap((g) => {
    const r = refused.get(groupLeaseScope(g.arn));
    return r
      ? [
          {
            arn: g.arn,
            type: 'autoscaling-group' as const,
            name: g.name,
            steps: [],
            outcome: r.outcome,
            detail: r.reason,
          },
        ]
      : [];
  });
  const leased = await readStandaloneGroups(
    reader,
    work.filter((g) => !refused.has(groupLeaseScope(g.arn))).map((g) => g.name),
  );
  const again = planGroupReconcile(leased.groups, providers, opts, new Map());
  const redone = new Set(seen.withWork);
  return {
    ...again,
    idle: [...seen.idle.filter((r) => !redone.has(r.name)), ...held, ...again.idle],
  };
};

/** The cluster plan with the standalone groups': their idle rows, stops after, starts before. */
const withGroups = (plan: ReconcilePlan, groups: GroupReconcile | undefined): ReconcilePlan => {
  if (!groups) return plan;
  const stop = groups.stop.length
    ? { action: 'stop' as const, phases: [...(plan.stop?.phases ?? []), groups.stop] }
    : plan.stop;
  const start = groups.start.length
    ? { action: 'start' as const, phases: [groups.start, ...(plan.start?.phases ?? [])] }
    : plan.start;
  return {
    ...plan,
    idle: [...plan.idle, ...groups.idle],
    ...(stop && { stop }),
    ...(start && { start }),
    overrideStarts: new Map([...plan.overrideStarts, ...groups.overrideStarts]),
  };
};

const runReconcile = async (input: ReconcileInput, ctx: RunContext, d: Deps): Promise<Report> => {
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  const now = d.now();
  const planFrom = async (estate: Estate) =>
    planReconcile(estate, await reconcileOptions(estate, ctx, d, now));

  let estate = await readEstate(reader, {}, { withSharers: false });
  // The whole account's read, for the sweep (a mutating run reads again only the clusters in play).
  const everything = estate;
  let plan = await planFrom(estate);
  const inPlay = clusterNames(plan);
  if (!dryRun && inPlay.size > 0) {
    const seen = plan;
    estate = await readClaimedEstate(reader, { action: 'stop', clusters: [...inPlay] }, ctx.leases);
    const leased = await planFrom(estate);
    plan = { ...leased, idle: [...seen.idle.filter((r) => !inPlay.has(r.cluster ?? '')), ...leased.idle] };
  }
  // Gated once the standalone groups are in: the services of an environment wait for the groups this
  // run starts (environment.ts). Every start row comes from `estate` (the leased read, when there is one).
  plan = await gatedReconcile(withGroups(plan, await reconcileGroups(ctx, d, now, dryRun)), estate, ctx, d);
  const works = reconcileWorks(plan);
  if (!dryRun) {
    const refused = refuseChangedPlan(input.planDigest, works);
    if (refused) return buildReport('reconcile', false, refused);
  }
  const first = dryRun || !works.some((w) => w.hasWork) ? undefined : await ctx.carriedOver('reconcile');
  const results = await executeReconcile(plan, ctx, d, { dryRun, first });
  // The sweep: alarms left silenced for what runs now (a start that could not enable them, a start
  // outside nightshift). Not for what this run acted on: its own silence or unsilence did that.
  const acted = new Set(
    results.filter((r) => r.outcome !== 'unchanged' && r.outcome !== 'skipped').map((r) => r.arn),
  );
  const swept = await sweepRows(awakeResources(everything, acted), {
    dryRun,
    hasTime: ctx.hasTime,
    now,
    ...(d.clients.cloudwatch && { cloudwatch: d.clients.cloudwatch }),
  });
  const report = buildReport('reconcile', dryRun, [...results, ...swept]);
  return dryRun ? { ...report, planDigest: planDigest(works) } : report;
};

const SETTLED = new Set(['failed', 'undone']);

/**
 * One row per resource: an override target's row (the tag) and its reconcile row (the stop or start
 * that followed) become one, which fails or stays undone when either did.
 */
const mergeRows = (set: Report['resources'], reconciled: Report['resources']): Report['resources'] => {
  const byArn = new Map(reconciled.map((r) => [r.arn, r]));
  const merged = set.map((r) => {
    const rec = byArn.get(r.arn);
    if (!rec) return r;
    byArn.delete(r.arn);
    return {
      ...r,
      outcome: SETTLED.has(r.outcome) ? r.outcome : SETTLED.has(rec.outcome) ? rec.outcome : r.outcome,
      detail: `${r.detail}; ${rec.detail}`,
      ...((r.error ?? rec.error) !== undefined && { error: r.error ?? rec.error }),
    };
  });
  return [...merged, ...reconciled.filter((r) => byArn.has(r.arn))];
};

/**
 * `wake` / `sleep` (nightshift wake|sleep <target>): records the override on each target, then
 * reconciles the clusters it was recorded in at once, from the state read under their leases with
 * the tags written. A cluster where a tag could not be written is left to the next reconcile.
 */
const runOverride = async (input: OverrideInput, ctx: RunContext, d: Deps): Promise<Report> => {
  const { planOverride, refuseLength, scopeOf, withTags } = await import('./override.ts');
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  const now = d.now();
  const maxMs = (d.config.OVERRIDE_MAX_HOURS ?? DEFAULT_OVERRIDE_MAX_HOURS) * 3_600_000;
  refuseLength(input, now, maxMs);
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  const scope: SchedulerInput = {
    action: input.action === 'sleep' ? 'stop' : 'start',
    ...(scopeOf(input) as { clusters: string[] }),
  };
  // Clusters (and their services) when named or scoped by tags; standalone groups apart (`groups`).
  const withClusters = input.clusters !== undefined || input.tags !== undefined;
  const estate = !withClusters
    ? NO_ESTATE
    : dryRun
      ? await readEstate(reader, scope, { withSharers: true })
      : await readClaimedEstate(reader, { ...scope, action: 'stop' }, ctx.leases);
  const named = input.groups ? await readNamedGroups(input.groups, dryRun, ctx, d) : undefined;
  const planned = planOverride(
    input,
    estate,
    {
      ...(d.config.NIGHTSHIFT_STAGE && { stage: d.config.NIGHTSHIFT_STAGE }),
      schedules: stageSchedules(d),
      protectedTags: d.config.PROTECTED_TAGS,
      now,
      maxMs,
    },
    named,
  );
  /** The reconcile at once of the standalone groups with these tags written (groups.ts). */
  const groupsWith = async (tags: ReadonlyMap<string, Record<string, string>>) => {
    if (!named || tags.size === 0) return undefined;
    const groups = named.groups
      .filter((g) => tags.has(g.arn))
      .map((g) => ({ ...g, tags: { ...g.tags, ...tags.get(g.arn) } }));
    const candidates = groups.filter((g) => g.tags[PARKED_TAG] === undefined).map((g) => g.arn);
    const opts = await reconcileOptions(NO_ESTATE, ctx, d, now, candidates);
    return planGroupReconcile(groups, named.providers, opts, new Map());
  };
  const clusterOf = new Map(
    estate.clusters.flatMap((c) => [
      [c.arn, c.arn] as const,
      ...c.services.map((s) => [s.arn, c.arn] as const),
    ]),
  );
  const tagged = (rows: readonly { arn: string }[]) =>
    new Set(rows.flatMap((r) => clusterOf.get(r.arn) ?? []));
  const only = (e: Estate, arns: ReadonlySet<string>): Estate => ({
    ...e,
    clusters: e.clusters.filter((c) => arns.has(c.arn)),
    missingClusters: [],
    heldClusters: [],
  });
  const writes = planned.rows.filter((r) => r.steps.length > 0);
  const predicted = await gatedReconcile(
    withGroups(
      planReconcile(
        only(planned.estate, tagged(writes)),
        await reconcileOptions(planned.estate, ctx, d, now),
      ),
      await groupsWith(planned.groupTags),
    ),
    only(planned.estate, tagged(writes)),
    ctx,
    d,
    input.force,
  );
  const works = [...planned.rows.map(plannedWork), ...reconcileWorks(predicted)];
  if (!dryRun) {
    const refused = refuseChangedPlan(input.planDigest, works);
    if (refused) return buildReport(input.action, false, refused);
  }
  // Held and missing clusters are reported once, here.
  const held = !withClusters
    ? []
    : planSchedule(scope, { ...estate, clusters: [] }, { protectedTags: d.config.PROTECTED_TAGS, now })
        .phases.flat()
        .filter((r) => r.type === 'ecs-cluster');
  const set = await executePlan({ action: 'stop', phases: [[...held, ...planned.rows]] }, d.clients, {
    dryRun,
    hasTime: ctx.hasTime,
  });
  const ok = new Set(['changed', 'planned']);
  const written = set.resources.filter((r) => ok.has(r.outcome) && writes.some((w) => w.arn === r.arn));
  const failedIn = tagged(
    set.resources.filter((r) => !ok.has(r.outcome) && writes.some((w) => w.arn === r.arn)),
  );
  const values = new Map(
    writes.flatMap((w) => {
      const step = w.steps[0];
      return written.some((r) => r.arn === w.arn) && step?.op === 'set-override'
        ? [[w.arn, { [OVERRIDE_TAG]: step.value }] as const]
        : [];
    }),
  );
  const reconcileIn = new Set([...tagged(written)].filter((arn) => !failedIn.has(arn)));
  const actual = withTags(estate, values);
  const groupValues = new Map([...values].filter(([arn]) => planned.groupTags.has(arn)));
  const plan = await gatedReconcile(
    withGroups(
      planReconcile(only(actual, reconcileIn), await reconcileOptions(actual, ctx, d, now)),
      await groupsWith(groupValues),
    ),
    only(actual, reconcileIn),
    ctx,
    d,
    input.force,
  );
  const reconciled = await executeReconcile(plan, ctx, d, { dryRun });
  const note = (r: Report['resources'][number]) =>
    failedIn.has(clusterOf.get(r.arn) ?? '') && ok.has(r.outcome)
      ? {
          ...r,
          detail: `${r.detail}; not reconciled now: another override in its cluster could not be recorded — the next reconcile applies it`,
        }
      : r;
  const report = buildReport(input.action, dryRun, mergeRows(set.resources.map(note), reconciled));
  return dryRun ? { ...report, planDigest: planDigest(works) } : report;
};

/** A fleet target's run acts there, with the spoke role's credentials (shared/handler.ts). */
const depsFor = (ctx: RunContext): Deps =>
  ctx.target ? { ...defaultDeps(), clients: clientsFor(ctx.target.scope) } : defaultDeps();

export const handler = withOps(
  'ecs-scheduler',
  (event) => parseInput(EcsSchedulerInput, event),
  (input, ctx) => run(input, ctx, depsFor(ctx)),
);
