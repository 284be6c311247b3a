import { describe, expect, it } from 'vitest';
import { dynamoLeaseStore, RunLeases } from '#shared/lease.ts';
import { onDemand } from '#shared/on-demand.ts';

describe('onDemand', () => {
  it('makes the value once, for calls at once and later, and tries again after a failure', async () => {
    // Prepare
    let made = 0;
    let fail = true;
    const value = onDemand(async () => {
      made += 1;
      await new Promise((resolve) => setImmediate(resolve));
      if (fail) throw new Error(`attempt ${made} failed`);
      return { made };
    });

    // Act / Assess: two calls at once share the failed attempt; the next call tries again
    const first = await Promise.allSettled([value(), value()]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(made).toBe(1);
    fail = false;
    const [a, b] = await Promise.all([value(), value()]);
    expect(a).toBe(b);
    expect(await value()).toBe(a);
    expect(made).toBe(2);
  });
});

describe('the lease table loaded on demand (shared/lease.ts dynamoLeaseStore)', () => {
  it('refuses the claims, naming why, when the client or its code cannot be loaded: the run goes on', async () => {
    // Prepare
    const store = dynamoLeaseStore(async () => {
      throw new Error('could not load the DynamoDB client');
    }, 'nightshift-dev-leases');
    const leases = new RunLeases(
      store,
      { holder: 'ecs-scheduler run test', token: 'token-1' },
      () => new Date('2026-11-30T18:00:00Z'),
      () => 60_000,
    );

    // Act
    const refused = await leases.takeEach(['cluster/a', 'cluster/b']);

    // Assess: each scope refused with the reason, nothing thrown, nothing held
    expect([...refused.keys()]).toEqual(['cluster/a', 'cluster/b']);
    expect(refused.get('cluster/a')).toEqual({
      reason: expect.stringContaining('could not load the DynamoDB client') as string,
      outcome: 'failed',
    });
    expect(leases.held.size).toBe(0);
  });
});
