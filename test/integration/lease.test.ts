import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeleteTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { claimReason, dynamoLeaseStore, type Claim, type LeaseStore } from '#shared/lease.ts';
import { ensureLocalLeaseTable } from '#shared/lease-table.ts';
import { dynamoCarryOver } from '#shared/carryover.ts';
import { withOps } from '#shared/handler.ts';
import { executeWork } from '#shared/execute.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { lambdaContext } from '#test/support/context.ts';
import { dynamoClient, leaseTable, runLeases, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

const T0 = new Date('2026-11-30T18:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

describe.runIf(motoTestsEnabled())('leases in DynamoDB (moto)', () => {
  let moto: Moto;
  let store: LeaseStore;
  let client: DynamoDBClient;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    client = dynamoClient(moto.url);
  });
  afterAll(() => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    store = await leaseTable(moto.url);
  });

  it('gives a scope to one run at a time, tells the loser who holds it and since when, and frees it on release', async () => {
    // Prepare: a stop and a start on the same cluster, interleaved step by step
    const scope = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
    const stop = runLeases(store, 'ecs-scheduler stop (schedule)', () => at(0));
    let clock = at(42);
    const start = runLeases(store, 'ecs-scheduler start (cli --local)', () => clock);

    // Act
    const first = await stop.take(scope);
    const second = await start.take(scope);

    // Assess: the stop holds it; the start is told by whom and for how long
    expect(first).toEqual({ ok: true });
    expect(second.ok).toBe(false);
    const reason = claimReason(second as Exclude<Claim, { ok: true }>, TEST_LEASE_TABLE, clock);
    expect(reason).toContain('ecs-scheduler stop (schedule)');
    expect(reason).toContain('for 0m (since 2026-11-30T18:00:00Z');
    expect((await store.read(scope))?.holder).toBe('ecs-scheduler stop (schedule)');

    // Act: the start cannot release what it does not hold; the stop releases
    await start.releaseAll();
    expect((await store.read(scope))?.holder).toBe('ecs-scheduler stop (schedule)');
    await stop.releaseAll();
    clock = at(50);
    const third = await start.take(scope);

    // Assess
    expect(third).toEqual({ ok: true });
    expect((await store.read(scope))?.holder).toBe('ecs-scheduler start (cli --local)');
  });

  it('lets a lease expire, so a crashed run never blocks a scope for ever, allowing for clock skew', async () => {
    const scope = 'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/web';
    const crashed = runLeases(store, 'crashed run', () => at(0), 60_000);
    let clock = at(59);
    const next = runLeases(store, 'next run', () => clock, 60_000);

    expect(await crashed.take(scope)).toEqual({ ok: true });
    expect((await next.take(scope)).ok).toBe(false);
    // A taker whose clock runs up to 5 minutes fast must not take a lease still held.
    clock = at(60 + 299);
    expect((await next.take(scope)).ok).toBe(false);
    clock = at(60 + 300);
    expect(await next.take(scope)).toEqual({ ok: true });
    // The crashed run's late release does not free the lease it lost.
    await crashed.releaseAll();
    expect((await store.read(scope))?.holder).toBe('next run');
  });

  it('takes a thousand scopes in one run and reports each one held by another run', async () => {
    const scopes = Array.from(
      { length: 1000 },
      (_, i) => `arn:aws:ec2:eu-central-1:123456789012:instance/i-${String(i).padStart(17, '0')}`,
    );
    const other = runLeases(store, 'other', () => at(0));
    await other.takeAll(scopes.filter((_, i) => i % 100 === 7));
    const run = runLeases(store, 'run', () => at(1));

    const refused = await run.takeAll(scopes);

    expect([...refused.keys()].sort()).toEqual(scopes.filter((_, i) => i % 100 === 7).sort());
    for (const reason of refused.values())
      expect(reason).toMatch(/^another run holds the lease on it: other, for/);
    expect(await run.releaseAll()).toEqual([]);
    expect(await store.read(scopes[0] ?? '')).toBeUndefined();
    expect((await store.read(scopes[7] ?? ''))?.holder).toBe('other');
  });

  it('lets exactly one of two writers win a compare-and-set over the same version', async () => {
    const scope = 'restart#i-0123456789abcdef0';
    const base = {
      scope,
      holder: 'a',
      token: 'a',
      acquiredAt: at(0),
      expiresAt: at(900),
      data: { restarts: '1' },
    };
    expect(await store.compareAndSet(base, undefined)).toBe(true);
    expect(await store.compareAndSet({ ...base, holder: 'late' }, undefined)).toBe(false);
    const read = await store.read(scope);

    const [one, two] = await Promise.all([
      store.compareAndSet({ ...base, holder: 'alarm-1', data: { restarts: '2' } }, read?.version),
      store.compareAndSet({ ...base, holder: 'alarm-2', data: { restarts: '2' } }, read?.version),
    ]);

    expect([one, two].filter(Boolean)).toHaveLength(1);
    expect((await store.read(scope))?.data).toEqual({ restarts: '2' });
  });

  it('counts a compare-and-set whose answer was lost and whose retry failed its condition as written', async () => {
    // Prepare: the SDK retries a PutItem that landed (ECONNRESET after the write); the retry meets our own write.
    const scope = 'restart#i-0123456789abcdef1';
    const mine = {
      scope,
      holder: 'run A',
      token: 'token-a',
      acquiredAt: at(0),
      expiresAt: at(900),
      data: {},
    };
    expect(await store.compareAndSet(mine, undefined)).toBe(true);

    // Act: the retry of that very write
    const retried = await store.compareAndSet(mine, undefined);
    // ...and another run's write over the same (now stale) expectation
    const other = await store.compareAndSet({ ...mine, holder: 'run B', token: 'token-b' }, undefined);

    // Assess
    expect(retried).toBe(true);
    expect(other).toBe(false);
    expect((await store.read(scope))?.holder).toBe('run A');
  });

  it('refuses every claim with the reason when the table is missing or not configured, and changes nothing', async () => {
    await client.send(new DeleteTableCommand({ TableName: TEST_LEASE_TABLE }));
    const run = runLeases(dynamoLeaseStore(client, TEST_LEASE_TABLE), 'run');
    const claim = await run.take('scope');
    expect(claim).toMatchObject({ ok: false, error: expect.stringMatching(/ResourceNotFoundException/) });
    expect(claimReason(claim as Exclude<Claim, { ok: true }>, TEST_LEASE_TABLE, T0)).toMatch(
      /^could not take a lease in nightshift-test-leases \(ResourceNotFoundException.*\); nothing changed/,
    );
  });

  it('creates the local table once, as serverless.yml does', async () => {
    expect(await ensureLocalLeaseTable(client, 'nightshift-local-leases')).toBe(true);
    expect(await ensureLocalLeaseTable(client, 'nightshift-local-leases')).toBe(false);
  });

  describe('withOps', () => {
    const work = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        arn: `arn:aws:rds:eu-central-1:123456789012:snapshot:s-${String(i).padStart(3, '0')}`,
        type: 'rds-snapshot',
        detail: 'tag it',
        hasWork: true,
      }));

    it('records what a run left undone at its deadline, and the next run starts with it', async () => {
      // Prepare: a sweep that has time for 30 items, every day
      process.env.LEASE_TABLE = TEST_LEASE_TABLE;
      const seen: string[][] = [];
      const handler = withOps(
        'snapshot-tags',
        (e) => e as { dryRun?: boolean },
        async (input, ctx) => {
          const first = await ctx.carriedOver('sweep');
          let budget = 30;
          const order: string[] = [];
          const results = await executeWork(
            work(100),
            { dryRun: input.dryRun === true, hasTime: () => budget > 0, concurrency: 1, first },
            async (w) => {
              budget -= 1;
              order.push(w.arn);
              return { arn: w.arn, type: w.type, outcome: 'changed', detail: w.detail };
            },
          );
          seen.push(order);
          return buildReport('sweep', input.dryRun === true, results);
        },
      );

      // Act
      const day1 = (await handler({}, lambdaContext('snapshot-tags'))) as Report;
      const dry = (await handler({ dryRun: true }, lambdaContext('snapshot-tags'))) as Report;
      const day2 = (await handler({}, lambdaContext('snapshot-tags'))) as Report;

      // Assess: day 2 starts where day 1 stopped; a dry run neither used nor replaced the list
      expect(day1.summary).toMatchObject({ changed: 30, undone: 70 });
      expect(day1.resources.find((r) => r.outcome === 'undone')?.detail).toMatch(
        /^not started: the Lambda was about to time out; the next run starts with it/,
      );
      expect(dry.summary).toMatchObject({ planned: 100 });
      expect(seen[1]).toEqual([]);
      expect(seen[2]?.slice(0, 30)).toEqual(
        work(100)
          .slice(30, 60)
          .map((w) => w.arn),
      );
      const carried = await dynamoCarryOver(client, TEST_LEASE_TABLE, () => T0).load(
        'snapshot-tags',
        'sweep',
      );
      expect(day2.summary).toMatchObject({ changed: 30, undone: 70 });
      // What day 2 left: the rest of day 1's tail first, then what day 1 had done.
      expect(carried.size).toBe(70);
      expect(carried.has(work(100)[60]?.arn ?? '')).toBe(true);
      expect(carried.has(work(100)[45]?.arn ?? '')).toBe(false);
      delete process.env.LEASE_TABLE;
    });

    it('keeps what other runs left undone when a run settles only its own part of the work', async () => {
      // Prepare: two alarm runs, each on its own targets, share the carry-over of the action
      process.env.LEASE_TABLE = TEST_LEASE_TABLE;
      const rows = (done: string[], undone: string[]) => [
        ...done.map((arn) => ({ arn, type: 'ec2-instance', outcome: 'changed' as const, detail: '' })),
        ...undone.map((arn) => ({ arn, type: 'ec2-instance', outcome: 'undone' as const, detail: '' })),
      ];
      let next = rows([], []);
      const handler = withOps(
        'ssm-restart',
        (e) => e,
        async (_, ctx) => {
          await ctx.carriedOver('restart');
          return buildReport('restart', false, next);
        },
      );
      const load = () => dynamoCarryOver(client, TEST_LEASE_TABLE, () => T0).load('ssm-restart', 'restart');

      // Act and assess
      next = rows(['i-a'], ['i-b', 'i-c']);
      await handler({}, lambdaContext('ssm-restart'));
      expect([...(await load())]).toEqual(['i-b', 'i-c']);
      next = rows(['i-x'], ['i-y']);
      await handler({}, lambdaContext('ssm-restart'));
      expect([...(await load())]).toEqual(['i-y', 'i-b', 'i-c']);
      next = rows(['i-b', 'i-y'], []);
      await handler({}, lambdaContext('ssm-restart'));
      expect([...(await load())]).toEqual(['i-c']);
      next = rows(['i-c'], []);
      await handler({}, lambdaContext('ssm-restart'));
      expect((await load()).size).toBe(0);
      delete process.env.LEASE_TABLE;
    });

    it('settles a scope left undone last time once a run holds its lease, even without a row for it', async () => {
      process.env.LEASE_TABLE = TEST_LEASE_TABLE;
      const cluster = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
      const carry = dynamoCarryOver(client, TEST_LEASE_TABLE, () => T0);
      await carry.save('ecs-scheduler', 'start', [cluster, 'arn:other']);
      const handler = withOps(
        'ecs-scheduler',
        (e) => e,
        async (_, ctx) => {
          await ctx.carriedOver('start');
          expect(await ctx.leases.take(cluster)).toEqual({ ok: true });
          return buildReport('start', false, []);
        },
      );

      await handler({}, lambdaContext('ecs-scheduler'));

      expect([...(await carry.load('ecs-scheduler', 'start'))]).toEqual(['arn:other']);
      delete process.env.LEASE_TABLE;
    });

    it('reports a read cut short by the deadline as undone, without failing the run', async () => {
      const handler = withOps(
        'ecs-scheduler',
        (e) => e as { action: string },
        async () => {
          throw new OutOfTimeError('ECS services of cluster stage');
        },
      );
      const report = (await handler({ action: 'stop' }, lambdaContext('ecs-scheduler'))) as Report;
      expect(report).toMatchObject({
        action: 'stop',
        summary: { undone: 1, failed: 0 },
        resources: [
          {
            outcome: 'undone',
            detail: expect.stringMatching(
              /^OutOfTimeError: the Lambda was about to time out while reading ECS services of cluster stage; nothing was changed after that point/,
            ),
          },
        ],
      });
    });

    it('releases every lease a run took, whether it returns or throws', async () => {
      process.env.LEASE_TABLE = TEST_LEASE_TABLE;
      const scope = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';
      const ok = withOps(
        'ecs-scheduler',
        (e) => e,
        async (_, ctx) => {
          expect(await ctx.leases.take(scope)).toEqual({ ok: true });
          expect((await store.read(scope))?.holder).toMatch(/^ecs-scheduler run 2f8e6c1a/);
          return buildReport('stop', false, []);
        },
      );
      const crash = withOps(
        'ecs-scheduler',
        (e) => e,
        async (_, ctx) => {
          await ctx.leases.take(scope);
          throw new Error('boom');
        },
      );

      await ok({}, lambdaContext('ecs-scheduler'));
      expect(await store.read(scope)).toBeUndefined();
      await expect(crash({}, lambdaContext('ecs-scheduler'))).rejects.toThrow('boom');
      expect(await store.read(scope)).toBeUndefined();
      delete process.env.LEASE_TABLE;
    });
  });
});
