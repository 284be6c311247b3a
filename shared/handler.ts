import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context } from 'aws-lambda';
import { RunFailedError } from './errors.ts';
import { everythingFailed, type Report } from './report.ts';

/** Stop starting new work this long before the Lambda times out, to report what was left undone. */
export const DEADLINE_MARGIN_MS = 10_000;

export interface RunContext {
  logger: Logger;
  /** False once the Lambda is close to its timeout: start nothing new, report the rest as skipped. */
  hasTime: () => boolean;
}

/**
 * The thin middy chain every nightshift function uses: structured logging with the Lambda context,
 * the event validated against its contract (`parse` throws InputError) before any AWS call, the run, and the report logged.
 * It throws only when every resource failed, so async retries and the on-failure queue see real
 * failures, not one flaky resource.
 */
export const withOps = <I>(
  serviceName: string,
  parse: (event: unknown) => I,
  run: (input: I, ctx: RunContext) => Promise<Report>,
) => {
  const logger = new Logger({ serviceName });
  const base = async (event: unknown, context: Context): Promise<Report> => {
    const input = parse(event);
    const hasTime = () =>
      typeof context?.getRemainingTimeInMillis !== 'function' ||
      context.getRemainingTimeInMillis() > DEADLINE_MARGIN_MS;
    const report = await run(input, { logger, hasTime });
    logger.info('run finished', { action: report.action, dryRun: report.dryRun, summary: report.summary });
    for (const r of report.resources.filter((r) => r.outcome === 'failed')) {
      logger.error('resource failed', { arn: r.arn, type: r.type, detail: r.detail, error: r.error });
    }
    if (everythingFailed(report)) throw new RunFailedError(report);
    return report;
  };
  return middy(base).use(injectLambdaContext(logger, { logEvent: false }));
};
