import { rdsClient } from '#shared/aws/rds.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES, environmentOf } from '#shared/environment.ts';
import { parseEnv } from '#shared/env.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { DEFAULT_OVERRIDE_MAX_HOURS } from '#shared/override.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import type { Schedules } from '#shared/schedules.ts';
import {
  isDatabaseEvent,
  parseRdsSchedulerEvent,
  RESTARTED_EVENTS,
  type RdsActionInput,
  type RdsDatabaseEvent,
  type RdsOverrideInput,
  type RdsSchedulerEvent,
} from '#events/rds-scheduler/schema.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import { alarmRows, sweepRows } from './alarms.ts';
import { DEFAULT_GRACE_MINUTES, RdsSchedulerConfig } from './config.ts';
import { executeRows } from './execute.ts';
import {
  gateClients,
  readDatabases,
  withoutCopiedTags,
  type Clients,
  type Database,
  type EnvironmentRest,
  type Estate,
} from './inventory.ts';
import {
  planAction,
  planReconcile,
  planRestarted,
  autoStartCandidates,
  startRecordCandidates,
  startWatchCandidates,
  STOPPED_TAG,
  TYPE,
  watchStarts,
  type PlanOptions,
  type PlannedDb,
  type ReconcileOptions,
  type ReconcilePlan,
} from './plan.ts';
import { planOverride, refuseLength, withReconcile } from './override.ts';
import { bundledSchedules } from './schedules.ts';
import { readAutoStarts, readStarted, recordAutoStarts, recordStarted } from './started.ts';

export interface Deps {
  clients: Clients;
  config: RdsSchedulerConfig;
  now: () => Date;
  /** The stage's schedules; by default the ones bundled at build time (infra/schedules.yml). */
  schedules?: () => Schedules;
}

let bundled: Schedules | undefined;
const stageSchedules = (d: Deps): Schedules => d.schedules?.() ?? (bundled ??= bundledSchedules());

let deps: Deps | undefined;
/**
 * The clients of a run: where the function runs, or a fleet target's (RunContext.target). The gate's ECS
 * and Auto Scaling clients come with environments.ts, imported by the runs that gate a stop only.
 */
const clientsFor = (scope?: ClientScope): Clients => ({
  rds: rdsClient(undefined, scope),
  gate: async () => (await import('./environments.ts')).environmentClients(scope),
  cloudwatch: cloudWatchClient(scope),
});

const defaultDeps = (): Deps =>
  (deps ??= {
    clients: clientsFor(),
    config: parseEnv(RdsSchedulerConfig),
    now: () => new Date(),
  });

/** Plans from a fresh read of the databases, reading the environments only for the stops it gates. */
type Planner = (estate: Estate, opts: PlanOptions) => Promise<ReconcilePlan> | ReconcilePlan;

interface Fresh {
  plan: ReconcilePlan;
  estate: Estate;
}

const planFresh = async (
  planner: Planner,
  force: boolean,
  ctx: RunContext,
  d: Deps,
  now: Date,
): Promise<Fresh> => {
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  const estate = withoutCopiedTags(await readDatabases(reader), now);
  // The start timeout: a database nightshift started that is still not ready (its start record).
  const records = await readStarted(ctx.leases.leaseStore, startWatchCandidates(estate), ctx.hasTime);
  const watch = {
    records,
    timeoutMs:
      (d.config.ENVIRONMENT_START_TIMEOUT_MINUTES ?? DEFAULT_ENVIRONMENT_START_TIMEOUT_MINUTES) * 60_000,
    now,
  };
  const watched = (plan: ReconcilePlan): Fresh => ({
    plan: { ...plan, rows: watchStarts(plan.rows, estate, watch) },
    estate,
  });
  return watched(await gated(planner, estate, force, reader, d, now));
};

const gated = async (
  planner: Planner,
  estate: Estate,
  force: boolean,
  reader: { clients: Clients; hasTime: () => boolean },
  d: Deps,
  now: Date,
): Promise<ReconcilePlan> => {
  const base = { protectedTags: d.config.PROTECTED_TAGS, now };
  // First without the gate, to learn which databases a stop would stop; then, for their environments
  // only, the services and groups are read (read-only) and the plan made again with the gate.
  const ungated = await planner(estate, { ...base, force: true });
  if (force) return ungated;
  const byArn = new Map([...estate.instances, ...estate.clusters].map((db) => [db.arn, db]));
  const environments = new Set(
    ungated.rows
      .filter((r) => r.steps.some((s) => s.op === 'stop'))
      .flatMap((r) => environmentOf(byArn.get(r.arn)?.tags ?? {}) ?? []),
  );
  if (environments.size === 0) return planner(estate, { ...base, force: false });
  // A failed read (throttled, refused) fails the stops of those environments' databases only: every
  // other database is planned as usual. Running out of time stays the whole run's (nothing half-read).
  let read: EnvironmentRest;
  try {
    const { readEnvironments } = await import('./environments.ts');
    const clients = await gateClients(reader.clients);
    read = await readEnvironments({ clients, hasTime: reader.hasTime }, environments);
  } catch (error) {
    if (error instanceof OutOfTimeError) throw error;
    return planner(estate, { ...base, force: false, environmentsError: errorMessage(error) });
  }
  return planner(estate, { ...base, force: false, environments: read });
};

