/**
 * `nightshift fleet run --local`, `fleet status` and `fleet redrive` over result rows in moto's DynamoDB
 * (the hub's lease table). The function a fleet runs is a stub in place of ecs-scheduler's handler that
 * records the events it was called with and writes its own result row, as withOps does for a fleet
 * target: the CLI's side (targets, fan-out, rows, document, exit codes, redrive) is tested whatever each
 * function does with a target.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CreateStateMachineCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { finishRun, recordTarget, startRun, targetOutcome, type FleetRun } from '#shared/fleet/results.ts';
import type { Target } from '#shared/fleet/target.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { cli } from '#test/support/cli.ts';
import { dynamoClient, leaseTable } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

const TABLE = 'nightshift-dev-leases';
const A = '111111111111';
const B = '222222222222';
const C = '333333333333';
const STOP = '{"action":"stop","clusters":["stage"]}';

const stub = vi.hoisted(() => ({
  events: [] as Array<Record<string, unknown>>,
  /** Accounts whose invocation throws (the spoke role missing, say): the fan-out records them failed. */
  crash: new Set<string>(),
  /** Accounts the allowlist refuses: one `account` row `refused: …`, as withOps returns it. */
  refuse: new Set<string>(),
}));

vi.mock('#functions/ecs-scheduler/handler.ts', () => {
  return {
    handler: async (event: Record<string, unknown>) => {
      const { dynamoDbClient } = await import('#shared/aws/dynamodb.ts');
      const results = await import('#shared/fleet/results.ts');
      const report = await import('#shared/report.ts');
      stub.events.push(event);
      const target = event.target as Target;
      if (stub.crash.has(target.account))
        throw new Error(`AccessDenied: cannot assume the spoke role in ${target.account}`);
      const rows: Report['resources'] = stub.refuse.has(target.account)
        ? [
            {
              arn: target.account,
              type: 'account',
              outcome: 'skipped',
              detail: `refused: alias acme-production matches "production"`,
            },
          ]
        : [
            {
              arn: `arn:aws:ecs:${target.region}:${target.account}:service/stage/web`,
              type: 'ecs-service',
              outcome: event.dryRun ? 'planned' : 'changed',
              detail: 'desiredCount 2 → 0',
            },
          ];
      const done = report.buildReport(String(event.action), event.dryRun === true, rows);
      const fleet = event.fleet as { run: string };
      await results.recordTarget(dynamoDbClient(), process.env.LEASE_TABLE!, fleet.run, {
        ...target,
        ...results.targetOutcome(done),
        summary: done.summary,
        finishedAt: new Date().toISOString(),
      });
      return done;
    },
  };
});

const targetsOf = (events: Array<Record<string, unknown>>) =>
  events.map((e) => `${(e.target as Target).account}#${(e.target as Target).region}`).sort();

