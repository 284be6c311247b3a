import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { parseDuration } from '#shared/duration.ts';
import { parseEnv } from '#shared/env.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { parseInput } from '#shared/input.ts';
import type { Report } from '#shared/report.ts';
import { RotateInput } from '#events/instance-rotation/schema.ts';
import { RotationConfig } from './config.ts';
import { executeRotations } from './execute.ts';
import { readGroups, ROTATION_TAG, type Clients } from './inventory.ts';
import { decodeRotation, planRotations } from './plan.ts';

export interface Deps {
  clients: Clients;
  config: RotationConfig;
  now: () => Date;
}

let deps: Deps | undefined;
const defaultDeps = (): Deps =>
  (deps ??= {
    clients: { autoscaling: autoScalingClient(), ec2: ec2Client(), ecs: ecsClient() },
    config: parseEnv(RotationConfig),
    now: () => new Date(),
  });

/** The instance a group is rotating, read from its saved state, so only that one is looked up in ECS. */
const rotatingInstance = (tags: Record<string, string>) => {
  try {
    return tags[ROTATION_TAG] ? decodeRotation(tags[ROTATION_TAG]).instance : undefined;
  } catch {
    return undefined;
  }
};

export const run = async (input: RotateInput, ctx: RunContext, d: Deps = defaultDeps()): Promise<Report> => {
  const groups = await readGroups(d.clients, input.groups, rotatingInstance);
  const maxAge = input.maxAge
    ? { text: input.maxAge, ms: parseDuration(input.maxAge) ?? 0 }
    : d.config.MAX_AGE;
  const plan = planRotations(groups, input.groups, {
    maxAge,
    replacementTimeoutMinutes: d.config.REPLACEMENT_TIMEOUT_MINUTES,
    now: d.now(),
  });
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  return executeRotations(plan, d.clients, { dryRun, hasTime: ctx.hasTime });
};

export const handler = withOps(
  'instance-rotation',
  (event) => parseInput(RotateInput, event),
  (input, ctx) => run(input, ctx),
);
