/** Which alarms are about a parked resource, and the nightshift:silenced value: pure, no AWS. */
import { describe, expect, it } from 'vitest';
import type { MetricAlarm } from '@aws-sdk/client-cloudwatch';
import {
  alarmAbout,
  parseSilenced,
  silencedValue,
  TAG_VALUE_MAX,
  type ParkedResource,
} from '#shared/silence.ts';

const ACCOUNT = '123456789012';
const WEB: ParkedResource = {
  kind: 'ecs-service',
  arn: `arn:aws:ecs:eu-central-1:${ACCOUNT}:service/stage/web`,
  cluster: 'stage',
  service: 'web',
};
const STAGE: ParkedResource = {
  kind: 'ecs-cluster',
  arn: `arn:aws:ecs:eu-central-1:${ACCOUNT}:cluster/stage`,
  cluster: 'stage',
};
const GROUP: ParkedResource = {
  kind: 'auto-scaling-group',
  arn: `arn:aws:autoscaling:eu-central-1:${ACCOUNT}:autoScalingGroup:1a2b:autoScalingGroupName/stage-asg`,
  name: 'stage-asg',
};
const DB: ParkedResource = {
  kind: 'db-instance',
  arn: `arn:aws:rds:eu-central-1:${ACCOUNT}:db:shop-db`,
  id: 'shop-db',
};
const AURORA: ParkedResource = {
  kind: 'db-cluster',
  arn: `arn:aws:rds:eu-central-1:${ACCOUNT}:cluster:shop-aurora`,
  id: 'shop-aurora',
};
const ALL = [WEB, STAGE, GROUP, DB, AURORA];

const single = (namespace: string, dimensions: Record<string, string>): MetricAlarm => ({
  AlarmName: 'a',
  AlarmArn: `arn:aws:cloudwatch:eu-central-1:${ACCOUNT}:alarm:a`,
  Namespace: namespace,
  MetricName: 'CPUUtilization',
  Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
});
const math = (
  ...metrics: Array<{ namespace: string; dimensions: Record<string, string>; account?: string }>
): MetricAlarm => ({
  AlarmName: 'm',
  AlarmArn: `arn:aws:cloudwatch:eu-central-1:${ACCOUNT}:alarm:m`,
  Metrics: [
    ...metrics.map((m, i) => ({
      Id: `m${i}`,
      ...(m.account && { AccountId: m.account }),
      MetricStat: {
        Metric: {
          Namespace: m.namespace,
          MetricName: 'x',
          Dimensions: Object.entries(m.dimensions).map(([Name, Value]) => ({ Name, Value })),
        },
        Period: 60,
        Stat: 'Average',
      },
      ReturnData: false,
    })),
    { Id: 'e', Expression: 'SUM(METRICS())', ReturnData: true },
  ],
});

