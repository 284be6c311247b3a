/**
 * A function run against `"target": {"account", "region"}` (issue 11), through its real handler (withOps)
 * against moto with several accounts: it assumes its spoke role (external id, session name naming the
 * run, the region as a session tag), checks the allowlist before any other call in the account, and then
 * does exactly its single-account job there, leaving the hub's own resources alone.
 *
 * moto does not check trust policies or external ids: the STS gate in the proxy answers AssumeRole of
 * spoke roles as AWS would for the spokes each test deploys (test/support/sts-gate.ts). moto's
 * Lambda knows no function it did not create: GetFunctionConcurrency (the fleet kill switch) is stubbed.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '#functions/ecs-scheduler/handler.ts';
import { readTargets } from '#shared/fleet/results.ts';
import type { Report } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';
import { observe, seedClients, seedEstate, type ClusterSpec } from '#test/support/ecs-estate.ts';
import { accountCredentials, organization, setAlias } from '#test/support/fleet-estate.ts';
import { dynamoClient, leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import { HUB_ACCOUNT, stsGate, type StsGate } from '#test/support/sts-gate.ts';

const A = '111111111111';
const B = '222222222222';
const OUTSIDE = '333333333333';
const EXTERNAL_ID = 'nightshift-test-external-id';

const ESTATE: ClusterSpec[] = [
  {
    name: 'stage',
    tags: { env: 'stage' },
    services: [
      { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
      { name: 'worker', desired: 2 },
    ],
  },
];

const READS = /^(Describe|List|Get)/;

describe.runIf(motoTestsEnabled())('a function run against a fleet target (moto, several accounts)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let gate: StsGate;
  let orgAccounts: Record<string, string>;

  const invoke = (event: Record<string, unknown>, name = 'ecs-scheduler') =>
    handler(event, lambdaContext(name)) as Promise<Report>;
  const stop = (account: string, region = 'eu-central-1', extra: Record<string, unknown> = {}) =>
    invoke({ action: 'stop', clusters: ['stage'], target: { account, region }, ...extra });
  const clientsIn = async (account: string, region = 'eu-central-1') =>
    account === HUB_ACCOUNT
      ? seedClients(moto.url, region)
      : seedClients(moto.url, region, await accountCredentials(moto.url, account));
  const desired = async (account: string, region = 'eu-central-1') => {
    const seen = await observe(await clientsIn(account, region), ['stage'], []);
    return Object.fromEntries(Object.entries(seen.services).map(([k, s]) => [k, s.desired]));
  };
  /** Requests sent with credentials of `account` that were not reads. */
  const changesIn = (account: string) =>
    proxy
      .delivered()
      .filter(
        (r) => gate.accountOf(r) === account && !READS.test(r.operation) && r.operation !== 'AssumeRole',
      );
  const sentIn = (account: string) => proxy.delivered().filter((r) => gate.accountOf(r) === account);

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    await leaseTable(moto.url);
    gate = stsGate(proxy, [
      { account: A, stage: 'dev', externalId: EXTERNAL_ID },
      { account: B, stage: 'dev', externalId: EXTERNAL_ID },
    ]);
    orgAccounts = await organization(moto.url, ['Payments Live', 'Team Tools Dev']);
    for (const account of [A, B, HUB_ACCOUNT, ...Object.values(orgAccounts)]) {
      await seedEstate(await clientsIn(account), ESTATE);
      gate.deploy({ account, stage: 'dev', externalId: EXTERNAL_ID });
    }
    gate.remove(HUB_ACCOUNT);
    await seedEstate(await clientsIn(A, 'eu-west-1'), ESTATE);
    await setAlias(moto.url, await accountCredentials(moto.url, B), 'acme-shop-production');
    await setAlias(moto.url, await accountCredentials(moto.url, A), 'acme-shop-staging');
    Object.assign(process.env, {
      LEASE_TABLE: TEST_LEASE_TABLE,
      NIGHTSHIFT_STAGE: 'dev',
      SPOKE_EXTERNAL_ID: EXTERNAL_ID,
      ALLOWED_ACCOUNTS: [A, B, HUB_ACCOUNT, ...Object.values(orgAccounts)].join(','),
      PROTECTED_ACCOUNT_PATTERNS: '',
    });
  }, 120_000);
  afterAll(async () => {
    for (const key of ['LEASE_TABLE', 'NIGHTSHIFT_STAGE', 'SPOKE_EXTERNAL_ID', 'ALLOWED_ACCOUNTS'])
      delete process.env[key];
    await proxy?.close();
    moto?.stop();
  });
  // The proxy names REST calls by their path; moto has no such function deployed: no reserved concurrency.
  const CONCURRENCY = '/2019-09-30/functions/ecs-scheduler/concurrency';
  const reserved = (n?: number) =>
    proxy.stub(CONCURRENCY, () => ({
      contentType: 'application/json',
      body: JSON.stringify(n === undefined ? {} : { ReservedConcurrentExecutions: n }),
    }));
  beforeEach(() => {
    proxy.requests.length = 0;
    gate.attempts.length = 0;
    reserved();
  });

  it('parks the services of the target account and region only, with the spoke role', async () => {
    const report = await stop(A, 'eu-west-1', { fleet: { run: 'run-1' } });

    expect(report.summary).toMatchObject({ changed: 2, failed: 0 });
    expect(await desired(A, 'eu-west-1')).toEqual({ 'stage/web': 0, 'stage/worker': 0 });
    // Another region of the same account, and the hub's own services: untouched.
    expect(await desired(A, 'eu-central-1')).toEqual({ 'stage/web': 3, 'stage/worker': 2 });
    expect(await desired(HUB_ACCOUNT)).toEqual({ 'stage/web': 3, 'stage/worker': 2 });
    expect(gate.attempts).toEqual([
      expect.objectContaining({
        roleArn: `arn:aws:iam::${A}:role/nightshift-dev-ecs-scheduler-spoke`,
        sessionName: 'nightshift-run-1',
        externalId: EXTERNAL_ID,
        tags: { 'nightshift-region': 'eu-west-1' },
        allowed: true,
      }),
    ]);
    // Every ECS call went to the target, in its region, with its credentials.
    const ecs = proxy.delivered().filter((r) => r.service === 'ecs');
    expect(ecs.length).toBeGreaterThan(0);
    expect(ecs.every((r) => gate.accountOf(r) === A && r.region === 'eu-west-1')).toBe(true);
    // The allowlist read (the alias) came before any other call in the account.
    expect(sentIn(A)[0]?.operation).toBe('ListAccountAliases');
    // The fleet row, in the hub's table.
    const rows = await readTargets(dynamoClient(moto.url), TEST_LEASE_TABLE, 'run-1', [
      { account: A, region: 'eu-west-1' },
    ]);
    expect(rows.get(`${A}#eu-west-1`)).toMatchObject({ status: 'succeeded', summary: { changed: 2 } });
  });

  it('refuses an account outside ALLOWED_ACCOUNTS before assuming anything in it', async () => {
    const report = await stop(OUTSIDE, 'eu-central-1', { fleet: { run: 'run-2' } });

    expect(report.resources).toEqual([
      expect.objectContaining({
        arn: OUTSIDE,
        type: 'account',
        outcome: 'skipped',
        detail: expect.stringMatching(/^refused: account 333333333333 is not in ALLOWED_ACCOUNTS/),
      }),
    ]);
    expect(gate.attempts).toEqual([]);
    expect(sentIn(OUTSIDE)).toEqual([]);
    const rows = await readTargets(dynamoClient(moto.url), TEST_LEASE_TABLE, 'run-2', [
      { account: OUTSIDE, region: 'eu-central-1' },
    ]);
    expect(rows.get(`${OUTSIDE}#eu-central-1`)).toMatchObject({ status: 'refused' });
  });

  it('refuses an account whose alias looks like production: only the alias was read there', async () => {
    const report = await stop(B);

    expect(report.resources).toEqual([
      expect.objectContaining({
        outcome: 'skipped',
        detail: expect.stringContaining('refused: its alias "acme-shop-production" matches "production"'),
      }),
    ]);
    expect(sentIn(B).map((r) => r.operation)).toEqual(['ListAccountAliases']);
    expect(await desired(B)).toEqual({ 'stage/web': 3, 'stage/worker': 2 });
  });

  it("refuses an account whose Organizations name is a production one, read with the hub's role", async () => {
    const live = orgAccounts['Payments Live']!;
    const report = await stop(live);

    expect(report.resources[0]).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringContaining('refused: its Organizations name "Payments Live" matches "live"'),
    });
    expect(changesIn(live)).toEqual([]);
    const describe = proxy.delivered().find((r) => r.operation === 'DescribeAccount');
    expect(describe && gate.accountOf(describe)).toBe(HUB_ACCOUNT);
    expect(await desired(live)).toEqual({ 'stage/web': 3, 'stage/worker': 2 });

    // The same account's sibling with an ordinary name is parked.
    const tools = orgAccounts['Team Tools Dev']!;
    expect((await stop(tools)).summary).toMatchObject({ changed: 2 });
  });

  it('refuses when the alias cannot be read', async () => {
    proxy.stub('ListAccountAliases', () => ({
      status: 403,
      contentType: 'text/xml',
      body: '<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: iam:ListAccountAliases</Message></Error></ErrorResponse>',
    }));
    try {
      const report = await stop(A);
      expect(report.resources[0]?.detail).toMatch(
        /^refused: the alias of account 111111111111 could not be read/,
      );
      expect(changesIn(A)).toEqual([]);
    } finally {
      proxy.stub('ListAccountAliases', undefined);
    }
  });

  it('fails the target, named, when its spoke role is missing or the external id differs; records it', async () => {
    gate.remove(A);
    try {
      await expect(stop(A, 'eu-central-1', { fleet: { run: 'run-3' } })).rejects.toThrow(
        /could not assume arn:aws:iam::111111111111:role\/nightshift-dev-ecs-scheduler-spoke/,
      );
    } finally {
      gate.deploy({ account: A, stage: 'dev', externalId: EXTERNAL_ID });
    }
    expect(sentIn(A)).toEqual([]);
    const rows = await readTargets(dynamoClient(moto.url), TEST_LEASE_TABLE, 'run-3', [
      { account: A, region: 'eu-central-1' },
    ]);
    expect(rows.get(`${A}#eu-central-1`)).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('could not assume'),
    });

    process.env.SPOKE_EXTERNAL_ID = 'another-id';
    try {
      await expect(stop(A)).rejects.toThrow(/not authorized to perform: sts:AssumeRole/);
    } finally {
      process.env.SPOKE_EXTERNAL_ID = EXTERNAL_ID;
    }
    expect(gate.attempts.map((a) => a.reason)).toEqual(['role not deployed', 'external id']);
    expect(await desired(A)).toEqual({ 'stage/web': 3, 'stage/worker': 2 });
  });

  it("acts in the hub's own account with the function's own role in the hub's region, and through its spoke elsewhere", async () => {
    await seedEstate(seedClients(moto.url, 'us-east-2'), ESTATE);
    const here = await stop(HUB_ACCOUNT, 'eu-central-1');
    expect(here.summary).toMatchObject({ changed: 2 });
    expect(gate.attempts).toEqual([]);
    expect(
      proxy
        .delivered()
        .filter((r) => r.service === 'ecs')
        .every((r) => r.accessKey === 'testing'),
    ).toBe(true);

    // The hub role is pinned to its own region: elsewhere in the hub's account the spoke role acts.
    gate.deploy({ account: HUB_ACCOUNT, stage: 'dev', externalId: EXTERNAL_ID });
    try {
      const there = await stop(HUB_ACCOUNT, 'us-east-2');
      expect(there.summary).toMatchObject({ changed: 2 });
    } finally {
      gate.remove(HUB_ACCOUNT);
    }
    expect(gate.attempts).toEqual([
      expect.objectContaining({
        roleArn: `arn:aws:iam::${HUB_ACCOUNT}:role/nightshift-dev-ecs-scheduler-spoke`,
        tags: { 'nightshift-region': 'us-east-2' },
        allowed: true,
      }),
    ]);
    expect(await desired(HUB_ACCOUNT, 'us-east-2')).toEqual({ 'stage/web': 0, 'stage/worker': 0 });
    expect(await desired(HUB_ACCOUNT, 'eu-central-1')).toEqual({ 'stage/web': 0, 'stage/worker': 0 });
  });

  it('refuses a malformed target before any call, naming the field', async () => {
    await expect(
      invoke({ action: 'stop', clusters: ['stage'], target: { account: '12345', region: 'eu-central-1' } }),
    ).rejects.toThrow(/field "target.account": expected a 12-digit AWS account id/);
    await expect(invoke({ action: 'stop', clusters: ['stage'], fleet: { run: 'x' } })).rejects.toThrow(
      /field "target"/,
    );
    expect(proxy.requests).toEqual([]);
  });

  it('stops starting work in a fleet iteration once the kill switch is engaged while it runs', async () => {
    const many: ClusterSpec[] = [
      { name: 'stage', services: Array.from({ length: 12 }, (_, i) => ({ name: `svc-${i}`, desired: 2 })) },
    ];
    await seedEstate(await clientsIn(A, 'us-west-2'), many);
    process.env.NIGHTSHIFT_KILL_SWITCH_POLL_MS = '20';
    let first = true;
    proxy.before('UpdateService', async () => {
      if (!first) return;
      first = false;
      reserved(0); // `nightshift fleet halt` while the iteration is at its first change
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
    try {
      const report = await stop(A, 'us-west-2', { fleet: { run: 'run-5' } });

      const updates = proxy.delivered().filter((r) => r.operation === 'UpdateService').length;
      expect(updates).toBeGreaterThan(0);
      expect(updates).toBeLessThan(12);
      expect(report.summary.undone).toBeGreaterThan(0);
      expect(report.resources.at(-1)).toMatchObject({
        type: 'account',
        outcome: 'undone',
        detail: expect.stringContaining('the kill switch was engaged during the run'),
      });
      const rows = await readTargets(dynamoClient(moto.url), TEST_LEASE_TABLE, 'run-5', [
        { account: A, region: 'us-west-2' },
      ]);
      expect(rows.get(`${A}#us-west-2`)?.status).toBe('failed');
    } finally {
      proxy.before('UpdateService', undefined);
      delete process.env.NIGHTSHIFT_KILL_SWITCH_POLL_MS;
    }
  });

  it('changes nothing in a fleet iteration once the kill switch is engaged', async () => {
    reserved(0);
    const report = await stop(A, 'eu-central-1', { fleet: { run: 'run-4' } });

    expect(report.resources).toEqual([
      expect.objectContaining({
        outcome: 'undone',
        detail: expect.stringContaining('the kill switch is engaged'),
      }),
    ]);
    expect(gate.attempts).toEqual([]);
    expect(sentIn(A)).toEqual([]);
    expect(await desired(A)).toEqual({ 'stage/web': 3, 'stage/worker': 2 });
  });
});
