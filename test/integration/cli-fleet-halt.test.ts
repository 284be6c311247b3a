/**
 * `nightshift fleet halt`, the fleet-wide kill switch, against moto: Lambda reserved concurrency
 * (PutFunctionConcurrency), Step Functions executions (moto keeps them RUNNING when it does not execute
 * state machines, its default) and EventBridge Scheduler schedules. More executions and schedules than one
 * page of each listing (moto: 100 executions, 50 schedules a page).
 */
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateFunctionCommand, GetFunctionConcurrencyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  paginateListSchedules,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import {
  CreateStateMachineCommand,
  paginateListExecutions,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  type ExecutionStatus,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FLEET_FUNCTIONS } from '#shared/fleet/target.ts';
import { cli } from '#test/support/cli.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

// Every function of a stage: the ones a fleet runs, and the hub's own fleet function.
const FUNCTIONS = [...FLEET_FUNCTIONS, 'fleet'];
const GROUP = 'nightshift-dev-fleet';
/** An empty zip archive (end-of-central-directory record only): moto stores code without running it. */
const EMPTY_ZIP = Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]);

describe.runIf(motoTestsEnabled())('nightshift fleet halt against moto', () => {
  let moto: Moto;
  let lambda: LambdaClient;
  let sfn: SFNClient;
  let scheduler: SchedulerClient;
  const machines: Record<string, string> = {};

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    lambda = new LambdaClient({});
    sfn = new SFNClient({});
    scheduler = new SchedulerClient({});
  });
  afterAll(() => moto?.stop());

  /** The stage as deployed with fleet: true, without `missing` functions. */
  const deployStage = async (missing: readonly string[] = []) => {
    await moto.reset();
    const role = await new IAMClient({}).send(
      new CreateRoleCommand({
        RoleName: 'nightshift-dev-lambda',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    );
    for (const fn of FUNCTIONS.filter((f) => !missing.includes(f)))
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: `nightshift-dev-${fn}`,
          Runtime: 'nodejs22.x',
          Role: role.Role!.Arn!,
          Handler: 'index.handler',
          Code: { ZipFile: EMPTY_ZIP },
        }),
      );
    for (const fn of ['ecs-scheduler', 'rds-scheduler']) {
      const machine = await sfn.send(
        new CreateStateMachineCommand({
          name: `nightshift-dev-${fn}-fleet`,
          roleArn: 'arn:aws:iam::123456789012:role/nightshift-dev-fleet-states',
          definition: JSON.stringify({ StartAt: 'Fan', States: { Fan: { Type: 'Pass', End: true } } }),
        }),
      );
      machines[fn] = machine.stateMachineArn!;
    }
    // Another stage's fleet machine: never stopped by dev's halt.
    const other = await sfn.send(
      new CreateStateMachineCommand({
        name: 'nightshift-prod-ecs-scheduler-fleet',
        roleArn: 'arn:aws:iam::123456789012:role/nightshift-prod-fleet-states',
        definition: JSON.stringify({ StartAt: 'Fan', States: { Fan: { Type: 'Pass', End: true } } }),
      }),
    );
    machines.prod = other.stateMachineArn!;
    const start = (arn: string, name: string) =>
      sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name, input: '{}' }));
    for (let i = 0; i < 120; i++) await start(machines['ecs-scheduler']!, `ecs-run-${i}`);
    for (let i = 0; i < 3; i++) await start(machines['rds-scheduler']!, `rds-run-${i}`);
    const done = await start(machines['rds-scheduler']!, 'rds-run-done');
    await sfn.send(new StopExecutionCommand({ executionArn: done.executionArn }));
    await start(machines.prod, 'prod-run');

    await scheduler.send(new CreateScheduleGroupCommand({ Name: GROUP }));
    const schedule = (name: string, group: string, state: 'ENABLED' | 'DISABLED') =>
      scheduler.send(
        new CreateScheduleCommand({
          Name: name,
          GroupName: group,
          ScheduleExpression: 'cron(0 19 ? * MON-FRI *)',
          ScheduleExpressionTimezone: 'Europe/Berlin',
          Description: `the fleet's ${name}`,
          State: state,
          FlexibleTimeWindow: { Mode: 'OFF' },
          Target: {
            Arn: machines['ecs-scheduler']!,
            RoleArn: 'arn:aws:iam::123456789012:role/nightshift-dev-fleet-scheduler',
            Input: JSON.stringify({ event: { action: 'reconcile' }, maxConcurrency: 50 }),
          },
        }),
      );
    for (let i = 0; i < 60; i++) await schedule(`ecs-reconcile-${i}`, GROUP, 'ENABLED');
    for (let i = 0; i < 2; i++) await schedule(`kept-off-${i}`, GROUP, 'DISABLED');
    await schedule('not-the-fleets', 'default', 'ENABLED');
  };

  const statuses = async (arn: string) => {
    const out: Record<string, number> = {};
    for await (const page of paginateListExecutions({ client: sfn }, { stateMachineArn: arn }))
      for (const e of page.executions ?? []) out[e.status as ExecutionStatus] = (out[e.status!] ?? 0) + 1;
    return out;
  };
  const schedules = async (group: string) => {
    const out: Record<string, string> = {};
    for await (const page of paginateListSchedules({ client: scheduler }, { GroupName: group }))
      for (const s of page.Schedules ?? []) out[s.Name!] = s.State!;
    return out;
  };
  const reserved = async (fn: string) =>
    (await lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: `nightshift-dev-${fn}` })))
      .ReservedConcurrentExecutions;

  beforeEach(async () => {
    await deployStage();
  });

  it('switches off every function, disables every fleet schedule and stops every running fleet execution, over several pages', async () => {
    // Prepare
    const before = await scheduler.send(
      new GetScheduleCommand({ Name: 'ecs-reconcile-7', GroupName: GROUP }),
    );

    // Act
    const halt = await cli(['fleet', 'halt', '--yes']);

    // Assess
    expect(halt.code).toBe(0);
    for (const fn of FUNCTIONS) expect(await reserved(fn), fn).toBe(0);
    expect(await statuses(machines['ecs-scheduler']!)).toEqual({ ABORTED: 120 });
    expect(await statuses(machines['rds-scheduler']!)).toEqual({ ABORTED: 4 });
    expect(await statuses(machines.prod!)).toEqual({ RUNNING: 1 });
    const states = await schedules(GROUP);
    expect(Object.keys(states)).toHaveLength(62);
    expect(Object.values(states).every((s) => s === 'DISABLED')).toBe(true);
    expect(await schedules('default')).toEqual({ 'not-the-fleets': 'ENABLED' });
    // UpdateSchedule replaces the whole schedule: everything but its state is as it was
    const after = await scheduler.send(new GetScheduleCommand({ Name: 'ecs-reconcile-7', GroupName: GROUP }));
    const keep = ({ State: _s, LastModificationDate: _l, $metadata: _m, ...rest }: typeof before) => rest;
    expect(keep(after)).toEqual(keep(before));
    expect(after.State).toBe('DISABLED');
    expect(halt.err).toContain('done: switch off nightshift-dev-fleet: reserved concurrency 0');
    expect(halt.err).toContain(`done: disable the schedules in ${GROUP}: 60 disabled, 2 already disabled`);
    expect(halt.err).toContain(
      'done: stop the running executions of nightshift-dev-ecs-scheduler-fleet: 120 stopped',
    );
    expect(halt.err).toContain(
      'done: stop the running executions of nightshift-dev-rds-scheduler-fleet: 3 stopped',
    );
    expect(halt.err).toContain(
      'done: stop the running executions of nightshift-dev-ssm-restart-fleet: not deployed',
    );
    expect(halt.err).toContain('the kill switch is engaged for stage dev');
  });

  it('goes on with every other step when one fails, says which, and exits 1; --json prints one document', async () => {
    // Prepare: ssm-restart is not there (say, deleted by hand)
    await deployStage(['ssm-restart']);

    // Act
    const halt = await cli(['fleet', 'halt', '--yes', '--json']);

    // Assess
    expect(halt.code).toBe(1);
    const doc = JSON.parse(halt.out) as {
      stage: string;
      steps: Array<{ step: string; ok: boolean; detail: string }>;
    };
    expect(doc.stage).toBe('dev');
    expect(doc.steps.filter((s) => !s.ok)).toEqual([
      {
        step: 'switch off nightshift-dev-ssm-restart',
        ok: false,
        detail: expect.stringContaining('not found'),
      },
    ]);
    for (const fn of FUNCTIONS.filter((f) => f !== 'ssm-restart')) expect(await reserved(fn), fn).toBe(0);
    expect(await statuses(machines['ecs-scheduler']!)).toEqual({ ABORTED: 120 });
    expect(Object.values(await schedules(GROUP)).every((s) => s === 'DISABLED')).toBe(true);
    expect(halt.err).toContain('the kill switch is NOT fully engaged: 1 step(s) failed');
  });

  it('says so and fails when no function of the stage is there (a wrong --stage or --region)', async () => {
    const halt = await cli(['fleet', 'halt', '--yes', '--stage', 'dve']);

    expect(halt.code).toBe(1);
    expect(halt.err).toContain('no function of the stage was switched off: is it deployed in this region?');
    expect(await statuses(machines['ecs-scheduler']!)).toEqual({ RUNNING: 120 });
  });

  it('asks first at a terminal, refuses without one, and changes nothing unless confirmed', async () => {
    const piped = await cli(['fleet', 'halt']);
    const declined = await cli(['fleet', 'halt'], { interactive: true, answer: false });

    expect(piped.code).toBe(2);
    expect(piped.err).toContain('refusing to engage the kill switch without --yes');
    expect(declined.code).toBe(0);
    expect(declined.questions).toEqual(['Engage the kill switch of stage dev?']);
    for (const fn of FUNCTIONS) expect(await reserved(fn), fn).toBeUndefined();
    expect(await statuses(machines['ecs-scheduler']!)).toEqual({ RUNNING: 120 });
    expect(Object.values(await schedules(GROUP)).filter((s) => s === 'ENABLED')).toHaveLength(60);
  });
});
