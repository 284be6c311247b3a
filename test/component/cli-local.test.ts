/**
 * `nightshift --local` around a stub function: the real CLI, the real withOps (leases, reports), the
 * real serverless.yml params, with a stub in place of ecs-scheduler's run so the CLI's side of leases,
 * plan digests and the new report parts is tested whatever each function does today. DynamoDB (the
 * lease table) is simulated with aws-sdk-client-mock: here the lease table is "in AWS", not in moto.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { RunContext } from '#shared/handler.ts';
import { NOT_STARTED, resultOf, type PlannedWork } from '#shared/execute.ts';
import { claimOutcome, claimReason } from '#shared/lease.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { cli } from '#test/support/cli.ts';
import { localFunctionName } from '#scripts/cli/local.ts';
import type * as ServerlessSourceModule from '#scripts/cli/serverless-source.ts';

const CLUSTER = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
const web = (desired: number): PlannedWork => ({
  arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
  type: 'ecs-service',
  detail: `desiredCount ${desired} → 0; saved in tag nightshift:stopped`,
  hasWork: true,
});

interface StubInput {
  action: string;
  dryRun?: boolean;
  planDigest?: string;
}

const stub = vi.hoisted(() => ({
  /** The plan the stub function makes, per call (the last one repeats). */
  plans: [] as PlannedWork[][],
  inputs: [] as StubInput[],
  /** Replaces the stub's real run, for reports a test wants returned as they are. */
  report: undefined as ((input: StubInput) => Report) | undefined,
  killSwitch: false,
}));

/** A function that behaves as shared/plan-digest.ts and shared/lease.ts ask every function to. */
const stubRun = async (input: StubInput, ctx: RunContext): Promise<Report> => {
  stub.inputs.push(input);
  if (stub.report) return stub.report(input);
  const works = stub.plans[Math.min(stub.inputs.length - 1, stub.plans.length - 1)] ?? [];
  if (input.dryRun) {
    const rows = works.map((w) => resultOf(w, 'planned'));
    return { ...buildReport(input.action, true, rows), planDigest: planDigest(works) };
  }
  const refused = refuseChangedPlan(input.planDigest, works);
  if (refused) return buildReport(input.action, false, refused);
  const claim = await ctx.leases.take(CLUSTER);
  if (!claim.ok) {
    const reason = claimReason(claim, ctx.leases.table, new Date());
    return buildReport(
      input.action,
      false,
      works.map((w) => resultOf(w, claimOutcome(claim), { detail: reason })),
    );
  }
  return buildReport(
    input.action,
    false,
    works.map((w) => resultOf(w, 'changed')),
  );
};

vi.mock('#functions/ecs-scheduler/handler.ts', async () => {
  const { withOps } = await import('#shared/handler.ts');
  return {
    handler: withOps(
      'ecs-scheduler',
      (event) => event as StubInput,
      (input, ctx) => stubRun(input, ctx),
    ),
  };
});

vi.mock('#scripts/cli/serverless-source.ts', async (importOriginal) => {
  const real = await importOriginal<typeof ServerlessSourceModule>();
  return {
    ...real,
    readServerless: async () => {
      const source = await real.readServerless();
      if (stub.killSwitch) source.file.params.stage = { ...source.file.params.stage, killSwitch: 'true' };
      return source;
    },
  };
});

const dynamo = mockClient(DynamoDBClient);
const lambda = mockClient(LambdaClient);
const sns = mockClient(SNSClient);

