import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { parseEnv } from '#shared/env.ts';
import { resultOf } from '#shared/execute.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { LEASE_MARGIN_MS, withOps, type RunContext } from '#shared/handler.ts';
import { refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import {
  actionsHeld,
  compositeReason,
  isComposite,
  parseAlarmTime,
  stateChangedAt,
  type AlarmStateChangeEvent,
} from '#events/aws.cloudwatch/schema.ts';
import { parseRestartInput, type RestartInput } from '#events/ssm-restart/schema.ts';
import type { BundledSchedules } from '#shared/parked.ts';
import { RestartConfig } from './config.ts';
import { bundledSchedules } from './schedules.ts';
import { readAlarmTags, targetClients, type Clients } from './clients.ts';
import { pollDelayMs } from './poll.ts';
import {
  guardedScopes,
  planRestart,
  requestFromAction,
  requestFromAlarm,
  RESTART_TAG,
  STAGE_TAG,
  type RestartRequest,
} from './plan.ts';

export interface Deps {
  clients: Clients;
  config: RestartConfig;
  now: () => Date;
  /** The wait before each GetCommandInvocation round; tests make it short. */
  pollDelayMs: (round: number) => number;
  sleep: (ms: number) => Promise<void>;
  /** The schedules a target may follow (default: those bundled into the function). */
  schedules?: () => BundledSchedules;
}

let deps: Deps | undefined;
/**
 * The clients of a run: where the function runs, or a fleet target's (RunContext.target). The targets'
 * clients come with targets.ts, imported by the runs that have targets only.
 */
const clientsFor = (scope?: ClientScope): Clients => ({
  cloudwatch: cloudWatchClient(scope),
  targets: async () => (await import('./targets.ts')).targetClientsFor(scope),
});

const defaultDeps = (): Deps =>
  (deps ??= {
    clients: clientsFor(),
    config: parseEnv(RestartConfig),
    now: () => new Date(),
    pollDelayMs,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });

const ALARM_TYPE = 'cloudwatch-alarm';
/**
 * An alarm state change older than this restarts nothing: the EventBridge rule's MaximumEventAgeInSeconds
 * and the function's maximumEventAge (900 s) give up on it too.
 */
export const STALE_ALARM_MINUTES = 15;
const MINUTE_MS = 60_000;

/**
 * How long ago the alarm changed into ALARM: `detail.state.timestamp` (the EventBridge event and the
 * alarm's Lambda action both carry it), else the event's `time`; undefined when neither is readable.
 */
const ageOf = (event: AlarmStateChangeEvent, now: Date): { at: Date; ms: number } | undefined => {
  const at = stateChangedAt(event) ?? parseAlarmTime(event.time);
  return at && { at, ms: now.getTime() - at.getTime() };
};

/**
 * The request an input makes, or the report to return at once. An alarm that is not in ALARM, or
 * carries no `nightshift:restart` tag, is a quiet no-op. Then, in this order, for a tagged alarm:
 * tagged `nightshift:stage` for another stage: skipped (that stage restarts for it); muted: skipped; a
 * composite alarm: failed (it has no metrics, so nothing it could restart); its actions suppressed:
 * skipped; a state change more than STALE_ALARM_MINUTES old: skipped; a tag or dimensions that make no
 * sense: failed. All of it before any mutating call.
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
  // Every stage deployed in the account sees every alarm: the alarm names the one that restarts for it.
  const stage = read?.tags[STAGE_TAG]?.trim();
  const own = d.config.NIGHTSHIFT_STAGE;
  if (stage === '') {
    // Every stage would act on it, or none: a misconfigured alarm pages, in every stage that sees it.
    return row(
      'failed',
      `alarm ${name} has an empty ${STAGE_TAG} tag: set it to the stage that restarts for it; nothing restarted`,
    );
  }
  if (stage !== undefined && stage !== own) {
    return row(
      'skipped',
      `alarm ${name} is tagged ${STAGE_TAG}=${stage}: stage ${stage} restarts for it, and this is ` +
        `${own ? `stage ${own}` : 'no stage (NIGHTSHIFT_STAGE is not set)'}; nothing restarted here`,
    );
  }
  // A restart is one of the alarm's actions: a muted or suppressed alarm restarts nothing.
  const held = actionsHeld(event);
  if (event.detail.muteDetail && held) return row('skipped', `alarm ${name}: ${held}; nothing restarted`);
  if (isComposite(event)) return row('failed', `alarm ${name} ${compositeReason(event)}; nothing restarted`);
  if (held) return row('skipped', `alarm ${name}: ${held}; nothing restarted`);
  const age = ageOf(event, d.now());
  if (age && age.ms > STALE_ALARM_MINUTES * MINUTE_MS) {
    return row(
      'skipped',
      `alarm ${name}: the alarm changed state ${Math.floor(age.ms / MINUTE_MS)} minutes ago (at ${age.at.toISOString()}); not ` +
        `restarted so late (alarm events more than ${STALE_ALARM_MINUTES} minutes old are stale); nothing restarted`,
    );
  }
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
  const { executeRestart, readCommandStatuses, readRestartRecords, readTargets } =
    await import('./targets.ts');
  const clients = await targetClients(d.clients);
  const estate = await readTargets(clients, request.selection, d.config.AWS_REGION, ctx.hasTime);
  const store = ctx.leases.leaseStore;
  const read = await readRestartRecords(store, guardedScopes(request, estate), ctx.hasTime);
  const now = d.now();
  const owner = ctx.leases.runOwner;
  // Another run's restart still in progress by its record: has its SSM command ended since?
  const records =
    'error' in read
      ? read
      : { ...read, commands: await readCommandStatuses(clients.ssm, read, now, owner, ctx.hasTime) };
  const plan = planRestart(request, estate, {
    cooldownMinutes: d.config.RESTART_COOLDOWN_MINUTES,
    maxPerHour: d.config.RESTART_MAX_PER_HOUR,
    now,
    records,
    owner,
    runUntil: new Date(now.getTime() + ctx.remainingMs() + LEASE_MARGIN_MS),
    schedules: (d.schedules ?? bundledSchedules)(),
  });
  if (!dryRun && input.action === 'restart') {
    const refused = refuseChangedPlan(input.planDigest, [
      ...plan.selection,
      ...plan.instances,
      ...plan.services,
    ]);
    if (refused) return buildReport('restart', false, refused);
  }
  return executeRestart(plan, clients, {
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

/** A fleet target's run acts there, with the spoke role's credentials (shared/handler.ts). */
const depsFor = (ctx: RunContext): Deps =>
  ctx.target
    ? {
        ...defaultDeps(),
        clients: clientsFor(ctx.target.scope),
        config: { ...defaultDeps().config, AWS_REGION: ctx.target.region },
      }
    : defaultDeps();

export const handler = withOps('ssm-restart', parseRestartInput, (input, ctx) =>
  run(input, ctx, depsFor(ctx)),
);
