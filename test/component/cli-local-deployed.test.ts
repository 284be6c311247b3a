/**
 * `nightshift --local` is never less guarded than the deployed function of its stage: against AWS, a
 * run that would change something reads the deployed function's configuration (GetFunctionConfiguration)
 * and takes the stricter of it and serverless.yml, and refuses when it cannot know either; a run counts
 * as local (the lease table created, the AWS checks skipped) only when every endpoint it uses is local.
 * The real CLI and withOps around a stub ecs-scheduler run that records what it was configured with;
 * Lambda, DynamoDB and SNS simulated with aws-sdk-client-mock. Each test loads the CLI afresh: a
 * handler's configuration is per process, as at a Lambda cold start.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { RunContext } from '#shared/handler.ts';
import { resultOf, type PlannedWork } from '#shared/execute.ts';
import { buildReport, type Report } from '#shared/report.ts';
import type * as ServerlessSourceModule from '#scripts/cli/serverless-source.ts';
import type { ServerlessFile } from '#scripts/cli/serverless-source.ts';
import type { cli as CliRunner } from '#test/support/cli.ts';

const CLUSTER = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
const WEB: PlannedWork = {
  arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
  type: 'ecs-service',
  detail: 'desiredCount 3 → 0; saved in tag nightshift:stopped',
  hasWork: true,
};

interface Seen {
  dryRun: boolean;
  DRY_RUN: string | undefined;
  PROTECTED_TAGS: string | undefined;
  LEASE_TABLE: string | undefined;
}

const stub = vi.hoisted(() => ({
  runs: [] as Seen[],
  /** Changes serverless.yml as the CLI reads it. */
  serverless: undefined as ((file: ServerlessFile) => void) | undefined,
}));

/** Records what the run was configured with, and behaves as a function does with DRY_RUN and leases. */
const stubRun = async (input: { action: string; dryRun?: boolean }, ctx: RunContext): Promise<Report> => {
  const dryRun = input.dryRun === true || process.env.DRY_RUN === 'true';
  stub.runs.push({
    dryRun,
    DRY_RUN: process.env.DRY_RUN,
    PROTECTED_TAGS: process.env.PROTECTED_TAGS,
    LEASE_TABLE: process.env.LEASE_TABLE,
  });
  if (dryRun) return buildReport(input.action, true, [resultOf(WEB, 'planned')]);
  const claim = await ctx.leases.take(CLUSTER);
  return buildReport(input.action, false, [resultOf(WEB, claim.ok ? 'changed' : 'failed')]);
};

vi.mock('#functions/ecs-scheduler/handler.ts', async () => {
  const { withOps } = await import('#shared/handler.ts');
  // A handler per invocation: withOps reads LEASE_TABLE once per cold start, and each test is one.
  return {
    handler: (event: unknown, context: unknown) =>
      withOps(
        'ecs-scheduler',
        (e) => e as { action: string; dryRun?: boolean },
        (input, ctx) => stubRun(input, ctx),
      )(event, context as never),
  };
});

vi.mock('#scripts/cli/serverless-source.ts', async (importOriginal) => {
  const real = await importOriginal<typeof ServerlessSourceModule>();
  return {
    ...real,
    readServerless: async () => {
      const source = await real.readServerless();
      stub.serverless?.(source.file);
      return source;
    },
  };
});

const dynamo = mockClient(DynamoDBClient);
const lambda = mockClient(LambdaClient);
const sns = mockClient(SNSClient);

/** The deployed function's environment, as the stack sets it from serverless.yml for `stage`. */
const deployed = (stage: string, over: Record<string, string> = {}) => ({
  POWERTOOLS_LOG_LEVEL: 'INFO',
  NIGHTSHIFT_STAGE: stage,
  SUMMARY_TOPIC_ARN: `arn:aws:sns:eu-central-1:123456789012:nightshift-${stage}-ops`,
  LEASE_TABLE: `nightshift-${stage}-leases`,
  POWERTOOLS_SERVICE_NAME: 'ecs-scheduler',
  PROTECTED_TAGS: '',
  DRY_RUN: 'false',
  ...over,
});

/** The CLI, loaded afresh (see the file comment). */
const cli = async (...args: Parameters<typeof CliRunner>) => {
  vi.resetModules();
  const support = await import('#test/support/cli.ts');
  return support.cli(...args);
};

