import { ecsClient } from '#shared/aws/ecs.ts';
import { applicationAutoScalingClient } from '#shared/aws/application-autoscaling.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { parseEnv } from '#shared/env.ts';
import { parseInput } from '#shared/input.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import type { Report } from '#shared/report.ts';
import { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { SchedulerConfig } from './config.ts';
import { executePlan } from './execute.ts';
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
  const estate = await readEstate(d.clients, input, { withSharers: input.action === 'stop' });
  const plan = planSchedule(input, estate, { protectedTags: d.config.PROTECTED_TAGS, now: d.now() });
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  return executePlan(plan, d.clients, { dryRun, hasTime: ctx.hasTime });
};

export const handler = withOps(
  'ecs-scheduler',
  (event) => parseInput(SchedulerInput, event),
  (input, ctx) => run(input, ctx),
);
