import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import './zod.ts';
import * as z from 'zod/mini';
import { dynamoDbClient } from './aws/dynamodb.ts';
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
  runMetrics,
} from './metrics.ts';
import { buildReport, compactReport, everythingFailed, summarize, type Report } from './report.ts';
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
}

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
    const loaded = new Map<string, ReadonlySet<string>>();
    try {
      summaryConfig ??= parseEnv(SummaryConfig);
      stateConfig ??= parseEnv(StateConfig);
      topicArn = summaryConfig.SUMMARY_TOPIC_ARN;
      const input = parse(event);
      const remainingMs = () =>
        typeof context?.getRemainingTimeInMillis === 'function'
          ? context.getRemainingTimeInMillis()
          : MAX_LAMBDA_MS;
      const hasTime = () => remainingMs() > DEADLINE_MARGIN_MS;
      const table = stateConfig.LEASE_TABLE;
      const now = () => new Date();
      leases = new RunLeases(
        table ? dynamoLeaseStore(dynamoDbClient(), table) : undefined,
        {
          holder: `${serviceName} run ${origin.correlationId} (${origin.functionName ?? 'no function name'})`,
          token: randomUUID(),
        },
        now,
        () => remainingMs() + LEASE_MARGIN_MS,
      );
      carryOver = table ? dynamoCarryOver(dynamoDbClient(), table, now) : undefined;
      const carriedOver = async (action: string): Promise<ReadonlySet<string>> => {
        let arns: ReadonlySet<string> = new Set();
        try {
          if (carryOver) arns = await carryOver.load(serviceName, action);
        } catch (error) {
          // Only the order of work depends on it: never a reason to fail a run.
          logger.warn('could not read what the previous run left undone', { error: error as Error });
        }
        loaded.set(action, arns);
        return arns;
      };
      try {
        report = await run(input, { logger, hasTime, remainingMs, leases, carriedOver });
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
      if (error instanceof InputError) {
        // Refused before any AWS call: the caller sees the error; no summary for a mistyped event.
        logger.warn('event refused', { error });
        countRun(metrics, INVALID_EVENT_ACTION, FAILED_RUN);
      } else {
        logger.error('run failed without a report', { error: error as Error });
        countRun(metrics, CRASHED_ACTION, FAILED_RUN);
        await notify(topicArn, () => crashSummary(error, origin));
      }
      throw error;
    } finally {
      const problems = (await leases?.releaseAll()) ?? [];
      if (problems.length > 0) logger.warn('leases not released; they expire on their own', { problems });
    }

    if (carryOver && !report.dryRun) {
      try {
        await recordUndone(
          carryOver,
          serviceName,
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
    if (shouldPublish(report)) await notify(topicArn, () => reportSummary(report, origin));
    if (everythingFailed(report)) throw new RunFailedError(report);
    return compactReport(report);
  };

  return middy(base)
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics));
};
