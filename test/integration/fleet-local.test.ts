/**
 * `nightshift fleet run --local` (shared/fleet/local.ts) and the end of every fleet run
 * (shared/fleet/finish.ts) against moto's DynamoDB and SNS, with fake workers that keep the worker
 * contract (record their own row with recordTarget, return their report): bounded concurrency, a worker
 * that throws, a thousand targets, and one summary per run.
 */
import { createServer, type Server } from 'node:http';
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { finishFleetRun, fleetSubject } from '#shared/fleet/finish.ts';
import { newRunId, runFleetLocal, type LocalFleetOptions } from '#shared/fleet/local.ts';
import {
  latestRun,
  readRun,
  readTargets,
  recordTarget,
  runKey,
  startRun,
  targetOutcome,
  type TargetResult,
} from '#shared/fleet/results.ts';
import { RUN_ID, type Target } from '#shared/fleet/target.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { dynamoClient, leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { freePort, motoTestsEnabled, startMoto, type Moto } from '#test/support/moto.ts';

type Notification = { Type: string; Subject: string; Message: string; TopicArn: string };

const targetsOf = (accounts: number, regions = ['eu-central-1', 'eu-west-1']): Target[] =>
  Array.from({ length: accounts }, (_, i) => String(100_000_000_000 + i)).flatMap((account) =>
    regions.map((region) => ({ account, region })),
  );

const stopped = (target: Target): Report =>
  buildReport('stop', false, [
    {
      arn: `arn:aws:ecs:${target.region}:${target.account}:service/stage/web`,
      type: 'ecs-service',
      outcome: 'changed',
      detail: 'stopped: desired 2 → 0',
    },
  ]);

