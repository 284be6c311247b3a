/**
 * snapshot-tags against moto, through the deployed handler (withOps) with the stage's lease table:
 * snapshots deleted between the read and the write, an event run and a sweep at once, a sweep cut
 * short by the deadline and the next one starting with what it left, and plans confirmed by digest.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeleteDBSnapshotCommand } from '@aws-sdk/client-rds';
import { CreateTagsCommand, DeleteSnapshotCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { handler } from '#functions/snapshot-tags/handler.ts';
import { dynamoCarryOver } from '#shared/carryover.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import type { Report } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';
import { dynamoClient, leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy, type RecordedRequest } from '#test/support/proxy.ts';
import {
  automatedSnapshotArn,
  createDatabase,
  createDbSnapshot,
  createEbsSnapshot,
  createVolume,
  ebsSnapshotArn,
  ebsTags,
  rdsSnapshotEvent,
  rdsTags,
  snapshotSeedClients,
  type SnapshotSeedClients,
} from '#test/support/rds-estate.ts';

const ORDERS = { team: 'shop', owner: 'ann' };
const DATA = { team: 'shop', Name: 'data' };
const LOGS = { team: 'ops' };

describe.runIf(motoTestsEnabled())('snapshot-tags hardening against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SnapshotSeedClients;
  /** What getRemainingTimeInMillis answers: below 10 s, withOps says there is no time left. */
  let remainingMs = 900_000;
  const invoke = (event: unknown) =>
    handler(
      event,
      lambdaContext('snapshot-tags', () => remainingMs),
    ) as Promise<Report>;
  const row = (report: Report, arn: string) => report.resources.find((r) => r.arn === arn);
  const mutations = () => proxy.delivered().filter((r) => !/^(Describe|List)/.test(r.operation));
  const params = (r: RecordedRequest) => new URLSearchParams(r.body);
  const ids = (r: RecordedRequest, prefix: string) =>
    [...params(r).entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  const createTagsCalls = () =>
    proxy
      .delivered()
      .filter((r) => r.operation === 'CreateTags')
      .map((r) => ids(r, 'ResourceId.'));
  const snapshotExists = async (id: string) =>
    (
      (
        await aws.ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [{ Name: 'snapshot-id', Values: [id] }],
          }),
        )
      ).Snapshots ?? []
    ).length > 0;

  interface Seeded {
    ordersAuto: string;
    ordersManual: string;
    dataVolume: string;
    data: [string, string, string];
    logsVolume: string;
    logs: string;
  }

  /** DB orders with its automated and a manual snapshot; three snapshots of volume data, one of logs. */
  const seed = async (): Promise<Seeded> => {
    await createDatabase(aws, 'orders', ORDERS);
    const ordersAuto = await automatedSnapshotArn(aws, 'orders');
    const ordersManual = await createDbSnapshot(aws, 'orders', 'orders-manual', { team: 'orders-dba' });
    const dataVolume = await createVolume(aws, DATA);
    const data: [string, string, string] = [
      await createEbsSnapshot(aws, dataVolume),
      await createEbsSnapshot(aws, dataVolume),
      await createEbsSnapshot(aws, dataVolume),
    ];
    const logsVolume = await createVolume(aws, LOGS);
    const logs = await createEbsSnapshot(aws, logsVolume);
    return { ordersAuto, ordersManual, dataVolume, data, logsVolume, logs };
  };

  beforeAll(async () => {
    // moto lists the snapshots of its built-in AMIs as the account's own; AWS does not.
    process.env.MOTO_EC2_LOAD_DEFAULT_AMIS = 'false';
    moto = await startMoto();
    delete process.env.MOTO_EC2_LOAD_DEFAULT_AMIS;
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    // Before the handler's first invocation: withOps reads LEASE_TABLE once per cold start.
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    aws = snapshotSeedClients(moto.url);
  });
  afterAll(async () => {
    delete process.env.LEASE_TABLE;
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    await leaseTable(moto.url);
    remainingMs = 900_000;
    for (const op of ['CreateTags', 'AddTagsToResource']) {
      proxy.before(op, undefined);
      proxy.rewrite(op, undefined);
    }
    proxy.requests.length = 0;
  });

  describe('an EBS snapshot deleted between the read and its CreateTags', () => {
    /** Deletes `id` in moto when the first CreateTags naming it arrives, before moto answers. */
    const deleteOnFirstCreateTags = (id: string) => {
      let deleted = false;
      proxy.before('CreateTags', async (request) => {
        if (deleted || !ids(request, 'ResourceId.').includes(id)) return;
        deleted = true;
        await aws.ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }));
      });
    };

    it('drops it, resends the rest of the batch, and reports it gone (moto names no id: DescribeSnapshots says which)', async () => {
      // Prepare
      const e = await seed();
      const [first, doomed, last] = e.data;
      deleteOnFirstCreateTags(doomed);

      // Act
      const report = await invoke({ action: 'sweep' });

      // Assess: moto's state
      expect(await snapshotExists(doomed)).toBe(false);
      expect(await ebsTags(aws, first)).toEqual(DATA);
      expect(await ebsTags(aws, last)).toEqual(DATA);
      expect(await ebsTags(aws, e.logs)).toEqual(LOGS);
      // what was sent: the batch, then the batch without the deleted snapshot
      const dataCalls = createTagsCalls().filter((c) => c.includes(first));
      expect(dataCalls.map((c) => [...c].sort())).toEqual([[...e.data].sort(), [first, last].sort()]);
      const lookups = proxy
        .delivered()
        .filter(
          (r) => r.operation === 'DescribeSnapshots' && params(r).get('Filter.1.Name') === 'snapshot-id',
        );
      expect(lookups.map((r) => ids(r, 'Filter.1.Value.').sort())).toEqual([[...e.data].sort()]);
      // the report
      expect(row(report, ebsSnapshotArn(doomed))).toEqual({
        arn: ebsSnapshotArn(doomed),
        type: 'ebs-snapshot',
        outcome: 'skipped',
        detail:
          'no longer exists: InvalidSnapshot.NotFound when its tags were sent (deleted since it was read); nothing to tag',
      });
      expect(row(report, ebsSnapshotArn(first))?.outcome).toBe('changed');
      expect(report.summary).toMatchObject({ changed: 5, skipped: 1, failed: 0 });
    });

    it("drops the id AWS's own error names, without reading anything (moto's answer rewritten to AWS's message)", async () => {
      // Prepare: moto answers <Message/>; AWS says which snapshot does not exist
      const e = await seed();
      const [first, doomed, last] = e.data;
      deleteOnFirstCreateTags(doomed);
      proxy.rewrite('CreateTags', (body) =>
        body.replace('<Message/>', `<Message>The snapshot '${doomed}' does not exist.</Message>`),
      );

      // Act
      const report = await invoke({ action: 'sweep' });

      // Assess
      expect(await ebsTags(aws, first)).toEqual(DATA);
      expect(await ebsTags(aws, last)).toEqual(DATA);
      expect(createTagsCalls().filter((c) => c.includes(first))).toHaveLength(2);
      expect(proxy.delivered().filter((r) => r.operation === 'DescribeSnapshots')).toHaveLength(1);
      expect(row(report, ebsSnapshotArn(doomed))?.outcome).toBe('skipped');
    });
  });

  it.each(['sweep', 'event'] as const)(
    'an event run and a sweep on the same snapshot at once only add the source tags (the %s waits at its write)',
    async (held) => {
      // Prepare: the first AddTagsToResource for the manual snapshot is held until the other run is done
      const e = await seed();
      const event = rdsSnapshotEvent('RDS-EVENT-0042', e.ordersManual);
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let reached: () => void = () => undefined;
      const holding = new Promise<void>((resolve) => (reached = resolve));
      let once = false;
      proxy.before('AddTagsToResource', async (request) => {
        if (once || params(request).get('ResourceName') !== e.ordersManual) return;
        once = true;
        reached();
        await gate;
      });

      // Act: the held run read the snapshot before the other one tagged it
      const first = invoke(held === 'sweep' ? { action: 'sweep' } : event);
      await holding;
      const other = await invoke(held === 'sweep' ? event : { action: 'sweep' });
      release();
      const waited = await first;

      // Assess: the snapshot's own value of team stays; both runs added the same value, nothing else
      expect(await rdsTags(aws, e.ordersManual)).toEqual({ team: 'orders-dba', owner: 'ann' });
      for (const report of [waited, other]) {
        expect(row(report, e.ordersManual)).toMatchObject({
          outcome: 'changed',
          detail: "added 1 tag from db orders: owner; kept the snapshot's own value of: team",
        });
      }
      const writes = mutations().filter((r) => params(r).get('ResourceName') === e.ordersManual);
      expect(writes.map((r) => [r.operation, ...ids(r, 'Tags.Tag.')])).toEqual([
        ['AddTagsToResource', 'owner', 'ann'],
        ['AddTagsToResource', 'owner', 'ann'],
      ]);
    },
  );

  it('a sweep cut short mid-write leaves the rest undone, and the next sweep starts with it', async () => {
    // Prepare: 6 RDS calls then 2 EBS calls; the deadline falls as soon as the first call is sent, so the
    // 5 calls started at once go out and the last 3 do not
    const e = await seed();
    for (const n of [1, 2, 3, 4]) await createDbSnapshot(aws, 'orders', `orders-m${n}`);
    const cut = async () => {
      remainingMs = 5_000;
    };
    proxy.before('AddTagsToResource', cut);
    proxy.before('CreateTags', cut);

    // Act: day 1
    const day1 = await invoke({ action: 'sweep' });

    // Assess: undone rows carry their snapshot ARNs, which the lease table keeps for the next sweep
    const undone1 = day1.resources.filter((r) => r.outcome === 'undone').map((r) => r.arn);
    expect(day1.summary).toMatchObject({ changed: 5, undone: 5, failed: 0 });
    expect(undone1).toEqual(expect.arrayContaining([...e.data.map(ebsSnapshotArn), ebsSnapshotArn(e.logs)]));
    const carried = await dynamoCarryOver(dynamoClient(moto.url), TEST_LEASE_TABLE, () => new Date()).load(
      'snapshot-tags',
      'sweep',
    );
    expect([...carried].sort()).toEqual([...undone1].sort());
    expect(await ebsTags(aws, e.logs)).toEqual({});

    // Prepare day 2: five new manual snapshots, planned ahead of the EBS calls; the same deadline, so
    // 5 of the 8 calls go out
    for (const n of [1, 2, 3, 4, 5]) await createDbSnapshot(aws, 'orders', `orders-n${n}`);
    remainingMs = 900_000;
    proxy.requests.length = 0;

    // Act: day 2
    const day2 = await invoke({ action: 'sweep' });

    // Assess: the EBS snapshots day 1 left went out first; without the carry-over they would be cut again
    expect(await ebsTags(aws, e.logs)).toEqual(LOGS);
    for (const id of e.data) expect(await ebsTags(aws, id)).toEqual(DATA);
    expect(row(day2, ebsSnapshotArn(e.logs))?.outcome).toBe('changed');
    expect(day2.summary).toMatchObject({ changed: 7, undone: 3, failed: 0 });
    const undone2 = day2.resources.filter((r) => r.outcome === 'undone').map((r) => r.arn.split(':').pop());
    expect(undone2).toEqual(['orders-n3', 'orders-n4', 'orders-n5']);
  });

  describe('the plan a person confirmed', () => {
    it('is applied only while the plan is the same: a snapshot taken since the dry run refuses the apply', async () => {
      // Prepare
      const e = await seed();
      const dry = await invoke({ action: 'sweep', dryRun: true });
      const again = await invoke({ action: 'sweep', dryRun: true });
      await createEbsSnapshot(aws, e.logsVolume);
      proxy.requests.length = 0;

      // Act
      const refused = await invoke({ action: 'sweep', planDigest: dry.planDigest });

      // Assess: the digest is stable between dry runs; the apply changed nothing and says why
      expect(dry.planDigest).toMatch(PLAN_DIGEST);
      expect(again.planDigest).toBe(dry.planDigest);
      expect(mutations()).toEqual([]);
      expect(await ebsTags(aws, e.logs)).toEqual({});
      expect(refused.summary).toMatchObject({ changed: 0, skipped: 7 });
      expect(row(refused, ebsSnapshotArn(e.logs))?.detail).toBe(
        'the plan changed since it was confirmed (another run, a person or AWS changed something in between); ' +
          `nothing changed — look at the new plan and confirm again (the new plan: add 1 tag from volume ${e.logsVolume}: team)`,
      );

      // Act: confirm the new plan, apply it
      const confirmed = await invoke({ action: 'sweep', dryRun: true });
      const applied = await invoke({ action: 'sweep', planDigest: confirmed.planDigest });

      // Assess
      expect(applied.summary).toMatchObject({ changed: 7, skipped: 0, failed: 0 });
      expect(await ebsTags(aws, e.logs)).toEqual(LOGS);
    });

    it('covers the values: a source tag whose value changed since the dry run refuses the apply', async () => {
      const e = await seed();
      const dry = await invoke({ action: 'sweep', dryRun: true });
      await aws.ec2.send(
        new CreateTagsCommand({ Resources: [e.logsVolume], Tags: [{ Key: 'team', Value: 'platform' }] }),
      );
      proxy.requests.length = 0;

      const refused = await invoke({ action: 'sweep', planDigest: dry.planDigest });

      expect(mutations()).toEqual([]);
      expect(refused.summary).toMatchObject({ changed: 0, skipped: 6 });
    });
  });

  // Last: the proxy's stub answers every AddTagsToResource from here on (a stub cannot be removed).
  it('reports an RDS snapshot deleted before its AddTagsToResource as gone, without failing the run', async () => {
    // Prepare: moto tags a deleted RDS snapshot without complaint; AWS answers DBSnapshotNotFound (404)
    const e = await seed();
    proxy.before('AddTagsToResource', async () => {
      await aws.rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: 'orders-manual' }));
    });
    proxy.stub('AddTagsToResource', {
      status: 404,
      contentType: 'text/xml',
      body:
        '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>' +
        '<Code>DBSnapshotNotFound</Code><Message>DBSnapshot orders-manual not found.</Message></Error>' +
        '<RequestId>8a1d3c52-1f0e-4a7b-9c6d-2e3f4a5b6c7d</RequestId></ErrorResponse>',
    });

    // Act: the handler throws when every resource failed; it must not
    const report = await invoke(rdsSnapshotEvent('RDS-EVENT-0042', e.ordersManual));

    // Assess
    expect(report.resources).toEqual([
      {
        arn: e.ordersManual,
        type: 'rds-snapshot',
        outcome: 'skipped',
        detail:
          'no longer exists: DBSnapshotNotFoundFault when its tags were sent (deleted since it was read); nothing to tag',
      },
    ]);
  });
});
