/**
 * The start gate of an environment's tiers (functions/ecs-scheduler/environment.ts gateRows), pure:
 * services wait for the standalone groups of their environment, groups and services for its databases,
 * and a group nightshift started that lags past ENVIRONMENT_START_TIMEOUT_MINUTES fails.
 */
import { describe, expect, it } from 'vitest';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { mockClient } from 'aws-sdk-client-mock';
import {
  gateRows,
  readEnvironmentGroups,
  type EnvironmentGroup,
  type GateState,
} from '#functions/ecs-scheduler/environment.ts';
import type { Clients } from '#functions/ecs-scheduler/inventory.ts';
import type { PlannedAction } from '#functions/ecs-scheduler/plan.ts';

const NOW = new Date('2026-11-30T07:00:00Z');
const GROUP =
  'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/shop-asg';
const WEB = 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web';

const service: PlannedAction = {
  arn: WEB,
  type: 'ecs-service',
  name: 'web',
  cluster: 'shop',
  steps: [{ op: 'set-desired-count', desiredCount: 2 }],
  detail: 'desiredCount 0 → 2',
};
const group = (over: Partial<EnvironmentGroup> = {}): EnvironmentGroup => ({
  arn: GROUP,
  name: 'shop-asg',
  environment: 'shop',
  desired: 2,
  inService: 2,
  parked: false,
  ...over,
});
const state = (over: Partial<GateState> = {}): GateState => ({
  envOf: new Map([
    [WEB, 'shop'],
    [GROUP, 'shop'],
  ]),
  databases: [],
  groups: [group()],
  started: new Map(),
  timeoutMs: 30 * 60_000,
  now: NOW,
  ...over,
});

describe('gateRows', () => {
  it('lets a service start when every standalone group of its environment is in service at desired', () => {
    // Act
    const out = gateRows([[service]], state());

    // Assess
    expect(out.phases).toEqual([[service]]);
    expect(out.extra).toEqual([]);
  });

  it('keeps a service waiting for a group short of desired or with an unreadable saved state; not for one parked on purpose', () => {
    // Act
    const short = gateRows([[service]], state({ groups: [group({ inService: 1 })] }));
    const parked = gateRows([[service]], state({ groups: [group({ inService: 0, parked: true })] }));
    const unreadable = gateRows(
      [[service]],
      state({ groups: [group({ desired: 0, inService: 0, parked: true, unreadable: true })] }),
    );

    // Assess
    expect(short.phases[0]?.[0]).toMatchObject({
      steps: [],
      outcome: 'waiting',
      detail:
        'waiting for shop-asg: 1 of 2 in service (environment shop: Auto Scaling groups start first); ' +
        'nothing changed — a later run starts it (--force starts it now)',
    });
    // Parked and not brought back by this run: its schedule, a sleep or a stop keeps it parked
    expect(parked.phases[0]?.[0]).toEqual(service);
    expect(unreadable.phases[0]?.[0]?.detail).toMatch(/^waiting for shop-asg: nightshift:stopped unreadable/);
  });

  it('rewrites the laggard group’s idle row: waiting before the timeout, failed after; adds a failed row when none names it', () => {
    // Prepare: started by nightshift at 06:00, still 1 of 2
    const started = new Map([[GROUP, { at: new Date('2026-11-30T06:00:00Z') }]]);
    const idle: PlannedAction = {
      arn: GROUP,
      type: 'autoscaling-group',
      name: 'shop-asg',
      steps: [],
      outcome: 'unchanged',
      detail: 'not parked by nightshift (min 1 desired 2 max 3)',
    };
    const laggard = { groups: [group({ inService: 1 })], started };

    // Act
    const early = gateRows([[service]], state({ ...laggard, now: new Date('2026-11-30T06:20:00Z') }), [idle]);
    const late = gateRows([[service]], state(laggard), [idle]);
    const unnamed = gateRows([[service]], state(laggard));

    // Assess
    expect(early.idle[0]).toMatchObject({ outcome: 'waiting' });
    expect(early.idle[0]?.detail).toMatch(/started by nightshift 20 min ago; failed after 30 min/);
    expect(late.idle[0]).toMatchObject({ outcome: 'failed' });
    expect(late.idle[0]?.detail).toMatch(/not in service at desired 60 min after nightshift started it/);
    expect(late.extra).toEqual([]);
    expect(unnamed.extra).toEqual([expect.objectContaining({ arn: GROUP, outcome: 'failed' })]);
    expect(unnamed.phases[0]?.[0]).toMatchObject({ outcome: 'waiting' });
  });

  it('an idle row whose step starts nothing (an expired override’s removal) is never gated', () => {
    // Prepare: a reconcile's idle row with a step that starts nothing, while the database is down
    const idle: PlannedAction = {
      arn: WEB,
      type: 'ecs-service',
      name: 'web',
      steps: [{ op: 'clear-override', expected: 'state=running until=2026-11-30T06:00:00Z by=x' }],
      detail: 'removes the expired override',
    };
    const down = state({
      databases: [{ id: 'shop-db', kind: 'instance', status: 'stopped', environment: 'shop' }],
    });

    // Act
    const out = gateRows([], down, [idle]);

    // Assess
    expect(out.idle).toEqual([idle]);
  });
});

describe('readEnvironmentGroups', () => {
  it('counts InService capacity in the units of DesiredCapacity: instance weights, 1 when unset', async () => {
    // Prepare: desired 16 (vCPU), four InService instances of weight 4, one Pending; a group without weights
    const client = new AutoScalingClient({ region: 'eu-central-1' });
    const autoscaling = mockClient(client);
    autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        {
          AutoScalingGroupName: 'shop-asg',
          AutoScalingGroupARN: GROUP,
          MinSize: 0,
          MaxSize: 32,
          DesiredCapacity: 16,
          DefaultCooldown: 300,
          AvailabilityZones: ['eu-central-1a'],
          HealthCheckType: 'EC2',
          CreatedTime: new Date('2026-01-01T00:00:00Z'),
          Tags: [{ Key: 'nightshift:environment', Value: 'shop' }],
          Instances: [
            ...[1, 2, 3, 4].map((n) => ({
              InstanceId: `i-${n}`,
              AvailabilityZone: 'eu-central-1a',
              LifecycleState: 'InService' as const,
              HealthStatus: 'Healthy',
              ProtectedFromScaleIn: false,
              WeightedCapacity: '4',
            })),
            {
              InstanceId: 'i-5',
              AvailabilityZone: 'eu-central-1a',
              LifecycleState: 'Pending' as const,
              HealthStatus: 'Healthy',
              ProtectedFromScaleIn: false,
              WeightedCapacity: '4',
            },
          ],
        },
      ],
    });

    // Act
    const groups = await readEnvironmentGroups({
      clients: { autoscaling: client } as unknown as Clients,
      hasTime: () => true,
    });

    // Assess
    expect(groups).toEqual([expect.objectContaining({ name: 'shop-asg', desired: 16, inService: 16 })]);
    autoscaling.restore();
  });
});
