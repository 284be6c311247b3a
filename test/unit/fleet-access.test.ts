/**
 * The allowlist's reads for one target, with the IAM and Organizations answers AWS really gives (mocked:
 * aws-sdk-client-mock replaces the SDK's retries, so an error here is one the retries did not get past),
 * and a fleet iteration's answer kept under Step Functions' 256 KiB.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { IAMClient, ListAccountAliasesCommand } from '@aws-sdk/client-iam';
import { DescribeAccountCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { checkAllowlist, SpokeUnreachableError, type FleetSettings } from '#shared/fleet/access.ts';
import { compactForFleet, FLEET_ROWS } from '#shared/fleet/record.ts';
import { buildReport, type ResourceResult } from '#shared/report.ts';

const TARGET = { account: '111111111111', region: 'eu-west-1' };
const SETTINGS: FleetSettings = {
  stage: 'dev',
  allowedAccounts: ['111111111111'],
  protectedPatterns: ['prod', 'production', 'live'],
  externalId: 'x',
};
const scope = async () => ({ region: 'eu-west-1' });
const awsError = (name: string, status: number) =>
  Object.assign(new Error(`${name}: said AWS`), { name, $metadata: { httpStatusCode: status } });

describe('the allowlist reads of a target', () => {
  const iam = mockClient(IAMClient);
  const org = mockClient(OrganizationsClient);
  afterEach(() => {
    iam.reset();
    org.reset();
  });

  it('allows an ordinary account and refuses a production alias or name', async () => {
    iam.on(ListAccountAliasesCommand).resolves({ AccountAliases: ['acme-staging'] });
    org.on(DescribeAccountCommand).resolves({ Account: { Name: 'Team Shop Dev' } });
    expect(await checkAllowlist(TARGET, SETTINGS, scope)).toEqual({ allowed: true });
    org.on(DescribeAccountCommand).resolves({ Account: { Name: 'Shop Prod2' } });
    expect(await checkAllowlist(TARGET, SETTINGS, scope)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('Organizations name "Shop Prod2" matches "prod"'),
    });
  });

  it('lets the alias decide when the hub cannot read Organizations names (not in it, no permission)', async () => {
    iam.on(ListAccountAliasesCommand).resolves({ AccountAliases: [] });
    for (const name of [
      'AWSOrganizationsNotInUseException',
      'AccessDeniedException',
      'AccountNotFoundException',
    ]) {
      org.on(DescribeAccountCommand).rejects(awsError(name, 400));
      expect(await checkAllowlist(TARGET, SETTINGS, scope), name).toEqual({ allowed: true });
    }
  });

  it('refuses when the alias cannot be read (the contract), but fails a target AWS only throttled, so it is redriven', async () => {
    org.on(DescribeAccountCommand).resolves({ Account: { Name: 'Team Shop Dev' } });
    iam.on(ListAccountAliasesCommand).rejects(awsError('AccessDenied', 403));
    expect(await checkAllowlist(TARGET, SETTINGS, scope)).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/^refused: the alias of account 111111111111 could not be read/),
    });
    iam.on(ListAccountAliasesCommand).rejects(awsError('Throttling', 400));
    await expect(checkAllowlist(TARGET, SETTINGS, scope)).rejects.toBeInstanceOf(SpokeUnreachableError);
    iam.on(ListAccountAliasesCommand).resolves({ AccountAliases: ['acme-staging'] });
    org.on(DescribeAccountCommand).rejects(awsError('ServiceException', 500));
    await expect(checkAllowlist(TARGET, SETTINGS, scope)).rejects.toThrow(/could not be read for now/);
    org.on(DescribeAccountCommand).rejects(awsError('InvalidInputException', 400));
    expect(await checkAllowlist(TARGET, SETTINGS, scope)).toMatchObject({ allowed: false });
  });
});

describe("a fleet iteration's answer", () => {
  const row = (i: number, outcome: ResourceResult['outcome']): ResourceResult => ({
    arn: `arn:aws:ecs:eu-west-1:111111111111:service/stage/svc-${i}`,
    type: 'ecs-service',
    outcome,
    detail: 'x'.repeat(3000),
  });

  it('keeps failures first, counts the rest, and stays far below 256 KiB', () => {
    const rows = [
      ...Array.from({ length: 990 }, (_, i) => row(i, 'changed')),
      ...Array.from({ length: 10 }, (_, i) => row(1000 + i, 'failed')),
    ];
    const report = compactForFleet(buildReport('stop', false, rows));
    expect(report.resources).toHaveLength(FLEET_ROWS);
    expect(report.resources.filter((r) => r.outcome === 'failed')).toHaveLength(10);
    expect(report.omitted).toEqual({ changed: 900 });
    expect(report.summary).toMatchObject({ changed: 990, failed: 10 });
    expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(256 * 1024);
  });
});
