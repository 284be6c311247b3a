import { rdsClient } from '#shared/aws/rds.ts';
import { parseEnv } from '#shared/env.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { parseSnapshotTagsInput, type SnapshotTagsInput } from '#events/snapshot-tags/schema.ts';
import { SnapshotTagsConfig } from './config.ts';
import { executePlan, refusalReport } from './execute.ts';
import { readRegion, readSnapshot, type Clients, type Estate } from './inventory.ts';
import { planTagging } from './plan.ts';

export interface Deps {
  clients: Clients;
  config: SnapshotTagsConfig;
}

let deps: Deps | undefined;
/** The clients of a run: where the function runs, or a fleet target's (RunContext.target). */
const clientsFor = (scope?: ClientScope): Clients => ({
  rds: rdsClient(undefined, scope),
  // With ebs.ts, imported by the runs that read or tag EBS snapshots only.
  ec2OnDemand: async () => (await import('./ebs.ts')).ebsClient(scope),
});

const defaultDeps = (): Deps =>
  (deps ??= {
    clients: clientsFor(),
    config: parseEnv(SnapshotTagsConfig),
  });

export const run = async (
  input: SnapshotTagsInput,
  ctx: RunContext,
  d: Deps = defaultDeps(),
): Promise<Report> => {
  const dryRun = (input.action === 'sweep' && input.dryRun === true) || d.config.DRY_RUN;
  let estate: Estate;
  if (input.action === 'sweep') estate = await readRegion(d.clients, ctx.hasTime);
  // An event about anything but a created snapshot: nothing to read, nothing to report.
  else if (!input.snapshot) return buildReport('tag', dryRun, []);
  else estate = await readSnapshot(d.clients, input.snapshot, ctx.hasTime);
  const plan = planTagging(input.action, estate, {
    only: d.config.TAG_KEYS,
    exclude: d.config.EXCLUDE_TAG_KEYS,
  });
  if (dryRun) {
    const report = await executePlan(plan, d.clients, { dryRun, hasTime: ctx.hasTime });
    return { ...report, planDigest: planDigest(plan.snapshots) };
  }
  // The apply of a plan a person confirmed: nothing is tagged unless the plan is still that one.
  const changes = plan.snapshots.filter((s) => s.hasWork);
  const refused = input.action === 'sweep' ? refuseChangedPlan(input.planDigest, changes) : undefined;
  if (refused) return refusalReport(plan.action, refused, changes);
  const first = input.action === 'sweep' ? await ctx.carriedOver('sweep') : undefined;
  return executePlan(plan, d.clients, { dryRun, hasTime: ctx.hasTime, ...(first && { first }) });
};

/** A fleet target's run acts there, with the spoke role's credentials (shared/handler.ts). */
const depsFor = (ctx: RunContext): Deps =>
  ctx.target ? { ...defaultDeps(), clients: clientsFor(ctx.target.scope) } : defaultDeps();

export const handler = withOps('snapshot-tags', parseSnapshotTagsInput, (input, ctx) =>
  run(input, ctx, depsFor(ctx)),
);
