/**
 * `nightshift --local` runs the real handler as it is configured in the stage (serverless.yml params),
 * against moto: from source in this process, and as the built bin in its own process.
 */
import { spawnSync } from 'node:child_process';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';
import { dynamoClient } from '#test/support/leases.ts';
import { observeSample, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

describe.runIf(motoTestsEnabled())('nightshift --local with the stage’s configuration, against moto', () => {
  let moto: Moto;
  let aws: SeedClients;
  // The environment before any in-process run applied a stage's configuration to process.env.
  let operatorEnv: NodeJS.ProcessEnv;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    operatorEnv = { ...process.env };
    aws = seedClients(moto.url);
  });
  afterAll(() => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    await seedEstate(aws);
  });

  const bin = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, ['dist/cli/nightshift.mjs', ...args], {
      encoding: 'utf8',
      env: { ...operatorEnv, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  it('applies prod’s DRY_RUN=true from serverless.yml: a stop of prod changes nothing, even with DRY_RUN=false set', async () => {
    // Prepare
    const before = await observeSample(aws);

    // Act
    const run = await cli(['--stage', 'prod', 'stop', '--cluster', 'stage', '--local', '--yes', '--json'], {
      env: { DRY_RUN: 'false' },
    });

    // Assess
    expect(JSON.parse(run.out)).toMatchObject({
      action: 'stop',
      dryRun: true,
      summary: { changed: 0, planned: 4 },
    });
    expect(await observeSample(aws)).toEqual(before);
    expect(run.err.split('\n')).toEqual([
      "--local: ecs-scheduler runs with stage prod's configuration from serverless.yml: NIGHTSHIFT_STAGE=prod, " +
        'LEASE_TABLE=nightshift-prod-leases, ALLOWED_ACCOUNTS="", PROTECTED_ACCOUNT_PATTERNS=prod,production,live, SPOKE_EXTERNAL_ID="", PROTECTED_TAGS="" (the built-in prod/production/live rules), ' +
        'DRY_RUN=true, SCHEDULE_GRACE_MINUTES=15, OVERRIDE_MAX_HOURS=24, ENVIRONMENT_START_TIMEOUT_MINUTES=30; not known locally, left as they are: SUMMARY_TOPIC_ARN',
      '--local: your DRY_RUN=false is ignored: stage prod has DRY_RUN=true, and a local run is never less guarded than its stage',
      '--local: DRY_RUN=true for ecs-scheduler in stage prod: this run is a dry run, and nothing will change.',
      '--local: created the lease table nightshift-prod-leases in the local emulator',
      'the function ran as a dry run although a change was asked for: DRY_RUN is true for it in this stage, so nothing changed. ' +
        'This is a refusal (exit 2): change DRY_RUN for the stage to let it act, or use --dry-run to only look.',
    ]);
    expect(run.code).toBe(2);
  });

  it('does not ask a person to confirm changes the stage’s DRY_RUN=true will not make', async () => {
    const before = await observeSample(aws);

    const run = await cli(['--stage', 'prod', 'stop', '--cluster', 'stage', '--local'], {
      interactive: true,
      answer: true,
    });

    expect(run.questions).toEqual([]);
    expect(run.out).toContain('ecs-scheduler stop (dry run): 0 changed, 4 planned');
    expect(run.code).toBe(2);
    expect(await observeSample(aws)).toEqual(before);
  });

  it('applies it as the built bin too, from the params built into it', async () => {
    const before = await observeSample(aws);

    const run = bin(['--stage', 'prod', 'stop', '--cluster', 'stage', '--local', '--yes', '--json'], {
      DRY_RUN: 'false',
    });

    expect(run.status).toBe(2);
    expect(JSON.parse(run.stdout)).toMatchObject({ dryRun: true, summary: { changed: 0, planned: 4 } });
    expect(run.stderr).toContain(
      "--local: ecs-scheduler runs with stage prod's configuration from serverless.yml (as built into this CLI): ",
    );
    expect(run.stderr).toContain('DRY_RUN=true');
    expect(await observeSample(aws)).toEqual(before);
  });

  it('lets the operator’s DRY_RUN=true make a run of a stage that changes things a dry run', async () => {
    const before = await observeSample(aws);

    const run = bin(['--stage', 'dev', 'stop', '--cluster', 'stage', '--local', '--yes', '--json'], {
      DRY_RUN: 'true',
    });

    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ dryRun: true, summary: { changed: 0, planned: 4 } });
    expect(run.stderr).toContain(
      '--local: your DRY_RUN=true applies: every run is a dry run (stage dev has false)',
    );
    expect(await observeSample(aws)).toEqual(before);
  });

  it('creates the stage’s lease table in a local emulator, so a local run needs no deploy', async () => {
    const run = bin(['--stage', 'dev', 'stop', '--cluster', 'stage', '--local', '--yes']);
    const table = await dynamoClient(moto.url).send(
      new DescribeTableCommand({ TableName: 'nightshift-dev-leases' }),
    );

    expect(run.status).toBe(0);
    expect(run.stderr).toContain(
      '--local: created the lease table nightshift-dev-leases in the local emulator',
    );
    expect(table.Table?.KeySchema).toEqual([{ AttributeName: 'scope', KeyType: 'HASH' }]);
    expect((await observeSample(aws)).services['stage/web']?.desired).toBe(0);
  });
});
