import { ecsClient } from '#shared/aws/ecs.ts';
import { applicationAutoScalingClient } from '#shared/aws/application-autoscaling.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { parseEnv } from '#shared/env.ts';
import { parseInput } from '#shared/input.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { readClaimedEstate } from './claim.ts';
import { SchedulerConfig } from './config.ts';
import { executePlan, plannedWork } from './execute.ts';
import { readEstate, type Clients } from './inventory.ts';
import { planSchedule } from './plan.ts';

export interface Deps {
  clients: Clients;
  config: SchedulerConfig;
  now: () => Date;
}

let deps: Deps | undefined;
const defaultDeps = (): Deps =>
  (deps ??= {
    clients: { ecs: ecsClient(), scaling: applicationAutoScalingClient(), autoscaling: autoScalingClient() },
    config: parseEnv(SchedulerConfig),
    now: () => new Date(),
  });

export const run = async (
  input: SchedulerInput,
  ctx: RunContext,
  d: Deps = defaultDeps(),
): Promise<Report> => {
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

export const handler = withOps(
  'ecs-scheduler',
  (event) => parseInput(SchedulerInput, event),
  (input, ctx) => run(input, ctx),
);
