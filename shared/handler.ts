import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import './zod.ts';
import * as z from 'zod/mini';
import { dynamoDbOnDemand } from './aws/dynamodb-on-demand.ts';
import { injectLambdaContext, Logger } from './log.ts';
import { dynamoCarryOver, type CarryOver } from './carryover.ts';
import { OutOfTimeError } from './deadline.ts';
import { parseEnv } from './env.ts';
import { errorMessage, InputError, RunFailedError } from './errors.ts';
import { dynamoLeaseStore, RunLeases } from './lease.ts';
import {
  CRASHED_ACTION,
  INVALID_EVENT_ACTION,
  countRun,
  countSummaryPublishFailed,
  flushMetrics,
  runMetrics,
} from './metrics.ts';
import { buildReport, compactReport, everythingFailed, summarize, type Report } from './report.ts';
import type { ClientScope } from './aws/config.ts';
import { parseInput } from './input.ts';
import { compactForFleet, recordTarget, targetOutcome } from './fleet/record.ts';
import { FleetMarker, Target } from './fleet/target.ts';
import {
  SummaryConfig,
  crashSummary,
  publishSummary,
  reportSummary,
  shouldPublish,
  type RunOrigin,
  type RunSummary,
} from './summary.ts';

/** Stop starting new work this long before the Lambda times out, to report what was left undone. */
export const DEADLINE_MARGIN_MS = 10_000;

/** A lease lasts the time the run has left plus this much: a run that ends early releases it sooner. */
export const LEASE_MARGIN_MS = 60_000;

export interface RunContext {
  logger: Logger;
  /** False once the Lambda is close to its timeout: start nothing new, report the rest as undone. */
  hasTime: () => boolean;
  /** Milliseconds the run has left before the Lambda times out. */
  remainingMs: () => number;
  /** This run's leases in the stage's lease table; released by withOps when the run ends. */
  leases: RunLeases;
  /** ARNs the previous run of `action` left undone: executors start with them (ExecuteOptions.first). */
  carriedOver: (action: string) => Promise<ReadonlySet<string>>;
  /**
   * A fleet target (issue 11): the run acts in this account and region. `scope` gives its clients the
   * region and the spoke role's credentials (none in the hub's own account: the function's own role).
   * Unset: the account and region the function runs in.
   */
  target?: Target & { scope: ClientScope };
}

/** The fleet fields any function's event may carry beside its own input (shared/fleet/target.ts). */
const FleetFields = z.object({ target: z.optional(Target), fleet: z.optional(FleetMarker) });

/**
 * Splits `target` and `fleet` off an event, validated (an error names the field), so each function's
 * own contract sees the event it always saw. A `fleet` marker without a `target` is refused.
 */
export const splitFleetFields = (
  event: unknown,
): { event: unknown; target?: Target; fleet?: FleetMarker } => {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return { event };
  if (!('target' in event) && !('fleet' in event)) return { event };
  const { target: t, fleet: f, ...rest } = event as Record<string, unknown>;
  const parsed = parseInput(FleetFields, { target: t, fleet: f });
  if (parsed.fleet && !parsed.target)
    throw new InputError(
      'invalid event: field "fleet": a fleet run names its target (field "target")',
      'target',
    );
  return {
    event: rest,
    ...(parsed.target && { target: parsed.target }),
    ...(parsed.fleet && { fleet: parsed.fleet }),
  };
};

/** The state table every function may use: leases, and what a run left undone. Unset: none. */
export const StateConfig = z.object({
  LEASE_TABLE: z.pipe(
    z.optional(z.string()),
    z.transform((text, ctx): string | undefined => {
      const name = text?.trim();
      if (!name) return undefined;
      if (!/^[A-Za-z0-9_.-]{3,255}$/.test(name))
        ctx.issues.push({ code: 'custom', input: text, message: 'expected a DynamoDB table name' });
      return name;
    }),
  ),
});

/** Lambda's own limit, for runs without a Lambda context (tests, scripts). */
const MAX_LAMBDA_MS = 900_000;

