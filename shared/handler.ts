import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { parseEnv } from './env.ts';
import { InputError, RunFailedError } from './errors.ts';
import {
  CRASHED_ACTION,
  INVALID_EVENT_ACTION,
  countRun,
  countSummaryPublishFailed,
  runMetrics,
} from './metrics.ts';
import { everythingFailed, summarize, type Report } from './report.ts';
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

export interface RunContext {
  logger: Logger;
  /** False once the Lambda is close to its timeout: start nothing new, report the rest as skipped. */
  hasTime: () => boolean;
}

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
    try {
      summaryConfig ??= parseEnv(SummaryConfig);
      topicArn = summaryConfig.SUMMARY_TOPIC_ARN;
      const input = parse(event);
      const hasTime = () =>
        typeof context?.getRemainingTimeInMillis !== 'function' ||
        context.getRemainingTimeInMillis() > DEADLINE_MARGIN_MS;
      report = await run(input, { logger, hasTime });
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
    }

    logger.info('run finished', { action: report.action, dryRun: report.dryRun, summary: report.summary });
    for (const r of report.resources.filter((r) => r.outcome === 'failed')) {
      logger.error('resource failed', { arn: r.arn, type: r.type, detail: r.detail, error: r.error });
    }
    countRun(metrics, report.action, report.summary);
    if (shouldPublish(report)) await notify(topicArn, () => reportSummary(report, origin));
    if (everythingFailed(report)) throw new RunFailedError(report);
    return report;
  };

  return middy(base)
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics));
};