const ENDPOINTS = /^AWS_ENDPOINT_URL/;

describe('nightshift --local against AWS takes the stricter of serverless.yml and the deployed function', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env = {
      ...saved,
      AWS_REGION: 'eu-central-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    };
    for (const name of Object.keys(process.env)) if (ENDPOINTS.test(name)) delete process.env[name];
    delete process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS;
    for (const m of [dynamo, lambda, sns]) m.reset();
    lambda.on(GetFunctionConcurrencyCommand).resolves({});
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ Environment: { Variables: deployed('stage') }, Timeout: 300 });
    dynamo.on(GetItemCommand).resolves({});
    dynamo.on(PutItemCommand).resolves({});
    dynamo.on(DeleteItemCommand).resolves({});
    sns.on(PublishCommand).resolves({});
    stub.runs = [];
    stub.serverless = undefined;
  });
  afterEach(() => {
    process.env = saved;
  });

  it('refuses to change anything when the deployed configuration cannot be read, and still shows a dry run', async () => {
    // Prepare: the stage is not deployed in this region, or the operator may not read it
    lambda
      .on(GetFunctionConfigurationCommand)
      .rejectsOnce(Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' }))
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));

    // Act
    const missing = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);
    const denied = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);
    const runsBeforeDry = stub.runs.length;
    const dry = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--dry-run']);

    // Assess
    expect([missing.code, denied.code]).toEqual([2, 2]);
    expect(missing.err).toContain(
      'refusing to change anything with --local: cannot read the configuration of the deployed nightshift-stage-ecs-scheduler ' +
        '(ResourceNotFoundException: Function not found — is the stage deployed in this region? (--stage, --region, --service-name)), ' +
        'so this run could be less guarded than it (its DRY_RUN, its PROTECTED_TAGS, params given at deploy time with --param). ' +
        'Add --dry-run to see the plan, or run the deployed function (without --local).',
    );
    expect(denied.err).toContain(
      '(AccessDeniedException: not authorized — your credentials need lambda:GetFunctionConfiguration on it)',
    );
    expect(runsBeforeDry).toBe(0);
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
    expect(dry.code).toBe(0);
    expect(dry.err).toContain(
      '--local: cannot read the configuration of the deployed nightshift-stage-ecs-scheduler (AccessDeniedException: not authorized',
    );
    expect(dry.out).toContain('ecs-scheduler stop (dry run): 0 changed, 1 planned');
  });

  it('runs as a dry run and exits 2 when the deployed function has DRY_RUN=true, for a stage without params in serverless.yml', async () => {
    // Prepare: prod-eu has no params block (ecsDryRun defaults to 'false'); it was deployed with
    // --param="ecsDryRun=true"
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ Environment: { Variables: deployed('prod-eu', { DRY_RUN: 'true' }) }, Timeout: 300 });

    // Act
    const run = await cli(['--stage', 'prod-eu', 'stop', '--cluster', 'stage', '--local'], {
      interactive: true,
      answer: true,
      env: { DRY_RUN: 'false' },
    });

    // Assess
    expect(run.err).toContain('(no params for stage prod-eu there: the defaults apply)');
    expect(run.err).toContain(
      '--local: DRY_RUN: serverless.yml has false, nightshift-prod-eu-ecs-scheduler has true: true applies (the stricter)',
    );
    expect(run.err).toContain('this run is a dry run, and nothing will change.');
    expect(run.questions).toEqual([]);
    expect(stub.runs).toEqual([
      { dryRun: true, DRY_RUN: 'true', PROTECTED_TAGS: '', LEASE_TABLE: 'nightshift-prod-eu-leases' },
    ]);
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
    // A change was asked for and the stage's DRY_RUN refused it: not done.
    expect(run.err).toContain(
      'DRY_RUN is true for it in this stage, so nothing changed. This is a refusal (exit 2)',
    );
    expect(run.code).toBe(2);
  });

  it('makes the run a dry run for the operator’s DRY_RUN=TRUE, 1, yes, True: nothing asked, no lease, nothing changed', async () => {
    for (const own of ['TRUE', '1', 'yes', 'True']) {
      // Act
      const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local'], {
        interactive: true,
        answer: true,
        env: { DRY_RUN: own },
      });

      // Assess
      expect(run.err, own).toContain(
        `--local: your DRY_RUN=${own} applies: every run is a dry run (stage stage has false)`,
      );
      expect(run.err, own).toContain('this run is a dry run, and nothing will change.');
      expect(run.questions, own).toEqual([]);
      expect(run.code, own).toBe(0);
    }
    expect(stub.runs.map((r) => [r.dryRun, r.DRY_RUN])).toEqual([
      [true, 'true'],
      [true, 'true'],
      [true, 'true'],
      [true, 'true'],
    ]);
    expect(dynamo.commandCalls(PutItemCommand)).toHaveLength(0);
  });

  it('refuses (exit 2) an operator’s DRY_RUN it cannot read, naming it and what it accepts, before any call', async () => {
    // Act
    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes', '--json'], {
      env: { DRY_RUN: 'ture' },
    });

    // Assess
    expect(run.code).toBe(2);
    expect(run.err).toContain(
      'DRY_RUN=ture in your environment is neither on (true, 1, yes) nor off (false, 0, no, empty), in any case; nothing was run.',
    );
    expect(JSON.parse(run.out)).toMatchObject({ error: { type: 'Refused', exitCode: 2 } });
    expect(stub.runs).toEqual([]);
    expect(lambda.calls()).toHaveLength(0);
    expect(dynamo.calls()).toHaveLength(0);
  });

  it('protects what either protects, and leases in the table the deployed function uses, saying each difference', async () => {
    // Prepare: deployed with --param="protectedTags=team=payments", and its table renamed by hand
    lambda.on(GetFunctionConfigurationCommand).resolves({
      Environment: {
        Variables: deployed('stage', {
          PROTECTED_TAGS: 'team=payments',
          LEASE_TABLE: 'nightshift-stage-leases-v2',
        }),
      },
      Timeout: 120,
    });

    // Act
    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes']);

    // Assess
    expect(run.code).toBe(0);
    const builtIn =
      'env=prod,env=production,env=live,environment=prod,environment=production,environment=live,' +
      'stage=prod,stage=production,stage=live';
    expect(stub.runs).toEqual([
      {
        dryRun: false,
        DRY_RUN: 'false',
        PROTECTED_TAGS: `${builtIn},team=payments`,
        LEASE_TABLE: 'nightshift-stage-leases-v2',
      },
    ]);
    expect(run.err).toContain(
      `--local: PROTECTED_TAGS: serverless.yml has "", nightshift-stage-ecs-scheduler has team=payments: both protect, ${builtIn},team=payments applies`,
    );
    expect(run.err).toContain(
      '--local: LEASE_TABLE: serverless.yml has nightshift-stage-leases, nightshift-stage-ecs-scheduler has nightshift-stage-leases-v2: the deployed value applies',
    );
    const put = dynamo.commandCalls(PutItemCommand)[0]?.args[0].input;
    expect(put?.TableName).toBe('nightshift-stage-leases-v2');
    // The deployed function's own timeout (120 s here), not serverless.yml's or Lambda's 900 s.
    expect(Number(put?.Item?.expiresAt?.N) - Number(put?.Item?.acquiredAt?.N)).toBeLessThanOrEqual(180_000);
  });

  it('refuses to change anything when serverless.yml leaves a guardrail unresolved, before any call', async () => {
    stub.serverless = (file) => {
      file.functions['ecs-scheduler'] = {
        ...file.functions['ecs-scheduler'],
        DRY_RUN: '${ssm:/nightshift/ecs-dry-run}',
      };
    };

    const run = await cli(['--stage', 'stage', 'stop', '--cluster', 'stage', '--local', '--yes'], {
      env: { DRY_RUN: 'false' },
    });

    expect(run.code).toBe(2);
    expect(run.err).toContain(
      'refusing to change anything with --local: DRY_RUN of ecs-scheduler in stage stage cannot be known from serverless.yml ' +
        '(DRY_RUN: "${ssm:/nightshift/ecs-dry-run}"), so this run could be less guarded than nightshift-stage-ecs-scheduler. ' +
        'Add --dry-run to see the plan, or run the deployed function (without --local).',
    );
    expect(stub.runs).toEqual([]);
    expect(lambda.calls()).toHaveLength(0);
  });
});