const heldRow = (row: PlannedDb, claim: { reason: string; outcome: 'undone' | 'failed' }): PlannedDb => ({
  ...row,
  steps: [],
  hasWork: false,
  ...(claim.outcome === 'failed'
    ? { outcome: 'failed' as const }
    : { outcome: 'unchanged' as const, later: 'undone' as const }),
  detail: `${claim.reason} (would have: ${row.detail})`,
});

/**
 * The common run: plan from a fresh read; a mutating run then takes the lease of every database it
 * would change (shared/lease.ts), reads and plans again under them, and changes only those it holds.
 * A dry run takes no leases and returns the plan's digest; an apply whose plan differs from the
 * digest it was sent changes nothing.
 */
const runPlanned = async (
  action: string,
  input: { dryRun?: boolean; planDigest?: string; force?: boolean },
  planner: Planner,
  ctx: RunContext,
  d: Deps,
  sweep = false,
): Promise<Report> => {
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  const now = d.now();
  const force = input.force === true;
  let { plan, estate } = await planFresh(planner, force, ctx, d, now);
  const refused = new Map<string, { reason: string; outcome: 'undone' | 'failed' }>();
  if (!dryRun && plan.rows.some((r) => r.hasWork)) {
    const claim = async (rows: readonly PlannedDb[]) => {
      const wanted = rows.filter((r) => r.hasWork && !ctx.leases.held.has(r.arn) && !refused.has(r.arn));
      for (const [arn, why] of await ctx.leases.takeEach(wanted.map((r) => r.arn))) refused.set(arn, why);
    };
    await claim(plan.rows);
    ({ plan, estate } = await planFresh(planner, force, ctx, d, now));
    // Work that appeared between the two reads is claimed too (and then planned from this read).
    await claim(plan.rows);
  }
  const rows = plan.rows.map((r) => (r.hasWork && refused.has(r.arn) ? heldRow(r, refused.get(r.arn)!) : r));
  if (!dryRun) {
    const changed = refuseChangedPlan(input.planDigest, rows);
    if (changed) return buildReport(action, false, changed);
  }
  const first = dryRun || !rows.some((r) => r.hasWork) ? undefined : await ctx.carriedOver(action);
  const problems = new Map<string, string>();
  if (!dryRun) {
    const starts = rows.filter((r) => r.hasWork && r.steps.some((s) => s.op === 'start'));
    const recorded = await recordStarted(
      ctx.leases.leaseStore,
      starts.map((r) => ({
        arn: r.arn,
        ...(plan.overrideStarts.has(r.arn) && { until: plan.overrideStarts.get(r.arn)! }),
      })),
      ctx.leases.runOwner,
      now,
    );
    for (const [arn, why] of recorded) problems.set(arn, why);
  }
  const results = (await executeRows(rows, d.clients.rds, { dryRun, hasTime: ctx.hasTime, first })).map(
    (r) =>
      problems.has(r.arn) && r.outcome === 'changed'
        ? {
            ...r,
            detail:
              `${r.detail}; its start record could not be written to the lease table (${problems.get(r.arn)}): ` +
              "a reconcile may stop it again before the schedule's next transition",
          }
        : r,
  );
  const alarms = await silenceRows(rows, results, estate, { dryRun, hasTime: ctx.hasTime, now }, d);
  const swept = sweep ? await sweepAwake(rows, estate, { dryRun, hasTime: ctx.hasTime, now }, d) : [];
  const report = buildReport(action, dryRun, [...results, ...alarms, ...swept]);
  return dryRun ? { ...report, planDigest: planDigest(rows) } : report;
};

const parkedByNightshift = (db: Database | undefined) =>
  db !== undefined &&
  db.tags[STOPPED_TAG] !== undefined &&
  (db.status === 'stopped' || db.status === 'stopping');