describe.runIf(motoTestsEnabled())('the local fleet fan-out and the end of a fleet run', () => {
  let moto: Moto;
  let dynamo: DynamoDBClient;
  let sns: SNSClient;
  let topicArn: string;
  let endpoint: Server;
  const received: Notification[] = [];

  /** A worker as the contract says: it acts (here: nothing), records its own row, returns its report. */
  const recordingWorker =
    (report: (target: Target) => Report = stopped) =>
    async (event: Record<string, unknown>): Promise<Report> => {
      const target = event.target as Target;
      const run = (event.fleet as { run: string }).run;
      const result = report(target);
      await recordTarget(dynamo, TEST_LEASE_TABLE, run, {
        ...target,
        ...targetOutcome(result),
        summary: result.summary,
        finishedAt: new Date().toISOString(),
      });
      return result;
    };

  const options = (overrides: Partial<LocalFleetOptions>): LocalFleetOptions => ({
    fn: 'ecs-scheduler',
    run: newRunId('ecs-scheduler', new Date()),
    event: { action: 'stop', clusters: ['stage'] },
    targets: targetsOf(2),
    maxConcurrency: 50,
    dryRun: false,
    worker: recordingWorker(),
    dynamo,
    table: TEST_LEASE_TABLE,
    sns,
    ...overrides,
  });

  beforeAll(async () => {
    moto = await startMoto();
    dynamo = dynamoClient(moto.url);
    sns = new SNSClient({
      endpoint: moto.url,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    endpoint = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const message = JSON.parse(body) as Notification;
        if (message.Type === 'Notification') received.push(message);
        res.end();
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => endpoint.listen(port, '127.0.0.1', resolve));
    await leaseTable(moto.url);
    ({ TopicArn: topicArn = '' } = await sns.send(new CreateTopicCommand({ Name: 'nightshift-test-ops' })));
    await sns.send(
      new SubscribeCommand({ TopicArn: topicArn, Protocol: 'http', Endpoint: `http://127.0.0.1:${port}/` }),
    );
  });
  afterAll(async () => {
    await new Promise((resolve) => endpoint?.close(resolve));
    moto?.stop();
  });
  beforeEach(() => {
    received.length = 0;
  });

  it('names runs so that Step Functions takes them as execution names', () => {
    const id = newRunId('rds-snapshot-copy', new Date('2026-11-30T10:15:00.123Z'));
    expect(id).toMatch(/^rds-snapshot-copy-20261130T101500Z-[0-9a-f]{4}$/);
    expect(RUN_ID.test(id)).toBe(true);
  });

  it('never has more than maxConcurrency workers in flight, and starts the next as one ends', async () => {
    // Prepare: each worker waits until the test lets it finish
    const waiting: Array<() => void> = [];
    let inFlight = 0;
    let most = 0;
    const worker = recordingWorker();
    const gated = async (event: Record<string, unknown>) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise<void>((resolve) => waiting.push(resolve));
      inFlight -= 1;
      return worker(event);
    };
    const progress: Array<[number, number]> = [];
    // Waits (no time limit: the test's own timeout ends a hang) until `n` workers wait to be released.
    const waitFor = async (n: number) => {
      while (waiting.length < n) await new Promise((resolve) => setTimeout(resolve, 5));
    };

    // Act: release the workers one at a time
    const running = runFleetLocal(
      options({
        targets: targetsOf(5),
        maxConcurrency: 3,
        worker: gated,
        onProgress: (d, t) => progress.push([d, t]),
      }),
    );
    const seen: number[] = [];
    for (let released = 0; released < 10; released += 1) {
      await waitFor(Math.min(3, 10 - released));
      seen.push(inFlight);
      waiting.shift()?.();
    }
    const doc = await running;

    // Assess: 3 in flight while at least 3 are left, then fewer; every target ran once
    expect(most).toBe(3);
    expect(seen).toEqual([3, 3, 3, 3, 3, 3, 3, 3, 2, 1]);
    expect(doc.targets.map((t) => t.status)).toEqual(Array(10).fill('succeeded'));
    expect(progress[0]).toEqual([0, 10]);
    expect(progress.at(-1)).toEqual([10, 10]);
  });

  it('records a worker that throws as failed with its error, and the other targets run and succeed', async () => {
    // Prepare: the spoke role of one account is missing
    const broken = '100000000001';
    const worker = recordingWorker();
    const run = newRunId('ecs-scheduler', new Date());
    const targets = targetsOf(3);

    // Act
    const doc = await runFleetLocal(
      options({
        run,
        targets,
        topicArn,
        worker: async (event) => {
          if ((event.target as Target).account === broken)
            throw new Error('AccessDenied: not authorized to perform sts:AssumeRole');
          return worker(event);
        },
      }),
    );

    // Assess: the document, failures first in the table but in the run's order here
    expect(doc).toMatchObject({ run, function: 'ecs-scheduler', dryRun: false });
    expect(doc.wallSeconds).not.toBeNull();
    expect(doc.targets.map((t) => [t.account, t.region, t.status])).toEqual(
      targets.map((t) => [t.account, t.region, t.account === broken ? 'failed' : 'succeeded']),
    );
    const failed = doc.targets.filter((t) => t.status === 'failed');
    for (const t of failed) expect(t.reason).toBe('AccessDenied: not authorized to perform sts:AssumeRole');
    expect(doc.targets.find((t) => t.status === 'succeeded')?.summary?.changed).toBe(1);
    // The rows in the hub: the failed ones written by the fan-out
    const rows = await readTargets(dynamo, TEST_LEASE_TABLE, run, targets);
    expect([...rows.values()].filter((r) => r.status === 'failed').map((r) => r.account)).toEqual([
      broken,
      broken,
    ]);
    // The header and the latest pointers
    const header = await readRun(dynamo, TEST_LEASE_TABLE, run);
    expect(header).toMatchObject({
      run,
      function: 'ecs-scheduler',
      runner: 'local',
      event: { action: 'stop', clusters: ['stage'] },
      targets,
    });
    expect(header?.finishedAt).toBeDefined();
    expect(await latestRun(dynamo, TEST_LEASE_TABLE, 'ecs-scheduler')).toBe(run);
    expect(await latestRun(dynamo, TEST_LEASE_TABLE)).toBe(run);
    // One summary for the run, counts first
    expect(received).toHaveLength(1);
    // SNS takes fewer than 100 characters: the counts come first, the run id is cut if need be
    expect(received[0]?.Subject).toBe(
      `nightshift ecs-scheduler fleet run: 2 failed, 0 refused, 4 succeeded; ${run}`.slice(0, 99),
    );
    expect(received[0]?.Message).toContain(`Fleet run ${run} of ecs-scheduler`);
    const message = received[0]?.Message ?? '';
    expect(message.indexOf('failed ')).toBeLessThan(message.indexOf('succeeded '));
    expect(message).toContain(`nightshift fleet redrive ${run}`);
  });

  it('reads back a thousand targets in pages of 100 keys, each recorded once', async () => {
    // Prepare: BatchGetItem requests counted as sent
    const batches: number[] = [];
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'BatchGetItemCommand') {
          const input = args.input as { RequestItems: Record<string, { Keys: unknown[] }> };
          batches.push(input.RequestItems[TEST_LEASE_TABLE]?.Keys.length ?? 0);
        }
        return next(args);
      },
      { step: 'initialize', name: 'countBatches' },
    );
    const targets = targetsOf(500);
    let calls = 0;
    const worker = recordingWorker();

    // Act
    const doc = await runFleetLocal(
      options({
        targets,
        worker: (event) => {
          calls += 1;
          return worker(event);
        },
      }),
    ).finally(() => dynamo.middlewareStack.remove('countBatches'));

    // Assess: the fan-out's check for missing rows and finish each read every key, 100 at most a call
    expect(calls).toBe(1000);
    expect(doc.targets).toHaveLength(1000);
    expect(doc.targets.every((t) => t.status === 'succeeded')).toBe(true);
    expect(Math.max(...batches)).toBe(100);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(2000);
  });

  it('keeps the row of a worker that recorded it and then threw (every resource failed)', async () => {
    // Prepare
    const worker = recordingWorker((target) =>
      buildReport('stop', false, [
        {
          arn: `arn:aws:ecs:${target.region}:${target.account}:service/stage/web`,
          type: 'ecs-service',
          outcome: 'failed',
          detail: 'stop failed',
          error: 'ThrottlingException',
        },
      ]),
    );

    // Act
    const doc = await runFleetLocal(
      options({
        targets: targetsOf(1, ['eu-central-1']),
        worker: async (event) => {
          await worker(event);
          throw new Error('RunFailedError: all 1 resource(s) failed; first error: ThrottlingException');
        },
      }),
    );

    // Assess: the worker's own reason and counts, not the thrown error
    expect(doc.targets[0]).toMatchObject({ status: 'failed', summary: { failed: 1 } });
    expect(doc.targets[0]?.reason).toMatch(/^1 failed; first: arn:aws:ecs:/);
  });

  it("records the report of a worker that returned but could not write its row, instead of 'no result'", async () => {
    // Prepare: the worker's own write is lost (its table throttled it)
    const targets = targetsOf(1);
    const run = newRunId('ecs-scheduler', new Date());

    // Act
    const doc = await runFleetLocal(
      options({ run, targets, worker: async (event) => stopped(event.target as Target) }),
    );

    // Assess
    expect(doc.targets.map((t) => [t.status, t.reason, t.summary?.changed])).toEqual([
      ['succeeded', '1 changed', 1],
      ['succeeded', '1 changed', 1],
    ]);
  });

  it('records what a redrive redrives, and finishes a target that never reported as failed', async () => {
    // Prepare: a state-machine run whose second target never recorded a row (its iteration was lost)
    const run = newRunId('ecs-scheduler', new Date());
    const targets = targetsOf(1);
    await startRun(dynamo, TEST_LEASE_TABLE, {
      run,
      function: 'ecs-scheduler',
      dryRun: false,
      event: { action: 'reconcile' },
      targets,
      startedAt: new Date().toISOString(),
      runner: 'state-machine',
    });
    await recordingWorker()({ action: 'reconcile', target: targets[0], fleet: { run } });

    // Act
    const doc = await finishFleetRun({ dynamo, table: TEST_LEASE_TABLE, run });
    const redrive = newRunId('ecs-scheduler', new Date());
    await runFleetLocal(options({ run: redrive, targets: [targets[1] as Target], redriveOf: run }));

    // Assess
    expect(doc.targets.map((t) => [t.status, t.reason])).toEqual([
      ['succeeded', '1 changed'],
      ['failed', 'no result was recorded for this target'],
    ]);
    expect(await readRun(dynamo, TEST_LEASE_TABLE, redrive)).toMatchObject({
      redriveOf: run,
      targets: [targets[1]],
    });
  });

  it('sends one summary per run however often the run is finished, and nothing for a run with nothing to say', async () => {
    // Prepare: a run whose targets changed something, finished once by the fan-out
    const run = newRunId('ecs-scheduler', new Date());
    await runFleetLocal(options({ run, topicArn }));
    expect(received).toHaveLength(1);

    // Act: the Finish step runs again (a retry after a timeout)
    const again = await finishFleetRun({ dynamo, table: TEST_LEASE_TABLE, run, topicArn, sns });

    // Assess: no second message, the same document and end time
    expect(received).toHaveLength(1);
    expect(again.targets.map((t) => t.status)).toEqual(Array(4).fill('succeeded'));
    const item = await dynamo.send(
      new GetItemCommand({ TableName: TEST_LEASE_TABLE, Key: { scope: { S: runKey(run) } } }),
    );
    expect(item.Item?.finishedAt?.S).toBe((await readRun(dynamo, TEST_LEASE_TABLE, run))?.finishedAt);

    // A run that changed nothing sends nothing
    received.length = 0;
    await runFleetLocal(options({ topicArn, worker: recordingWorker(() => buildReport('stop', false, [])) }));
    expect(received).toEqual([]);
  });

  it('finishes the run and returns its document when the summary cannot be sent', async () => {
    // Prepare: a well-formed ARN of a topic that is not there
    const errors: unknown[] = [];

    // Act
    const doc = await runFleetLocal(
      options({
        topicArn: 'arn:aws:sns:eu-central-1:123456789012:deleted-topic',
        onSummaryError: (error) => errors.push(error),
      }),
    );

    // Assess
    expect(doc.targets.map((t) => t.status)).toEqual(Array(4).fill('succeeded'));
    expect(doc.wallSeconds).not.toBeNull();
    expect(errors).toHaveLength(1);
  });

  it('refuses a run id Step Functions would refuse, a zero concurrency and a target listed twice, before writing anything', async () => {
    const target = { account: '100000000000', region: 'eu-central-1' };
    await expect(runFleetLocal(options({ run: 'a run' }))).rejects.toThrow(/run id/);
    await expect(runFleetLocal(options({ maxConcurrency: 0 }))).rejects.toThrow(/maxConcurrency/);
    const run = newRunId('ecs-scheduler', new Date());
    await expect(runFleetLocal(options({ run, targets: [target, target] }))).rejects.toThrow(/listed twice/);
    expect(await readRun(dynamo, TEST_LEASE_TABLE, run)).toBeUndefined();
  });

  it('cuts the subject to what SNS takes, counts before the run id', () => {
    const subject = fleetSubject({
      run: 'x'.repeat(80),
      function: 'rds-snapshot-copy',
      dryRun: true,
      wallSeconds: 3,
      targets: [{ account: '1', region: 'r', status: 'refused', reason: '', summary: null }],
    });
    expect(subject.length).toBeLessThan(100);
    expect(subject).toMatch(
      /^nightshift rds-snapshot-copy fleet dry run: 0 failed, 1 refused, 0 succeeded; x+$/,
    );
  });

  it('keeps a results row in the shape the state machine writes', async () => {
    // The fan-out and the state machine's Catch write the same item: scope, result (JSON), ttl
    const run = newRunId('ecs-scheduler', new Date());
    const result: TargetResult = {
      account: '100000000000',
      region: 'eu-central-1',
      status: 'failed',
      reason: 'x',
      finishedAt: '2026-11-30T10:00:00.000Z',
    };
    await recordTarget(dynamo, TEST_LEASE_TABLE, run, result);
    const item = await dynamo.send(
      new GetItemCommand({
        TableName: TEST_LEASE_TABLE,
        Key: { scope: { S: `fleet#${run}#100000000000#eu-central-1` } },
      }),
    );
    expect(Object.keys(item.Item ?? {}).sort()).toEqual(['result', 'scope', 'ttl']);
  });
});
