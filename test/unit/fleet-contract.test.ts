/**
 * The fleet's contract (issue 11): targets from the stage's accounts, organizational units (nested, every
 * page) and regions; how a target's report becomes its status; the `--json` document; the role and
 * session names.
 */
import { describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { fleetDocument, failuresFirst, targetOutcome, type FleetRun } from '#shared/fleet/results.ts';
import { fleetTargets, parseFleetScope } from '#shared/fleet/targets.ts';
import { hubRoleName, sessionName, spokeRoleArn, spokeRoleName } from '#shared/fleet/target.ts';
import { buildReport, type ResourceResult } from '#shared/report.ts';

const row = (outcome: ResourceResult['outcome'], arn = 'arn:x', detail = 'd'): ResourceResult => ({
  arn,
  type: 'ecs-service',
  outcome,
  detail,
});

describe('fleet scope', () => {
  it('parses the comma strings and names a bad item with its param', () => {
    expect(
      parseFleetScope({ accounts: ' 111111111111, 222222222222 ,', regions: 'eu-central-1,us-gov-west-1' }),
    ).toEqual({
      accounts: ['111111111111', '222222222222'],
      regions: ['eu-central-1', 'us-gov-west-1'],
      organizationUnits: [],
    });
    expect(() => parseFleetScope({ accounts: '1111' })).toThrow(/fleetAccounts: "1111" is not a 12-digit/);
    expect(() => parseFleetScope({ regions: 'Frankfurt' })).toThrow(/fleetRegions: "Frankfurt"/);
    expect(() => parseFleetScope({ organizationUnits: 'engineering' })).toThrow(/fleetOrganizationUnits/);
    expect(parseFleetScope({ organizationUnits: 'ou-ab12-cd34ef56,r-ab12' }).organizationUnits).toHaveLength(
      2,
    );
  });

  it('lists every active account under the units, nested units and every page (20 a page), each once', async () => {
    const org = mockClient(OrganizationsClient);
    const accounts = (prefix: string, n: number, state = 'ACTIVE') =>
      Array.from({ length: n }, (_, i) => ({
        Id: `${prefix}${String(i).padStart(12 - prefix.length, '0')}`,
        State: state,
      }));
    const pages: Record<string, Array<{ Accounts: unknown[]; NextToken?: string }>> = {
      'ou-root-aaaaaaaa': [{ Accounts: accounts('1', 20), NextToken: 't1' }, { Accounts: accounts('2', 5) }],
      'ou-nest-bbbbbbbb': [{ Accounts: [...accounts('3', 2), ...accounts('4', 1, 'SUSPENDED')] }],
    };
    org.on(ListAccountsForParentCommand).callsFake((input: { ParentId: string; NextToken?: string }) => {
      const list = pages[input.ParentId] ?? [{ Accounts: [] }];
      return input.NextToken ? list[1] : list[0];
    });
    org
      .on(ListOrganizationalUnitsForParentCommand)
      .callsFake((input: { ParentId: string }) =>
        input.ParentId === 'ou-root-aaaaaaaa'
          ? { OrganizationalUnits: [{ Id: 'ou-nest-bbbbbbbb' }] }
          : { OrganizationalUnits: [] },
      );
    const targets = await fleetTargets(
      {
        accounts: ['100000000000'], // also under the unit: listed once
        regions: ['eu-central-1', 'eu-west-1'],
        organizationUnits: ['ou-root-aaaaaaaa'],
      },
      () => new OrganizationsClient({ region: 'us-east-1' }),
    );
    expect(targets).toHaveLength(27 * 2);
    expect(targets.slice(0, 2)).toEqual([
      { account: '100000000000', region: 'eu-central-1' },
      { account: '100000000000', region: 'eu-west-1' },
    ]);
    expect(targets.some((t) => t.account.startsWith('4'))).toBe(false);
    org.restore();
  });

  it('refuses a fleet with no account or no region', async () => {
    const org = () => new OrganizationsClient({ region: 'us-east-1' });
    await expect(
      fleetTargets({ accounts: [], regions: ['eu-central-1'], organizationUnits: [] }, org),
    ).rejects.toThrow(/fleetAccounts/);
    await expect(
      fleetTargets({ accounts: ['111111111111'], regions: [], organizationUnits: [] }, org),
    ).rejects.toThrow(/fleetRegions/);
  });
});

describe('a target outcome', () => {
  it('is refused when the allowlist refused the account', () => {
    const report = buildReport('stop', false, [
      {
        arn: '111111111111',
        type: 'account',
        outcome: 'skipped',
        detail: 'refused: not in ALLOWED_ACCOUNTS',
      },
    ]);
    expect(targetOutcome(report)).toEqual({ status: 'refused', reason: 'refused: not in ALLOWED_ACCOUNTS' });
  });

  it('is failed when a resource failed or was left undone, naming the first; succeeded otherwise', () => {
    expect(
      targetOutcome(
        buildReport('stop', false, [row('changed'), { ...row('failed', 'arn:b'), error: 'boom' }]),
      ),
    ).toEqual({
      status: 'failed',
      reason: '1 failed; first: arn:b: boom',
    });
    expect(targetOutcome(buildReport('stop', false, [row('undone', 'arn:c', 'deadline')])).status).toBe(
      'failed',
    );
    expect(targetOutcome(buildReport('stop', false, [row('changed'), row('unchanged')]))).toEqual({
      status: 'succeeded',
      reason: '1 changed, 1 unchanged',
    });
    expect(targetOutcome(buildReport('stop', false, [])).reason).toBe('nothing to do');
  });
});

describe('the fleet document', () => {
  const run: FleetRun = {
    run: 'r1',
    function: 'ecs-scheduler',
    dryRun: false,
    event: { action: 'stop' },
    targets: [
      { account: '111111111111', region: 'eu-central-1' },
      { account: '222222222222', region: 'eu-central-1' },
      { account: '333333333333', region: 'eu-central-1' },
    ],
    startedAt: '2026-11-30T02:00:00.000Z',
    runner: 'local',
  };
  const results = new Map([
    [
      '111111111111#eu-central-1',
      {
        account: '111111111111',
        region: 'eu-central-1',
        status: 'succeeded' as const,
        reason: 'ok',
        finishedAt: '',
      },
    ],
    [
      '222222222222#eu-central-1',
      {
        account: '222222222222',
        region: 'eu-central-1',
        status: 'refused' as const,
        reason: 'refused: x',
        finishedAt: '',
      },
    ],
  ]);

  it('shows a target without a result as pending while the run goes on, failed once it ended', () => {
    const going = fleetDocument(run, results);
    expect(going.wallSeconds).toBeNull();
    expect(going.targets.map((t) => t.status)).toEqual(['succeeded', 'refused', 'pending']);
    const ended = fleetDocument({ ...run, finishedAt: '2026-11-30T02:01:30.500Z' }, results);
    expect(ended.wallSeconds).toBe(90.5);
    expect(ended.targets[2]).toMatchObject({
      status: 'failed',
      reason: 'no result was recorded for this target',
    });
    expect(failuresFirst(ended.targets).map((t) => t.status)).toEqual(['failed', 'refused', 'succeeded']);
  });
});

describe('names', () => {
  it('names the hub and spoke roles and a session STS accepts', () => {
    expect(hubRoleName('prod', 'ecs-scheduler')).toBe('nightshift-prod-ecs-scheduler');
    expect(spokeRoleName('prod', 'ecs-scheduler')).toBe('nightshift-prod-ecs-scheduler-spoke');
    expect(spokeRoleArn('aws-cn', '111111111111', 'dev', 'ssm-restart')).toBe(
      'arn:aws-cn:iam::111111111111:role/nightshift-dev-ssm-restart-spoke',
    );
    const long = sessionName(`ecs-scheduler-${'x'.repeat(80)}`);
    expect(long).toHaveLength(64);
    expect(sessionName('a:b/c d')).toBe('nightshift-a-b-c-d');
    expect(long).toMatch(/^[\w+=,.@-]{2,64}$/);
  });
});