/** The deployed nightshift-stage-ecs-scheduler's environment, as the stack sets it from serverless.yml. */
const DEPLOYED = {
  POWERTOOLS_LOG_LEVEL: 'INFO',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  NIGHTSHIFT_STAGE: 'stage',
  SUMMARY_TOPIC_ARN: 'arn:aws:sns:eu-central-1:123456789012:nightshift-stage-ops',
  LEASE_TABLE: 'nightshift-stage-leases',
  ALLOWED_ACCOUNTS: '',
  PROTECTED_ACCOUNT_PATTERNS: 'prod,production,live',
  SPOKE_EXTERNAL_ID: '',
  POWERTOOLS_SERVICE_NAME: 'ecs-scheduler',
  PROTECTED_TAGS: '',
  DRY_RUN: 'false',
  SCHEDULE_GRACE_MINUTES: '15',
  OVERRIDE_MAX_HOURS: '24',
  ENVIRONMENT_START_TIMEOUT_MINUTES: '30',
};

describe('nightshift --local with the stage’s configuration and lease table', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    process.env.AWS_REGION = 'eu-central-1';
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    delete process.env.AWS_ENDPOINT_URL;
    delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
  });
  afterAll(() => {
    process.env = saved;
  });
  beforeEach(() => {
    dynamo.reset();
    lambda.reset();
    sns.reset();
    sns.on(PublishCommand).resolves({});
    // The deployed function runs normally: no reserved concurrency set, its timeout from serverless.yml.
    lambda.on(GetFunctionConcurrencyCommand).resolves({});
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ Environment: { Variables: DEPLOYED }, Timeout: 300 });
    dynamo.on(GetItemCommand).resolves({});
    dynamo.on(PutItemCommand).resolves({});
    dynamo.on(DeleteItemCommand).resolves({});
    stub.plans = [[web(3)]];
    stub.inputs = [];
    stub.report = undefined;
    stub.killSwitch = false;
  });

  it('runs with the stage’s configuration and the deployed function’s, says so on stderr, and takes leases in its table as local:<user>@<host>', async () => {
    // Act
    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);

    // Assess
    expect(run.code).toBe(0);
    expect(run.err.split('\n').slice(0, 3)).toEqual([
      "--local: ecs-scheduler runs with stage stage's configuration from serverless.yml: " +
        'NIGHTSHIFT_STAGE=stage, LEASE_TABLE=nightshift-stage-leases, ' +
        'ALLOWED_ACCOUNTS="", PROTECTED_ACCOUNT_PATTERNS=prod,production,live, SPOKE_EXTERNAL_ID="", ' +
        'PROTECTED_TAGS="" (the built-in prod/production/live rules), DRY_RUN=false, SCHEDULE_GRACE_MINUTES=15, OVERRIDE_MAX_HOURS=24, ENVIRONMENT_START_TIMEOUT_MINUTES=30; ' +
        'not known locally, left as they are: SUMMARY_TOPIC_ARN',
      '--local: read the configuration of the deployed nightshift-stage-ecs-scheduler: it differs, and the stricter or the deployed value applies',
      '--local: SUMMARY_TOPIC_ARN: not known from serverless.yml, nightshift-stage-ecs-scheduler has ' +
        'arn:aws:sns:eu-central-1:123456789012:nightshift-stage-ops: the deployed value applies',
    ]);
    expect(lambda.commandCalls(GetFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'nightshift-stage-ecs-scheduler',
    });
    expect(process.env).toMatchObject({
      LEASE_TABLE: 'nightshift-stage-leases',
      DRY_RUN: 'false',
      SUMMARY_TOPIC_ARN: DEPLOYED.SUMMARY_TOPIC_ARN,
    });
    const put = dynamo.commandCalls(PutItemCommand)[0]?.args[0].input;
    expect(put?.TableName).toBe('nightshift-stage-leases');
    expect(put?.Item?.scope?.S).toBe(CLUSTER);
    expect(put?.Item?.holder?.S).toMatch(/^ecs-scheduler run [0-9a-f-]{36} \(local:[^@)]+@[^)]+\)$/);
    expect(put?.Item?.holder?.S).toContain(`(${localFunctionName()})`);
    // The run had the deployed function's 300 s, not Lambda's 900 s: its lease lasts that plus a minute.
    const held = Number(put?.Item?.expiresAt?.N) - Number(put?.Item?.acquiredAt?.N);
    expect(held).toBeGreaterThan(300_000);
    expect(held).toBeLessThanOrEqual(360_000);
    // The probe before the run read the same table.
    expect(dynamo.commandCalls(GetItemCommand)[0]?.args[0].input.TableName).toBe('nightshift-stage-leases');
    expect(run.out).toContain('ecs-scheduler stop: 1 changed');
  });

  it('says who holds a scope another run holds, changes nothing there, and exits 3', async () => {
    // Prepare: the cluster's lease is held by a deployed run that started two minutes ago
    const since = Date.now() - 120_000;
    dynamo.on(PutItemCommand).rejects(
      Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
        Item: {
          scope: { S: CLUSTER },
          holder: { S: 'ecs-scheduler run 7c1d (nightshift-stage-ecs-scheduler)' },
          token: { S: 'other' },
          acquiredAt: { N: String(since) },
          expiresAt: { N: String(since + 360_000) },
          version: { N: '1' },
        },
      }),
    );

    // Act
    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);

    // Assess
    expect(run.code).toBe(3);
    expect(run.out).toMatch(
      /web\s+│ ecs-service\s+│ undone\s+│ another run holds the lease on it: ecs-scheduler run 7c1d/,
    );
    expect(run.err).toContain(
      '1 not done: another run holds their lease (the row says who, since when, and when it expires); ' +
        'nothing changed there. Run the same command again once that run is done.',
    );
    // Not the time limit: the held scope is the only undone row.
    expect(run.err).not.toContain('reached its time limit');
  });

  it('refuses to change anything when the stage’s lease table cannot be reached, and exits 1', async () => {
    // Prepare: the stage is not deployed in this region
    dynamo
      .on(GetItemCommand)
      .rejects(
        Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }),
      );

    // Act
    const apply = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);
    const inputsAfterApply = stub.inputs.length;
    const dry = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--dry-run']);

    // Assess
    expect(apply.code).toBe(1);
    expect(apply.err).toContain(
      'refusing to run ecs-scheduler with --local: cannot use the lease table nightshift-stage-leases ' +
        '(ResourceNotFoundException: Requested resource not found — is the stage deployed in this region? (--region)). ' +
        'Without its leases another run could act on the same resources at the same time.',
    );
    expect(inputsAfterApply).toBe(0);
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
    // A dry run takes no leases: it still shows the plan.
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('ecs-scheduler stop (dry run): 0 changed, 1 planned');
  });

  it('refuses to change anything when the stage’s kill switch is on, and still shows a dry run', async () => {
    stub.killSwitch = true;

    const apply = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);
    const dry = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--dry-run']);

    expect(apply.code).toBe(2);
    expect(apply.err).toContain("stage stage's kill switch is on (killSwitch 'true' in serverless.yml)");
    expect(stub.inputs).toEqual([{ action: 'stop', clusters: ['stage'], dryRun: true }]);
    expect(dry.code).toBe(0);
  });

  it('refuses to change anything while the deployed function is switched off at run time (reserved concurrency 0)', async () => {
    // Prepare: the README's kill-switch loop ran; serverless.yml still says killSwitch 'false'
    lambda.on(GetFunctionConcurrencyCommand).resolves({ ReservedConcurrentExecutions: 0 });

    // Act
    const apply = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);

    // Assess
    expect(apply.code).toBe(2);
    expect(apply.err).toContain(
      'refusing to run ecs-scheduler with --local: nightshift-stage-ecs-scheduler is switched off (reserved concurrency 0: the kill switch)',
    );
    expect(lambda.commandCalls(GetFunctionConcurrencyCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'nightshift-stage-ecs-scheduler',
    });
    expect(stub.inputs).toEqual([]);
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
  });

  it('refuses to change anything when it cannot check the run-time kill switch, and exits 2', async () => {
    lambda
      .on(GetFunctionConcurrencyCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));

    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local'], {
      interactive: true,
      answer: true,
    });

    expect(run.code).toBe(2);
    expect(run.err).toContain(
      'refusing to run ecs-scheduler with --local: could not check whether nightshift-stage-ecs-scheduler is switched off ' +
        '(AccessDeniedException: not authorized); while that is unknown, a local run changes nothing',
    );
    expect(run.questions).toEqual([]);
    expect(stub.inputs).toEqual([]);
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
  });

  it('sends the confirmed plan’s digest with the apply, and applies a plan that did not change', async () => {
    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local'], {
      interactive: true,
      answer: true,
    });

    expect(stub.inputs).toEqual([
      { action: 'stop', clusters: ['stage'], dryRun: true },
      { action: 'stop', clusters: ['stage'], planDigest: planDigest([web(3)]) },
    ]);
    expect(run.code).toBe(0);
    expect(run.out).toContain('ecs-scheduler stop: 1 changed');
  });

  it('refuses an apply whose plan changed since it was confirmed, says so, and exits 3', async () => {
    // Prepare: someone scales web to 5 between the plan and the apply
    stub.plans = [[web(3)], [web(5)]];

    // Act
    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local'], {
      interactive: true,
      answer: true,
    });

    // Assess
    expect(run.questions).toEqual(['Apply 1 planned change(s) with your credentials?']);
    expect(run.code).toBe(3);
    expect(run.out).toMatch(/skipped\s+│ the plan changed since it was confirmed/);
    expect(run.out).toContain('ecs-scheduler stop: 0 changed, 0 planned, 0 unchanged, 1 skipped, 0 failed');
    expect(run.err).toContain(
      'the plan changed since you confirmed it (another run, a person or AWS changed something in between): ' +
        'nothing was changed. Run the command again to see the new plan, and confirm that one.',
    );
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
  });

  it('reports work left undone as not finished: exit 3 and what to do', async () => {
    stub.report = (input) =>
      buildReport(input.action, false, [
        resultOf(web(3), 'changed'),
        resultOf({ ...web(2), arn: web(2).arn.replace('web', 'api') }, 'undone', { detail: NOT_STARTED }),
      ]);

    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);

    expect(run.code).toBe(3);
    expect(run.out).toMatch(
      /stage\/api\s+│ ecs-service\s+│ undone\s+│ not started: the Lambda was about to time out/,
    );
    expect(run.out).toContain(
      'ecs-scheduler stop: 1 changed, 0 planned, 0 unchanged, 0 skipped, 1 undone, 0 failed',
    );
    expect(run.err).toContain(
      '1 undone: the run reached its time limit before starting them; nothing was lost. ' +
        'Run the same command again: the next run starts with them.',
    );
  });

  it('prints the counts of rows a large report does not list, and --json prints the report as returned', async () => {
    // Prepare: 1,500 unchanged services and one change; withOps counts the unchanged, not lists them
    const unchanged = Array.from({ length: 1500 }, (_, i) =>
      resultOf({ ...web(0), arn: `${web(0).arn}-${i}`, detail: 'already at 0' }, 'unchanged'),
    );
    stub.report = (input) => buildReport(input.action, false, [resultOf(web(3), 'changed'), ...unchanged]);

    // Act
    const table = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);
    const json = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes', '--json']);

    // Assess
    expect(table.out).toContain(
      'not listed: 1500 unchanged (counted in the summary)\n' +
        'ecs-scheduler stop: 1 changed, 0 planned, 1500 unchanged, 0 skipped, 0 failed',
    );
    expect(JSON.parse(json.out)).toEqual({
      action: 'stop',
      dryRun: false,
      summary: { changed: 1, planned: 0, unchanged: 1500, skipped: 0, undone: 0, waiting: 0, failed: 0 },
      resources: [resultOf(web(3), 'changed')],
      omitted: { unchanged: 1500 },
    });
  });
});
