/**
 * The fleet state machine (shared/fleet/definition.ts) executed by moto's Step Functions, as far as moto
 * can run it.
 *
 * What moto 5.2.1 cannot do, and what stands in for it here:
 * - A lambda:invoke Task of an existing function needs Docker (moto runs Lambda in containers; none
 *   here). So the `Targets` and `Finish` steps (the hub's `fleet` function) are replaced by Pass states
 *   that answer what that function answers (`{targets, ttl}` under $.plan), and in the second execution
 *   the `Work` step is replaced by a dynamodb:putItem that records the payload the function would have
 *   received (the definition's own WORK_PAYLOAD expression). The function and `--local` are tested in
 *   fleet-local.test.ts and fleet-handler.test.ts.
 * - The real `Work` step (lambda:invoke) does run in the first execution, against a function that does
 *   not exist: moto answers Lambda.ResourceNotFoundException, which is what a failed invocation looks
 *   like to the Catch. The Catch → Failed → Record (dynamodb:putItem) path is the real one.
 * - Only one execution per account and region (getmoto/moto#10077, fixed after 5.2.1): each execution
 *   runs in its own region, with its own lease table.
 * - moto ignores MaxConcurrencyPath and ToleratedFailurePercentagePath ("no effect") and does not fail a
 *   map past its tolerance: concurrency is tested on the local fan-out.
 */
import {
  CreateTableCommand,
  PutItemCommand,
  ScanCommand,
  type DynamoDBClient as DynamoDBClientType,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetDefinition, WORK_PAYLOAD, type Asl } from '#shared/fleet/definition.ts';
import { targetKey, type TargetResult } from '#shared/fleet/results.ts';
import type { Target } from '#shared/fleet/target.ts';
import { motoTestsEnabled, startMoto, type Moto } from '#test/support/moto.ts';

const ACCOUNT = '123456789012';
const TABLE = 'nightshift-test-leases';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const TARGETS: Target[] = [
  { account: '111111111111', region: 'eu-central-1' },
  { account: '111111111111', region: 'eu-west-1' },
  { account: '222222222222', region: 'eu-central-1' },
];
const TTL = '1767225600';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Targets and Finish as Pass states answering what the `fleet` function answers. */
const withoutHubFunction = (asl: Asl): Asl => {
  const states = structuredClone(asl.States);
  const targets = states.Targets as Record<string, unknown>;
  states.Targets = {
    Type: 'Pass',
    Result: { targets: TARGETS, ttl: TTL },
    ResultPath: targets.ResultPath,
    Next: targets.Next,
  };
  states.Finish = {
    Type: 'Pass',
    Result: { run: 'stand-in', counts: {} },
    ResultPath: '$.finish',
    End: true,
  };
  return { ...asl, States: states };
};

