/**
 * `nightshift fleet run` and `redrive` without --local: StartExecution of the hub's state machine, then
 * DescribeExecution and the run's result rows polled until the execution ends. aws-sdk-client-mock: moto
 * cannot run our function inside a state machine (its Task needs Docker) nor end an execution on cue, so
 * the execution's course (RUNNING, RUNNING, then its end) and the rows that appear meanwhile are scripted.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeExecutionCommand,
  SFNClient,
  StartExecutionCommand,
  type ExecutionStatus,
} from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { GetFunctionConcurrencyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { FleetRun, TargetResult } from '#shared/fleet/results.ts';
import { RUN_ID, type Target } from '#shared/fleet/target.ts';
import { cli } from '#test/support/cli.ts';

const sfn = mockClient(SFNClient);
const sts = mockClient(STSClient);
const dynamo = mockClient(DynamoDBClient);
const lambda = mockClient(LambdaClient);
/** The deployed function's reserved concurrency (undefined: none set; 0: the kill switch). */
let reserved: number | undefined;

const A = '111111111111';
const B = '222222222222';
const STOP = '{"action":"stop","clusters":["stage"]}';
const MACHINE = 'arn:aws:states:eu-central-1:123456789012:stateMachine:nightshift-dev-ecs-scheduler-fleet';
const ENV = { NIGHTSHIFT_FLEET_POLL_MS: '1' };
const SUMMARY = { changed: 1, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 };

const targets: Target[] = [A, B].flatMap((account) =>
  ['eu-central-1', 'eu-west-1'].map((region) => ({ account, region })),
);

/**
 * The hub's table as the state machine fills it: the run row once the execution has listed its targets
 * (`runAfter` polls), and each target's row after its own number of polls.
 */
