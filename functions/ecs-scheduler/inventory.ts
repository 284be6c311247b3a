import {
  DescribeCapacityProvidersCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  paginateListClusters,
  paginateListServices,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import {
  DescribeScalableTargetsCommand,
  type ApplicationAutoScalingClient,
} from '@aws-sdk/client-application-auto-scaling';
import { DescribeAutoScalingGroupsCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { tagMap, tagMapUpper, type TagMap } from '#shared/tags.ts';
import type { ScalingLimits } from './saved.ts';

export interface ServiceState {
  arn: string;
  name: string;
  clusterArn: string;
  clusterName: string;
  status: string;
  schedulingStrategy: string;
  desiredCount: number;
  /** Tasks running or pending for the service right now. */
  tasks: number;
  tags: TagMap;
  /** The Application Auto Scaling target on ecs:service:DesiredCount, when there is one. */
  scaling?: ScalingLimits;
}

export interface ClusterState {
  arn: string;
  name: string;
  tags: TagMap;
  capacityProviders: string[];
  /** Tasks running or pending in the cluster, services' and standalone ones alike. */
  tasks: number;
  services: ServiceState[];
}

export interface GroupState {
  arn: string;
  name: string;
  min: number;
  max: number;
  desired: number;
  tags: TagMap;
}

export interface Estate {
  /** Clusters the run may act on: the named ones, or every cluster when scoped by tags alone. */
  clusters: ClusterState[];
  /** Named clusters that do not exist. */
  missingClusters: string[];
  /** Other clusters that share a capacity group with `clusters` (read for stop only). */
  sharers: ClusterState[];
  /** Capacity-provider groups of `clusters`, by group name. */
  groups: GroupState[];
  /** Which clusters (by ARN) use each group, by group name, across `clusters` and `sharers`. */
  groupUsers: Record<string, string[]>;
}

export interface Clients {
  ecs: ECSClient;
  scaling: ApplicationAutoScalingClient;
  autoscaling: AutoScalingClient;
}

const READ_CONCURRENCY = 4;
const FARGATE_PROVIDERS = new Set(['FARGATE', 'FARGATE_SPOT']);

export const scalingResourceId = (clusterName: string, serviceName: string) =>
  `service/${clusterName}/${serviceName}`;

const groupNameFromArn = (arn: string) => arn.split(':autoScalingGroupName/')[1] ?? arn;

const listAllClusterArns = async (ecs: ECSClient): Promise<string[]> => {
  const arns: string[] = [];
  for await (const page of paginateListClusters({ client: ecs }, {})) arns.push(...(page.clusterArns ?? []));
  return arns;
};

/** DescribeClusters takes 100 at a time; tags come in the same call. */
const describeClusters = async (ecs: ECSClient, ids: string[]) => {
  const found: Omit<ClusterState, 'services'>[] = [];
  const missing: string[] = [];
  for (const batch of chunk(ids, 100)) {
    const out = await ecs.send(new DescribeClustersCommand({ clusters: batch, include: ['TAGS'] }));
    for (const c of out.clusters ?? []) {
      if (c.status !== 'ACTIVE' && c.status !== 'PROVISIONING') continue;
      found.push({
        arn: c.clusterArn ?? '',
        name: c.clusterName ?? '',
        tags: tagMap(c.tags),
        capacityProviders: (c.capacityProviders ?? []).filter((p) => !FARGATE_PROVIDERS.has(p)),
        tasks: (c.runningTasksCount ?? 0) + (c.pendingTasksCount ?? 0),
      });
    }
    for (const f of out.failures ?? []) {
      const asked = batch.find((id) => f.arn === id || f.arn?.endsWith(`/${id}`)) ?? f.arn ?? 'unknown';
      missing.push(asked);
    }
    // Clusters that exist but are INACTIVE are as good as missing for a scheduler.
    for (const c of out.clusters ?? []) {
      if (c.status === 'ACTIVE' || c.status === 'PROVISIONING') continue;
      missing.push(
        batch.find((id) => id === c.clusterArn || id === c.clusterName) ?? c.clusterArn ?? 'unknown',
      );
    }
  }
  return { found, missing };
};

/** ListServices pages of 100, then DescribeServices 10 at a time with tags included. */
const loadServices = async (
  ecs: ECSClient,
  clusterArn: string,
  clusterName: string,
): Promise<ServiceState[]> => {
  const arns: string[] = [];
  for await (const page of paginateListServices({ client: ecs }, { cluster: clusterArn, maxResults: 100 })) {
    arns.push(...(page.serviceArns ?? []));
  }
  const services: ServiceState[] = [];
  for (const batch of chunk(arns, 10)) {
    const out = await ecs.send(
      new DescribeServicesCommand({ cluster: clusterArn, services: batch, include: ['TAGS'] }),
    );
    for (const s of out.services ?? []) {
      services.push({
        arn: s.serviceArn ?? '',
        name: s.serviceName ?? '',
        clusterArn,
        clusterName,
        status: s.status ?? 'UNKNOWN',
        schedulingStrategy: s.schedulingStrategy ?? 'REPLICA',
        desiredCount: s.desiredCount ?? 0,
        tasks: (s.runningCount ?? 0) + (s.pendingCount ?? 0),
        tags: tagMap(s.tags),
      });
    }
  }
  return services;
};

/** DescribeScalableTargets takes up to 50 resource ids a call. */
const attachScaling = async (client: ApplicationAutoScalingClient, services: ServiceState[]) => {
  const byId = new Map(services.map((s) => [scalingResourceId(s.clusterName, s.name), s]));
  for (const batch of chunk([...byId.keys()], 50)) {
    let NextToken: string | undefined;
    do {
      const out = await client.send(
        new DescribeScalableTargetsCommand({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          ResourceIds: batch,
          NextToken,
        }),
      );
      for (const t of out.ScalableTargets ?? []) {
        const service = byId.get(t.ResourceId ?? '');
        if (!service) continue;
        service.scaling = {
          min: t.MinCapacity ?? 0,
          max: t.MaxCapacity ?? 0,
          suspended: {
            in: t.SuspendedState?.DynamicScalingInSuspended ?? false,
            out: t.SuspendedState?.DynamicScalingOutSuspended ?? false,
            scheduled: t.SuspendedState?.ScheduledScalingSuspended ?? false,
          },
        };
      }
      NextToken = out.NextToken;
    } while (NextToken);
  }
};

/** Maps capacity provider names to the names of their Auto Scaling groups. */
const providerGroups = async (ecs: ECSClient, providers: string[]): Promise<Map<string, string>> => {
  const map = new Map<string, string>();
  for (const batch of chunk([...new Set(providers)], 100)) {
    const out = await ecs.send(new DescribeCapacityProvidersCommand({ capacityProviders: batch }));
    for (const p of out.capacityProviders ?? []) {
      const arn = p.autoScalingGroupProvider?.autoScalingGroupArn;
      if (p.name && arn) map.set(p.name, groupNameFromArn(arn));
    }
  }
  return map;
};

const describeGroups = async (client: AutoScalingClient, names: string[]): Promise<GroupState[]> => {
  const groups: GroupState[] = [];
  for (const batch of chunk(names, 50)) {
    const out = await client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: batch }));
    for (const g of out.AutoScalingGroups ?? []) {
      groups.push({
        arn: g.AutoScalingGroupARN ?? '',
        name: g.AutoScalingGroupName ?? '',
        min: g.MinSize ?? 0,
        max: g.MaxSize ?? 0,
        desired: g.DesiredCapacity ?? 0,
        tags: tagMapUpper(g.Tags),
      });
    }
  }
  return groups;
};