describe('nightshift --local counts as local only when every endpoint is local', () => {
  const saved = { ...process.env };
  const MOTO = 'http://127.0.0.1:5999';
  beforeEach(() => {
    process.env = {
      ...saved,
      AWS_REGION: 'eu-central-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    };
    for (const name of Object.keys(process.env)) if (ENDPOINTS.test(name)) delete process.env[name];
    delete process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS;
    for (const m of [dynamo, lambda, sns]) m.reset();
    lambda.on(GetFunctionConcurrencyCommand).resolves({});
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ Environment: { Variables: deployed('dev') }, Timeout: 300 });
    dynamo
      .on(DescribeTableCommand)
      .rejects(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' }));
    dynamo.on(CreateTableCommand).resolves({});
    dynamo.on(UpdateTimeToLiveCommand).resolves({});
    dynamo.on(GetItemCommand).resolves({});
    dynamo.on(PutItemCommand).resolves({});
    dynamo.on(DeleteItemCommand).resolves({});
    stub.runs = [];
    stub.serverless = undefined;
  });
  afterEach(() => {
    process.env = saved;
  });

  it('refuses to change anything when only the lease table is local and the rest goes to AWS', async () => {
    // Prepare: the lease table in moto, ECS and the rest in the account
    process.env.AWS_ENDPOINT_URL_DYNAMODB = MOTO;

    // Act
    const run = await cli(['stop', '--cluster', 'stage', '--local', '--yes']);
    const dry = await cli(['stop', '--cluster', 'stage', '--local', '--dry-run']);

    // Assess
    expect(run.code).toBe(2);
    expect(run.err).toContain(
      `refusing to run ecs-scheduler with --local: its calls would go partly to a local emulator (DynamoDB (AWS_ENDPOINT_URL_DYNAMODB=${MOTO})) ` +
        'and partly elsewhere (Application Auto Scaling (no endpoint set: AWS), Auto Scaling (no endpoint set: AWS), CloudWatch (no endpoint set: AWS), ECS (no endpoint set: AWS), ' +
        'EventBridge (no endpoint set: AWS), ' +
        'Lambda (no endpoint set: AWS), RDS (no endpoint set: AWS), Scheduler (no endpoint set: AWS), SNS (no endpoint set: AWS)).',
    );
    expect(stub.runs).toEqual([
      { dryRun: true, DRY_RUN: 'false', PROTECTED_TAGS: '', LEASE_TABLE: 'nightshift-dev-leases' },
    ]);
    // Nothing created or checked in the emulator, for the refused run or the dry run.
    expect(dynamo.commandCalls(DescribeTableCommand)).toHaveLength(0);
    expect(dynamo.commandCalls(CreateTableCommand)).toHaveLength(0);
    expect(dry.code).toBe(0);
    expect(dry.err).toContain('The lease table is neither created nor checked.');
  });

  it('refuses when the emulator is the default but one service is pointed elsewhere', async () => {
    process.env.AWS_ENDPOINT_URL = MOTO;
    process.env.AWS_ENDPOINT_URL_ECS = 'https://ecs.eu-central-1.amazonaws.com';

    const run = await cli(['stop', '--cluster', 'stage', '--local', '--yes']);

    expect(run.code).toBe(2);
    expect(run.err).toContain('(ECS (AWS_ENDPOINT_URL_ECS=https://ecs.eu-central-1.amazonaws.com))');
    expect(stub.runs).toEqual([]);
    // With --json, stdout carries the refusal as one document.
    const json = await cli(['stop', '--cluster', 'stage', '--local', '--yes', '--json']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.out)).toMatchObject({
      error: {
        type: 'Refused',
        exitCode: 2,
        message: expect.stringMatching(
          /^refusing to run ecs-scheduler with --local: its calls would go partly/,
        ),
      },
    });
    expect(dynamo.commandCalls(CreateTableCommand)).toHaveLength(0);
  });

  it('creates the lease table and skips the checks of the deployed function when every endpoint is local', async () => {
    process.env.AWS_ENDPOINT_URL = MOTO;

    const run = await cli(['stop', '--cluster', 'stage', '--local', '--yes']);

    expect(run.code).toBe(0);
    expect(run.err).toContain('--local: created the lease table nightshift-dev-leases in the local emulator');
    expect(lambda.calls()).toHaveLength(0);
    expect(stub.runs).toEqual([
      { dryRun: false, DRY_RUN: 'false', PROTECTED_TAGS: '', LEASE_TABLE: 'nightshift-dev-leases' },
    ]);
  });
});
