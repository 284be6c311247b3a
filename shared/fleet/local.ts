/**
 * `nightshift fleet run --local`: the state machine's fan-out in this process, over the same items and
 * the same worker contract. The run's header is written first (runner `local`), every target's worker
 * gets `{...event, target, fleet: {run}}` with at most `maxConcurrency` in flight, each worker records
 * its own row (shared/handler.ts); a worker that throws is recorded `failed` here, as the state machine's
 * Catch does; then finishFleetRun reads the rows, sends the run's one summary and returns the document.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SNSClient } from '@aws-sdk/client-sns';
import { mapLimit } from '../concurrency.ts';
import { errorMessage } from '../errors.ts';
import type { Report } from '../report.ts';
import { finishFleetRun } from './finish.ts';
import {
  readTargets,
  recordTarget,
  startRun,
  targetOutcome,
  type FleetDocument,
  type TargetResult,
} from './results.ts';
import { RUN_ID, type FleetFunction, type Target } from './target.ts';

export interface LocalFleetOptions {
  fn: FleetFunction;
  run: string;
  event: Record<string, unknown>;
  targets: Target[];
  maxConcurrency: number;
  dryRun: boolean;
  redriveOf?: string;
  worker: (event: Record<string, unknown>) => Promise<Report>;
  dynamo: DynamoDBClient;
  table: string;
  topicArn?: string;
  onProgress?: (done: number, total: number) => void;
  now?: () => Date;
  /** The summary's SNS client (default: the module's). */
  sns?: SNSClient;
  /** Told when the summary could not be sent. */
  onSummaryError?: (error: unknown) => void;
}

const compactTime = (at: Date) =>
  at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** A run id: `ecs-scheduler-20261130T101500Z-3f9a`, a valid Step Functions execution name (RUN_ID). */
export const newRunId = (fn: string, now: Date): string => {
  const id = `${fn}-${compactTime(now)}-${randomBytes(2).toString('hex')}`;
  if (!RUN_ID.test(id)) throw new Error(`run id ${id} is not a valid execution name`);
  return id;
};

const key = (t: Target) => `${t.account}#${t.region}`;

export const runFleetLocal = async (options: LocalFleetOptions): Promise<FleetDocument> => {
  const now = options.now ?? (() => new Date());
  const { dynamo, table, run, targets } = options;
  if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1)
    throw new Error(`maxConcurrency must be a whole number of at least 1, not ${options.maxConcurrency}`);
  if (!RUN_ID.test(run)) throw new Error(`run id "${run}" must be 1 to 80 letters, digits, - or _`);
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(key(t))) throw new Error(`target ${t.account} ${t.region} is listed twice`);
    seen.add(key(t));
  }
  await startRun(dynamo, table, {
    run,
    function: options.fn,
    dryRun: options.dryRun,
    event: options.event,
    targets,
    startedAt: now().toISOString(),
    runner: 'local',
    ...(options.redriveOf !== undefined && { redriveOf: options.redriveOf }),
  });

  const reports = new Map<string, Report>();
  let done = 0;
  options.onProgress?.(0, targets.length);
  await mapLimit(targets, options.maxConcurrency, async (target) => {
    try {
      const report = await options.worker({ ...options.event, target, fleet: { run } });
      reports.set(key(target), report);
    } catch (error) {
      // The worker could not record its row: the fan-out does, as the state machine's Catch does.
      const failed: TargetResult = {
        ...target,
        status: 'failed',
        reason: errorMessage(error),
        finishedAt: now().toISOString(),
      };
      try {
        // A worker that recorded its row and then threw (every resource failed) keeps its own row.
        const own = await readTargets(dynamo, table, run, [target]);
        if (!own.has(key(target))) await recordTarget(dynamo, table, run, failed);
      } catch {
        // The document shows it failed without a row: "no result was recorded for this target".
      }
    }
    done += 1;
    options.onProgress?.(done, targets.length);
  });

  // A worker that returned a report but could not write its row (the table throttled it): its report
  // says how it ended, so that is recorded instead of "no result".
  const recorded = await readTargets(dynamo, table, run, targets);
  for (const target of targets) {
    const report = reports.get(key(target));
    if (!report || recorded.has(key(target))) continue;
    await recordTarget(dynamo, table, run, {
      ...target,
      ...targetOutcome(report),
      summary: report.summary,
      finishedAt: now().toISOString(),
    });
  }

  return finishFleetRun({
    dynamo,
    table,
    run,
    topicArn: options.topicArn,
    metrics: false,
    now,
    ...(options.sns && { sns: options.sns }),
    ...(options.onSummaryError && { onSummaryError: options.onSummaryError }),
  });
};
