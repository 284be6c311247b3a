/**
 * `nightshift stop|start --group` in --local mode: the real ecs-scheduler in-process against moto parks a
 * standalone Auto Scaling group at 0/0/0 and restores it exactly; `--group` with `--db` is refused.
 *
 * moto 5.2.1 answers DescribeCapacityProviders without names (AWS: every capacity provider of the
 * account) with a 500: the proxy answers it with none, as AWS would for an account without any.
 */
import { CreateOrUpdateTagsCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';
import { createGroup, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { CREATION_TIMES_LONG_AGO, startProxy, type Proxy } from '#test/support/proxy.ts';

describe.runIf(motoTestsEnabled())('nightshift stop|start --group against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SeedClients;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    aws = seedClients(moto.url);
    proxy.stub('DescribeCapacityProviders', (request) =>
      request.body.includes('capacityProviders')
        ? undefined
        : { contentType: 'application/x-amz-json-1.1', body: JSON.stringify({ capacityProviders: [] }) },
    );
  });
  afterAll(async () => {
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    proxy.rewrite('DescribeAutoScalingGroups', undefined);
    proxy.pinTimes(undefined);
    await moto.reset();
    await seedEstate(aws, []);
    await leaseTable(moto.url);
    await createGroup(aws, { name: 'batch-workers', min: 1, desired: 2, max: 4 });
    proxy.requests.length = 0;
  });
  const size = async () => {
    const g = (
      await aws.autoscaling.send(
        new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['batch-workers'] }),
      )
    ).AutoScalingGroups?.[0];
    return [g?.MinSize, g?.DesiredCapacity, g?.MaxSize];
  };
  const env = { LEASE_TABLE: 'nightshift-dev-leases', AWS_REGION: 'eu-central-1' };

  it('parks a group with --group and restores it exactly', async () => {
    // Act
    const stop = await cli(['stop', '--group', 'batch-workers', '--local', '--yes', '--json'], { env });
    const parked = await size();
    const start = await cli(['start', '--group', 'batch-workers', '--local', '--yes', '--json'], { env });

    // Assess
    expect(stop.code, stop.err).toBe(0);
    expect(JSON.parse(stop.out).resources).toEqual([
      expect.objectContaining({ type: 'autoscaling-group', outcome: 'changed' }),
    ]);
    expect(parked).toEqual([0, 0, 0]);
    expect(start.code, start.err).toBe(0);
    expect(await size()).toEqual([1, 2, 4]);
    expect(
      proxy.requests
        .filter((r) => r.operation === 'UpdateAutoScalingGroup')
        .map((r) => new URLSearchParams(r.body).get('DesiredCapacity')),
    ).toEqual(['0', '2']);
  });

  it('puts a group on a schedule to sleep with sleep --group: the override on the group, parked at once', async () => {
    // Prepare: the group follows a schedule (whatever it says now, a sleep override parks it)
    await aws.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          {
            ResourceId: 'batch-workers',
            ResourceType: 'auto-scaling-group',
            Key: 'nightshift:schedule',
            Value: 'office-hours',
            PropagateAtLaunch: false,
          },
        ],
      }),
    );

    // moto stamps CreatedTime with the real clock: the group would be in its grace period (created
    // minutes ago). Pinned to January, as a group made long ago.
    proxy.pinTimes(CREATION_TIMES_LONG_AGO);

    // Act
    const sleep = await cli(
      [
        'sleep',
        '--group',
        'batch-workers',
        '--for',
        '1h',
        '--reason',
        'cli test',
        '--local',
        '--yes',
        '--json',
      ],
      { env },
    );

    // Assess
    expect(sleep.code, sleep.err + sleep.out).toBe(0);
    expect(await size()).toEqual([0, 0, 0]);
    proxy.pinTimes(undefined);
    const tags = (
      await aws.autoscaling.send(
        new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['batch-workers'] }),
      )
    ).AutoScalingGroups?.[0]?.Tags;
    expect(tags?.find((t) => t.Key === 'nightshift:override')?.Value).toMatch(
      /^state=stopped until=\S+ by=\S+ why=cli test$/,
    );
  });

  it('refuses wake --group with --db before any AWS call, naming --group', async () => {
    // Act
    const mixed = await cli(
      ['wake', '--db', 'shop-db', '--group', 'batch-workers', '--for', '1h', '--local', '--yes'],
      {
        env,
      },
    );

    // Assess
    expect(mixed.code).toBe(2);
    expect(mixed.err).toContain('--group');
    expect(proxy.requests).toEqual([]);
  });

  it('refuses --group with --db before any AWS call, naming --group', async () => {
    // Act
    const mixed = await cli(['stop', '--db', 'shop-db', '--group', 'batch-workers', '--local', '--yes'], {
      env,
    });

    // Assess
    expect(mixed.code).toBe(2);
    expect(mixed.err).toContain('--group');
    expect(mixed.err).toContain('run them as two commands');
    expect(proxy.requests).toEqual([]);
    expect(await size()).toEqual([1, 2, 4]);
  });
});
