import './zod.ts';
import * as z from 'zod/mini';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { Infer } from './zod.ts';
import { errorMessage } from './errors.ts';
import { formatReport } from './report-text.ts';
import type { Outcome, Report } from './report.ts';

// A standard topic: a FIFO topic (.fifo) refuses a Publish without a MessageGroupId.
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$/;

/** Where run summaries go. Unset or empty: nowhere. Anything else must be an SNS topic ARN. */
export const SummaryConfig = z.object({
  SUMMARY_TOPIC_ARN: z.pipe(
    z.optional(z.string()),
    z.transform((text, ctx): string | undefined => {
      const arn = text?.trim();
      if (!arn) return undefined;
      if (!TOPIC_ARN.test(arn))
        ctx.issues.push({
          code: 'custom',
          input: text,
          message: 'expected an SNS standard topic ARN (arn:aws:sns:<region>:<account>:<name>) or nothing',
        });
      return arn;
    }),
  ),
});
export type SummaryConfig = Infer<typeof SummaryConfig>;

/** SNS limits: a subject of fewer than 100 characters without line breaks, a message of at most 256 KiB. */
export const MAX_SUBJECT_LENGTH = 99;
export const MAX_MESSAGE_BYTES = 240 * 1024;

export interface RunSummary {
  subject: string;
  message: string;
}

/** Where to find the run in the logs, printed under every summary. */
export interface RunOrigin {
  service: string;
  functionName?: string;
  correlationId: string;
}

/**
 * Something changed, failed or was left undone at the deadline: worth a message. A dry run changes
 * nothing, so it is sent only when something failed or was left undone; a run that found nothing to
 * do is never sent.
 */
export const shouldPublish = (report: Report): boolean =>
  report.summary.failed > 0 || report.summary.undone > 0 || (!report.dryRun && report.summary.changed > 0);

const subjectLine = (text: string): string =>
  // SNS refuses line breaks and control characters in a subject; e-mail clients mangle the rest.
  text.replace(/[^\x20-\x7e]/g, ' ').slice(0, MAX_SUBJECT_LENGTH);

const footer = (origin: RunOrigin): string =>
  `Logs: ${origin.functionName ?? origin.service}, correlation_id ${origin.correlationId}`;

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

// When the table must be cut, the rows an operator acts on come first.
const PRIORITY: Record<Outcome, number> = {
  failed: 0,
  undone: 1,
  waiting: 2,
  changed: 3,
  planned: 4,
  skipped: 5,
  unchanged: 6,
};

/** The report table ops see in the CLI, cut to fit an SNS message: failed and changed rows first. */
export const summaryMessage = (report: Report, origin: RunOrigin): string => {
  const full = `${formatReport(report)}\n\n${footer(origin)}`;
  if (bytes(full) <= MAX_MESSAGE_BYTES) return full;
  const rows = [...report.resources].sort((a, b) => PRIORITY[a.outcome] - PRIORITY[b.outcome]);
  const cut = (n: number) =>
    `${formatReport({ ...report, resources: rows.slice(0, n) })}\n\n` +
    `${rows.length - n} more row(s) are only in the log.\n${footer(origin)}`;
  let fits = 0;
  let tooMany = rows.length;
  while (tooMany - fits > 1) {
    const mid = Math.floor((fits + tooMany) / 2);
    if (bytes(cut(mid)) <= MAX_MESSAGE_BYTES) fits = mid;
    else tooMany = mid;
  }
  return cut(fits);
};

/** e.g. `nightshift ecs-scheduler stop: 4 changed, 0 failed`. */
export const reportSummary = (report: Report, origin: RunOrigin): RunSummary => ({
  subject: subjectLine(
    `nightshift ${origin.service} ${report.action}${report.dryRun ? ' (dry run)' : ''}: ` +
      `${report.summary.changed} changed, ${report.summary.failed} failed` +
      (report.summary.undone > 0 ? `, ${report.summary.undone} undone` : ''),
  ),
  message: summaryMessage(report, origin),
});

/** A run that threw before it had a report (configuration, an AWS call outside the per-resource work). */
export const crashSummary = (error: unknown, origin: RunOrigin): RunSummary => ({
  subject: subjectLine(`nightshift ${origin.service}: run failed: ${errorMessage(error)}`),
  message: `The run failed before it produced a report:\n\n${errorMessage(error)}\n\n${footer(origin)}`,
});

/**
 * The longest a summary may hold up the end of a run. Runs stop starting work DEADLINE_MARGIN_MS
 * (10 s) before the Lambda times out; a slow SNS must not turn a finished run into a timeout, which
 * would count as an error and be retried.
 */
export const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * The SNS client and Publish: imported by the runs that publish (shouldPublish), so the many runs that
 * change nothing never load them (a chunk of its own in each bundle, issue 12's lean bundles).
 */
const loadPublish = async (client: SNSClient | undefined) => {
  const { PublishCommand, snsClient } = await import('./aws/sns.ts');
  return { PublishCommand, sns: client ?? snsClient() };
};

export const publishSummary = async (
  topicArn: string,
  summary: RunSummary,
  { client, timeoutMs = PUBLISH_TIMEOUT_MS }: { client?: SNSClient; timeoutMs?: number } = {},
): Promise<void> => {
  const abort = new AbortController();
  const timedOut = new Promise<never>((_, reject) =>
    abort.signal.addEventListener('abort', () =>
      reject(new Error(`SNS Publish did not answer within ${timeoutMs} ms`)),
    ),
  );
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    await Promise.race([
      loadPublish(client).then(({ PublishCommand, sns }) =>
        sns.send(
          new PublishCommand({ TopicArn: topicArn, Subject: summary.subject, Message: summary.message }),
          { abortSignal: abort.signal },
        ),
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
};