describe('alarmAbout', () => {
  it.each([
    [
      'a service alarm (ClusterName+ServiceName)',
      single('AWS/ECS', { ClusterName: 'stage', ServiceName: 'web' }),
      [WEB],
    ],
    [
      'an app metric on ClusterName+ServiceName in any namespace',
      single('Shop', { ClusterName: 'stage', ServiceName: 'web' }),
      [WEB],
    ],
    ['another service of the cluster', single('AWS/ECS', { ClusterName: 'stage', ServiceName: 'api' }), []],
    [
      'a service of the same name in another cluster',
      single('AWS/ECS', { ClusterName: 'prod', ServiceName: 'web' }),
      [],
    ],
    ['ClusterName alone in AWS/ECS: the cluster', single('AWS/ECS', { ClusterName: 'stage' }), [STAGE]],
    [
      'ClusterName alone in ECS/ContainerInsights: the cluster',
      single('ECS/ContainerInsights', { ClusterName: 'stage' }),
      [STAGE],
    ],
    [
      'ClusterName alone in EKS Container Insights: not an ECS cluster',
      single('ContainerInsights', { ClusterName: 'stage' }),
      [],
    ],
    [
      'ClusterName with another dimension than ServiceName',
      single('ECS/ContainerInsights', { ClusterName: 'stage', TaskDefinitionFamily: 'web' }),
      [],
    ],
    ['a group alarm', single('AWS/EC2', { AutoScalingGroupName: 'stage-asg' }), [GROUP]],
    ['a DB instance alarm', single('AWS/RDS', { DBInstanceIdentifier: 'shop-db' }), [DB]],
    [
      'an Aurora cluster alarm',
      single('AWS/RDS', { DBClusterIdentifier: 'shop-aurora', Role: 'WRITER' }),
      [AURORA],
    ],
    [
      'an InstanceId alarm, even with the group named',
      single('CWAgent', { AutoScalingGroupName: 'stage-asg', InstanceId: 'i-0abc' }),
      [],
    ],
    ['dimension values compare case-sensitively', single('AWS/RDS', { DBInstanceIdentifier: 'Shop-DB' }), []],
    [
      'a metric-math alarm: every metric of Metrics[]',
      math(
        { namespace: 'AWS/ECS', dimensions: { ClusterName: 'stage', ServiceName: 'web' } },
        { namespace: 'AWS/RDS', dimensions: { DBInstanceIdentifier: 'shop-db' } },
      ),
      [WEB, DB],
    ],
    [
      'a metric-math alarm with an InstanceId metric',
      math(
        { namespace: 'AWS/RDS', dimensions: { DBInstanceIdentifier: 'shop-db' } },
        { namespace: 'AWS/EC2', dimensions: { InstanceId: 'i-0abc' } },
      ),
      [],
    ],
    [
      'a metric of another account',
      math({
        namespace: 'AWS/RDS',
        dimensions: { DBInstanceIdentifier: 'shop-db' },
        account: '210987654321',
      }),
      [],
    ],
    [
      'a metric of its own account named',
      math({ namespace: 'AWS/RDS', dimensions: { DBInstanceIdentifier: 'shop-db' }, account: ACCOUNT }),
      [DB],
    ],
  ])('%s', (_name, alarm, expected) => {
    expect(alarmAbout(alarm, ALL)).toEqual(expected);
  });

  it('is about the cluster only when the caller names it (every service parked)', () => {
    expect(alarmAbout(single('AWS/ECS', { ClusterName: 'stage' }), [WEB])).toEqual([]);
  });
});

describe('the nightshift:silenced value', () => {
  it('reads back what it writes, with one for= per resource', () => {
    const { value, left } = silencedValue([WEB.arn, DB.arn], '2026-11-30T18:00:00Z');
    expect(value).toBe(`for=${WEB.arn} for=${DB.arn} at=2026-11-30T18:00:00Z`);
    expect(left).toEqual([]);
    expect(parseSilenced(value)).toEqual({ for: [WEB.arn, DB.arn], at: '2026-11-30T18:00:00Z' });
  });

  it('keeps the resources that fit in 256 characters and says which did not', () => {
    const arns = Array.from({ length: 6 }, (_, i) => `${DB.arn}-${i}`);
    const { value, left } = silencedValue(arns, '2026-11-30T18:00:00Z');
    expect(value?.length).toBeLessThanOrEqual(TAG_VALUE_MAX);
    expect(parseSilenced(value)?.for).toEqual(arns.slice(0, arns.length - left.length));
    expect(left.length).toBeGreaterThan(0);
  });

  it('writes no value when not even one ARN fits', () => {
    expect(
      silencedValue(
        [`arn:aws:ecs:eu-central-1:${ACCOUNT}:service/${'c'.repeat(120)}/${'s'.repeat(120)}`],
        '2026-11-30T18:00:00Z',
      ).value,
    ).toBeUndefined();
  });

  it.each([
    ['muted by hand'],
    ['for=shop-db at=2026-11-30T18:00:00Z'],
    ['for=arn:aws:rds:x at=yesterday'],
    [''],
  ])('takes %j for a value nightshift did not write', (value) =>
    expect(parseSilenced(value)).toBeUndefined(),
  );
});
