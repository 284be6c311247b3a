/**
 * Seeds moto with what ssm-restart acts on (instances, an Auto Scaling group, an ECS service, tagged
 * CloudWatch alarms), reads back their tags, and builds alarm events from the real samples in
 * events/aws.cloudwatch.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import { CloudWatchClient, DescribeAlarmsCommand, PutMetricAlarmCommand } from '@aws-sdk/client-cloudwatch';
import type { Lease, LeaseStore } from '#shared/lease.ts';
import type { Proxy, RecordedRequest } from './proxy.ts';

export const REGION = 'eu-central-1';
/** moto's default account. */
export const ACCOUNT = '123456789012';

export type Tags = Record<string, string>;

/** The opt-in ssm-restart requires on instances and ECS services (a public contract, spelled out). */
export const RESTARTABLE: Tags = { 'nightshift:restartable': 'true' };

export interface RestartSeedClients {
  ec2: EC2Client;
  autoscaling: AutoScalingClient;
  ecs: ECSClient;
  cloudwatch: CloudWatchClient;
}

export const restartSeedClients = (endpoint: string, region = REGION): RestartSeedClients => {
  const config = { endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  return {
    ec2: new EC2Client(config),
    autoscaling: new AutoScalingClient(config),
    ecs: new ECSClient(config),
    cloudwatch: new CloudWatchClient(config),
  };
};

const toTags = (tags: Tags) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

export const instanceArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`;

/** Running instances carrying `tags`; returns their ids. */
export const launchInstances = async (c: RestartSeedClients, count: number, tags: Tags = {}) => {
  const out = await c.ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.micro',
      MinCount: count,
      MaxCount: count,
      ...(Object.keys(tags).length > 0 && {
        TagSpecifications: [{ ResourceType: 'instance', Tags: toTags(tags) }],
      }),
    }),
  );
  return (out.Instances ?? []).map((i) => i.InstanceId ?? '');
};

export const stopInstance = (c: RestartSeedClients, id: string) =>
  c.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));

export const tagInstance = (c: RestartSeedClients, id: string, tags: Tags) =>
  c.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: toTags(tags) }));

export const instanceTags = async (c: RestartSeedClients, id: string): Promise<Tags> => {
  const out = await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  const tags = out.Reservations?.[0]?.Instances?.[0]?.Tags ?? [];
  return Object.fromEntries(tags.map((t) => [t.Key ?? '', t.Value ?? '']));
};

/** An Auto Scaling group of `size` instances, `tags` propagated to them; returns the InService instance ids. */
export const createGroup = async (c: RestartSeedClients, name: string, size: number, tags: Tags = {}) => {
  await c.autoscaling
    .send(
      new CreateLaunchConfigurationCommand({
        LaunchConfigurationName: 'web-node',
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.small',
      }),
    )
    .catch((error: Error) => {
      if (!/AlreadyExists/.test(error.name + error.message)) throw error;
    });
  await c.autoscaling.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: name,
      LaunchConfigurationName: 'web-node',
      MinSize: size,
      MaxSize: size,
      DesiredCapacity: size,
      AvailabilityZones: [`${REGION}a`],
      Tags: Object.entries(tags).map(([Key, Value]) => ({
        Key,
        Value,
        PropagateAtLaunch: true,
        ResourceId: name,
        ResourceType: 'auto-scaling-group',
      })),
    }),
  );
  const out = await c.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }),
  );
  return (out.AutoScalingGroups?.[0]?.Instances ?? []).map((i) => i.InstanceId ?? '');
};

/** An ECS service with one task definition, tagged with `tags`; returns its ARN. */
export const createService = async (
  c: RestartSeedClients,
  cluster: string,
  service: string,
  tags: Tags = {},
  deploymentController: 'ECS' | 'CODE_DEPLOY' | 'EXTERNAL' = 'ECS',
) => {
  await c.ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await c.ecs.send(
    new RegisterTaskDefinitionCommand({
      family: service,
      containerDefinitions: [{ name: service, image: 'nginx:1.27', memory: 128 }],
    }),
  );
  const out = await c.ecs.send(
    new CreateServiceCommand({
      cluster,
      serviceName: service,
      taskDefinition: service,
      desiredCount: 2,
      deploymentController: { type: deploymentController },
      ...(Object.keys(tags).length > 0 && {
        tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      }),
    }),
  );
  return out.service?.serviceArn ?? '';
};

export const describeService = async (c: RestartSeedClients, cluster: string, service: string) => {
  const out = await c.ecs.send(
    new DescribeServicesCommand({ cluster, services: [service], include: ['TAGS'] }),
  );
  const s = out.services?.[0];
  return {
    deployments: (s?.deployments ?? []).map((d) => ({ id: d.id ?? '', status: d.status ?? '' })),
    tags: Object.fromEntries((s?.tags ?? []).map((t) => [t.key ?? '', t.value ?? ''])),
  };
};

/** A metric alarm on `dimensions`, tagged with `tags`; returns its ARN. */
export const createAlarm = async (
  c: RestartSeedClients,
  name: string,
  dimensions: Tags,
  tags: Tags = {},
): Promise<string> => {
  await c.cloudwatch.send(
    new PutMetricAlarmCommand({
      AlarmName: name,
      Namespace: 'Shop/Containers',
      MetricName: 'HealthCheckFailed',
      Statistic: 'Maximum',
      Period: 60,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
      ...(Object.keys(tags).length > 0 && { Tags: toTags(tags) }),
    }),
  );
  const out = await c.cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: [name] }));
  return out.MetricAlarms?.[0]?.AlarmArn ?? '';
};

type Sample = Record<string, unknown> & {
  resources: string[];
  detail: {
    alarmName: string;
    state: Record<string, unknown>;
    configuration: { metrics: { metricStat: { metric: { dimensions: Tags } } }[] };
  };
};

const SAMPLES = {
  ALARM: 'alarm-instance.json',
  OK: 'ok.json',
  INSUFFICIENT_DATA: 'insufficient-data.json',
} as const;

/** A time as CloudWatch writes it in alarm events: `2026-11-23T02:14:41.000+0000`. */
export const alarmTime = (at: Date): string => at.toISOString().replace(/Z$/, '+0000');

/**
 * The real sample of an alarm state change, about the alarm `arn` and its metric `dimensions`; `at`:
 * when the alarm changed state (`detail.state.timestamp` and the event's `time`), else the sample's own.
 */
export const alarmEvent = (
  arn: string,
  dimensions: Tags,
  state: keyof typeof SAMPLES = 'ALARM',
  at?: Date,
) => {
  const event = JSON.parse(
    readFileSync(join('events', 'aws.cloudwatch', 'samples', SAMPLES[state]), 'utf8'),
  ) as Sample;
  const metric = event.detail.configuration.metrics[0];
  if (metric) metric.metricStat.metric.dimensions = dimensions;
  return {
    ...event,
    ...(at && { time: at.toISOString().replace(/\.\d{3}Z$/, 'Z') }),
    resources: [arn],
    detail: {
      ...event.detail,
      alarmName: arn.split(':alarm:')[1] ?? '',
      ...(at && { state: { ...event.detail.state, timestamp: alarmTime(at) } }),
    },
  };
};

/**
 * What SSM knows of the instances' agents: moto 5.2.1 has no DescribeInstanceInformation (it answers
 * 500), so the proxy answers it as SSM would, listing these instances as managed nodes with their
 * PingStatus. The stub does not read the request: it lists them whatever ids were asked about, and the
 * function keeps only those it asked about. Any other instance is not a managed node.
 */
export const stubSsmAgents = (
  proxy: Proxy,
  agents: Record<string, 'Online' | 'ConnectionLost' | 'Inactive'>,
) =>
  proxy.stub('DescribeInstanceInformation', {
    contentType: 'application/x-amz-json-1.1',
    body: JSON.stringify({
      InstanceInformationList: Object.entries(agents).map(([InstanceId, PingStatus]) => ({
        InstanceId,
        PingStatus,
        LastPingDateTime: Date.parse('2026-11-23T02:14:00Z') / 1000,
        AgentVersion: '3.3.1142.0',
        IsLatestVersion: true,
        PlatformType: 'Linux',
        PlatformName: 'Amazon Linux',
        PlatformVersion: '2023',
        ResourceType: 'EC2Instance',
        IPAddress: '10.0.1.17',
        ComputerName: `ip-10-0-1-17.${REGION}.compute.internal`,
      })),
    }),
  });

/** The JSON bodies of the SSM SendCommand requests a run sent. */
export const sendCommands = (requests: RecordedRequest[]) =>
  requests
    .filter((r) => r.operation === 'SendCommand' && !r.fault)
    .map(
      (r) =>
        JSON.parse(r.body) as {
          DocumentName: string;
          InstanceIds: string[];
          Parameters: Record<string, string[]>;
          MaxConcurrency: string;
          MaxErrors: string;
          Comment: string;
          TimeoutSeconds: number;
        },
    );

/** Calls that change something: everything but reads. */
export const mutations = (requests: RecordedRequest[]) =>
  requests.filter((r) => !r.fault && !/^(Describe|List|Get)/.test(r.operation)).map((r) => r.operation);

/**
 * The lease table in memory, for component tests (aws-sdk-client-mock has no DynamoDB conditions): the
 * same contract as the DynamoDB store (shared/lease.ts), which integration tests exercise against moto.
 * `writes` records every write that went through, in order.
 */
export const memoryLeaseStore = (table = 'nightshift-test-leases') => {
  const items = new Map<string, Lease>();
  const writes: { op: 'acquire' | 'compareAndSet' | 'release' | 'remove'; scope: string; lease?: Lease }[] =
    [];
  const copy = (lease: Lease): Lease => ({ ...lease, data: { ...lease.data } });
  const store: LeaseStore & { items: Map<string, Lease>; writes: typeof writes } = {
    table,
    items,
    writes,
    read: async (scope) => {
      const item = items.get(scope);
      return item && copy(item);
    },
    acquire: async (scope, owner, now, ttlMs) => {
      const held = items.get(scope);
      if (held && held.expiresAt.getTime() > now.getTime() && held.token !== owner.token) {
        return { ok: false, heldBy: copy(held) };
      }
      const lease: Lease = {
        scope,
        holder: owner.holder,
        token: owner.token,
        acquiredAt: now,
        expiresAt: new Date(now.getTime() + ttlMs),
        version: 1,
        data: {},
      };
      items.set(scope, lease);
      writes.push({ op: 'acquire', scope, lease: copy(lease) });
      return { ok: true };
    },
    release: async (scope, owner) => {
      if (items.get(scope)?.token !== owner.token) return;
      items.delete(scope);
      writes.push({ op: 'release', scope });
    },
    compareAndSet: async (next, expectedVersion) => {
      if (items.get(next.scope)?.version !== expectedVersion) return false;
      const lease: Lease = { ...next, data: { ...next.data }, version: (expectedVersion ?? 0) + 1 };
      items.set(next.scope, lease);
      writes.push({ op: 'compareAndSet', scope: next.scope, lease: copy(lease) });
      return true;
    },
    remove: async (scope) => {
      items.delete(scope);
      writes.push({ op: 'remove', scope });
    },
  };
  return store;
};

/**
 * A hook for the proxy that holds every request it sees until `count` of them have arrived, then lets
 * them all through: runs started together reach the same step before any goes further.
 */
export const barrier = (count: number) => {
  let arrived = 0;
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return async () => {
    arrived += 1;
    if (arrived >= count) open();
    await opened;
  };
};

/** Resolves once `check` holds, asking again after each turn of the event loop. */
export const until = async (check: () => Promise<boolean>): Promise<void> => {
  while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
};
