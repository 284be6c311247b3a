/**
 * The hub's `fleet` function (functions/fleet), the two steps of every fleet state machine, against
 * moto's DynamoDB and Organizations: the run's targets from the stage's lists and organizational units,
 * or the run's own accounts, regions or targets; the run's header; a retried step; the finish counts.
 */
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler, run, type Deps, type FinishAnswer, type TargetsAnswer } from '#functions/fleet/handler.ts';
import { FleetConfig } from '#functions/fleet/config.ts';
import { parseFleetEvent } from '#events/fleet/schema.ts';
import { parseEnv } from '#shared/env.ts';
import { InputError } from '#shared/errors.ts';
import { KEEP_DAYS, readRun, recordTarget } from '#shared/fleet/results.ts';
import { lambdaContext } from '#test/support/context.ts';
import { dynamoClient, leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, type Moto } from '#test/support/moto.ts';

const STARTED = '2026-11-30T10:15:00.123Z';
const REGIONS = 'eu-central-1,eu-west-1';

describe.runIf(motoTestsEnabled())('the fleet function', () => {
  let moto: Moto;
  let dynamo: DynamoDBClient;
  let organizations: OrganizationsClient;
  let unit: string;
  let inUnit: string[];

  const deps = (env: Record<string, string>): Deps => ({
    config: parseEnv(FleetConfig, { LEASE_TABLE: TEST_LEASE_TABLE, ...env }),
    dynamo,
    organizations: () => organizations,
    now: () => new Date('2026-11-30T10:15:05Z'),
  });
  const targetsEvent = (runId: string, execution: Record<string, unknown>) =>
    parseFleetEvent({
      action: 'targets',
      function: 'ecs-scheduler',
      run: runId,
      startedAt: STARTED,
      execution: {
        event: { action: 'reconcile' },
        maxConcurrency: 50,
        toleratedFailurePercentage: 100,
        ...execution,
      },
    });

  beforeAll(async () => {
    moto = await startMoto();
    dynamo = dynamoClient(moto.url);
    await leaseTable(moto.url);
    organizations = new OrganizationsClient({
      endpoint: moto.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    // An organization: a unit with one account and a nested unit with another; one account outside both
    await organizations.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
    const root = (await organizations.send(new ListRootsCommand({}))).Roots?.[0]?.Id ?? '';
    const account = async (name: string) => {
      const created = await organizations.send(
        new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }),
      );
      return created.CreateAccountStatus?.AccountId ?? '';
    };
    const ou = async (parent: string, name: string) =>
      (await organizations.send(new CreateOrganizationalUnitCommand({ ParentId: parent, Name: name })))
        .OrganizationalUnit?.Id ?? '';
    unit = await ou(root, 'non-prod');
    const nested = await ou(unit, 'teams');
    inUnit = [await account('shop-dev'), await account('payments-dev')];
    await organizations.send(
      new MoveAccountCommand({ AccountId: inUnit[0], SourceParentId: root, DestinationParentId: unit }),
    );
    await organizations.send(
      new MoveAccountCommand({ AccountId: inUnit[1], SourceParentId: root, DestinationParentId: nested }),
    );
    await account('outside');
  });
  afterAll(() => moto?.stop());

  it("lists the stage's accounts and its units' accounts (nested units too) in every region, and writes the run's header", async () => {
    // Act
    const answer = (await run(
      targetsEvent('run-stage-1', {}),
      deps({ FLEET_ACCOUNTS: '111111111111', FLEET_REGIONS: REGIONS, FLEET_ORGANIZATION_UNITS: unit }),
    )) as TargetsAnswer;

    // Assess
    const accounts = ['111111111111', ...inUnit];
    expect(answer.targets).toHaveLength(6);
    expect(new Set(answer.targets.map((t) => t.account))).toEqual(new Set(accounts));
    expect(answer.targets.filter((t) => t.account === '111111111111').map((t) => t.region)).toEqual([
      'eu-central-1',
      'eu-west-1',
    ]);
    expect(answer.ttl).toBe(String(Math.ceil(Date.parse(STARTED) / 1000) + (KEEP_DAYS + 1) * 86_400));
    expect(await readRun(dynamo, TEST_LEASE_TABLE, 'run-stage-1')).toEqual({
      run: 'run-stage-1',
      function: 'ecs-scheduler',
      dryRun: false,
      event: { action: 'reconcile' },
      targets: answer.targets,
      startedAt: STARTED,
      runner: 'state-machine',
    });
  });

  it('keeps the targets it started with when the step is retried after writing the header', async () => {
    // Prepare
    await run(
      targetsEvent('run-retried-1', {}),
      deps({ FLEET_ACCOUNTS: '111111111111', FLEET_REGIONS: REGIONS }),
    );

    // Act: the stage's list changed meanwhile
    const again = (await run(
      targetsEvent('run-retried-1', {}),
      deps({ FLEET_ACCOUNTS: '222222222222', FLEET_REGIONS: REGIONS }),
    )) as TargetsAnswer;

    // Assess
    expect(again.targets.map((t) => t.account)).toEqual(['111111111111', '111111111111']);
  });

  it("replaces the stage's accounts and units, or its regions, with the run's own, and runs exactly a redrive's targets", async () => {
    const env = { FLEET_ACCOUNTS: '111111111111', FLEET_REGIONS: REGIONS, FLEET_ORGANIZATION_UNITS: unit };
    const accounts = (await run(
      targetsEvent('run-accounts-1', { accounts: ['333333333333'] }),
      deps(env),
    )) as TargetsAnswer;
    expect(accounts.targets).toEqual([
      { account: '333333333333', region: 'eu-central-1' },
      { account: '333333333333', region: 'eu-west-1' },
    ]);
    const regions = (await run(
      targetsEvent('run-regions-1', { regions: ['us-east-1'] }),
      deps({ ...env, FLEET_ORGANIZATION_UNITS: '' }),
    )) as TargetsAnswer;
    expect(regions.targets).toEqual([{ account: '111111111111', region: 'us-east-1' }]);
    const target = { account: '444444444444', region: 'eu-west-1' };
    const redrive = (await run(
      targetsEvent('run-redrive-1', {
        event: { action: 'reconcile', dryRun: true },
        targets: [target],
        redriveOf: 'run-stage-1',
        dryRun: true,
      }),
      deps(env),
    )) as TargetsAnswer;
    expect(redrive.targets).toEqual([target]);
    expect(await readRun(dynamo, TEST_LEASE_TABLE, 'run-redrive-1')).toMatchObject({
      redriveOf: 'run-stage-1',
      dryRun: true,
    });
  });

  it('refuses, naming the field, a stage or run list that is not accounts or regions, and a run with nowhere to go', async () => {
    await expect(
      run(targetsEvent('run-bad-1', {}), deps({ FLEET_ACCOUNTS: '1234', FLEET_REGIONS: REGIONS })),
    ).rejects.toThrow(/fleetAccounts: "1234" is not a 12-digit AWS account id/);
    await expect(
      run(targetsEvent('run-bad-2', { regions: ['Frankfurt'] }), deps({ FLEET_ACCOUNTS: '111111111111' })),
    ).rejects.toThrow(/execution\.regions: "Frankfurt"/);
    await expect(
      run(targetsEvent('run-bad-3', {}), deps({ FLEET_ACCOUNTS: '111111111111' })),
    ).rejects.toBeInstanceOf(InputError);
    // A run labelled dry whose targets would act for real
    await expect(
      run(
        targetsEvent('run-bad-4', { dryRun: true }),
        deps({ FLEET_ACCOUNTS: '111111111111', FLEET_REGIONS: REGIONS }),
      ),
    ).rejects.toThrow(/execution\.dryRun: true but the event's dryRun is false/);
    // More targets than a state can carry: refused before the run's header is written.
    const accounts = Array.from({ length: 1001 }, (_, i) => String(100000000000 + i)).join(',');
    await expect(
      run(
        targetsEvent('run-bad-5', {}),
        deps({ FLEET_ACCOUNTS: accounts, FLEET_REGIONS: 'eu-central-1,eu-west-1' }),
      ),
    ).rejects.toThrow(/the run has 2002 targets, more than 2000/);
    expect(await readRun(dynamo, TEST_LEASE_TABLE, 'run-bad-1')).toBeUndefined();
    expect(await readRun(dynamo, TEST_LEASE_TABLE, 'run-bad-4')).toBeUndefined();
    expect(await readRun(dynamo, TEST_LEASE_TABLE, 'run-bad-5')).toBeUndefined();
  });

  it('refuses an event that carries target or fleet, or a concurrency the map cannot take, before any AWS call', async () => {
    for (const execution of [
      { event: { action: 'reconcile', target: { account: '111111111111', region: 'eu-central-1' } } },
      { maxConcurrency: 0 },
      { toleratedFailurePercentage: 101 },
    ])
      expect(() => targetsEvent('run-refused-1', execution)).toThrow(InputError);
    await expect(handler({ action: 'targets' }, lambdaContext('fleet'))).rejects.toThrow(/invalid event/);
  });

  it('finishes a run with its counts, not its report', async () => {
    // Prepare: two targets, one failed, one succeeded
    const started = (await run(
      targetsEvent('run-finish-1', {}),
      deps({ FLEET_ACCOUNTS: '111111111111,222222222222', FLEET_REGIONS: 'eu-central-1' }),
    )) as TargetsAnswer;
    await recordTarget(dynamo, TEST_LEASE_TABLE, 'run-finish-1', {
      ...(started.targets[0] as { account: string; region: string }),
      status: 'failed',
      reason: 'Lambda.Unknown: out of memory',
      finishedAt: '2026-11-30T10:16:00.000Z',
    });
    await recordTarget(dynamo, TEST_LEASE_TABLE, 'run-finish-1', {
      ...(started.targets[1] as { account: string; region: string }),
      status: 'succeeded',
      reason: 'nothing to do',
      finishedAt: '2026-11-30T10:16:00.000Z',
    });

    // Act
    const answer = (await run(
      parseFleetEvent({ action: 'finish', run: 'run-finish-1' }),
      deps({}),
    )) as FinishAnswer;

    // Assess
    expect(answer).toEqual({
      run: 'run-finish-1',
      function: 'ecs-scheduler',
      dryRun: false,
      wallSeconds: 4.9,
      counts: { failed: 1, refused: 0, succeeded: 1, pending: 0 },
    });
    expect((await readRun(dynamo, TEST_LEASE_TABLE, 'run-finish-1'))?.finishedAt).toBe(
      '2026-11-30T10:15:05.000Z',
    );
  });
});
