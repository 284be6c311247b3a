/**
 * infra/spoke.yml deployed as the fleet README says: a service-managed StackSet (AWS Organizations),
 * targeting an organizational unit, in one region (roles are global). moto deploys stack instances into
 * the member accounts; each member account must then have the six spoke roles, trusting only their own
 * function's hub role with the external id, with the permissions scripts/iam.ts generated.
 * moto keeps a member account's stacks in the administrator's backend (its DescribeStacks is empty): the
 * test asserts on the roles, read with that account's credentials. moto also deploys into the management
 * account when the root OU is targeted (AWS never does), so the test targets a child OU.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateStackInstancesCommand,
  CreateStackSetCommand,
  CloudFormationClient,
  DescribeStackSetOperationCommand,
  ListStackInstancesCommand,
} from '@aws-sdk/client-cloudformation';
import {
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListRolePoliciesCommand,
  ListRolesCommand,
} from '@aws-sdk/client-iam';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { PERMISSIONS, SPOKE_FILE, spokeStatements } from '#scripts/iam.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

const HUB = '123456789012';
const REGION = 'eu-central-1';
const PARAMETERS = { HubAccountId: HUB, ExternalId: 'nightshift-ext-7f3a', Stage: 'dev' };
const STACK_SET = 'nightshift-dev-spoke';

/** A policy document as CloudFormation deploys it into `account`: Fn::Sub and Ref resolved. */
const deployed = (value: unknown, account: string): unknown => {
  if (Array.isArray(value)) return value.map((v) => deployed(v, account));
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v['Fn::Sub'] === 'string')
      return v['Fn::Sub'].replace(/\$\{(!?)([^}]+)\}/g, (_, literal: string, name: string) => {
        if (literal) return `\${${name}}`;
        const known: Record<string, string> = {
          'AWS::Partition': 'aws',
          'AWS::AccountId': account,
          ...PARAMETERS,
        };
        const resolved = known[name];
        if (resolved === undefined) throw new Error(`unresolved \${${name}}`);
        return resolved;
      });
    if (typeof v.Ref === 'string') return PARAMETERS[v.Ref as keyof typeof PARAMETERS];
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deployed(x, account)]));
  }
  return value;
};