/**
 * Silence while parked (alarms.ts): after the stops, the alarms about the databases nightshift parked —
 * stopped by this run (or planned in a dry run), or found stopped with its tag — are silenced; after the
 * starts, the alarms about the databases this run brought back (started, or found running again and
 * untagged) are enabled again. A database someone else stopped (no tag) is never silenced.
 */
const silenceRows = async (
  rows: readonly PlannedDb[],
  results: readonly ResourceResult[],
  estate: Estate,
  options: { dryRun: boolean; hasTime: () => boolean; now: Date },
  d: Deps,
): Promise<ResourceResult[]> => {
  const byArn = new Map([...estate.instances, ...estate.clusters].map((db) => [db.arn, db]));
  const done = (r: ResourceResult) => r.outcome === 'changed' || r.outcome === 'planned';
  // Results keep the order of the rows (shared/execute.ts).
  const parked = results.filter((r, i) => {
    const row = rows[i];
    if (!row || row.arn !== r.arn) return false;
    if (row.steps.some((s) => s.op === 'stop')) return done(r);
    return r.outcome === 'unchanged' && row.steps.length === 0 && parkedByNightshift(byArn.get(r.arn));
  });
  const woken = results.filter((r, i) => {
    const row = rows[i];
    return row?.arn === r.arn && row.steps.some((s) => s.op === 'untag-stopped') && done(r);
  });
  const cloudwatch = d.clients.cloudwatch && { cloudwatch: d.clients.cloudwatch };
  return [
    ...(await alarmRows('silence', withMembers(parked, estate), { ...options, ...cloudwatch })),
    ...(await alarmRows('unsilence', withMembers(woken, estate), { ...options, ...cloudwatch })),
  ];
};

/**
 * The rows of clusters, with a row for each of their member instances: a parked Aurora cluster's
 * instances are parked too, and alarms on their `DBInstanceIdentifier` (the writer's CPU, its
 * connections) are about the parked cluster as much as `DBClusterIdentifier` ones.
 */
const withMembers = <R extends { arn: string; type: string }>(rows: readonly R[], estate: Estate) =>
  rows.flatMap((r) => {
    if (r.type !== TYPE.cluster) return [r];
    const id = r.arn.split(':cluster:')[1];
    const members = estate.instances.filter((db) => id !== undefined && db.memberOf === id);
    return [r, ...members.map((m) => ({ ...r, arn: m.arn, type: TYPE.instance }))];
  });

/**
 * A scheduled reconcile also sweeps (alarms.ts sweepRows): alarms still silenced for a database that runs
 * now — not stopped or stopping, and not one this run acts on (its own silence or unsilence did that).
 */
const sweepAwake = (
  rows: readonly PlannedDb[],
  estate: Estate,
  options: { dryRun: boolean; hasTime: () => boolean; now: Date },
  d: Deps,
): Promise<ResourceResult[]> => {
  const acted = new Set(rows.filter((r) => r.hasWork).map((r) => r.arn));
  const awake = [...estate.clusters, ...estate.instances.filter((db) => db.memberOf === undefined)]
    .filter((db) => db.status !== 'stopped' && db.status !== 'stopping' && !acted.has(db.arn))
    .map((db) => ({ arn: db.arn, type: TYPE[db.kind], outcome: 'unchanged' as const, detail: '' }));
  return sweepRows(withMembers(awake, estate), {
    ...options,
    ...(d.clients.cloudwatch && { cloudwatch: d.clients.cloudwatch }),
  });
};

const reconcileOptions = async (
  estate: Estate,
  opts: PlanOptions,
  ctx: RunContext,
  d: Deps,
): Promise<ReconcileOptions> => {
  const schedules = stageSchedules(d);
  return {
    ...opts,
    schedules,
    graceMs: (d.config.SCHEDULE_GRACE_MINUTES ?? DEFAULT_GRACE_MINUTES) * 60_000,
    overrideMaxMs: (d.config.OVERRIDE_MAX_HOURS ?? DEFAULT_OVERRIDE_MAX_HOURS) * 3_600_000,
    ...(d.config.NIGHTSHIFT_STAGE && { stage: d.config.NIGHTSHIFT_STAGE }),
    startedAt: await readStarted(
      ctx.leases.leaseStore,
      startRecordCandidates(estate, schedules, opts.now),
      ctx.hasTime,
    ),
    autoStarts: await readAutoStarts(ctx.leases.leaseStore, autoStartCandidates(estate), ctx.hasTime),
  };
};

