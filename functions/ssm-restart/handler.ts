import { ec2Client } from '#shared/aws/ec2.ts';
import { ssmClient } from '#shared/aws/ssm.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { parseEnv } from '#shared/env.ts';
import { resultOf } from '#shared/execute.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { parseRestartInput, type RestartInput } from '#events/ssm-restart/schema.ts';
import { RestartConfig } from './config.ts';
import { executeRestart, pollDelayMs } from './execute.ts';
import { readAlarmTags, readTargets, type Clients } from './inventory.ts';
import {
  planRestart,
  requestFromAction,
  requestFromAlarm,
  RESTART_TAG,
  type RestartRequest,
} from './plan.ts';

export interface Deps {
  clients: Clients;
  config: RestartConfig;
  now: () => Date;
  /** The wait before each GetCommandInvocation round; tests make it short. */
  pollDelayMs: (round: number) => number;
  sleep: (ms: number) => Promise<void>;
}

let deps: Deps | undefined;
const defaultDeps = (): Deps =>
  (deps ??= {
    clients: {
      ec2: ec2Client(),
      ssm: ssmClient(),
      ecs: ecsClient(),
      autoscaling: autoScalingClient(),
      cloudwatch: cloudWatchClient(),
    },
    config: parseEnv(RestartConfig),
    now: () => new Date(),
    pollDelayMs,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });

/**
 * The request an input makes, or the report to return at once: an alarm that is not in ALARM, or
 * carries no `nightshift:restart` tag, is a quiet no-op; one whose tag or dimensions make no sense
 * is refused with a failed row, before any mutating call.
 */
const requestOf = async (input: RestartInput, d: Deps, dryRun: boolean): Promise<RestartRequest | Report> => {
  if (input.action !== 'alarm') return requestFromAction(input);
  const { event } = input;
  if (event.detail.state.value !== 'ALARM') return buildReport('restart', dryRun, []);
  const tags = await readAlarmTags(d.clients.cloudwatch, event.resources[0] ?? '');
  const tag = tags?.[RESTART_TAG];
  if (tag === undefined) return buildReport('restart', dryRun, []);
  const resolved = requestFromAlarm(event, tag);
  return 'refused' in resolved
    ? buildReport('restart', dryRun, [resultOf(resolved.refused, 'failed')])
    : resolved.request;
};

export const run = async (input: RestartInput, ctx: RunContext, d: Deps = defaultDeps()): Promise<Report> => {
  const dryRun = (input.action === 'restart' && input.dryRun === true) || d.config.DRY_RUN;
  const request = await requestOf(input, d, dryRun);
  if ('summary' in request) return request;
  const estate = await readTargets(d.clients, request.selection, d.config.AWS_REGION);
  const plan = planRestart(request, estate, {
    cooldownMinutes: d.config.RESTART_COOLDOWN_MINUTES,
    now: d.now(),
  });
  return executeRestart(plan, d.clients, {
    dryRun,
    hasTime: ctx.hasTime,
    maxConcurrency: d.config.MAX_CONCURRENCY,
    maxErrors: d.config.MAX_ERRORS,
    pollDelayMs: d.pollDelayMs,
    sleep: d.sleep,
  });
};

export const handler = withOps('ssm-restart', parseRestartInput, (input, ctx) => run(input, ctx));
