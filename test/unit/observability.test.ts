/**
 * What withOps writes for every run of every function: EMF metrics on stdout (parsed here as
 * CloudWatch would), log lines carrying the correlation id, and the run summary's text. A tiny
 * function built with withOps returns a given report, so no AWS is involved.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, InputError, RunFailedError } from '#shared/errors.ts';
import { withOps } from '#shared/handler.ts';
import {
  ACTION_DIMENSIONS,
  CRASHED_ACTION,
  FUNCTION_DIMENSIONS,
  INVALID_EVENT_ACTION,
  METRICS_NAMESPACE,
  OUTCOME_METRICS,
  RUNS_METRIC,
} from '#shared/metrics.ts';
import { formatReport } from '#shared/report-text.ts';
import { buildReport, type Outcome, type Report, type ResourceResult } from '#shared/report.ts';
import {
  MAX_MESSAGE_BYTES,
  MAX_SUBJECT_LENGTH,
  SummaryConfig,
  reportSummary,
  shouldPublish,
} from '#shared/summary.ts';
import { parseEnv } from '#shared/env.ts';
import { lambdaContext } from '#test/support/context.ts';

type Json = Record<string, unknown>;
interface EmfRecord extends Json {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
}

const REQUEST_ID = lambdaContext('ecs-scheduler').awsRequestId;
const rdsEvent = () =>
  JSON.parse(readFileSync('events/aws.rds/samples/db-snapshot-manual-created.json', 'utf8')) as Json;

const row = (n: number, outcome: Outcome): ResourceResult => ({
  arn: `arn:aws:ecs:eu-central-1:123456789012:service/stage/svc-${n}`,
  type: 'ecs-service',
  outcome,
  detail: outcome === 'failed' ? 'desiredCount not changed' : `desiredCount ${n} → 0`,
  ...(outcome === 'failed' && { error: 'UpdateService failed: AccessDeniedException: not authorized' }),
});
const reportOf = (action: string, outcomes: Outcome[], dryRun = false): Report =>
  buildReport(
    action,
    dryRun,
    outcomes.map((o, i) => row(i, o)),
  );

/** Everything written to stdout and stderr (warnings and errors), as EMF records and log lines. */
const captureStdout = () => {
  const chunks: string[] = [];
  const write = ((chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  vi.spyOn(process.stdout, 'write').mockImplementation(write);
  vi.spyOn(process.stderr, 'write').mockImplementation(write);
  const records = () =>
    chunks
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Json);
  return {
    emf: () => records().filter((r): r is EmfRecord => '_aws' in r),
    logs: () => records().filter((r) => !('_aws' in r)),
  };
};

/** A nightshift function in miniature: the same middy chain, a run that returns what it is given. */
const fakeFunction = (
  result: Report | (() => Promise<Report>),
  parse: (event: unknown) => unknown = (event) => event,
) =>
  withOps('ecs-scheduler', parse, async (_input, ctx) => {
    ctx.logger.info('working');
    return typeof result === 'function' ? result() : result;
  });

const invoke = (handler: ReturnType<typeof fakeFunction>, event: unknown) =>
  handler(event, lambdaContext('ecs-scheduler')).then(
    (report) => ({ report, error: undefined }),
    (error: unknown) => ({ report: undefined, error }),
  );

beforeEach(() => {
  // Metrics, logs and the stage are read when withOps builds a function, as at a cold start.
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
  vi.stubEnv('NIGHTSHIFT_STAGE', 'dev');
  vi.stubEnv('SUMMARY_TOPIC_ARN', '');
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('run metrics (EMF)', () => {
  it('counts every outcome of a run, zeros included, per function and action and per function alone', async () => {
    // Prepare
    const out = captureStdout();
    const handler = fakeFunction(reportOf('stop', ['changed', 'changed', 'unchanged', 'skipped']));

    // Act
    await invoke(handler, { action: 'stop' });

    // Assess: one record, both dimension sets, a value for every metric
    const [record, ...more] = out.emf();
    expect(more).toEqual([]);
    expect(record?._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: METRICS_NAMESPACE,
        Dimensions: [[...ACTION_DIMENSIONS], [...FUNCTION_DIMENSIONS]],
        Metrics: [RUNS_METRIC, ...OUTCOME_METRICS].map((Name) => ({ Name, Unit: 'Count' })),
      },
    ]);
    expect(record).toMatchObject({
      service: 'ecs-scheduler',
      stage: 'dev',
      action: 'stop',
      runs: 1,
      changed: 2,
      planned: 0,
      unchanged: 1,
      skipped: 1,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
  });

  it('still writes the counts when every resource failed and the handler throws RunFailedError', async () => {
    // Prepare
    const out = captureStdout();
    const handler = fakeFunction(reportOf('start', ['failed', 'failed', 'failed']));

    // Act
    const { error } = await invoke(handler, { action: 'start' });

    // Assess
    expect(error).toBeInstanceOf(RunFailedError);
    expect(out.emf()).toHaveLength(1);
    expect(out.emf()[0]).toMatchObject({ action: 'start', runs: 1, failed: 3, changed: 0 });
  });

  it('counts a refused event as one failed run with the action invalid-event, and never runs it', async () => {
    // Prepare
    const out = captureStdout();
    const run = vi.fn(async () => reportOf('stop', ['changed']));
    const handler = withOps(
      'ecs-scheduler',
      () => {
        throw new InputError('invalid event: field "action": invalid option', 'action');
      },
      run,
    );

    // Act
    const { error } = await invoke(handler, { action: 'halt' });

    // Assess
    expect(error).toBeInstanceOf(InputError);
    expect(run).not.toHaveBeenCalled();
    expect(out.emf()[0]).toMatchObject({ action: INVALID_EVENT_ACTION, runs: 1, failed: 1, changed: 0 });
    expect(out.logs().find((l) => l.message === 'event refused')).toMatchObject({ level: 'WARN' });
  });

  it('counts a run that threw without a report as one failed run with the action crashed', async () => {
    // Prepare
    const out = captureStdout();
    const handler = fakeFunction(async () => {
      throw new Error('DescribeClusters failed: AccessDeniedException');
    });

    // Act
    const { error } = await invoke(handler, { action: 'stop' });

    // Assess
    expect(error).toMatchObject({ message: 'DescribeClusters failed: AccessDeniedException' });
    expect(out.emf()[0]).toMatchObject({ action: CRASHED_ACTION, runs: 1, failed: 1 });
    expect(out.logs().find((l) => l.message === 'run failed without a report')).toMatchObject({
      level: 'ERROR',
      error: { message: 'DescribeClusters failed: AccessDeniedException' },
    });
  });

  it('writes no metrics when POWERTOOLS_METRICS_DISABLED is true, as in the rest of the test suite', async () => {
    // Prepare
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const out = captureStdout();
    const handler = fakeFunction(reportOf('stop', ['changed']));

    // Act
    await invoke(handler, { action: 'stop' });

    // Assess
    expect(out.emf()).toEqual([]);
  });
});

describe('correlation id', () => {
  it('puts the EventBridge event id on every log line and on the metrics of the run', async () => {
    // Prepare
    const out = captureStdout();
    const event = rdsEvent();
    const handler = fakeFunction(reportOf('event', ['changed']));

    // Act
    await invoke(handler, event);

    // Assess
    const logs = out.logs();
    expect(logs.map((l) => l.message)).toEqual(['working', 'run finished']);
    for (const line of logs)
      expect(line).toMatchObject({ correlation_id: event.id, service: 'ecs-scheduler' });
    expect(out.emf()[0]).toMatchObject({ correlation_id: event.id });
  });

  it('uses the Lambda request id for an on-demand event, and carries nothing over from the run before', async () => {
    // Prepare
    const out = captureStdout();
    const handler = fakeFunction(reportOf('stop', ['failed', 'changed']));
    await invoke(handler, rdsEvent());
    const before = out.logs().length;

    // Act
    await invoke(handler, { action: 'stop', clusters: ['stage'] });

    // Assess
    const logs = out.logs().slice(before);
    expect(logs.map((l) => l.message)).toEqual(['working', 'run finished', 'resource failed']);
    for (const line of logs) expect(line.correlation_id).toBe(REQUEST_ID);
  });
});

describe('run summary', () => {
  it.each([
    { when: 'something changed', report: reportOf('stop', ['changed', 'unchanged']), publish: true },
    { when: 'something failed', report: reportOf('stop', ['failed', 'unchanged']), publish: true },
    { when: 'nothing changed', report: reportOf('stop', ['unchanged', 'skipped']), publish: false },
    { when: 'there was nothing to do', report: reportOf('sweep', []), publish: false },
    { when: 'a dry run planned changes', report: reportOf('stop', ['planned'], true), publish: false },
    { when: 'a dry run failed', report: reportOf('stop', ['planned', 'failed'], true), publish: true },
  ])('is sent when $when: $publish', ({ report, publish }) => {
    expect(shouldPublish(report)).toBe(publish);
  });

  it('has a one-line subject and the report table ops see, with where to find the logs', () => {
    // Prepare
    const report = reportOf('stop', ['changed', 'changed', 'changed', 'changed', 'skipped']);
    const origin = {
      service: 'ecs-scheduler',
      functionName: 'nightshift-dev-ecs-scheduler',
      correlationId: 'c-1',
    };

    // Act
    const summary = reportSummary(report, origin);

    // Assess
    expect(summary.subject).toBe('nightshift ecs-scheduler stop: 4 changed, 0 failed');
    expect(summary.message).toBe(
      `${formatReport(report)}\n\nLogs: nightshift-dev-ecs-scheduler, correlation_id c-1`,
    );
  });

  it('keeps the subject under 100 printable ASCII characters', () => {
    // Prepare
    const report = reportOf(`stop→${'x'.repeat(200)}`, ['failed'], true);

    // Act
    const { subject } = reportSummary(report, { service: 'ecs-scheduler', correlationId: 'c-1' });

    // Assess
    expect(subject.length).toBe(MAX_SUBJECT_LENGTH);
    expect(subject).toMatch(/^nightshift ecs-scheduler stop x+$/);
  });

  it('cuts a report too long for SNS to fit, failed and changed rows first, and says how many are left out', () => {
    // Prepare: 6000 unchanged rows of about 100 bytes, then one changed and one failed
    const outcomes: Outcome[] = [...Array<Outcome>(6000).fill('unchanged'), 'changed', 'failed'];
    const report = reportOf('sweep', outcomes);

    // Act
    const { message } = reportSummary(report, { service: 'snapshot-tags', correlationId: 'c-2' });

    // Assess
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    const lines = message.split('\n');
    expect(lines[1]).toMatch(/ failed /);
    expect(lines[2]).toMatch(/ changed /);
    expect(message).toMatch(
      /\n\d+ more row\(s\) are only in the log\.\nLogs: snapshot-tags, correlation_id c-2$/,
    );
    expect(message).toContain('sweep: 1 changed, 0 planned, 6000 unchanged, 0 skipped, 1 failed');
  });
});

describe('SUMMARY_TOPIC_ARN', () => {
  it.each([
    { value: undefined, topic: undefined },
    { value: '', topic: undefined },
    { value: '  ', topic: undefined },
    {
      value: 'arn:aws:sns:eu-central-1:123456789012:nightshift-prod-ops',
      topic: 'arn:aws:sns:eu-central-1:123456789012:nightshift-prod-ops',
    },
    {
      value: 'arn:aws-us-gov:sns:us-gov-west-1:123456789012:ops_alerts',
      topic: 'arn:aws-us-gov:sns:us-gov-west-1:123456789012:ops_alerts',
    },
  ])('accepts $value', ({ value, topic }) => {
    expect(parseEnv(SummaryConfig, value === undefined ? {} : { SUMMARY_TOPIC_ARN: value })).toEqual({
      SUMMARY_TOPIC_ARN: topic,
    });
  });

  it.each([
    'nightshift-prod-ops',
    'arn:aws:sqs:eu-central-1:123456789012:nightshift-prod-ops',
    'arn:aws:sns:eu-central-1:1234:nightshift-prod-ops',
    'arn:aws:sns:eu-central-1:123456789012:ops.fifo',
  ])('refuses %s, naming the variable', (value) => {
    expect(() => parseEnv(SummaryConfig, { SUMMARY_TOPIC_ARN: value })).toThrow(
      expect.objectContaining({
        name: 'ConfigError',
        variables: ['SUMMARY_TOPIC_ARN'],
        message: expect.stringContaining('SUMMARY_TOPIC_ARN: expected an SNS standard topic ARN'),
      }),
    );
  });

  it('refuses to run a function with a bad topic, before any work', async () => {
    // Prepare
    vi.stubEnv('SUMMARY_TOPIC_ARN', 'ops-topic');
    const out = captureStdout();
    const run = vi.fn(async () => reportOf('stop', ['changed']));
    const handler = withOps('ecs-scheduler', (event) => event, run);

    // Act
    const { error } = await invoke(handler, { action: 'stop' });

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ variables: ['SUMMARY_TOPIC_ARN'] });
    expect(run).not.toHaveBeenCalled();
    expect(out.emf()[0]).toMatchObject({ action: CRASHED_ACTION, failed: 1 });
  });
});