describe.runIf(motoTestsEnabled())('the fleet state machine in moto', () => {
  let moto: Moto;
  const clients = (region: string) => ({
    sfn: new SFNClient({ endpoint: moto.url, region, credentials }),
    dynamo: new DynamoDBClient({ endpoint: moto.url, region, credentials }),
  });
  const createTable = (dynamo: DynamoDBClientType) =>
    dynamo.send(
      new CreateTableCommand({
        TableName: TABLE,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'scope', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'scope', KeyType: 'HASH' }],
      }),
    );
  const rows = async (dynamo: DynamoDBClientType) =>
    Object.fromEntries(
      ((await dynamo.send(new ScanCommand({ TableName: TABLE }))).Items ?? []).map((item) => [
        item.scope?.S,
        item,
      ]),
    );
  const execute = async (region: string, definition: Asl, name: string, input: unknown) => {
    const { sfn } = clients(region);
    const machine = await sfn.send(
      new CreateStateMachineCommand({
        name: 'nightshift-test-ecs-scheduler-fleet',
        definition: JSON.stringify(definition),
        roleArn: `arn:aws:iam::${ACCOUNT}:role/nightshift-test-fleet-states`,
        type: 'STANDARD',
      }),
    );
    const started = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: machine.stateMachineArn,
        name,
        input: JSON.stringify(input),
      }),
    );
    for (let i = 0; i < 300; i += 1) {
      const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
      if (execution.status !== 'RUNNING') return execution;
      await sleep(100);
    }
    throw new Error('the execution did not end within 30 s');
  };
  const input = { event: { action: 'reconcile' }, maxConcurrency: 2, toleratedFailurePercentage: 100 };

  beforeAll(async () => {
    moto = await startMoto();
    // moto only executes state machines when told to (else executions stay RUNNING with a canned history).
    const res = await fetch(`${moto.url}/moto-api/config`, {
      method: 'POST',
      body: JSON.stringify({ stepfunctions: { execute_state_machine: true } }),
    });
    expect(res.status).toBe(201);
  });
  afterAll(() => moto?.stop());

  it('records a failed row for every target whose invocation failed, in the shape recordTarget writes, keeps a row the function wrote itself, and still finishes', async () => {
    // Prepare: the real Work step invokes a function that does not exist (Lambda.ResourceNotFoundException)
    const region = 'us-east-1';
    const { dynamo } = clients(region);
    await createTable(dynamo);
    const definition = withoutHubFunction(
      fleetDefinition('ecs-scheduler', {
        functionArn: `arn:aws:lambda:${region}:${ACCOUNT}:function:nightshift-test-missing`,
        fleetFunctionArn: `arn:aws:lambda:${region}:${ACCOUNT}:function:nightshift-test-fleet`,
        table: TABLE,
      }),
    );

    // The first target's function recorded its own row before it threw (every resource failed)
    const own = TARGETS[0] as Target;
    const ownRow = JSON.stringify({
      ...own,
      status: 'failed',
      reason: '2 failed; first: …',
      finishedAt: 'x',
    });
    await dynamo.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { scope: { S: targetKey('run-failing-1', own) }, result: { S: ownRow }, ttl: { N: '1' } },
      }),
    );

    // Act
    const execution = await execute(region, definition, 'run-failing-1', input);

    // Assess: the execution reached Finish; one row per target, keyed as recordTarget keys it
    expect(execution.status).toBe('SUCCEEDED');
    expect(JSON.parse(execution.output ?? '{}')).toMatchObject({ finish: { run: 'stand-in' } });
    const written = await rows(dynamo);
    expect(Object.keys(written).sort()).toEqual(TARGETS.map((t) => targetKey('run-failing-1', t)).sort());
    expect(written[targetKey('run-failing-1', own)]?.result?.S).toBe(ownRow);
    for (const target of TARGETS.slice(1)) {
      const item = written[targetKey('run-failing-1', target)];
      expect(item?.ttl).toEqual({ N: TTL });
      const result = JSON.parse(item?.result?.S ?? '{}') as TargetResult;
      expect(result).toMatchObject({ account: target.account, region: target.region, status: 'failed' });
      expect(result.reason).toMatch(/^Lambda\.ResourceNotFoundException: /);
      expect(Number.isNaN(Date.parse(result.finishedAt))).toBe(false);
    }
  });

  it("gives each iteration the run's event with its target and the run id, and nothing of another target", async () => {
    // Prepare: Work records the payload it would invoke the function with (the definition's own expression)
    const region = 'ap-southeast-2';
    const { dynamo } = clients(region);
    await createTable(dynamo);
    const definition = withoutHubFunction(
      fleetDefinition('ecs-scheduler', {
        functionArn: 'unused',
        fleetFunctionArn: 'unused',
        table: TABLE,
      }),
    );
    const fan = definition.States.Fan as {
      ItemProcessor: { States: Record<string, Record<string, unknown>> };
    };
    fan.ItemProcessor.States.Work = {
      Type: 'Task',
      Resource: 'arn:aws:states:::dynamodb:putItem',
      Parameters: {
        TableName: TABLE,
        Item: {
          scope: {
            'S.$': "States.Format('payload#{}#{}', $.extra.target.account, $.extra.target.region)",
          },
          payload: { 'S.$': `States.JsonToString(${WORK_PAYLOAD})` },
        },
      },
      End: true,
    };

    // Act
    const execution = await execute(region, definition, 'run-payload-1', {
      ...input,
      event: { action: 'stop', clusters: ['stage'], dryRun: true },
    });

    // Assess
    expect(execution.status).toBe('SUCCEEDED');
    const written = await rows(dynamo);
    for (const target of TARGETS) {
      const payload = JSON.parse(written[`payload#${target.account}#${target.region}`]?.payload?.S ?? '{}');
      expect(payload).toEqual({
        action: 'stop',
        clusters: ['stage'],
        dryRun: true,
        target,
        fleet: { run: 'run-payload-1' },
      });
    }
    // No failed rows: every iteration's Work succeeded
    expect(Object.keys(written).filter((k) => k?.startsWith('fleet#'))).toEqual([]);
  });
});