describe.runIf(motoTestsEnabled())('nightshift fleet run --local, status and redrive against moto', () => {
  let moto: Moto;
  const dynamo = () => dynamoClient(moto.url);

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
  });
  afterAll(() => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    await leaseTable(moto.url, TABLE);
    stub.events = [];
    stub.crash = new Set();
    stub.refuse = new Set();
  });

  /** A finished run of ecs-scheduler with these results (missing targets have no row). */
  const seedRun = async (
    run: string,
    targets: Target[],
    result: (t: Target, i: number) => 'succeeded' | 'failed' | 'refused' | 'missing',
    extra: Partial<FleetRun> = {},
  ) => {
    const client = dynamo();
    await startRun(client, TABLE, {
      run,
      function: 'ecs-scheduler',
      dryRun: false,
      event: { action: 'stop', clusters: ['stage'] },
      targets,
      startedAt: '2026-11-30T09:00:00.000Z',
      runner: 'local',
      ...extra,
    });
    for (const [i, t] of targets.entries()) {
      const status = result(t, i);
      if (status === 'missing') continue;
      const resources: Report['resources'] =
        status === 'refused'
          ? [
              {
                arn: t.account,
                type: 'account',
                outcome: 'skipped',
                detail: `refused: account ${t.account} is not in ALLOWED_ACCOUNTS`,
              },
            ]
          : [
              {
                arn: `svc-${i}`,
                type: 'ecs-service',
                outcome: status === 'failed' ? 'failed' : 'changed',
                detail: 'desiredCount 2 → 0',
                ...(status === 'failed' && { error: 'AccessDeniedException' }),
              },
            ];
      const report = buildReport('stop', false, resources);
      await recordTarget(client, TABLE, run, {
        ...t,
        ...targetOutcome(report),
        summary: report.summary,
        finishedAt: '2026-11-30T09:00:30.000Z',
      });
    }
    if (!('finishedAt' in extra)) await finishRun(client, TABLE, run, new Date('2026-11-30T09:01:00.000Z'));
  };

  /** 65 accounts × 2 regions: more targets than one BatchGetItem reads (100). */
  const many: Target[] = Array.from({ length: 65 }, (_, i) => String(100000000000 + i)).flatMap((account) =>
    ['eu-central-1', 'eu-west-1'].map((region) => ({ account, region })),
  );
  const kindOf = (_t: Target, i: number) =>
    i % 10 === 3 ? 'failed' : i % 10 === 7 ? 'refused' : i % 25 === 24 ? 'missing' : 'succeeded';

  it('shows every target of a run of more than 100 as exactly one JSON document, missing rows failed once it finished, and exits 1', async () => {
    // Prepare
    await seedRun('run-many', many, kindOf);

    // Act
    const status = await cli(['fleet', 'status', 'run-many', '--json']);

    // Assess
    expect(status.code).toBe(1);
    const doc = JSON.parse(status.out) as {
      targets: Array<Target & { status: string; reason: string; summary: unknown }>;
    };
    expect(Object.keys(doc)).toEqual(['run', 'function', 'dryRun', 'wallSeconds', 'targets']);
    expect(doc).toMatchObject({ run: 'run-many', function: 'ecs-scheduler', dryRun: false, wallSeconds: 60 });
    expect(doc.targets).toHaveLength(130);
    expect(doc.targets.map((t) => `${t.account}#${t.region}`)).toEqual(
      many.map((t) => `${t.account}#${t.region}`),
    );
    const count = (s: string) => doc.targets.filter((t) => t.status === s).length;
    const expected = many.map(kindOf);
    expect(count('failed')).toBe(expected.filter((k) => k === 'failed' || k === 'missing').length);
    expect(count('refused')).toBe(expected.filter((k) => k === 'refused').length);
    expect(count('succeeded')).toBe(expected.filter((k) => k === 'succeeded').length);
    expect(doc.targets[24]).toEqual({
      ...many[24],
      status: 'failed',
      reason: 'no result was recorded for this target',
      summary: null,
    });
    expect(doc.targets[3]).toMatchObject({ status: 'failed', summary: { failed: 1 } });
  });

  it('shows the latest run as a table, failures first, with a one-line summary; refused is not failed (exit 0)', async () => {
    // Prepare: an older run that failed, then the latest, with refused accounts (once per region)
    await seedRun('run-old', [{ account: A, region: 'eu-central-1' }], () => 'failed');
    const targets = [A, B, C].flatMap((account) =>
      ['eu-central-1', 'eu-west-1'].map((region) => ({ account, region })),
    );
    await seedRun('run-new', targets, (t) => (t.account === C ? 'refused' : 'succeeded'));

    // Act
    const status = await cli(['fleet', 'status']);

    // Assess
    expect(status.code).toBe(0);
    const lines = status.out.split('\n').filter((l) => /\d{12}/.test(l));
    expect(lines.map((l) => l.match(/(succeeded|failed|refused)/)?.[1])).toEqual([
      'refused',
      'refused',
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(status.out).toContain(
      'ecs-scheduler fleet run run-new: 6 targets: 0 failed, 2 refused, 4 succeeded; 60 s',
    );
  });

  it('says a run still going is pending, exits 0, and refuses to redrive it (exit 2)', async () => {
    await seedRun(
      'run-going',
      [
        { account: A, region: 'eu-central-1' },
        { account: B, region: 'eu-central-1' },
      ],
      (t) => (t.account === A ? 'succeeded' : 'missing'),
      { finishedAt: undefined },
    );

    const status = await cli(['fleet', 'status', 'run-going', '--json']);
    const redrive = await cli(['fleet', 'redrive', 'run-going', '--local', '--yes']);

    expect(status.code).toBe(0);
    expect(JSON.parse(status.out).targets).toEqual([
      expect.objectContaining({ account: A, status: 'succeeded' }),
      { account: B, region: 'eu-central-1', status: 'pending', reason: 'running', summary: null },
    ]);
    expect(redrive.code).toBe(2);
    expect(redrive.err).toContain(
      'refusing to redrive fleet run run-going: it is still going (1 target(s) pending)',
    );
    expect(stub.events).toEqual([]);
  });

  it('redrives only the failed targets and those without a row, with the same event, as a new run', async () => {
    // Prepare
    await seedRun('run-many', many, kindOf);
    const again = many.filter((t, i) => ['failed', 'missing'].includes(kindOf(t, i)));

    // Act
    const redrive = await cli(['fleet', 'redrive', 'run-many', '--local', '--yes', '--json']);

    // Assess: the worker ran those targets only, with the stored event, a target and the new run
    expect(redrive.code).toBe(0);
    expect(targetsOf(stub.events)).toEqual(again.map((t) => `${t.account}#${t.region}`).sort());
    const doc = JSON.parse(redrive.out) as { run: string; targets: Array<{ status: string }> };
    expect(doc.run).not.toBe('run-many');
    expect(doc.targets).toHaveLength(again.length);
    expect(doc.targets.every((t) => t.status === 'succeeded')).toBe(true);
    expect(stub.events[0]).toEqual({
      action: 'stop',
      clusters: ['stage'],
      target: expect.any(Object),
      fleet: { run: doc.run },
    });
    // Its own record says what it re-ran
    const status = JSON.parse((await cli(['fleet', 'status', doc.run, '--json'])).out);
    expect(status.targets).toHaveLength(again.length);
  });

  it('says so and exits 0 when a run has nothing failed to redrive', async () => {
    await seedRun(
      'run-fine',
      [
        { account: A, region: 'eu-central-1' },
        { account: C, region: 'eu-central-1' },
      ],
      (t) => (t.account === C ? 'refused' : 'succeeded'),
    );

    const redrive = await cli(['fleet', 'redrive', 'run-fine', '--local', '--yes']);

    expect(redrive.code).toBe(0);
    expect(redrive.err).toContain('nothing failed in fleet run run-fine: nothing to redrive.');
    expect(stub.events).toEqual([]);
  });

  it('counts a state-machine run whose execution was stopped as finished: its targets without a row failed, and redriven', async () => {
    // Prepare: the execution of the run exists in moto and was aborted before the run finished
    const sfn = new SFNClient({});
    const machine = await sfn.send(
      new CreateStateMachineCommand({
        name: 'nightshift-dev-ecs-scheduler-fleet',
        roleArn: 'arn:aws:iam::123456789012:role/nightshift-dev-fleet-states',
        definition: JSON.stringify({ StartAt: 'Wait', States: { Wait: { Type: 'Pass', End: true } } }),
      }),
    );
    const execution = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: machine.stateMachineArn,
        name: 'run-aborted',
        input: '{}',
      }),
    );
    await sfn.send(new StopExecutionCommand({ executionArn: execution.executionArn }));
    const targets = [
      { account: A, region: 'eu-central-1' },
      { account: B, region: 'eu-central-1' },
    ];
    await seedRun('run-aborted', targets, (t) => (t.account === A ? 'succeeded' : 'missing'), {
      runner: 'state-machine',
      finishedAt: undefined,
    });

    // Act
    const status = await cli(['fleet', 'status', 'run-aborted', '--json']);
    const redrive = await cli(['fleet', 'redrive', 'run-aborted', '--local', '--yes']);

    // Assess
    expect(status.code).toBe(1);
    expect(status.err).toContain('its execution ended ABORTED before the run finished');
    expect(JSON.parse(status.out).targets.map((t: { status: string }) => t.status)).toEqual([
      'succeeded',
      'failed',
    ]);
    expect(redrive.code).toBe(0);
    expect(targetsOf(stub.events)).toEqual([`${B}#eu-central-1`]);
  });

  it('runs an event on every target locally, records each, and exits 1 when one failed (a refused one is not failed)', async () => {
    // Prepare
    stub.crash.add(B);
    stub.refuse.add(C);

    // Act
    const run = await cli(
      [
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        '{"action":"stop","clusters":["stage"]}',
        '--accounts',
        `${A},${B},${C}`,
        '--regions',
        'eu-central-1,eu-west-1',
        '--local',
        '--yes',
        '--json',
        '--param',
        'fleetMaxConcurrency=2',
      ],
      { interactive: true },
    );

    // Assess
    expect(run.code).toBe(1);
    expect(targetsOf(stub.events)).toEqual([A, B, C].flatMap((a) => [`${a}#eu-central-1`, `${a}#eu-west-1`]));
    const doc = JSON.parse(run.out) as {
      run: string;
      dryRun: boolean;
      targets: Array<Target & { status: string; reason: string }>;
    };
    expect(doc.dryRun).toBe(false);
    expect(doc.targets.map((t) => [t.account, t.region, t.status])).toEqual([
      [A, 'eu-central-1', 'succeeded'],
      [A, 'eu-west-1', 'succeeded'],
      [B, 'eu-central-1', 'failed'],
      [B, 'eu-west-1', 'failed'],
      [C, 'eu-central-1', 'refused'],
      [C, 'eu-west-1', 'refused'],
    ]);
    expect(doc.targets[2]?.reason).toContain('cannot assume the spoke role');
    expect(run.progress.at(-1)).toMatch(/\[#{20}\] 6\/6 targets$/);
    expect(run.err).toContain(`nightshift fleet redrive ${doc.run} --stage dev --local`);
    // The same run, read back from the table
    const status = await cli(['fleet', 'status', doc.run, '--json']);
    expect(JSON.parse(status.out).targets).toEqual(doc.targets);
  });

  it('adds dryRun to the event with --dry-run and asks nothing', async () => {
    const run = await cli([
      'fleet',
      'run',
      'ecs-scheduler',
      '--input',
      '{"action":"stop","clusters":["stage"]}',
      '--accounts',
      A,
      '--regions',
      'eu-central-1',
      '--local',
      '--dry-run',
    ]);

    expect(run.code).toBe(0);
    expect(run.questions).toEqual([]);
    expect(stub.events).toEqual([
      {
        action: 'stop',
        clusters: ['stage'],
        dryRun: true,
        target: { account: A, region: 'eu-central-1' },
        fleet: { run: expect.any(String) },
      },
    ]);
    expect(run.out).toContain('(dry run): 1 targets: 0 failed, 0 refused, 1 succeeded');
  });

  it('shows what it will run and asks at a terminal; refuses without one (exit 2); runs nothing either way', async () => {
    const asked = await cli(
      [
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        '{"action":"stop","clusters":["stage"]}',
        '--accounts',
        `${A},${B}`,
        '--regions',
        'eu-central-1,eu-west-1',
        '--local',
      ],
      { interactive: true, answer: false },
    );
    const piped = await cli([
      'fleet',
      'run',
      'ecs-scheduler',
      '--input',
      '{"action":"stop","clusters":["stage"]}',
      '--accounts',
      A,
      '--regions',
      'eu-central-1',
      '--local',
    ]);

    expect(asked.code).toBe(0);
    expect(asked.questions).toEqual(['Run it on 4 target(s) in stage dev?']);
    expect(asked.err).toContain('fleet run: ecs-scheduler in stage dev (local, in this process)');
    expect(asked.err).toContain('event: {"action":"stop","clusters":["stage"]}');
    expect(asked.err).toContain('targets: 4');
    expect(asked.err).toContain(`accounts (2): ${A}, ${B}`);
    expect(asked.err).toContain('regions (2): eu-central-1, eu-west-1');
    expect(asked.err).toContain('nothing was run.');
    expect(piped.code).toBe(2);
    expect(piped.err).toContain('refusing to run ecs-scheduler on the fleet without --yes');
    expect(stub.events).toEqual([]);
  });

  it('refuses a local fleet run, even a dry run, whose spoke roles would be assumed outside the emulator (exit 2)', async () => {
    process.env.AWS_ENDPOINT_URL_STS = 'https://sts.amazonaws.com';
    try {
      const run = await cli([
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        STOP,
        '--accounts',
        A,
        '--regions',
        'eu-central-1',
        '--local',
        '--dry-run',
      ]);

      expect(run.code).toBe(2);
      expect(run.err).toContain(
        'refusing to run a fleet run of ecs-scheduler with --local: its calls would go partly to a local emulator',
      );
      expect(run.err).toContain('STS (AWS_ENDPOINT_URL_STS=https://sts.amazonaws.com)');
      expect(stub.events).toEqual([]);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_STS;
    }
  });

  it('refuses a change on the fleet when the stage’s DRY_RUN makes the function only plan (exit 2), and runs nothing', async () => {
    // rds-scheduler has DRY_RUN=true in prod (serverless.yml)
    const run = await cli([
      'fleet',
      'run',
      'rds-scheduler',
      '--input',
      '{"action":"stop","instances":["orders"]}',
      '--accounts',
      A,
      '--regions',
      'eu-central-1',
      '--stage',
      'prod',
      '--local',
      '--yes',
    ]);

    expect(run.code).toBe(2);
    expect(run.err).toContain('rds-scheduler only plans in stage prod (DRY_RUN is true for it)');
    expect(stub.events).toEqual([]);
  });

  it('refuses bad usage with exit 2, naming the field, before any run', async () => {
    const run = (...args: string[]) => cli(['fleet', 'run', ...args, '--local', '--yes', '--json']);

    const withTarget = await run(
      'ecs-scheduler',
      '--input',
      `{"action":"stop","target":{"account":"${A}","region":"eu-central-1"}}`,
      '--regions',
      'eu-central-1',
      '--accounts',
      A,
    );
    const withFleet = await run(
      'ecs-scheduler',
      '--input',
      '{"action":"stop","fleet":{"run":"x"}}',
      '--regions',
      'eu-central-1',
      '--accounts',
      A,
    );
    const refusedByFunction = await run(
      'ecs-scheduler',
      '--input',
      '{"action":"nap"}',
      '--regions',
      'eu-central-1',
      '--accounts',
      A,
    );
    const notJson = await run(
      'ecs-scheduler',
      '--input',
      '{action',
      '--regions',
      'eu-central-1',
      '--accounts',
      A,
    );
    const unknownFn = await run('fleet', '--input', '{}');
    const badAccount = await run(
      'ecs-scheduler',
      '--input',
      STOP,
      '--accounts',
      '1234',
      '--regions',
      'eu-central-1',
    );
    const badParam = await run(
      'ecs-scheduler',
      '--input',
      STOP,
      '--param',
      'nope=1',
      '--accounts',
      A,
      '--regions',
      'eu-central-1',
    );
    const badConcurrency = await run(
      'ecs-scheduler',
      '--input',
      STOP,
      '--param',
      'fleetMaxConcurrency=0',
      '--accounts',
      A,
      '--regions',
      'eu-central-1',
    );
    const noRegions = await run('ecs-scheduler', '--input', STOP, '--accounts', A);
    const status = await cli(['fleet', 'status', 'no-such-run', '--json']);

    for (const refused of [
      withTarget,
      withFleet,
      refusedByFunction,
      notJson,
      unknownFn,
      badAccount,
      badParam,
      badConcurrency,
      noRegions,
      status,
    ]) {
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.out)).toMatchObject({ error: { type: 'Refused', exitCode: 2 } });
    }
    expect(withTarget.err).toContain('field "target": a fleet run sets it on every target itself');
    expect(withFleet.err).toContain('field "fleet"');
    expect(refusedByFunction.err).toContain('field "action"');
    expect(badAccount.err).toContain('--accounts: "1234" is not a 12-digit AWS account id');
    expect(badParam.err).toContain('--param: nope is not a param of the stage');
    expect(badConcurrency.err).toContain('fleetMaxConcurrency: "0" is not a whole number from 1 to 10000');
    expect(noRegions.err).toContain('fleetRegions: no region to run in');
    expect(status.err).toContain('no fleet run no-such-run in nightshift-dev-leases');
    expect(stub.events).toEqual([]);
  });
});