/** moto answers GetRolePolicy with the document URL-encoded, sometimes as a Python dict: read both. */
const policyDocument = (text: string): unknown => {
  const decoded = decodeURIComponent(text);
  try {
    return JSON.parse(decoded);
  } catch {
    return JSON.parse(
      decoded
        .replace(/'/g, '"')
        .replace(/\bTrue\b/g, 'true')
        .replace(/\bFalse\b/g, 'false'),
    );
  }
};

describe.runIf(motoTestsEnabled())('infra/spoke.yml deployed by a service-managed StackSet (moto)', () => {
  let moto: Moto;
  const members: string[] = [];
  let outsider = '';

  beforeAll(async () => {
    // Prepare: an organization, an OU with two member accounts, and one account outside it
    moto = await startMoto();
    useEndpoint(moto.url, REGION);
    const org = new OrganizationsClient({ region: 'us-east-1' });
    await org.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
    const root = (await org.send(new ListRootsCommand({}))).Roots?.[0]?.Id as string;
    const ou = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: root, Name: 'non-prod' })))
      .OrganizationalUnit?.Id as string;
    for (const name of ['team-a-dev', 'team-b-stage', 'sandbox']) {
      const status = (
        await org.send(new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }))
      ).CreateAccountStatus;
      const account = status?.AccountId as string;
      if (name === 'sandbox') outsider = account;
      else {
        await org.send(
          new MoveAccountCommand({ AccountId: account, SourceParentId: root, DestinationParentId: ou }),
        );
        members.push(account);
      }
    }

    // Act: the StackSet, as the README deploys it
    const cfn = new CloudFormationClient({ region: REGION });
    await cfn.send(
      new CreateStackSetCommand({
        StackSetName: STACK_SET,
        TemplateBody: readFileSync(SPOKE_FILE, 'utf8'),
        PermissionModel: 'SERVICE_MANAGED',
        AutoDeployment: { Enabled: true, RetainStacksOnAccountRemoval: false },
        Capabilities: ['CAPABILITY_NAMED_IAM'],
        Parameters: Object.entries(PARAMETERS).map(([ParameterKey, ParameterValue]) => ({
          ParameterKey,
          ParameterValue,
        })),
      }),
    );
    const operation = await cfn.send(
      new CreateStackInstancesCommand({
        StackSetName: STACK_SET,
        DeploymentTargets: { OrganizationalUnitIds: [ou] },
        Regions: [REGION],
      }),
    );
    const status = (
      await cfn.send(
        new DescribeStackSetOperationCommand({ StackSetName: STACK_SET, OperationId: operation.OperationId }),
      )
    ).StackSetOperation?.Status;
    expect(status).toBe('SUCCEEDED');
    const instances =
      (await cfn.send(new ListStackInstancesCommand({ StackSetName: STACK_SET }))).Summaries ?? [];
    expect(instances.map((i) => [i.Account, i.Region, i.Status]).sort()).toEqual(
      members.map((m) => [m, REGION, 'CURRENT']).sort(),
    );
  });
  afterAll(() => moto?.stop());

  /** IAM in `account`, with credentials of a role there (moto lets any role be assumed). */
  const iamIn = async (account: string) => {
    const sts = new STSClient({ region: REGION });
    const { Credentials } = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`,
        RoleSessionName: 'spoke-stackset-test',
      }),
    );
    return new IAMClient({
      region: REGION,
      credentials: {
        accessKeyId: Credentials?.AccessKeyId as string,
        secretAccessKey: Credentials?.SecretAccessKey as string,
        sessionToken: Credentials?.SessionToken as string,
      },
    });
  };
  const spokeRoles = async (iam: IAMClient) =>
    ((await iam.send(new ListRolesCommand({}))).Roles ?? [])
      .map((r) => r.RoleName as string)
      .filter((name) => name.startsWith('nightshift-'))
      .sort();

  it('creates the six spoke roles in every member account of the OU, and none outside it', async () => {
    const expected = Object.keys(PERMISSIONS)
      .map((fn) => `nightshift-dev-${fn}-spoke`)
      .sort();
    for (const account of members) expect(await spokeRoles(await iamIn(account)), account).toEqual(expected);
    expect(await spokeRoles(await iamIn(outsider))).toEqual([]);
    expect(await spokeRoles(new IAMClient({ region: REGION }))).toEqual([]);
  });

  it.each(Object.keys(PERMISSIONS))(
    "trusts only %s's hub role, with the external id, and has exactly its generated permissions",
    async (fn) => {
      for (const account of members) {
        const iam = await iamIn(account);
        const name = `nightshift-dev-${fn}-spoke`;
        const role = (await iam.send(new GetRoleCommand({ RoleName: name }))).Role;
        expect(role?.Arn).toBe(`arn:aws:iam::${account}:role/${name}`);
        const trust = policyDocument(role?.AssumeRolePolicyDocument as string) as {
          Statement: {
            Principal: unknown;
            Action: unknown;
            Condition: Record<string, Record<string, unknown>>;
          }[];
        };
        expect(trust.Statement.map((s) => [s.Principal, s.Action])).toEqual([
          [{ AWS: `arn:aws:iam::${HUB}:root` }, 'sts:AssumeRole'],
          [{ AWS: `arn:aws:iam::${HUB}:root` }, 'sts:TagSession'],
        ]);
        for (const s of trust.Statement)
          expect(s.Condition.ArnEquals).toEqual({
            'aws:PrincipalArn': `arn:aws:iam::${HUB}:role/nightshift-dev-${fn}`,
          });
        expect(trust.Statement[0]?.Condition.StringEquals).toEqual({
          'sts:ExternalId': PARAMETERS.ExternalId,
        });

        const policies = (await iam.send(new ListRolePoliciesCommand({ RoleName: name }))).PolicyNames;
        expect(policies).toEqual([fn]);
        const policy = await iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: fn }));
        expect(policyDocument(policy.PolicyDocument as string)).toEqual({
          Version: '2012-10-17',
          Statement: deployed(spokeStatements(fn), account),
        });
      }
    },
  );
});