const runEvent = (event: RdsDatabaseEvent, ctx: RunContext, d: Deps): Promise<Report> => {
  const eventId = event.detail.EventID ?? '';
  if (!(eventId in RESTARTED_EVENTS)) {
    // Another RDS event (a rule widened by hand, say): nothing to do, and said so.
    return Promise.resolve(
      buildReport('reconcile', false, [
        {
          arn: event.detail.SourceArn,
          type: event['detail-type'] === 'RDS DB Cluster Event' ? 'rds-db-cluster' : 'rds-db-instance',
          outcome: 'unchanged',
          detail: `${eventId || 'an RDS event without EventID'}: not an event of a database running again; nothing to do`,
        },
      ]),
    );
  }
  // RDS says it started the database by itself: recorded, so that the "started" event that follows (or a
  // reconcile) knows the start was AWS's, whatever the tag's age. A record that cannot be written leaves
  // the tag's age to tell (AUTO_START_AFTER_MS).
  const recorded =
    RESTARTED_EVENTS[eventId]?.done === false
      ? recordAutoStarts(
          ctx.leases.leaseStore,
          [{ arn: event.detail.SourceArn }],
          ctx.leases.runOwner,
          d.now(),
        )
      : Promise.resolve(new Map<string, string>());
  return recorded.then(() =>
    runPlanned(
      'reconcile',
      {},
      async (estate, opts) =>
        planRestarted(event.detail.SourceArn, eventId, estate, await reconcileOptions(estate, opts, ctx, d)),
      ctx,
      d,
    ),
  );
};

/**
 * `wake` / `sleep` (nightshift wake|sleep --db … --db-cluster …): records the override on each database
 * (override.ts) and reconciles those databases at once, one row each: the tag first, then the stop or
 * start the reconcile plans from the estate with the tag written. It runs as every other action does
 * (runPlanned): under each database's lease — the reconcile takes the same one, so a wake and a reconcile
 * never act on a database at once — from a fresh read under the leases, refusing a plan that differs
 * from the one confirmed.
 */
const runOverride = (input: RdsOverrideInput, ctx: RunContext, d: Deps): Promise<Report> => {
  const maxMs = (d.config.OVERRIDE_MAX_HOURS ?? DEFAULT_OVERRIDE_MAX_HOURS) * 3_600_000;
  refuseLength(input, d.now(), maxMs);
  return runPlanned(
    input.action,
    input,
    async (estate, opts) => {
      const planned = planOverride(input, estate, {
        schedules: stageSchedules(d),
        protectedTags: opts.protectedTags,
        now: opts.now,
        maxMs,
        ...(d.config.NIGHTSHIFT_STAGE && { stage: d.config.NIGHTSHIFT_STAGE }),
      });
      const targets = new Set(planned.rows.filter((r) => r.hasWork).map((r) => r.arn));
      if (targets.size === 0) return { rows: planned.rows, overrideStarts: new Map() };
      const reconcile = planReconcile(
        planned.estate,
        await reconcileOptions(planned.estate, opts, ctx, d),
        targets,
      );
      return withReconcile(planned.rows, reconcile);
    },
    ctx,
    d,
  );
};

const isOverride = (input: RdsActionInput | RdsOverrideInput): input is RdsOverrideInput =>
  input.action === 'wake' || input.action === 'sleep';

export const run = async (
  input: RdsSchedulerEvent,
  ctx: RunContext,
  d: Deps = defaultDeps(),
): Promise<Report> => {
  if (isDatabaseEvent(input)) return runEvent(input, ctx, d);
  if (isOverride(input)) return runOverride(input, ctx, d);
  const request: RdsActionInput = input;
  if (request.action === 'reconcile')
    return runPlanned(
      'reconcile',
      request,
      async (estate, opts) => planReconcile(estate, await reconcileOptions(estate, opts, ctx, d)),
      ctx,
      d,
      true,
    );
  const scope = {
    action: request.action,
    ...(request.instances && { instances: request.instances }),
    ...(request.clusters && { clusters: request.clusters }),
    ...(request.tags && { tags: request.tags }),
  };
  return runPlanned(
    request.action,
    request,
    (estate, opts) => ({ rows: planAction(scope, estate, opts), overrideStarts: new Map() }),
    ctx,
    d,
  );
};

/** A fleet target's run acts there, with the spoke role's credentials (shared/handler.ts). */
const depsFor = (ctx: RunContext): Deps =>
  ctx.target ? { ...defaultDeps(), clients: clientsFor(ctx.target.scope) } : defaultDeps();

export const handler = withOps('rds-scheduler', parseRdsSchedulerEvent, (input, ctx) =>
  run(input, ctx, depsFor(ctx)),
);
