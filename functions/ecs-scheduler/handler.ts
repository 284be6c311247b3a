import { ecsClient } from '#shared/aws/ecs.ts';
import { applicationAutoScalingClient } from '#shared/aws/application-autoscaling.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { parseEnv } from '#shared/env.ts';
import { parseInput } from '#shared/input.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import type { Schedules } from '#shared/schedules.ts';
import { EcsSchedulerInput, type ReconcileInput, type SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { readClaimedEstate } from './claim.ts';
import { DEFAULT_GRACE_MINUTES, SchedulerConfig } from './config.ts';
import { executePlan, plannedWork } from './execute.ts';
import { readEstate, type Clients, type Estate } from './inventory.ts';
import { planSchedule, type Plan } from './plan.ts';
import { planReconcile, startRecordCandidates, type ReconcilePlan } from './reconcile.ts';
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
const defaultDeps = (): Deps =>
  (deps ??= {
    clients: { ecs: ecsClient(), scaling: applicationAutoScalingClient(), autoscaling: autoScalingClient() },
    config: parseEnv(SchedulerConfig),
    now: () => new Date(),
  });

/** Services a start brought back: recorded in the lease table for reconcile (started.ts). */
const startedServices = (report: Report) =>
  report.dryRun
    ? []
    : report.resources.filter((r) => r.type === 'ecs-service' && r.outcome === 'changed').map((r) => r.arn);

export const run = async (
  input: EcsSchedulerInput,
  ctx: RunContext,
  d: Deps = defaultDeps(),
): Promise<Report> => {
  if (input.action === 'reconcile') return runReconcile(input, ctx, d);
  const report = await runAction(input, ctx, d);
  if (input.action === 'start') await noteStarts(report, ctx, d);
  return report;
};

const noteStarts = async (report: Report, ctx: RunContext, d: Deps) => {
  const problems = await recordStarted(
    ctx.leases.leaseStore,
    startedServices(report),
    ctx.leases.runOwner,
    d.now(),
  );
  if (problems.length > 0) {
    ctx.logger?.warn('start records not written: a reconcile may stop these services again', { problems });
  }
};

const runAction = async (input: SchedulerInput, ctx: RunContext, d: Deps): Promise<Report> => {
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  // A dry run takes no leases; a mutating run reads the state it plans from only under its leases.
  const estate = dryRun
    ? await readEstate(reader, input, { withSharers: input.action === 'stop' })
    : await readClaimedEstate(reader, input, ctx.leases);
  const plan = planSchedule(input, estate, { protectedTags: d.config.PROTECTED_TAGS, now: d.now() });
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
  const report = await executePlan(plan, d.clients, { dryRun, hasTime: ctx.hasTime, first });
  return dryRun ? { ...report, planDigest: planDigest(works) } : report;
};

const clusterNames = (plan: ReconcilePlan) =>
  new Set(
    [plan.stop, plan.start].flatMap((p) =>
      (p?.phases.flat() ?? []).flatMap((a) => (a.type === 'ecs-service' && a.cluster ? [a.cluster] : [])),
    ),
  );

/**
 * `{"action": "reconcile"}`: reads every cluster and service, decides from each opted-in service's
 * schedule what is due (reconcile.ts), and stops and starts those with the same planners and executor
 * as an explicit stop or start. A mutating run then leases the clusters with work (and their groups),
 * reads them again and plans from that; the other rows come from the first read.
 */
const runReconcile = async (input: ReconcileInput, ctx: RunContext, d: Deps): Promise<Report> => {
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  const reader = { clients: d.clients, hasTime: ctx.hasTime };
  const now = d.now();
  const schedules = stageSchedules(d);
  const graceMs = (d.config.SCHEDULE_GRACE_MINUTES ?? DEFAULT_GRACE_MINUTES) * 60_000;
  const store = ctx.leases.leaseStore;
  const planFrom = async (estate: Estate) =>
    planReconcile(estate, {
      protectedTags: d.config.PROTECTED_TAGS,
      now,
      schedules,
      graceMs,
      startedAt: await readStarted(store, startRecordCandidates(estate, schedules, now), ctx.hasTime),
    });

  let plan = await planFrom(await readEstate(reader, {}, { withSharers: false }));
  const inPlay = clusterNames(plan);
  if (!dryRun && inPlay.size > 0) {
    const seen = plan;
    const leased = await planFrom(
      await readClaimedEstate(reader, { action: 'stop', clusters: [...inPlay] }, ctx.leases),
    );
    plan = { ...leased, idle: [...seen.idle.filter((r) => !inPlay.has(r.cluster ?? '')), ...leased.idle] };
  }
  const plans: Plan[] = [
    { action: 'stop', phases: [plan.idle] },
    ...(plan.stop ? [plan.stop] : []),
    ...(plan.start ? [plan.start] : []),
  ];
  const works = plans.flatMap((p) => p.phases.flat()).map(plannedWork);
  if (!dryRun) {
    const refused = refuseChangedPlan(input.planDigest, works);
    if (refused) return buildReport('reconcile', false, refused);
  }
  const first = dryRun || !works.some((w) => w.hasWork) ? undefined : await ctx.carriedOver('reconcile');
  const results: Report['resources'] = [];
  for (const p of plans) {
    const report = await executePlan(p, d.clients, { dryRun, hasTime: ctx.hasTime, first });
    results.push(...report.resources);
    if (p === plan.start) await noteStarts(report, ctx, d);
  }
  const report = buildReport('reconcile', dryRun, results);
  return dryRun ? { ...report, planDigest: planDigest(works) } : report;
};

export const handler = withOps(
  'ecs-scheduler',
  (event) => parseInput(EcsSchedulerInput, event),
  (input, ctx) => run(input, ctx),
);