/**
 * Updates the list of work left undone for the next run of this action: what this run left undone
 * first, then what earlier runs left and this run did not settle. Runs that each see only part of the
 * work (one alarm's targets, one snapshot event) thus never drop what another left; a sweep settles
 * everything it saw. Nothing is read or written when there is nothing to add and nothing was loaded.
 */
const recordUndone = async (
  carryOver: CarryOver,
  service: string,
  report: Report,
  loaded: ReadonlySet<string> | undefined,
  held: ReadonlySet<string>,
): Promise<void> => {
  const undone = report.resources.filter((r) => r.outcome === 'undone' && r.arn).map((r) => r.arn);
  if (undone.length === 0 && (loaded === undefined || loaded.size === 0)) return;
  const previous = loaded ?? (await carryOver.load(service, report.action));
  // Settled: every row that ended otherwise, and every scope this run held a lease on (a cluster that
  // was held by another run last time is a row then, and no row when this run could take it).
  const settled = new Set([
    ...report.resources.filter((r) => r.outcome !== 'undone').map((r) => r.arn),
    ...[...held].filter((scope) => !undone.includes(scope)),
  ]);
  const next = [...new Set([...undone, ...[...previous].filter((arn) => !settled.has(arn))])];
  if (next.length > 0) await carryOver.save(service, report.action, next);
  else if (previous.size > 0) await carryOver.clear(service, report.action);
};

/** The action of an event, for the report of a run that could not finish reading. */
const actionOf = (input: unknown, fallback: string): string => {
  const action = (input as { action?: unknown } | null)?.action;
  return typeof action === 'string' ? action : fallback;
};

/** The EventBridge event's `id` when there is one (rules, alarms), else the Lambda request id. */
export const correlationIdOf = (event: unknown, context: Context | undefined): string => {
  const id = (event as { id?: unknown } | null)?.id;
  if (typeof id === 'string' && id !== '') return id;
  return context?.awsRequestId ?? 'unknown';
};

/** A run that threw without a report counts as one failed resource, so the `failed` alarm sees it. */
const FAILED_RUN = summarize([{ arn: '', type: 'run', outcome: 'failed', detail: '' }]);

/**
 * The thin middy chain every nightshift function uses: structured logging with the Lambda context
 * and a correlation id, the event validated against its contract (`parse` throws InputError) before
 * any AWS call, the run, the report logged and counted in CloudWatch metrics (EMF), and a summary
 * sent to the SNS topic in SUMMARY_TOPIC_ARN when something changed or failed.
 * It throws only when every resource failed, so async retries and the on-failure queue see real
 * failures, not one flaky resource. Metrics are flushed whether it returns or throws.
 */
