/**
 * Seeds moto with the sample ECS estate used by the tests and the demo, and reads back the state that
 * the scheduler must stop and restore exactly.
 */
import {
  CreateClusterCommand,
  CreateCapacityProviderCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ECSClient,
  ListServicesCommand,
  PutClusterCapacityProvidersCommand,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';

export interface SeedClients {
  ecs: ECSClient;
  scaling: ApplicationAutoScalingClient;
  autoscaling: AutoScalingClient;
}

export const seedClients = (
  endpoint: string,
  region = 'eu-central-1',
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = {
    accessKeyId: 'testing',
    secretAccessKey: 'testing',
  },
): SeedClients => {
  const config = { endpoint, region, credentials };
  return {
    ecs: new ECSClient(config),
    scaling: new ApplicationAutoScalingClient(config),
    autoscaling: new AutoScalingClient(config),
  };
};

export interface GroupSpec {
  name: string;
  min: number;
  desired: number;
  max: number;
  tags?: Record<string, string>;
}

export interface ServiceSpec {
  name: string;
  desired: number;
  tags?: Record<string, string>;
  scaling?: { min: number; max: number };
}

export interface ClusterSpec {
  name: string;
  tags?: Record<string, string>;
  group?: GroupSpec;
  services: ServiceSpec[];
}

const toTags = (tags: Record<string, string> = {}) =>
  Object.entries(tags).map(([key, value]) => ({ key, value }));

let launchConfigReady = new WeakSet<AutoScalingClient>();

export const createGroup = async (c: SeedClients, g: GroupSpec): Promise<string> => {
  if (!launchConfigReady.has(c.autoscaling)) {
    await c.autoscaling
      .send(
        new CreateLaunchConfigurationCommand({
          LaunchConfigurationName: 'ecs-node',
          ImageId: 'ami-12c6146b',
          InstanceType: 't3.small',
        }),
      )
      .catch((error: Error) => {
        if (!/AlreadyExists/.test(error.name + error.message)) throw error;
      });
    launchConfigReady.add(c.autoscaling);
  }
  await c.autoscaling.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: g.name,
      LaunchConfigurationName: 'ecs-node',
      MinSize: g.min,
      MaxSize: g.max,
      DesiredCapacity: g.desired,
      AvailabilityZones: ['eu-central-1a'],
      Tags: Object.entries(g.tags ?? {}).map(([Key, Value]) => ({
        Key,
        Value,
        PropagateAtLaunch: true,
        ResourceId: g.name,
        ResourceType: 'auto-scaling-group',
      })),
    }),
  );
  const out = await c.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [g.name] }),
  );
  return out.AutoScalingGroups?.[0]?.AutoScalingGroupARN ?? '';
};

export const createCluster = async (c: SeedClients, spec: ClusterSpec): Promise<void> => {
  await c.ecs.send(new CreateClusterCommand({ clusterName: spec.name, tags: toTags(spec.tags) }));
  if (spec.group) {
    const arn = await createGroup(c, spec.group);
    const provider = `${spec.name}-capacity`;
    await c.ecs.send(
      new CreateCapacityProviderCommand({
        name: provider,
        autoScalingGroupProvider: {
          autoScalingGroupArn: arn,
          managedScaling: { status: 'ENABLED', targetCapacity: 100 },
          managedTerminationProtection: 'DISABLED',
        },
      }),
    );
    await c.ecs.send(
      new PutClusterCapacityProvidersCommand({
        cluster: spec.name,
        capacityProviders: [provider],
        defaultCapacityProviderStrategy: [{ capacityProvider: provider, weight: 1 }],
      }),
    );
  }
  await c.ecs.send(
    new RegisterTaskDefinitionCommand({
      family: 'app',
      containerDefinitions: [{ name: 'app', image: 'nginx:1.27', memory: 128 }],
    }),
  );
  for (const s of spec.services) {
    await c.ecs.send(
      new CreateServiceCommand({
        cluster: spec.name,
        serviceName: s.name,
        taskDefinition: 'app',
        desiredCount: s.desired,
        tags: toTags(s.tags),
      }),
    );
    if (s.scaling) {
      await c.scaling.send(
        new RegisterScalableTargetCommand({
          ServiceNamespace: 'ecs',
          ResourceId: `service/${spec.name}/${s.name}`,
          ScalableDimension: 'ecs:service:DesiredCount',
          MinCapacity: s.scaling.min,
          MaxCapacity: s.scaling.max,
        }),
      );
    }
  }
};

