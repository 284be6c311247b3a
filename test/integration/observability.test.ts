/**
 * Run summaries delivered through SNS, against moto: a topic with an HTTP subscription this test
 * listens on receives exactly what an e-mail subscriber of the ops topic would. The function is a
 * miniature built with withOps whose run returns a given report.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { withOps } from '#shared/handler.ts';
import { SUMMARY_PUBLISH_FAILED_METRIC } from '#shared/metrics.ts';
import { formatReport } from '#shared/report-text.ts';
import { buildReport, type Outcome, type Report } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';
import { freePort, motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

interface Notification {
  Type: string;
  TopicArn: string;
  Subject: string;
  Message: string;
}

const reportOf = (action: string, outcomes: Outcome[], dryRun = false): Report =>
  buildReport(
    action,
    dryRun,
    outcomes.map((outcome, i) => ({
      arn: `arn:aws:ecs:eu-central-1:123456789012:service/stage/svc-${i}`,
      type: 'ecs-service',
      outcome,
      detail: outcome === 'planned' ? `would set desiredCount ${i} → 0` : `desiredCount ${i} → 0`,
    })),
  );
// A new function per test, like a cold start: SUMMARY_TOPIC_ARN is read on its first invocation.
const invoke = (report: Report) =>
  withOps(
    'ecs-scheduler',
    (event) => event,
    async () => report,
  )({ action: report.action }, lambdaContext('ecs-scheduler'));

describe.runIf(motoTestsEnabled())('run summaries through SNS in moto', () => {
  let moto: Moto;
  let sns: SNSClient;
  let endpoint: Server;
  let endpointUrl: string;
  const received: Notification[] = [];

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    sns = new SNSClient({ endpoint: moto.url, region: 'eu-central-1' });
    endpoint = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as Notification);
        res.end();
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => endpoint.listen(port, '127.0.0.1', resolve));
    endpointUrl = `http://127.0.0.1:${port}/`;
  });
  afterAll(async () => {
    await new Promise((resolve) => endpoint?.close(resolve));
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    received.length = 0;
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'nightshift-dev-ops' }));
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: endpointUrl }));
    vi.stubEnv('SUMMARY_TOPIC_ARN', TopicArn ?? '');
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('delivers the report table of a run that changed something to the subscribers of the topic', async () => {
    // Prepare
    const report = reportOf('stop', ['changed', 'changed', 'changed', 'changed', 'unchanged']);

    // Act
    await invoke(report);

    // Assess
    expect(received).toEqual([
      expect.objectContaining({
        Type: 'Notification',
        TopicArn: process.env.SUMMARY_TOPIC_ARN,
        Subject: 'nightshift ecs-scheduler stop: 4 changed, 0 failed',
        Message: `${formatReport(report)}\n\nLogs: ecs-scheduler, correlation_id ${lambdaContext('x').awsRequestId}`,
      }),
    ]);
  });

  it('delivers nothing for a run that changed nothing', async () => {
    // Act
    await invoke(reportOf('stop', ['unchanged', 'skipped']));

    // Assess
    expect(received).toEqual([]);
  });

  it('delivers nothing for a dry run that planned changes', async () => {
    // Act
    const report = await invoke(reportOf('stop', ['planned', 'planned'], true));

    // Assess
    expect(report.summary.planned).toBe(2);
    expect(received).toEqual([]);
  });

  it('finishes the run when the topic does not exist, and counts the summary it could not send', async () => {
    // Prepare: a well-formed ARN of a topic that is not there; metrics on, stdout captured
    vi.stubEnv('SUMMARY_TOPIC_ARN', 'arn:aws:sns:eu-central-1:123456789012:deleted-topic');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write);
    const report = reportOf('stop', ['changed']);

    // Act
    const returned = await invoke(report);

    // Assess
    expect(returned).toEqual(report);
    expect(received).toEqual([]);
    const emf = lines
      .join('')
      .split('\n')
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf).toEqual([expect.objectContaining({ [SUMMARY_PUBLISH_FAILED_METRIC]: 1, changed: 1 })]);
  });
});