export const withOps = <I>(
  serviceName: string,
  parse: (event: unknown) => I,
  run: (input: I, ctx: RunContext) => Promise<Report>,
) => {
  const logger = new Logger({ serviceName });
  const metrics = runMetrics(serviceName);
  // Parsed on the first invocation of a cold start, like each function's own configuration.
  let summaryConfig: SummaryConfig | undefined;
  let stateConfig: { LEASE_TABLE?: string | undefined } | undefined;

  const notify = async (topicArn: string | undefined, summary: () => RunSummary) => {
    if (!topicArn) return;
    try {
      await publishSummary(topicArn, summary());
    } catch (error) {
      // The run's work is done and reported; a lost summary must not turn it into a failure or a retry.
      logger.error('run summary not published', { topicArn, error: error as Error });
      countSummaryPublishFailed(metrics);
    }
  };

  const base = async (event: unknown, context: Context): Promise<Report> => {
    const origin: RunOrigin = {
      service: serviceName,
      functionName: context?.functionName,
      correlationId: correlationIdOf(event, context),
    };
    logger.setCorrelationId(origin.correlationId);
    metrics.addMetadata('correlation_id', origin.correlationId);

    let report: Report;
    let topicArn: string | undefined;
    let leases: RunLeases | undefined;
    let carryOver: CarryOver | undefined;
    let fleet: { marker?: FleetMarker; target: Target } | undefined;
    let polling: NodeJS.Timeout | undefined;
    // What the run did in its target, recorded in the hub for the fleet run (not for a bare target).
    const recordFleet = async (outcome: Report | Error) => {
      const table = stateConfig?.LEASE_TABLE;
      if (!fleet?.marker || !table) {
        if (fleet?.marker)
          logger.error('fleet result not recorded: LEASE_TABLE is unset', { run: fleet.marker.run });
        return;
      }
      const result =
        outcome instanceof Error
          ? { status: 'failed' as const, reason: errorMessage(outcome) }
          : targetOutcome(outcome);
      try {
        await recordTarget(dynamoDbOnDemand(), table, fleet.marker.run, {
          ...fleet.target,
          ...result,
          ...(!(outcome instanceof Error) && { summary: outcome.summary }),
          finishedAt: new Date().toISOString(),
        });
      } catch (error) {
        // The fleet run then shows the target without a result, which counts as failed once it ends.
        logger.error('fleet result not recorded', { run: fleet.marker.run, error: error as Error });
      }
    };
    const loaded = new Map<string, ReadonlySet<string>>();
    try {
      summaryConfig ??= parseEnv(SummaryConfig);
      stateConfig ??= parseEnv(StateConfig);
      topicArn = summaryConfig.SUMMARY_TOPIC_ARN;
      const split = splitFleetFields(event);
      if (split.target) fleet = { target: split.target, ...(split.fleet && { marker: split.fleet }) };
      const input = parse(split.event);
      const remainingMs = () =>
        typeof context?.getRemainingTimeInMillis === 'function'
          ? context.getRemainingTimeInMillis()
          : MAX_LAMBDA_MS;
      // A fleet iteration also stops starting new work once its kill switch is engaged (below).
      let switchedOff = false;
      const hasTime = () => !switchedOff && remainingMs() > DEADLINE_MARGIN_MS;
      const table = stateConfig.LEASE_TABLE;
      const now = () => new Date();
      // A target's leftovers are its own: two targets of one fleet run must not overwrite each other's.
      const carryKey = fleet ? `${serviceName}#${fleet.target.account}#${fleet.target.region}` : serviceName;
      leases = new RunLeases(
        table ? dynamoLeaseStore(dynamoDbOnDemand(), table) : undefined,
        {
          holder: `${serviceName} run ${fleet?.marker ? `${fleet.marker.run} ` : ''}${origin.correlationId} (${origin.functionName ?? 'no function name'})`,
          token: randomUUID(),
        },
        now,
        () => remainingMs() + LEASE_MARGIN_MS,
      );
      carryOver = table ? dynamoCarryOver(dynamoDbOnDemand(), table, now) : undefined;
      const carriedOver = async (action: string): Promise<ReadonlySet<string>> => {
        let arns: ReadonlySet<string> = new Set();
        try {
          if (carryOver) arns = await carryOver.load(carryKey, action);
        } catch (error) {
          // Only the order of work depends on it: never a reason to fail a run.
          logger.warn('could not read what the previous run left undone', { error: error as Error });
        }
        loaded.set(action, arns);
        return arns;
      };
      try {
        // Loaded only for a target: a run without one never parses the STS, IAM and Organizations clients.
        const access = fleet ? await import('./fleet/access.ts') : undefined;
        const reached = fleet
          ? await access!.reachTarget(fleet.target, {
              fn: serviceName,
              run: fleet.marker?.run ?? origin.correlationId,
              invokedFunctionArn: context?.invokedFunctionArn,
              // Fleet iterations of the deployed function; a local fan-out checks the switch before it starts.
              killSwitchOf:
                fleet.marker && context?.invokedFunctionArn?.startsWith('arn:')
                  ? context.functionName
                  : undefined,
              // Read per run: cheap, and a changed allowlist applies to the next target at once.
              settings: () => access!.fleetSettings(),
            })
          : undefined;
        if (reached && 'row' in reached) {
          const dryRun = (input as { dryRun?: unknown } | null)?.dryRun === true;
          report = buildReport(actionOf(input, serviceName), dryRun, [reached.row]);
        } else {
          const killSwitchOf =
            fleet?.marker && context?.invokedFunctionArn?.startsWith('arn:')
              ? context.functionName
              : undefined;
          if (killSwitchOf) {
            const { killSwitchOn, killSwitchPollMs } = await import('./fleet/kill-switch.ts');
            // Checked again while the run goes on: halting a fleet must stop the iterations in flight.
            // A read that fails here does not stop the run (it was readable at the start).
            polling = setInterval(() => {
              void killSwitchOn(killSwitchOf).then((on) => {
                if (on === true && !switchedOff) {
                  switchedOff = true;
                  logger.warn('kill switch engaged during the run: starting nothing more', { killSwitchOf });
                }
              });
            }, killSwitchPollMs());
            polling.unref();
          }
          report = await run(input, {
            logger,
            hasTime,
            remainingMs,
            leases,
            carriedOver,
            ...(reached && { target: reached.target }),
          });
          if (switchedOff && fleet)
            report = buildReport(report.action, report.dryRun, [
              ...report.resources,
              {
                arn: fleet.target.account,
                type: 'account',
                outcome: 'undone',
                detail:
                  'the kill switch was engaged during the run: nothing more was started in this target (rows not started are undone)',
              },
            ]);
        }
      } catch (error) {
        if (!(error instanceof OutOfTimeError)) throw error;
        // A read that could not finish in time: nothing was planned from half a picture.
        report = buildReport(actionOf(input, serviceName), false, [
          {
            arn: '',
            type: 'run',
            outcome: 'undone',
            detail: `${errorMessage(error)}; nothing was changed after that point — the next run starts over`,
          },
        ]);
      }
    } catch (error) {
      await recordFleet(error as Error);
      if (error instanceof InputError) {
        // Refused before any AWS call: the caller sees the error; no summary for a mistyped event.
        logger.warn('event refused', { error });
        countRun(metrics, INVALID_EVENT_ACTION, FAILED_RUN);
      } else {
        logger.error('run failed without a report', { error: error as Error });
        countRun(metrics, CRASHED_ACTION, FAILED_RUN);
        // A fleet run sends one summary for all its targets (shared/fleet/finish.ts), not one each.
        if (!fleet?.marker) await notify(topicArn, () => crashSummary(error, origin));
      }
      throw error;
    } finally {
      if (polling) clearInterval(polling);
      const problems = (await leases?.releaseAll()) ?? [];
      if (problems.length > 0) logger.warn('leases not released; they expire on their own', { problems });
    }

    if (carryOver && !report.dryRun) {
      try {
        await recordUndone(
          carryOver,
          fleet ? `${serviceName}#${fleet.target.account}#${fleet.target.region}` : serviceName,
          report,
          loaded.get(report.action),
          leases?.held ?? new Set(),
        );
      } catch (error) {
        logger.warn('could not record what this run left undone', { error: error as Error });
      }
    }

    logger.info('run finished', { action: report.action, dryRun: report.dryRun, summary: report.summary });
    for (const r of report.resources.filter((r) => r.outcome === 'failed')) {
      logger.error('resource failed', { arn: r.arn, type: r.type, detail: r.detail, error: r.error });
    }
    countRun(metrics, report.action, report.summary);
    await recordFleet(report);
    if (shouldPublish(report) && !fleet?.marker) await notify(topicArn, () => reportSummary(report, origin));
    if (everythingFailed(report)) throw new RunFailedError(report);
    // A fleet iteration's answer passes through Step Functions (256 KiB at most, States.DataLimitExceeded
    // cannot be caught): its row in the hub has the outcome; the answer keeps the rows that matter most.
    return fleet?.marker ? compactForFleet(compactReport(report)) : compactReport(report);
  };

  return middy(base).use(injectLambdaContext(logger)).use(flushMetrics(metrics));
};