const hubTable = (options: {
  run?: Partial<FleetRun>;
  runAfter: number;
  rows: Array<{ target: Target; after: number; status: TargetResult['status'] }>;
}) => {
  let polls = 0;
  const runs = new Map<string, FleetRun>();
  dynamo.on(GetItemCommand).callsFake((input: { Key: { scope: { S: string } } }) => {
    const key = input.Key.scope.S;
    const id = key.replace(/^fleet#/, '');
    polls += 1;
    if (polls <= options.runAfter) return {};
    const run: FleetRun = {
      run: id,
      function: 'ecs-scheduler',
      dryRun: false,
      event: JSON.parse(STOP) as Record<string, unknown>,
      targets,
      startedAt: '2026-11-30T09:00:00.000Z',
      runner: 'state-machine',
      ...options.run,
    };
    runs.set(id, run);
    return { Item: { scope: { S: key }, run: { S: JSON.stringify(run) } } };
  });
  dynamo
    .on(BatchGetItemCommand)
    .callsFake((input: { RequestItems: Record<string, { Keys: Array<{ scope: { S: string } }> }> }) => {
      const [table, request] = Object.entries(input.RequestItems)[0]!;
      const items: Array<Record<string, AttributeValue>> = [];
      for (const key of request.Keys) {
        const [, , account, region] = key.scope.S.split('#');
        const row = options.rows.find((r) => r.target.account === account && r.target.region === region);
        if (!row || polls - options.runAfter < row.after) continue;
        const result: TargetResult = {
          account: account!,
          region: region!,
          status: row.status,
          reason: row.status === 'failed' ? '1 failed; first: svc: AccessDenied' : '1 changed',
          summary: row.status === 'failed' ? { ...SUMMARY, changed: 0, failed: 1 } : SUMMARY,
          finishedAt: '2026-11-30T09:00:20.000Z',
        };
        items.push({ scope: key.scope, result: { S: JSON.stringify(result) } });
      }
      return { Responses: { [table]: items } };
    });
};

/** The execution's statuses, one per DescribeExecution; the last repeats. */
const execution = (statuses: ExecutionStatus[], end: { error?: string; cause?: string } = {}) => {
  let n = 0;
  sfn.on(DescribeExecutionCommand).callsFake(() => {
    const status = statuses[Math.min(n, statuses.length - 1)]!;
    n += 1;
    return {
      status,
      ...(status !== 'RUNNING' && { stopDate: new Date('2026-11-30T09:00:42.000Z'), ...end }),
    };
  });
};

const started = () => {
  const calls = sfn.commandCalls(StartExecutionCommand);
  expect(calls).toHaveLength(1);
  const input = calls[0]!.args[0].input;
  return { ...input, input: JSON.parse(input.input!) as Record<string, unknown> };
};

describe('nightshift fleet run by the hub’s state machine', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    process.env.AWS_REGION = 'eu-central-1';
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    for (const name of Object.keys(process.env))
      if (name.startsWith('AWS_ENDPOINT_URL')) delete process.env[name];
  });
  afterAll(() => {
    process.env = saved;
  });
  beforeEach(() => {
    sfn.reset();
    sts.reset();
    dynamo.reset();
    lambda.reset();
    reserved = undefined;
    lambda.on(GetFunctionConcurrencyCommand).callsFake(() => ({ ReservedConcurrentExecutions: reserved }));
    sts
      .on(GetCallerIdentityCommand)
      .resolves({ Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/ops' });
    sfn.on(StartExecutionCommand).callsFake((input: { name: string }) => ({
      executionArn: `arn:aws:states:eu-central-1:123456789012:execution:nightshift-dev-ecs-scheduler-fleet:${input.name}`,
      startDate: new Date(),
    }));
  });

  it('starts the execution with the event, the targets asked for and the stage’s numbers, follows it with a progress bar, and exits 1 when a target failed', async () => {
    // Prepare: the run row appears at the second poll, the targets' rows one after another
    hubTable({
      runAfter: 1,
      rows: [
        { target: targets[0]!, after: 1, status: 'succeeded' },
        { target: targets[1]!, after: 2, status: 'failed' },
        { target: targets[2]!, after: 2, status: 'succeeded' },
        { target: targets[3]!, after: 3, status: 'refused' },
      ],
    });
    execution(['RUNNING', 'RUNNING', 'RUNNING', 'SUCCEEDED']);

    // Act
    const run = await cli(
      [
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        STOP,
        '--accounts',
        `${A},${B}`,
        '--regions',
        'eu-central-1,eu-west-1',
        '--yes',
        '--json',
      ],
      { interactive: true, env: ENV },
    );

    // Assess: what was started
    const start = started();
    expect(start.stateMachineArn).toBe(MACHINE);
    expect(start.name).toMatch(RUN_ID);
    expect(start.input).toEqual({
      event: { action: 'stop', clusters: ['stage'] },
      accounts: [A, B],
      regions: ['eu-central-1', 'eu-west-1'],
      maxConcurrency: 50,
      toleratedFailurePercentage: 100,
      dryRun: false,
    });
    // Followed until the execution ended
    expect(sfn.commandCalls(DescribeExecutionCommand).map((c) => c.args[0].input.executionArn)).toEqual(
      Array(4).fill(
        `arn:aws:states:eu-central-1:123456789012:execution:nightshift-dev-ecs-scheduler-fleet:${start.name}`,
      ),
    );
    expect(run.progress.filter((p) => p.includes('/4 targets'))).toEqual([
      `ecs-scheduler fleet run ${start.name}: [#####---------------] 1/4 targets`,
      `ecs-scheduler fleet run ${start.name}: [###############-----] 3/4 targets`,
      `ecs-scheduler fleet run ${start.name}: [####################] 4/4 targets`,
    ]);
    // One document, the run's
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.out) as {
      run: string;
      wallSeconds: number;
      targets: Array<{ status: string }>;
    };
    expect(doc.run).toBe(start.name);
    expect(doc.wallSeconds).toBe(42);
    expect(doc.targets.map((t) => t.status)).toEqual(['succeeded', 'failed', 'succeeded', 'refused']);
    expect(run.err).toContain(`nightshift fleet redrive ${start.name} --stage dev`);
  });

  it('sends a dry run as dryRun in the input and in the event, asks nothing, and lets the hub list its own targets', async () => {
    hubTable({
      runAfter: 0,
      rows: targets.map((target) => ({ target, after: 0, status: 'succeeded' as const })),
    });
    execution(['SUCCEEDED']);

    const run = await cli(
      [
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        STOP,
        '--regions',
        'eu-west-1',
        '--dry-run',
        '--param',
        'fleetMaxConcurrency=7',
      ],
      { env: ENV },
    );

    expect(run.questions).toEqual([]);
    expect(run.code).toBe(0);
    expect(started().input).toEqual({
      event: { action: 'stop', clusters: ['stage'], dryRun: true },
      regions: ['eu-west-1'],
      maxConcurrency: 7,
      toleratedFailurePercentage: 100,
      dryRun: true,
    });
    expect(run.out).toContain('4 targets: 0 failed, 0 refused, 4 succeeded');
  });

  it('counts the targets without a row as failed when the execution ended otherwise than SUCCEEDED, and exits 1', async () => {
    hubTable({ runAfter: 0, rows: [{ target: targets[0]!, after: 0, status: 'succeeded' }] });
    execution(['RUNNING', 'ABORTED'], { error: 'nightshift.KillSwitch', cause: 'nightshift fleet halt' });

    const run = await cli(['fleet', 'run', 'ecs-scheduler', '--input', STOP, '--yes', '--json'], {
      env: ENV,
    });

    expect(run.code).toBe(1);
    const doc = JSON.parse(run.out) as { targets: Array<{ status: string; reason: string }> };
    expect(doc.targets.map((t) => t.status)).toEqual(['succeeded', 'failed', 'failed', 'failed']);
    expect(doc.targets[1]?.reason).toBe('no result was recorded for this target');
    expect(run.err).toContain('the execution ended ABORTED (nightshift.KillSwitch: nightshift fleet halt)');
  });

  it('says why when the execution failed before it listed its targets, and exits 1 with one error document', async () => {
    hubTable({ runAfter: 99, rows: [] });
    execution(['FAILED'], { error: 'InputError', cause: 'fleetRegions: no region to run in' });

    const run = await cli(['fleet', 'run', 'ecs-scheduler', '--input', STOP, '--yes', '--json'], {
      env: ENV,
    });

    expect(run.code).toBe(1);
    expect(JSON.parse(run.out)).toMatchObject({ error: { type: 'Failed', exitCode: 1 } });
    expect(run.err).toContain(
      'ended FAILED before it recorded its targets: InputError: fleetRegions: no region to run in',
    );
  });

  it('refuses to start a run of a function switched off by the kill switch (exit 2)', async () => {
    reserved = 0;

    const run = await cli(['fleet', 'run', 'ecs-scheduler', '--input', STOP, '--yes'], { env: ENV });

    expect(run.code).toBe(2);
    expect(run.err).toContain('nightshift-dev-ecs-scheduler is switched off (reserved concurrency 0');
    expect(lambda.commandCalls(GetFunctionConcurrencyCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'nightshift-dev-ecs-scheduler',
    });
    expect(sfn.commandCalls(StartExecutionCommand)).toEqual([]);
  });

  it('says the stage has no fleet when its state machine does not exist, and exits 1', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(
        Object.assign(new Error('State Machine Does Not Exist'), { name: 'StateMachineDoesNotExist' }),
      );

    const run = await cli(['fleet', 'run', 'ecs-scheduler', '--input', STOP, '--yes'], { env: ENV });

    expect(run.code).toBe(1);
    expect(run.err).toContain('is stage dev deployed with fleet: true in eu-central-1?');
  });

  it('refuses, with exit 2, a param the deployed hub reads itself', async () => {
    const run = await cli(
      ['fleet', 'run', 'ecs-scheduler', '--input', STOP, '--yes', '--param', 'allowedAccounts=111111111111'],
      { env: ENV },
    );

    expect(run.code).toBe(2);
    expect(run.err).toContain('--param allowedAccounts: only with --local');
    expect(sfn.commandCalls(StartExecutionCommand)).toEqual([]);
  });

  it('shows what a redrive will run and asks first; no answer, no execution', async () => {
    hubTable({
      run: { run: 'run-2', finishedAt: '2026-11-30T09:01:00.000Z' },
      runAfter: 0,
      rows: targets.map((target, i) => ({
        target,
        after: 0,
        status: i < 2 ? ('failed' as const) : ('succeeded' as const),
      })),
    });

    const redrive = await cli(['fleet', 'redrive', 'run-2'], { interactive: true, answer: false, env: ENV });

    expect(redrive.code).toBe(0);
    expect(redrive.questions).toEqual(['Run it on 2 target(s) in stage dev?']);
    expect(redrive.err).toContain('fleet redrive of run-2: ecs-scheduler in stage dev');
    expect(redrive.err).toContain(`accounts (1): ${A}`);
    expect(sfn.commandCalls(StartExecutionCommand)).toEqual([]);
  });

  it('redrives the failed targets of a finished run by a new execution naming them, with the same event and dry run', async () => {
    // Prepare: run-1 finished with B's targets failed (one with no row at all)
    hubTable({
      run: {
        run: 'run-1',
        dryRun: true,
        event: { action: 'stop', clusters: ['stage'], dryRun: true },
        finishedAt: '2026-11-30T09:01:00.000Z',
      },
      runAfter: 0,
      rows: [
        { target: targets[0]!, after: 0, status: 'succeeded' },
        { target: targets[1]!, after: 0, status: 'refused' },
        { target: targets[2]!, after: 0, status: 'failed' },
      ],
    });
    execution(['SUCCEEDED']);

    // Act
    const redrive = await cli(['fleet', 'redrive', 'run-1'], { env: ENV });

    // Assess
    expect(redrive.questions).toEqual([]);
    expect(started().input).toEqual({
      event: { action: 'stop', clusters: ['stage'], dryRun: true },
      targets: [targets[2], targets[3]],
      redriveOf: 'run-1',
      maxConcurrency: 50,
      toleratedFailurePercentage: 100,
      dryRun: true,
    });
  });
});
