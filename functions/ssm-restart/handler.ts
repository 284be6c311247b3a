import { ec2Client } from '#shared/aws/ec2.ts';
import { ssmClient } from '#shared/aws/ssm.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { parseEnv } from '#shared/env.ts';
import { resultOf } from '#shared/execute.ts';
import { LEASE_MARGIN_MS, withOps, type RunContext } from '#shared/handler.ts';
import { refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { actionsHeld } from '#events/aws.cloudwatch/schema.ts';
import { parseRestartInput, type RestartInput } from '#events/ssm-restart/schema.ts';
import { RestartConfig } from './config.ts';
import { executeRestart, pollDelayMs } from './execute.ts';
import { readAlarmTags, readRestartRecords, readTargets, type Clients } from './inventory.ts';
import {
  guardedScopes,
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

const ALARM_TYPE = 'cloudwatch-alarm';

/**
 * The request an input makes, or the report to return at once: an alarm that is not in ALARM, or
 * carries no `nightshift:restart` tag, is a quiet no-op; a tagged alarm whose actions are muted or
 * suppressed is skipped, saying so; one whose tag or dimensions make no sense is refused with a failed
 * row, before any mutating call.
 */
const requestOf = async (input: RestartInput, d: Deps, dryRun: boolean): Promise<RestartRequest | Report> => {
  if (input.action !== 'alarm') return requestFromAction(input);
  const { event } = input;
  if (event.detail.state.value !== 'ALARM') return buildReport('restart', dryRun, []);
  const arn = event.resources[0] ?? '';
  const name = event.detail.alarmName;
  const row = (outcome: 'skipped' | 'failed', detail: string) =>
    buildReport('restart', dryRun, [{ arn, type: ALARM_TYPE, outcome, detail }]);
  const read = await readAlarmTags(d.clients.cloudwatch, arn);
  if (read && 'denied' in read) {
    return row(
      'failed',
      `could not read the tags of alarm ${name} (${read.denied}): the role reads the tags of alarms in its ` +
        'own account and region only; nothing restarted',
    );
  }
  const tag = read?.tags[RESTART_TAG];
  if (tag === undefined) return buildReport('restart', dryRun, []);
  // A restart is one of the alarm's actions: a muted or suppressed alarm restarts nothing.
  const held = actionsHeld(event);
  if (held) return row('skipped', `alarm ${name}: ${held}, so none of its actions run; nothing restarted`);
  const resolved = requestFromAlarm(event, tag, d.config.AWS_REGION);
  return 'refused' in resolved
    ? buildReport('restart', dryRun, [resultOf(resolved.refused, 'failed')])
    : resolved.request;
};

/**
 * Reads the targets and their restart records, plans, and carries out the plan: every target is
 * claimed in the lease table before it is tagged or sent to (guard.ts). An on-demand apply that sends
 * the `planDigest` of a dry run changes nothing if its own plan differs.
 */
export const run = async (input: RestartInput, ctx: RunContext, d: Deps = defaultDeps()): Promise<Report> => {
  const dryRun = (input.action === 'restart' && input.dryRun === true) || d.config.DRY_RUN;
  const request = await requestOf(input, d, dryRun);
  if ('summary' in request) return request;
  const estate = await readTargets(d.clients, request.selection, d.config.AWS_REGION, ctx.hasTime);
  const store = ctx.leases.leaseStore;
  const records = await readRestartRecords(store, guardedScopes(request, estate), ctx.hasTime);
  const now = d.now();
  const plan = planRestart(request, estate, {
    cooldownMinutes: d.config.RESTART_COOLDOWN_MINUTES,
    maxPerHour: d.config.RESTART_MAX_PER_HOUR,
    now,
    records,
    owner: ctx.leases.runOwner,
    runUntil: new Date(now.getTime() + ctx.remainingMs() + LEASE_MARGIN_MS),
  });
  if (!dryRun && input.action === 'restart') {
    const refused = refuseChangedPlan(input.planDigest, [
      ...plan.selection,
      ...plan.instances,
      ...plan.services,
    ]);
    if (refused) return buildReport('restart', false, refused);
  }
  return executeRestart(plan, d.clients, {
    dryRun,
    hasTime: ctx.hasTime,
    maxConcurrency: d.config.MAX_CONCURRENCY,
    maxErrors: d.config.MAX_ERRORS,
    pollDelayMs: d.pollDelayMs,
    sleep: d.sleep,
    store,
    table: ctx.leases.table,
    ...(!dryRun && { first: await ctx.carriedOver('restart') }),
    now: d.now,
  });
};

export const handler = withOps('ssm-restart', parseRestartInput, (input, ctx) => run(input, ctx));
