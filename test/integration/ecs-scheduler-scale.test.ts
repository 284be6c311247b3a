/**
 * ecs-scheduler against moto at more than one page of every read: 13 capacity providers (AWS answers
 * DescribeCapacityProviders 10 at a time; moto answers all at once, so the proxy pages its answer as
 * AWS does) and 120 services in one cluster (ListServices pages of 100, DescribeServices 10 at a time,
 * DescribeScalableTargets 50 at a time), stopped and started back exactly.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';
import { runContext } from '#test/support/context.ts';
import { createCluster, observe, seedClients, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, runLeases } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const T0 = new Date('2026-11-23T18:00:00Z');
const MORNING = new Date('2026-11-24T07:00:00Z');

/**
 * moto leaves out DescribeCapacityProviders' paging: it answers every provider named. AWS answers at
 * most 10 a page (maxResults 1–10) with a nextToken. The proxy cuts moto's answer the way AWS would,
 * from the request's maxResults and nextToken (one request at a time: the scheduler reads them in turn).
 */
const pageCapacityProvidersAsAws = (proxy: Proxy) => {
  const asked: { maxResults?: number; nextToken?: string }[] = [];
  const seen = { inFlight: 0, overlapped: false };
  proxy.before('DescribeCapacityProviders', async (request) => {
    seen.inFlight += 1;
    if (seen.inFlight > 1) seen.overlapped = true;
    asked.push(JSON.parse(request.body) as { maxResults?: number; nextToken?: string });
  });
  proxy.rewrite('DescribeCapacityProviders', (body) => {
    seen.inFlight -= 1;
    const request = asked.shift() ?? {};
    const out = JSON.parse(body) as { capacityProviders?: unknown[] };
    const all = out.capacityProviders ?? [];
    const start = Number(request.nextToken ?? '0');
    const size = Math.min(request.maxResults ?? 10, 10);
    return JSON.stringify({
      ...out,
      capacityProviders: all.slice(start, start + size),
      ...(start + size < all.length && { nextToken: String(start + size) }),
    });
  });
  return seen;
};

describe.runIf(motoTestsEnabled())('ecs-scheduler at scale (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let viaProxy: SeedClients;
  let store: LeaseStore;
  let paging: { overlapped: boolean };
  const deps = (now: Date): Deps => ({
    clients: viaProxy,
    config: { PROTECTED_TAGS: DEFAULT_PROTECTED_TAGS, DRY_RUN: false },
    now: () => now,
  });
  const ctx = () => runContext({ leases: runLeases(store, 'ecs-scheduler scale test') });
  const sent = (operation: string) =>
    proxy
      .delivered()
      .filter((r) => r.operation === operation)
      .map((r) => JSON.parse(r.body) as Record<string, unknown>);

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(moto.url);
    aws = seedClients(moto.url);
    viaProxy = seedClients(proxy.url);
    paging = pageCapacityProvidersAsAws(proxy);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    store = await leaseTable(moto.url);
    proxy.requests.length = 0;
  });

  it('stops and starts 13 clusters on 13 capacity providers, past the 10 DescribeCapacityProviders answers at once', async () => {
    // Prepare
    const names = Array.from({ length: 13 }, (_, i) => `team-${String(i).padStart(2, '0')}`);
    for (const name of names) {
      await createCluster(aws, {
        name,
        tags: { team: 'shop' },
        group: { name: `${name}-nodes`, min: 1, desired: 1, max: 2 },
        services: [{ name: 'web', desired: 1 }],
      });
    }
    const groups = names.map((n) => `${n}-nodes`);
    const before = await observe(aws, names, groups);

    // Act
    const stop = await run({ action: 'stop', tags: { team: 'shop' } }, ctx(), deps(T0));
    const stopped = await observe(aws, names, groups);
    const start = await run({ action: 'start', tags: { team: 'shop' } }, ctx(), deps(MORNING));

    // Assess
    expect(stop.summary).toMatchObject({ changed: 26, skipped: 0, failed: 0 });
    for (const g of groups) expect(stopped.groups[g]).toMatchObject({ min: 0, desired: 0, max: 0 });
    expect(start.summary).toMatchObject({ changed: 26, failed: 0 });
    expect(await observe(aws, names, groups)).toEqual(before);
    const pages = sent('DescribeCapacityProviders');
    expect(pages.every((p) => p.maxResults === undefined)).toBe(true);
    expect(pages.filter((p) => p.nextToken === '10').length).toBeGreaterThanOrEqual(2);
    expect(paging.overlapped).toBe(false);
  });

  it('stops and starts 120 autoscaled services of one cluster, reading every page at AWS page sizes', async () => {
    // Prepare
    const services = Array.from({ length: 120 }, (_, i) => ({
      name: `svc-${String(i).padStart(3, '0')}`,
      desired: 2,
      scaling: { min: 1, max: 4 },
    }));
    await createCluster(aws, { name: 'big', services });
    const before = await observe(aws, ['big'], []);

    // Act
    const stop = await run({ action: 'stop', clusters: ['big'] }, ctx(), deps(T0));
    const stopped = await observe(aws, ['big'], []);
    const start = await run({ action: 'start', clusters: ['big'] }, ctx(), deps(MORNING));

    // Assess
    expect(stop.summary).toMatchObject({ changed: 120, failed: 0 });
    expect(Object.values(stopped.services).every((s) => s.desired === 0 && s.scaling?.max === 0)).toBe(true);
    expect(start.summary).toMatchObject({ changed: 120, failed: 0 });
    expect(await observe(aws, ['big'], [])).toEqual(before);
    expect(sent('ListServices').every((l) => l.maxResults === 100)).toBe(true);
    expect(Math.max(...sent('DescribeServices').map((d) => (d.services as string[]).length))).toBe(10);
    expect(Math.max(...sent('DescribeScalableTargets').map((d) => (d.ResourceIds as string[]).length))).toBe(
      50,
    );
  });
});
