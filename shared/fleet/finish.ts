/**
 * The end of a fleet run, for the state machine (the hub's `fleet` function, action `finish`) and
 * `nightshift fleet run --local` alike: the run is marked finished, its rows read into the `--json`
 * document, and once per run one SNS summary (failures first) and the fleet metrics are sent.
 */
import {
  ConditionalCheckFailedException,
  UpdateItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { SNSClient } from '@aws-sdk/client-sns';
import { EmfMetrics, MetricUnit } from '../emf.ts';
import { METRICS_NAMESPACE, stageName } from '../metrics.ts';
import { OUTCOMES, type Summary } from '../report.ts';
import { MAX_MESSAGE_BYTES, MAX_SUBJECT_LENGTH, publishSummary, type RunSummary } from '../summary.ts';
import {
  failuresFirst,
  finishRun,
  fleetDocument,
  readRun,
  readTargets,
  runKey,
  type FleetDocument,
  type FleetRun,
} from './results.ts';

/** The metrics' `service` dimension: what the fleet's own metrics are counted under. */
export const FLEET_SERVICE = 'fleet';
/** Per run, dimensions (service, stage) for the alarm nightshift-<stage>-fleet-failed, and (service, stage, function). */
export const FLEET_TARGETS_FAILED_METRIC = 'FleetTargetsFailed';
export const FLEET_TARGETS_REFUSED_METRIC = 'FleetTargetsRefused';
export const FLEET_TARGETS_SUCCEEDED_METRIC = 'FleetTargetsSucceeded';
export const FLEET_WALL_SECONDS_METRIC = 'FleetWallSeconds';
/** Per target, dimensions (service, stage, function, account, region): 1 for the target's status, 0 else. */
export const FLEET_TARGET_METRICS = {
  succeeded: 'FleetTargetSucceeded',
  failed: 'FleetTargetFailed',
  refused: 'FleetTargetRefused',
} as const;
/** Per target, the resources of its report by outcome: `resourcesChanged`, `resourcesFailed`, … */
export const resourceMetric = (outcome: keyof Summary) =>
  `resources${outcome.charAt(0).toUpperCase()}${outcome.slice(1)}`;

export interface FleetCounts {
  failed: number;
  refused: number;
  succeeded: number;
  pending: number;
}

export const fleetCounts = (doc: FleetDocument): FleetCounts => {
  const counts: FleetCounts = { failed: 0, refused: 0, succeeded: 0, pending: 0 };
  for (const t of doc.targets) counts[t.status] += 1;
  return counts;
};

/**
 * Worth a message, as a single function's run is (shared/summary.ts shouldPublish): a target failed or
 * left work undone, or (not in a dry run) something changed. A fleet that found nothing to do, run every
 * ten minutes by a reconcile schedule, sends nothing. Refused accounts alone are configuration: no message.
 */
export const shouldPublishFleet = (doc: FleetDocument): boolean =>
  doc.targets.some(
    (t) =>
      t.status === 'failed' ||
      t.status === 'pending' ||
      (t.summary?.undone ?? 0) > 0 ||
      (!doc.dryRun && (t.summary?.changed ?? 0) > 0),
  );

const subjectLine = (text: string): string => text.replace(/[^\x20-\x7e]/g, ' ').slice(0, MAX_SUBJECT_LENGTH);

/** e.g. `nightshift ecs-scheduler fleet run: 2 failed, 1 refused, 17 succeeded; <run>`: counts before the id, which may be long. */
export const fleetSubject = (doc: FleetDocument): string => {
  const c = fleetCounts(doc);
  const counts = [
    `${c.failed} failed`,
    `${c.refused} refused`,
    `${c.succeeded} succeeded`,
    ...(c.pending > 0 ? [`${c.pending} pending`] : []),
  ].join(', ');
  return subjectLine(
    `nightshift ${doc.function} fleet ${doc.dryRun ? 'dry run' : 'run'}: ${counts}; ${doc.run}`,
  );
};

const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - text.length));
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

const summaryText = (summary: Summary | null): string =>
  summary
    ? OUTCOMES.filter((o) => summary[o] > 0)
        .map((o) => `${summary[o]} ${o}`)
        .join(', ') || 'nothing'
    : '';