const withServices = (ecs: ECSClient, clusters: Omit<ClusterState, 'services'>[]) =>
  mapLimit(clusters, READ_CONCURRENCY, async (c) => ({
    ...c,
    services: await loadServices(ecs, c.arn, c.name),
  }));

/**
 * Reads everything the planner needs, in batches. `withSharers` also reads the other clusters of the
 * account that use the same capacity groups, so a stop never parks a group another cluster runs on.
 */
export const readEstate = async (
  clients: Clients,
  scope: { clusters?: string[] },
  options: { withSharers: boolean },
): Promise<Estate> => {
  const ids = scope.clusters ?? (await listAllClusterArns(clients.ecs));
  const described = await describeClusters(clients.ecs, [...new Set(ids)]);
  // The same cluster named twice (by name and by ARN) is read and acted on once.
  const found = [...new Map(described.found.map((c) => [c.arn, c])).values()];
  const missing = described.missing;
  const clusters = await withServices(clients.ecs, found);

  const groupOf = await providerGroups(
    clients.ecs,
    clusters.flatMap((c) => c.capacityProviders),
  );
  const groupUsers: Record<string, string[]> = {};
  const addUser = (group: string, clusterArn: string) => {
    const users = (groupUsers[group] ??= []);
    if (!users.includes(clusterArn)) users.push(clusterArn);
  };
  for (const c of clusters)
    for (const p of c.capacityProviders) if (groupOf.has(p)) addUser(groupOf.get(p)!, c.arn);

  let sharers: ClusterState[] = [];
  const groupNames = Object.keys(groupUsers);
  if (options.withSharers && groupNames.length > 0) {
    const known = new Set(clusters.map((c) => c.arn));
    const others = (await listAllClusterArns(clients.ecs)).filter((arn) => !known.has(arn));
    const described = others.length > 0 ? (await describeClusters(clients.ecs, others)).found : [];
    const otherGroups = await providerGroups(
      clients.ecs,
      described.flatMap((c) => c.capacityProviders),
    );
    const sharing = described.filter((c) =>
      c.capacityProviders.some((p) => groupNames.includes(otherGroups.get(p) ?? '')),
    );
    sharers = await withServices(clients.ecs, sharing);
    for (const c of sharers) {
      for (const p of c.capacityProviders) {
        const g = otherGroups.get(p);
        if (g && groupNames.includes(g)) addUser(g, c.arn);
      }
    }
  }

  await attachScaling(
    clients.scaling,
    clusters.flatMap((c) => c.services),
  );
  const groups = groupNames.length > 0 ? await describeGroups(clients.autoscaling, groupNames) : [];
  return { clusters, missingClusters: missing, sharers, groups, groupUsers };
};
