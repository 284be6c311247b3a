import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { CreateOrUpdateTagsCommand } from '@aws-sdk/client-auto-scaling';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { handler, run, type Deps } from '#functions/ecs-scheduler/handler.ts';
import { SchedulerConfig } from '#functions/ecs-scheduler/config.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { applicationAutoScalingClient } from '#shared/aws/application-autoscaling.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { parseEnv } from '#shared/env.ts';
import type { Report } from '#shared/report.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import {
  createCluster,
  observe,
  observeSample,
  seedClients,
  seedEstate,
  type SeedClients,
} from '#test/support/ecs-estate.ts';
import { dynamoClient, leaseTable, runLeases, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';

const invoke = (event: unknown) => handler(event, lambdaContext('ecs-scheduler')) as Promise<Report>;
const withEnv = (env: Record<string, string>): Deps => ({
  clients: { ecs: ecsClient(), scaling: applicationAutoScalingClient(), autoscaling: autoScalingClient() },
  config: parseEnv(SchedulerConfig, env),
  now: () => new Date(),
});
const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));

describe.runIf(motoTestsEnabled())('ecs-scheduler against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;
  let store: LeaseStore;
  /** A run context with this stage's lease table, as withOps gives a deployed run. */
  const ctx = () => runContext({ leases: runLeases(store, 'ecs-scheduler test run') });
  /** The AWS calls a run made, without its lease-table calls. */
  const awsCalls = () => proxy.delivered().filter((r) => !r.service.startsWith('DynamoDB'));
  // EventBridge Scheduler is a REST API: the proxy names its calls by path; `GET /schedules?…` is ListSchedules.
  const mutations = () =>
    awsCalls().filter((r) => !/^(Describe|List)/.test(r.operation) && !r.operation.startsWith('/schedules?'));

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    aws = seedClients(moto.url);
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    proxy.setFaults(undefined);
    proxy.before('DescribeServices', undefined);
    proxy.before('UpdateService', undefined);
    await moto.reset();
    store = await leaseTable(moto.url);
    await seedEstate(aws);
    proxy.requests.length = 0;
  });

  it('stops the stage estate and starts it back exactly as it was', async () => {
    // Prepare
    const before = await observeSample(aws);

    // Act
    const stop = await invoke({ action: 'stop', clusters: ['stage'] });
    const stopped = await observeSample(aws);

    // Assess: everything in stage parked, state saved on the resources themselves
    expect(stop.summary).toEqual({
      changed: 4,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(stopped.services['stage/web']).toMatchObject({
      desired: 0,
      scaling: { min: 0, max: 0, suspended: [true, true, true] },
    });
    expect(stopped.services['stage/web']?.tags['nightshift:stopped']).toMatch(
      /^desired=3 min=2 max=6 suspended=none at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    expect(stopped.services['stage/worker']?.desired).toBe(0);
    expect(stopped.services['stage/worker']?.tags['nightshift:stopped']).toMatch(/^desired=2 at=/);
    expect(stopped.services['stage/batch']?.tags['nightshift:stopped']).toMatch(/^desired=0 at=/);
    expect(stopped.groups['stage-ecs-nodes']).toMatchObject({ min: 0, desired: 0, max: 0 });
    expect(stopped.groups['stage-ecs-nodes']?.tags['nightshift:stopped']).toMatch(
      /^min=1 desired=2 max=4 at=/,
    );
    expect(row(stop, 'service/stage/web')?.detail).toBe(
      'desiredCount 3 → 0; scaling min 2→0 max 6→0, all scaling suspended; saved in tag nightshift:stopped',
    );
    // prod is not in scope and untouched
    expect(stopped.services['prod/api']).toEqual(before.services['prod/api']);
    expect(stopped.groups['prod-ecs-nodes']).toEqual(before.groups['prod-ecs-nodes']);

    // Act
    const start = await invoke({ action: 'start', clusters: ['stage'] });

    // Assess: exact restore, saved state gone
    expect(start.summary).toEqual({
      changed: 4,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(await observeSample(aws)).toEqual(before);
    expect(row(start, 'service/stage/web')?.detail).toMatch(
      /^desiredCount 0 → 3; scaling min 0→2 max 0→6, scaling active; saved state from .* removed$/,
    );
  });

  it('restores groups first, then scaling targets, then desired counts', async () => {
    await invoke({ action: 'stop', clusters: ['stage'] });
    proxy.requests.length = 0;

    await invoke({ action: 'start', clusters: ['stage'] });

    const ops = mutations().map((r) => r.operation);
    const groupOps = ['UpdateAutoScalingGroup', 'DeleteTags'];
    const lastGroupOp = Math.max(...groupOps.map((op) => ops.lastIndexOf(op)));
    const firstServiceOp = ops.findIndex((op) => !groupOps.includes(op));
    expect(ops.filter((op) => groupOps.includes(op))).toEqual(groupOps);
    expect(lastGroupOp).toBeLessThan(firstServiceOp);
    expect(ops.indexOf('RegisterScalableTarget')).toBeLessThan(ops.indexOf('UpdateService'));
  });

  it('changes nothing on a second stop and never overwrites the saved state', async () => {
    await invoke({ action: 'stop', clusters: ['stage'] });
    const once = await observeSample(aws);

    const again = await invoke({ action: 'stop', clusters: ['stage'] });

    expect(again.summary).toEqual({
      changed: 0,
      planned: 0,
      unchanged: 4,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(await observeSample(aws)).toEqual(once);
    expect(row(again, 'service/stage/web')?.detail).toMatch(
      /^already stopped by nightshift at .*; start restores desiredCount 3, scaling min 2 max 6, scaling active$/,
    );
  });

  it('stops again a parked service scaled up by hand, keeping the state it saved', async () => {
    // Prepare: web's scaling target stays parked, so this is still a stopped service
    await invoke({ action: 'stop', clusters: ['stage'] });
    const saved = (await observeSample(aws)).services['stage/web']?.tags['nightshift:stopped'];
    await aws.ecs.send(new UpdateServiceCommand({ cluster: 'stage', service: 'web', desiredCount: 5 }));

    // Act
    const again = await invoke({ action: 'stop', clusters: ['stage'] });
    await invoke({ action: 'start', clusters: ['stage'] });

    // Assess
    expect(row(again, 'service/stage/web')?.outcome).toBe('changed');
    expect(row(again, 'service/stage/web')?.detail).toMatch(/^desiredCount 5 → 0 \(finishing a stop from/);
    expect(saved).toMatch(/^desired=3 min=2 max=6 /);
    expect((await observeSample(aws)).services['stage/web']).toMatchObject({
      desired: 3,
      scaling: { min: 2, max: 6 },
    });
  });

  it('refuses a running service whose saved state does not match it, keeping the tag for a person to judge', async () => {
    // Prepare: a tag left behind on a running service (as by a start whose UntagResource failed)
    const { TagResourceCommand } = await import('@aws-sdk/client-ecs');
    const worker = 'arn:aws:ecs:eu-central-1:123456789012:service/stage/worker';
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: worker,
        tags: [{ key: 'nightshift:stopped', value: 'desired=9 at=2026-11-20T18:00:00Z' }],
      }),
    );

    // Act
    const stop = await invoke({ action: 'stop', clusters: ['stage'] });
    const after = await observeSample(aws);

    // Assess
    expect(row(stop, 'service/stage/worker')).toMatchObject({ outcome: 'failed' });
    expect(row(stop, 'service/stage/worker')?.detail).toMatch(
      /does not match the running service \(desiredCount 2\)/,
    );
    expect(after.services['stage/worker']).toMatchObject({
      desired: 2,
      tags: { 'nightshift:stopped': 'desired=9 at=2026-11-20T18:00:00Z' },
    });
    expect(row(stop, 'autoScalingGroupName/stage-ecs-nodes')?.outcome).toBe('skipped');
    expect(after.groups['stage-ecs-nodes']).toMatchObject({ min: 1, desired: 2, max: 4 });
  });

  it('changes nothing on a second start and touches nothing without saved state', async () => {
    const before = await observeSample(aws);

    const start = await invoke({ action: 'start', clusters: ['stage'] });

    expect(await observeSample(aws)).toEqual(before);
    expect(start.summary).toMatchObject({ changed: 0, failed: 0 });
    expect(row(start, 'service/stage/web')).toMatchObject({
      outcome: 'unchanged',
      detail: 'running at desiredCount 3; no saved state',
    });
    expect(row(start, 'service/stage/batch')).toMatchObject({ outcome: 'skipped' });
    expect(mutations()).toEqual([]);
  });

  it('plans without changing anything in a dry run', async () => {
    const before = await observeSample(aws);

    const report = await invoke({ action: 'stop', clusters: ['stage'], dryRun: true });

    expect(report.dryRun).toBe(true);
    expect(report.summary).toEqual({
      changed: 0,
      planned: 4,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(row(report, 'service/stage/web')?.detail).toBe(
      'desiredCount 3 → 0; scaling min 2→0 max 6→0, all scaling suspended; saved in tag nightshift:stopped',
    );
    expect(await observeSample(aws)).toEqual(before);
    expect(mutations()).toEqual([]);
  });

  it('never touches a protected cluster, even when named', async () => {
    const before = await observeSample(aws);

    const report = await invoke({ action: 'stop', clusters: ['prod'] });

    expect(await observeSample(aws)).toEqual(before);
    expect(report.summary).toEqual({
      changed: 0,
      planned: 0,
      unchanged: 0,
      skipped: 2,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(row(report, 'service/prod/api')?.detail).toBe('protected by tag env=prod on cluster prod');
    expect(row(report, 'autoScalingGroupName/prod-ecs-nodes')?.detail).toBe(
      'protected: used by cluster prod (env=prod)',
    );
  });

  it('leaves the capacity running when only some services of a cluster are stopped', async () => {
    const report = await invoke({ action: 'stop', clusters: ['stage'], services: ['worker'] });
    const after = await observeSample(aws);

    expect(after.services['stage/worker']?.desired).toBe(0);
    expect(after.services['stage/web']?.desired).toBe(3);
    expect(after.groups['stage-ecs-nodes']).toMatchObject({ min: 1, desired: 2, max: 4 });
    expect(after.groups['stage-ecs-nodes']?.tags).toEqual({});
    expect(row(report, 'autoScalingGroupName/stage-ecs-nodes')).toMatchObject({
      outcome: 'skipped',
      detail: 'capacity left running: this run selected only some services of cluster stage',
    });
  });

  it('selects by tags across clusters, with service tags merged over cluster tags', async () => {
    const report = await invoke({ action: 'stop', tags: { team: 'shop', app: 'web' } });
    const after = await observeSample(aws);

    expect(report.resources.map((r) => `${r.type} ${r.arn.split('/').pop()} ${r.outcome}`)).toEqual([
      'ecs-service web changed',
      'autoscaling-group stage-ecs-nodes skipped',
    ]);
    expect(after.services['stage/web']?.desired).toBe(0);
    expect(after.services['stage/worker']?.desired).toBe(2);
    expect(after.services['prod/api']?.desired).toBe(4);
  });

  it('lets PROTECTED_TAGS replace the default protection', async () => {
    const deps = withEnv({ PROTECTED_TAGS: 'team=SHOP' });

    const stage = await run({ action: 'stop', clusters: ['stage'] }, ctx(), deps);
    const prodUnderOtherRules = await run(
      { action: 'stop', clusters: ['prod'], dryRun: true },
      ctx(),
      withEnv({ PROTECTED_TAGS: 'tier=critical' }),
    );

    expect(stage.summary).toEqual({
      changed: 0,
      planned: 0,
      unchanged: 0,
      skipped: 4,
      undone: 0,
      waiting: 0,
      failed: 0,
    });
    expect(row(stage, 'service/stage/web')?.detail).toBe('protected by tag team=shop on cluster stage');
    expect((await observeSample(aws)).services['stage/web']?.desired).toBe(3);
    expect(prodUnderOtherRules.summary).toMatchObject({ planned: 2, skipped: 0 });
  });

  it('makes every run a dry run when DRY_RUN=true, whatever the event says', async () => {
    const before = await observeSample(aws);

    const report = await run(
      { action: 'stop', clusters: ['stage'], dryRun: false },
      ctx(),
      withEnv({ DRY_RUN: 'true' }),
    );

    expect(report).toMatchObject({ dryRun: true, summary: { planned: 4, changed: 0 } });
    expect(await observeSample(aws)).toEqual(before);
  });

  it('reports a named cluster that does not exist as failed and still acts on the others', async () => {
    const report = await invoke({ action: 'stop', clusters: ['stage', 'stagee'] });

    expect(report.resources[0]).toMatchObject({ arn: 'stagee', type: 'ecs-cluster', outcome: 'failed' });
    expect(report.summary.changed).toBe(4);
  });

  it('throws when every resource failed, naming the first reason', async () => {
    await expect(invoke({ action: 'stop', clusters: ['nope'] })).rejects.toThrow(
      'all 1 resource(s) failed; first error: cluster not found (or not ACTIVE); nothing done for it',
    );
  });

  it.each([
    { event: null, field: '(event)' },
    { event: 'stop', field: '(event)' },
    { event: {}, field: 'action' },
    { event: { action: 'halt', clusters: ['stage'] }, field: 'action' },
    { event: { action: 'stop' }, field: 'clusters' },
    { event: { action: 'stop', clusters: [] }, field: 'clusters' },
    { event: { action: 'stop', clusters: 'stage' }, field: 'clusters' },
    { event: { action: 'stop', clusters: ['stage; rm -rf /'] }, field: 'clusters.0' },
    { event: { action: 'stop', clusters: ['stage'], dryRun: 'yes' }, field: 'dryRun' },
    { event: { action: 'stop', clusters: ['stage'], force: 'yes' }, field: 'force' },
    { event: { action: 'stop', tags: {} }, field: 'tags' },
    { event: { action: 'stop', tags: { env: 3 } }, field: 'tags.env' },
    { event: { action: 'start', clusters: ['stage'], services: [''] }, field: 'services.0' },
  ])('refuses $event before any AWS call, naming $field', async ({ event, field }) => {
    const before = await observeSample(aws);
    proxy.requests.length = 0;

    const error = await invoke(event).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ name: 'InputError', field });
    expect((error as Error).message).toContain(field === '(event)' ? 'invalid event' : field);
    expect(proxy.requests).toEqual([]);
    expect(await observeSample(aws)).toEqual(before);
  });

  it('completes exactly while 20% of calls are throttled and 5% answer 503', async () => {
    const before = await observeSample(aws);
    proxy.setFaults({ throttle: 0.2, unavailable: 0.05, seed: 7 });

    const stop = await invoke({ action: 'stop', clusters: ['stage'] });
    const stopped = await observeSample(aws);
    const start = await invoke({ action: 'start', clusters: ['stage'] });

    proxy.setFaults(undefined);
    const faults = proxy.requests.filter((r) => r.fault);
    expect(faults.filter((r) => r.fault === 'throttle').length).toBeGreaterThan(3);
    expect(faults.filter((r) => r.fault === 'unavailable').length).toBeGreaterThan(0);
    expect(stop.summary).toMatchObject({ changed: 4, failed: 0 });
    expect(stopped.services['stage/web']?.desired).toBe(0);
    expect(start.summary).toMatchObject({ changed: 4, failed: 0 });
    expect(await observeSample(aws)).toEqual(before);
  });

  it('leaves a group with a rotation in flight running and still stops its services', async () => {
    // Prepare: instance-rotation is mid-way through replacing an instance of the group
    await aws.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          {
            ResourceId: 'stage-ecs-nodes',
            ResourceType: 'auto-scaling-group',
            Key: 'nightshift:rotation',
            Value: 'desired=2 instance=i-0a1b2c3d4e5f60718 phase=launching',
            PropagateAtLaunch: false,
          },
        ],
      }),
    );

    // Act
    const stop = await invoke({ action: 'stop', clusters: ['stage'] });
    const after = await observeSample(aws);

    // Assess
    expect(row(stop, 'autoScalingGroupName/stage-ecs-nodes')).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(
        /^rotation in flight \(tag nightshift:rotation=desired=2 instance=i-0a1b2c3d4e5f60718/,
      ),
    });
    expect(after.groups['stage-ecs-nodes']).toMatchObject({ min: 1, desired: 2, max: 4 });
    expect(after.groups['stage-ecs-nodes']?.tags['nightshift:stopped']).toBeUndefined();
    expect(after.services['stage/web']?.desired).toBe(0);
  });

  it('reports a deadline hit mid-read as undone, changes nothing and releases its leases', async () => {
    // Prepare: a cluster of 15 services, read 10 at a time; time runs out after the first 10
    await createCluster(aws, {
      name: 'big',
      services: Array.from({ length: 15 }, (_, i) => ({ name: `svc-${i}`, desired: 1 })),
    });
    const before = await observe(aws, ['big'], []);
    let read = false;
    proxy.before('DescribeServices', async (request) => {
      if (request.body.includes('cluster/big')) read = true;
    });

    // Act
    const report = (await handler(
      { action: 'stop', clusters: ['big'] },
      lambdaContext('ecs-scheduler', () => (read ? 5_000 : 900_000)),
    )) as Report;

    // Assess
    expect(report.resources).toEqual([
      {
        arn: '',
        type: 'run',
        outcome: 'undone',
        detail:
          'OutOfTimeError: the Lambda was about to time out while reading ECS services of cluster big; nothing was ' +
          'changed after that point — the next run starts over',
      },
    ]);
    expect(await observe(aws, ['big'], [])).toEqual(before);
    expect(mutations()).toEqual([]);
    expect(await store.read('arn:aws:ecs:eu-central-1:123456789012:cluster/big')).toBeUndefined();
  });

  it('reports work a deadline mid-write left as undone, and the next run finishes it first', async () => {
    // Prepare: time runs out once the services are stopped, before the group. A stop's last step for a
    // service reads that service alone (its saved state, again): after the third, time is up.
    let checked = 0;
    proxy.before('DescribeServices', async (request) => {
      if (/"services":\["[^"]+"\]/.test(request.body)) checked += 1;
    });
    const carryOver = () =>
      dynamoClient(moto.url).send(
        new GetItemCommand({
          TableName: TEST_LEASE_TABLE,
          Key: { scope: { S: 'carryover#ecs-scheduler#stop' } },
        }),
      );

    // Act
    const cut = (await handler(
      { action: 'stop', clusters: ['stage'] },
      lambdaContext('ecs-scheduler', () => (checked >= 3 ? 5_000 : 900_000)),
    )) as Report;
    const carried = await carryOver();
    const next = await invoke({ action: 'stop', clusters: ['stage'] });

    // Assess
    expect(cut.summary).toMatchObject({ changed: 3, undone: 1, failed: 0 });
    expect(row(cut, 'autoScalingGroupName/stage-ecs-nodes')?.detail).toMatch(
      /^not started: the Lambda was about to time out; the next run starts with it \(would have: min 1→0/,
    );
    expect(carried.Item?.arns?.L?.map((v) => v.S)).toEqual([
      expect.stringMatching(/autoScalingGroupName\/stage-ecs-nodes$/),
    ]);
    expect(next.summary).toMatchObject({ changed: 1, unchanged: 3, failed: 0 });
    expect((await observeSample(aws)).groups['stage-ecs-nodes']).toMatchObject({
      min: 0,
      desired: 0,
      max: 0,
    });
    expect((await carryOver()).Item).toBeUndefined();
  });

  it('applies the plan a dry run showed, and refuses a plan that changed since, changing nothing', async () => {
    // Prepare
    const first = await invoke({ action: 'stop', clusters: ['stage'], services: ['worker'], dryRun: true });
    await aws.ecs.send(new UpdateServiceCommand({ cluster: 'stage', service: 'worker', desiredCount: 5 }));
    const before = await observeSample(aws);

    // Act
    const refused = await invoke({
      action: 'stop',
      clusters: ['stage'],
      services: ['worker'],
      planDigest: first.planDigest,
    });
    const unchanged = await observeSample(aws);
    const second = await invoke({ action: 'stop', clusters: ['stage'], services: ['worker'], dryRun: true });
    const applied = await invoke({
      action: 'stop',
      clusters: ['stage'],
      services: ['worker'],
      planDigest: second.planDigest,
    });

    // Assess
    expect(first.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(second.planDigest).not.toBe(first.planDigest);
    expect(row(refused, 'service/stage/worker')).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(
        /^the plan changed since it was confirmed .*\(the new plan: desiredCount 5 → 0;/,
      ),
    });
    expect(unchanged).toEqual(before);
    expect(row(applied, 'service/stage/worker')).toMatchObject({ outcome: 'changed' });
    expect((await observeSample(aws)).services['stage/worker']?.desired).toBe(0);
  });
});