/** The targets as a table, failures first, then what ran: what `nightshift fleet status <run>` prints. */
export const fleetTable = (targets: FleetDocument['targets']): string => {
  const rows = failuresFirst(targets).map((t) => [
    t.status,
    t.account,
    t.region,
    summaryText(t.summary),
    t.reason,
  ]);
  const header = ['STATUS', 'ACCOUNT', 'REGION', 'RESOURCES', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
};

/** The summary message: the run, the table (failures first), and what to do next; cut to fit SNS. */
export const fleetMessage = (doc: FleetDocument, event: Record<string, unknown>): string => {
  const c = fleetCounts(doc);
  const head = [
    `Fleet run ${doc.run} of ${doc.function}${doc.dryRun ? ' (dry run)' : ''}: ` +
      `${doc.targets.length} target(s), ${c.failed} failed, ${c.refused} refused, ${c.succeeded} succeeded` +
      (c.pending > 0 ? `, ${c.pending} pending` : '') +
      (doc.wallSeconds !== null ? `, ${doc.wallSeconds} s` : ''),
    `Event: ${JSON.stringify(event).slice(0, 2000)}`,
    '',
  ].join('\n');
  const foot = [
    '',
    `Details: nightshift fleet status ${doc.run}` +
      (c.failed > 0 ? `\nRe-run the failed targets only: nightshift fleet redrive ${doc.run}` : ''),
  ].join('\n');
  const ordered = failuresFirst(doc.targets);
  const full = `${head}${fleetTable(ordered)}\n${foot}`;
  if (bytes(full) <= MAX_MESSAGE_BYTES) return full;
  const cut = (n: number) =>
    `${head}${fleetTable(ordered.slice(0, n))}\n${ordered.length - n} more target(s) are only in ` +
    `nightshift fleet status.\n${foot}`;
  let fits = 0;
  let tooMany = ordered.length;
  while (tooMany - fits > 1) {
    const mid = Math.floor((fits + tooMany) / 2);
    if (bytes(cut(mid)) <= MAX_MESSAGE_BYTES) fits = mid;
    else tooMany = mid;
  }
  return cut(fits);
};

export const fleetSummary = (doc: FleetDocument, run: FleetRun): RunSummary => ({
  subject: fleetSubject(doc),
  message: fleetMessage(doc, run.event),
});

/**
 * The fleet's metrics as Embedded Metric Format records (namespace nightshift): one record per target
 * (CloudWatch takes at most 30 dimensions and 100 metrics per record, so a run of a thousand targets is a
 * thousand records), and one for the run. POWERTOOLS_METRICS_DISABLED=true turns them off.
 */
export const emitFleetMetrics = (doc: FleetDocument, stage = stageName()): void => {
  const record = () =>
    new EmfMetrics({
      namespace: METRICS_NAMESPACE,
      serviceName: FLEET_SERVICE,
      defaultDimensions: { stage },
    });
  for (const t of doc.targets) {
    const m = record();
    m.addDimensions({ function: doc.function, account: t.account, region: t.region });
    const status = t.status === 'pending' ? 'failed' : t.status;
    for (const [s, name] of Object.entries(FLEET_TARGET_METRICS))
      m.addMetric(name, MetricUnit.Count, s === status ? 1 : 0);
    for (const outcome of OUTCOMES)
      m.addMetric(resourceMetric(outcome), MetricUnit.Count, t.summary?.[outcome] ?? 0);
    m.flush();
  }
  const c = fleetCounts(doc);
  const m = record();
  m.addDimension('function', doc.function);
  // An empty dimension set adds (service, stage) to the same record: what the alarm watches.
  m.addDimensions({});
  m.addMetric(FLEET_TARGETS_FAILED_METRIC, MetricUnit.Count, c.failed + c.pending);
  m.addMetric(FLEET_TARGETS_REFUSED_METRIC, MetricUnit.Count, c.refused);
  m.addMetric(FLEET_TARGETS_SUCCEEDED_METRIC, MetricUnit.Count, c.succeeded);
  if (doc.wallSeconds !== null) m.addMetric(FLEET_WALL_SECONDS_METRIC, MetricUnit.Seconds, doc.wallSeconds);
  m.flush();
};

export interface FinishOptions {
  dynamo: DynamoDBClient;
  table: string;
  run: string;
  /** The ops topic; none: no summary. */
  topicArn?: string | undefined;
  sns?: SNSClient;
  /** EMF metrics on stdout: the deployed function (CloudWatch reads its log); not the CLI's --local. */
  metrics?: boolean;
  now?: () => Date;
  /** Told when the summary could not be sent (the run is not failed by that). */
  onSummaryError?: (error: unknown) => void;
}

/**
 * Claims the run's summary: true once per run. A retried Finish (Lambda timed out after sending) then
 * sends neither a second summary nor a second count for the alarm.
 */
const claimSummary = async (
  client: DynamoDBClient,
  table: string,
  run: string,
  at: Date,
): Promise<boolean> => {
  try {
    await client.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { scope: { S: runKey(run) } },
        UpdateExpression: 'SET summarizedAt = :at',
        ConditionExpression: 'attribute_exists(#s) AND attribute_not_exists(summarizedAt)',
        ExpressionAttributeNames: { '#s': 'scope' },
        ExpressionAttributeValues: { ':at': { S: at.toISOString() } },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
};

export const finishFleetRun = async (options: FinishOptions): Promise<FleetDocument> => {
  const now = options.now ?? (() => new Date());
  const { dynamo, table, run } = options;
  const header = await readRun(dynamo, table, run);
  if (!header) throw new Error(`no fleet run ${run} in ${table}: nothing to finish`);
  let finished = header;
  // A repeated finish keeps the first end time.
  if (!header.finishedAt) {
    const at = now();
    await finishRun(dynamo, table, run, at);
    finished = { ...header, finishedAt: at.toISOString() };
  }
  const results = await readTargets(dynamo, table, run, finished.targets);
  const doc = fleetDocument(finished, results);
  if (!(await claimSummary(dynamo, table, run, now()))) return doc;
  if (options.metrics) emitFleetMetrics(doc);
  if (options.topicArn && shouldPublishFleet(doc)) {
    try {
      await publishSummary(options.topicArn, fleetSummary(doc, finished), {
        ...(options.sns && { client: options.sns }),
      });
    } catch (error) {
      options.onSummaryError?.(error);
    }
  }
  return doc;
};