/** The sample estate: a stage cluster to stop and start, and a production cluster never to touch. */
export const SAMPLE_ESTATE: ClusterSpec[] = [
  {
    name: 'stage',
    tags: { env: 'stage', team: 'shop' },
    group: { name: 'stage-ecs-nodes', min: 1, desired: 2, max: 4 },
    services: [
      { name: 'web', desired: 3, scaling: { min: 2, max: 6 }, tags: { app: 'web' } },
      { name: 'worker', desired: 2, tags: { app: 'worker' } },
      { name: 'batch', desired: 0, tags: { app: 'batch' } },
    ],
  },
  {
    name: 'prod',
    tags: { env: 'prod', team: 'shop' },
    group: { name: 'prod-ecs-nodes', min: 2, desired: 3, max: 6 },
    services: [{ name: 'api', desired: 4, scaling: { min: 3, max: 10 } }],
  },
];

export const seedEstate = async (c: SeedClients, estate: ClusterSpec[] = SAMPLE_ESTATE): Promise<void> => {
  launchConfigReady = new WeakSet();
  for (const cluster of estate) await createCluster(c, cluster);
};

export interface ObservedService {
  desired: number;
  tags: Record<string, string>;
  scaling?: { min: number; max: number; suspended: [boolean, boolean, boolean] };
}

export interface ObservedGroup {
  min: number;
  desired: number;
  max: number;
  tags: Record<string, string>;
}

/**
 * Everything the scheduler may change, keyed `cluster/service` and by group name. Reads every page at
 * AWS's sizes (ListServices 100, DescribeServices 10, DescribeScalableTargets 50, DescribeAutoScalingGroups
 * 100), so estates larger than one page are observed whole.
 */
export const observe = async (c: SeedClients, clusters: string[], groups: string[]) => {
  const services: Record<string, ObservedService> = {};
  for (const cluster of clusters) {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const out = await c.ecs.send(new ListServicesCommand({ cluster, maxResults: 100, nextToken }));
      arns.push(...(out.serviceArns ?? []));
      nextToken = out.nextToken || undefined;
    } while (nextToken);
    for (let i = 0; i < arns.length; i += 10) {
      const out = await c.ecs.send(
        new DescribeServicesCommand({ cluster, services: arns.slice(i, i + 10), include: ['TAGS'] }),
      );
      for (const s of out.services ?? []) {
        services[`${cluster}/${s.serviceName}`] = {
          desired: s.desiredCount ?? -1,
          tags: Object.fromEntries((s.tags ?? []).map((t) => [t.key, t.value])),
        };
      }
    }
    const ids = arns.map((arn) => `service/${cluster}/${arn.split('/').pop()}`);
    for (let i = 0; i < ids.length; i += 50) {
      let NextToken: string | undefined;
      do {
        const targets = await c.scaling.send(
          new DescribeScalableTargetsCommand({
            ServiceNamespace: 'ecs',
            ResourceIds: ids.slice(i, i + 50),
            MaxResults: 50,
            NextToken,
          }),
        );
        for (const t of targets.ScalableTargets ?? []) {
          const key = (t.ResourceId ?? '').replace(/^service\//, '');
          const service = services[key];
          if (!service) continue;
          service.scaling = {
            min: t.MinCapacity ?? -1,
            max: t.MaxCapacity ?? -1,
            suspended: [
              t.SuspendedState?.DynamicScalingInSuspended ?? false,
              t.SuspendedState?.DynamicScalingOutSuspended ?? false,
              t.SuspendedState?.ScheduledScalingSuspended ?? false,
            ],
          };
        }
        NextToken = targets.NextToken || undefined;
      } while (NextToken);
    }
  }
  const groupState: Record<string, ObservedGroup> = {};
  for (let i = 0; i < groups.length; i += 100) {
    let NextToken: string | undefined;
    do {
      const out = await c.autoscaling.send(
        new DescribeAutoScalingGroupsCommand({
          AutoScalingGroupNames: groups.slice(i, i + 100),
          MaxRecords: 100,
          NextToken,
        }),
      );
      for (const g of out.AutoScalingGroups ?? []) {
        groupState[g.AutoScalingGroupName ?? ''] = {
          min: g.MinSize ?? -1,
          desired: g.DesiredCapacity ?? -1,
          max: g.MaxSize ?? -1,
          tags: Object.fromEntries((g.Tags ?? []).map((t) => [t.Key, t.Value])),
        };
      }
      NextToken = out.NextToken || undefined;
    } while (NextToken);
  }
  return { services, groups: groupState };
};

export const observeSample = (c: SeedClients) =>
  observe(c, ['stage', 'prod'], ['stage-ecs-nodes', 'prod-ecs-nodes']);
