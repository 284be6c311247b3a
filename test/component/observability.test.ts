/**
 * When withOps sends a run summary to SNS, and what it sends: the SNS client is simulated with
 * aws-sdk-client-mock, so refused publishes can be shown too. The function is a miniature built with
 * withOps whose run returns a given report.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { InputError, RunFailedError } from '#shared/errors.ts';
import { withOps } from '#shared/handler.ts';
import { SUMMARY_PUBLISH_FAILED_METRIC } from '#shared/metrics.ts';
import { publishSummary } from '#shared/summary.ts';
import { formatReport } from '#shared/report-text.ts';
import { buildReport, type Outcome, type Report } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';

const sns = mockClient(SNSClient);
const TOPIC = 'arn:aws:sns:eu-central-1:123456789012:nightshift-dev-ops';
const REQUEST_ID = lambdaContext('ecs-scheduler').awsRequestId;
const FOOTER = `Logs: ecs-scheduler, correlation_id ${REQUEST_ID}`;
const awsError = (name: string, message = name) => Object.assign(new Error(message), { name });

const reportOf = (action: string, outcomes: Outcome[], dryRun = false): Report =>
  buildReport(
    action,
    dryRun,
    outcomes.map((outcome, i) => ({
      arn: `arn:aws:ecs:eu-central-1:123456789012:service/stage/svc-${i}`,
      type: 'ecs-service',
      outcome,
      detail: `desiredCount ${i} → 0`,
      ...(outcome === 'failed' && { error: 'UpdateService failed: AccessDeniedException' }),
    })),
  );

const fakeFunction = (result: Report | (() => Promise<Report>)) =>
  withOps(
    'ecs-scheduler',
    (event) => event,
    async () => (typeof result === 'function' ? result() : result),
  );
const invoke = (handler: ReturnType<typeof fakeFunction>, event: unknown = { action: 'stop' }) =>
  handler(event, lambdaContext('ecs-scheduler')).then(
    (report) => ({ report, error: undefined }),
    (error: unknown) => ({ report: undefined, error }),
  );
const published = () => sns.commandCalls(PublishCommand).map((call) => call.args[0].input);

beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  vi.stubEnv('AWS_REGION', 'eu-central-1');
  vi.stubEnv('SUMMARY_TOPIC_ARN', TOPIC);
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('run summary to SNS', () => {
  it('sends the report table of a run that changed something, under a one-line subject', async () => {
    // Prepare
    const report = reportOf('stop', ['changed', 'changed', 'unchanged']);

    // Act
    const { error } = await invoke(fakeFunction(report));

    // Assess
    expect(error).toBeUndefined();
    expect(published()).toEqual([
      {
        TopicArn: TOPIC,
        Subject: 'nightshift ecs-scheduler stop: 2 changed, 0 failed',
        Message: `${formatReport(report)}\n\n${FOOTER}`,
      },
    ]);
  });

  it('sends the summary of a run in which everything failed before throwing RunFailedError', async () => {
    // Act
    const { error } = await invoke(fakeFunction(reportOf('start', ['failed', 'failed'])));

    // Assess
    expect(error).toBeInstanceOf(RunFailedError);
    expect(published()).toEqual([
      expect.objectContaining({ Subject: 'nightshift ecs-scheduler start: 0 changed, 2 failed' }),
    ]);
    expect(published()[0]?.Message).toContain('ERROR: UpdateService failed: AccessDeniedException');
  });

  it('sends a dry run only when something in it failed', async () => {
    // Act
    await invoke(fakeFunction(reportOf('stop', ['planned', 'planned'], true)));
    await invoke(fakeFunction(reportOf('stop', ['planned', 'failed'], true)));

    // Assess
    expect(published().map((p) => p.Subject)).toEqual([
      'nightshift ecs-scheduler stop (dry run): 0 changed, 1 failed',
    ]);
  });

  it('sends nothing for a run that changed nothing', async () => {
    // Act
    await invoke(fakeFunction(reportOf('stop', ['unchanged', 'skipped'])));
    await invoke(fakeFunction(reportOf('sweep', [])));

    // Assess
    expect(published()).toEqual([]);
  });

  it('sends nothing when SUMMARY_TOPIC_ARN is empty', async () => {
    // Prepare
    vi.stubEnv('SUMMARY_TOPIC_ARN', '');

    // Act
    await invoke(fakeFunction(reportOf('stop', ['changed', 'failed'])));

    // Assess
    expect(published()).toEqual([]);
  });

  it('sends the error of a run that threw without a report, but nothing for a refused event', async () => {
    // Prepare
    const crashing = fakeFunction(async () => {
      throw awsError('AccessDeniedException', 'DescribeClusters: not authorized');
    });
    const refusing = withOps(
      'ecs-scheduler',
      () => {
        throw new InputError('invalid event: field "action": invalid option', 'action');
      },
      async () => reportOf('stop', ['changed']),
    );

    // Act
    const crashed = await invoke(crashing);
    const refused = await invoke(refusing, { action: 'halt' });

    // Assess
    expect(crashed.error).toMatchObject({ name: 'AccessDeniedException' });
    expect(refused.error).toBeInstanceOf(InputError);
    expect(published()).toEqual([
      {
        TopicArn: TOPIC,
        Subject:
          'nightshift ecs-scheduler: run failed: AccessDeniedException: DescribeClusters: not authorized',
        Message: `The run failed before it produced a report:\n\nAccessDeniedException: DescribeClusters: not authorized\n\n${FOOTER}`,
      },
    ]);
  });

  it('returns the report when SNS refuses the summary, logging the error and counting it in a metric', async () => {
    // Prepare: metrics and logs on, SNS refusing
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    const lines: string[] = [];
    const write = ((chunk: unknown) => lines.push(String(chunk)) > 0) as typeof process.stdout.write;
    vi.spyOn(process.stdout, 'write').mockImplementation(write);
    vi.spyOn(process.stderr, 'write').mockImplementation(write);
    sns
      .on(PublishCommand)
      .rejects(awsError('AuthorizationErrorException', 'not authorized to perform SNS:Publish'));
    const report = reportOf('stop', ['changed']);

    // Act
    const result = await invoke(fakeFunction(report));

    // Assess
    expect(result).toEqual({ report, error: undefined });
    const records = lines
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.find((r) => r.message === 'run summary not published')).toMatchObject({
      level: 'ERROR',
      topicArn: TOPIC,
      error: { name: 'AuthorizationErrorException' },
    });
    expect(records.find((r) => '_aws' in r)).toMatchObject({
      [SUMMARY_PUBLISH_FAILED_METRIC]: 1,
      changed: 1,
    });
  });

  it('gives up on an SNS that does not answer, so a finished run cannot time out waiting for it', async () => {
    // Prepare: SNS hangs
    sns.on(PublishCommand).callsFake(() => new Promise(() => undefined));
    const started = Date.now();

    // Act
    const sent = publishSummary(
      TOPIC,
      { subject: 's', message: 'm' },
      { client: new SNSClient({}), timeoutMs: 50 },
    );

    // Assess
    await expect(sent).rejects.toThrow('SNS Publish did not answer within 50 ms');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
