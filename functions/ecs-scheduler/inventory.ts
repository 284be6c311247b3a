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
import { paginateDescribeAutoScalingGroups, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { assertTime, pagesWithin } from '#shared/deadline.ts';
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
  /** When ECS created the service (DescribeServices `createdAt`): a reconcile's grace period. */
  createdAt?: Date;
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

export type ClusterInfo = Omit<ClusterState, 'services'>;

export interface GroupState {
  arn: string;
  name: string;
  min: number;
  max: number;
  desired: number;
  tags: TagMap;
}

/** A cluster or group this run may not act on: another run holds its lease, or there is no lease table. */
export interface Held {
  arn: string;
  name: string;
  /** Who holds it and since when, or why the lease could not be taken (claimReason). */
  reason: string;
  /**
   * The outcome of its rows (claimOutcome): `undone` when another run holds it (the work is still to do,
   * carried over to the next run), `failed` when the lease table could not be used.
   */
  outcome: 'undone' | 'failed';
}

/** Why a scope could not be claimed, and the outcome its rows get (RunLeases.takeEach). */
export interface Refusal {
  reason: string;
  outcome: 'undone' | 'failed';
}

export interface Estate {
  /** Clusters the run may act on: the named ones, or every cluster when scoped by tags alone. */
  clusters: ClusterState[];
  /** Named clusters that do not exist. */
  missingClusters: string[];
  /** Other clusters that share a capacity group with `clusters` (read for stop only). */
  sharers: ClusterState[];
  /** Capacity-provider groups of `clusters` this run may act on, with their state. */
  groups: GroupState[];
  /** Which clusters (by ARN) use each group, by group name, across `clusters` and `sharers`. */
  groupUsers: Record<string, string[]>;
  /** Clusters in scope whose lease this run could not take: nothing of them was read or changed. */
  heldClusters?: Held[];
  /** Groups of `clusters` whose lease this run could not take: never changed, their state not used. */
  heldGroups?: Held[];
}

/**
 * A client, or how to make it on first use: the handler's own clients for the rarer paths (an
 * environment's databases, a stop's scheduled tasks) import their SDK module on demand, a chunk of its
 * own, so the runs that never take those paths never load it. Tests may pass the client itself.
 */
export type OnDemand<C extends object> = C | (() => Promise<C>);

/** The client itself, made (and its module imported) now if it was given on demand. */
export const onDemand = async <C extends object>(client: OnDemand<C>): Promise<C> =>
  typeof client === 'function' ? (client as () => Promise<C>)() : client;

export interface Clients {
  ecs: ECSClient;
  scaling: ApplicationAutoScalingClient;
  autoscaling: AutoScalingClient;
  /** Read-only: the databases of an environment, which a start waits for (environment.ts, databases.ts). */
  rds?: OnDemand<RDSClient>;
  /** The alarms about what a stop parks or a start wakes (alarms.ts); without it, alarms are left alone. */
  cloudwatch?: CloudWatchClient;
  /** Read-only: the scheduled tasks a stop warns about (scheduled-tasks.ts); without it, not checked. */
  events?: OnDemand<EventBridgeClient>;
  /** Read-only: the Scheduler schedules a stop warns about (scheduled-tasks.ts); without it, not checked. */
  scheduler?: OnDemand<SchedulerClient>;
}

/** What every read needs: the clients, and whether the Lambda still has time to read on. */
export interface Reader {
  clients: Clients;
  hasTime: () => boolean;
}

const READ_CONCURRENCY = 4;
const FARGATE_PROVIDERS = new Set(['FARGATE', 'FARGATE_SPOT']);

// The most each API returns or accepts in one call (AWS API references):
/** ListClusters: maxResults 1–100 (default 100). */
const LIST_CLUSTERS_PAGE = 100;
/** DescribeClusters: up to 100 clusters a call. */
const DESCRIBE_CLUSTERS_BATCH = 100;
/** ListServices: maxResults 1–100 (default 10). */
const LIST_SERVICES_PAGE = 100;
/** DescribeServices: up to 10 services a call. */
const DESCRIBE_SERVICES_BATCH = 10;
/** DescribeScalableTargets: MaxResults 1–50 (default 50), and we name up to 50 resource ids a call. */
const SCALABLE_TARGETS_PAGE = 50;
/**
 * DescribeCapacityProviders: up to 100 names a call, but at most 10 results a page (maxResults 1–10,
 * default 10, the page size it is left at here), the rest behind nextToken.
 */
const CAPACITY_PROVIDERS_BATCH = 100;
/** DescribeAutoScalingGroups: MaxRecords up to 100 (default 50), which also caps the names a call. */
const GROUPS_PAGE = 100;

export const scalingResourceId = (clusterName: string, serviceName: string) =>
  `service/${clusterName}/${serviceName}`;

const groupNameFromArn = (arn: string) => arn.split(':autoScalingGroupName/')[1] ?? arn;

/** `items` in batches of `size`, checking the deadline before every batch after the first. */
function* batchesWithin<T>(items: readonly T[], size: number, hasTime: () => boolean, what: string) {
  let first = true;
  for (const batch of chunk(items, size)) {
    if (!first) assertTime(hasTime, what);
    first = false;
    yield batch;
  }
}

const listAllClusterArns = async ({ clients, hasTime }: Reader): Promise<string[]> => {
  const arns: string[] = [];
  const pages = paginateListClusters({ client: clients.ecs }, { maxResults: LIST_CLUSTERS_PAGE });
  for await (const page of pagesWithin(pages, hasTime, 'the list of ECS clusters')) {
    arns.push(...(page.clusterArns ?? []));
  }
  return arns;
};

/** DescribeClusters with tags included, 100 at a time. */
const describeClusters = async ({ clients, hasTime }: Reader, ids: string[]) => {
  const found: ClusterInfo[] = [];
  const missing: string[] = [];
  for (const batch of batchesWithin(ids, DESCRIBE_CLUSTERS_BATCH, hasTime, 'ECS clusters')) {
    const out = await clients.ecs.send(new DescribeClustersCommand({ clusters: batch, include: ['TAGS'] }));
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
  // The same cluster named twice (by name and by ARN) is read and acted on once.
  return { found: [...new Map(found.map((c) => [c.arn, c])).values()], missing };
};

/** The named clusters, or every cluster of the account and region when none is named. */
export const readClusters = async (reader: Reader, named: string[] | undefined) => ({
  ...(await describeClusters(reader, [...new Set(named ?? (await listAllClusterArns(reader)))])),
  /** Every cluster of the account was read: there are no others to share a group with. */
  everyCluster: named === undefined,
});

/** ListServices in pages of 100, then DescribeServices 10 at a time with tags included. */
const loadServices = async ({ clients, hasTime }: Reader, cluster: ClusterInfo): Promise<ServiceState[]> => {
  const what = `ECS services of cluster ${cluster.name}`;
  const arns: string[] = [];
  const pages = paginateListServices(
    { client: clients.ecs },
    { cluster: cluster.arn, maxResults: LIST_SERVICES_PAGE },
  );
  for await (const page of pagesWithin(pages, hasTime, what)) arns.push(...(page.serviceArns ?? []));
  const services: ServiceState[] = [];
  for (const batch of batchesWithin(arns, DESCRIBE_SERVICES_BATCH, hasTime, what)) {
    const out = await clients.ecs.send(
      new DescribeServicesCommand({ cluster: cluster.arn, services: batch, include: ['TAGS'] }),
    );
    for (const s of out.services ?? []) {
      services.push({
        arn: s.serviceArn ?? '',
        name: s.serviceName ?? '',
        clusterArn: cluster.arn,
        clusterName: cluster.name,
        status: s.status ?? 'UNKNOWN',
        schedulingStrategy: s.schedulingStrategy ?? 'REPLICA',
        desiredCount: s.desiredCount ?? 0,
        tasks: (s.runningCount ?? 0) + (s.pendingCount ?? 0),
        tags: tagMap(s.tags),
        ...(s.createdAt && { createdAt: new Date(s.createdAt) }),
      });
    }
  }
  return services;
};

/** Every service of each cluster, a few clusters at a time; the deadline is checked before each cluster. */
export const withServices = async (
  reader: Reader,
  clusters: readonly ClusterInfo[],
): Promise<ClusterState[]> =>
  (
    await mapLimit(
      clusters.map((c, index) => ({ c, index })),
      READ_CONCURRENCY,
      async ({ c, index }) => {
        if (index > 0) assertTime(reader.hasTime, `ECS services of cluster ${c.name}`);
        try {
          return { ...c, services: await loadServices(reader, c) };
        } catch (error) {
          // Deleted between ListClusters/DescribeClusters and ListServices (an ephemeral environment torn
          // down): nothing left to act on, and no reason to fail the run for every other cluster.
          if ((error as Error).name === 'ClusterNotFoundException') return undefined;
          throw error;
        }
      },
    )
  ).filter((c): c is ClusterState => c !== undefined);

/** DescribeScalableTargets for up to 50 resource ids a call, following NextToken. */
const attachScaling = async ({ clients, hasTime }: Reader, services: ServiceState[]) => {
  const what = 'Application Auto Scaling targets';
  const byId = new Map(services.map((s) => [scalingResourceId(s.clusterName, s.name), s]));
  for (const batch of batchesWithin([...byId.keys()], SCALABLE_TARGETS_PAGE, hasTime, what)) {
    let NextToken: string | undefined;
    do {
      if (NextToken) assertTime(hasTime, what);
      const out = await clients.scaling.send(
        new DescribeScalableTargetsCommand({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          ResourceIds: batch,
          MaxResults: SCALABLE_TARGETS_PAGE,
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
      NextToken = out.NextToken || undefined;
    } while (NextToken);
  }
};

/**
 * Maps capacity provider names to the names of their Auto Scaling groups. DescribeCapacityProviders
 * takes up to 100 names but answers at most 10 a page: every page is followed by its nextToken, or a
 * cluster's 11th provider (and the group behind it) would go unseen.
 */
export const providerGroups = async (
  { clients, hasTime }: Reader,
  providers: string[],
): Promise<Map<string, string>> => {
  const what = 'ECS capacity providers';
  const map = new Map<string, string>();
  const names = [...new Set(providers)];
  for (const batch of batchesWithin(names, CAPACITY_PROVIDERS_BATCH, hasTime, what)) {
    let nextToken: string | undefined;
    do {
      if (nextToken) assertTime(hasTime, what);
      const out = await clients.ecs.send(
        new DescribeCapacityProvidersCommand({ capacityProviders: batch, nextToken }),
      );
      for (const p of out.capacityProviders ?? []) {
        const arn = p.autoScalingGroupProvider?.autoScalingGroupArn;
        if (p.name && arn) map.set(p.name, groupNameFromArn(arn));
      }
      nextToken = out.nextToken || undefined;
    } while (nextToken);
  }
  return map;
};

/** DescribeAutoScalingGroups for up to 100 names a call (with MaxRecords 100), following NextToken. */
export const describeGroups = async (
  { clients, hasTime }: Reader,
  names: string[],
): Promise<GroupState[]> => {
  const what = 'Auto Scaling groups';
  const groups: GroupState[] = [];
  for (const batch of batchesWithin([...new Set(names)], GROUPS_PAGE, hasTime, what)) {
    const pages = paginateDescribeAutoScalingGroups(
      { client: clients.autoscaling },
      { AutoScalingGroupNames: batch, MaxRecords: GROUPS_PAGE },
    );
    for await (const page of pagesWithin(pages, hasTime, what)) {
      for (const g of page.AutoScalingGroups ?? []) {
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
  }
  return groups;
};

/** The capacity-provider groups of `clusters`: their names by provider, and the clusters using each. */
const groupsOf = async (reader: Reader, clusters: readonly ClusterInfo[]) => {
  const groupOf = await providerGroups(
    reader,
    clusters.flatMap((c) => c.capacityProviders),
  );
  const users: Record<string, string[]> = {};
  for (const c of clusters) {
    for (const p of c.capacityProviders) {
      const group = groupOf.get(p);
      if (!group) continue;
      const list = (users[group] ??= []);
      if (!list.includes(c.arn)) list.push(c.arn);
    }
  }
  return users;
};

/**
 * The capacity-provider groups `clusters` run on, with their ARNs (the lease scope instance-rotation
 * uses too). Read before the leases are taken, to know which to take; their state is read again after.
 */
export const readGroupRefs = async (reader: Reader, clusters: readonly ClusterInfo[]) => {
  const users = await groupsOf(reader, clusters);
  const names = Object.keys(users);
  const groups = names.length > 0 ? await describeGroups(reader, names) : [];
  return groups.map((g) => ({ arn: g.arn, name: g.name }));
};

/**
 * Reads everything the planner needs, in batches, within the deadline (a read cut short throws
 * OutOfTimeError: nothing is planned from half a picture). `withSharers` also reads the other clusters
 * of the account that use the same capacity groups, so a stop never parks a group another cluster runs
 * on. `leasedGroups`, for a mutating run, names the group ARNs this run holds: any other group of
 * these clusters is reported in `heldGroups` (with `refused`'s reason) and its state left unused.
 */
export const readEstate = async (
  reader: Reader,
  scope: { clusters?: string[] },
  options: {
    withSharers: boolean;
    leasedGroups?: ReadonlySet<string>;
    refused?: ReadonlyMap<string, Refusal>;
  },
): Promise<Estate> => {
  const empty = scope.clusters !== undefined && scope.clusters.length === 0;
  const described = empty
    ? { found: [], missing: [], everyCluster: false }
    : await readClusters(reader, scope.clusters);
  const clusters = await withServices(reader, described.found);
  const groupUsers = await groupsOf(reader, clusters);

  let sharers: ClusterState[] = [];
  const groupNames = Object.keys(groupUsers);
  if (options.withSharers && groupNames.length > 0 && !described.everyCluster) {
    const known = new Set(clusters.map((c) => c.arn));
    const others = (await listAllClusterArns(reader)).filter((arn) => !known.has(arn));
    const candidates = others.length > 0 ? (await describeClusters(reader, others)).found : [];
    const otherUsers = await groupsOf(reader, candidates);
    const sharing = new Set(groupNames.flatMap((g) => otherUsers[g] ?? []));
    sharers = await withServices(
      reader,
      candidates.filter((c) => sharing.has(c.arn)),
    );
    for (const g of groupNames) {
      for (const arn of otherUsers[g] ?? []) if (!groupUsers[g]?.includes(arn)) groupUsers[g]?.push(arn);
    }
  }

  await attachScaling(
    reader,
    clusters.flatMap((c) => c.services),
  );
  const all = groupNames.length > 0 ? await describeGroups(reader, groupNames) : [];
  const leased = options.leasedGroups;
  const groups = leased ? all.filter((g) => leased.has(g.arn)) : all;
  const heldGroups = leased
    ? all
        .filter((g) => !leased.has(g.arn))
        .map((g): Held => ({
          arn: g.arn,
          name: g.name,
          ...(options.refused?.get(g.arn) ?? {
            reason:
              'not leased by this run: it became a capacity provider of the cluster while this run started; nothing changed — run again',
            outcome: 'undone',
          }),
        }))
    : [];
  return {
    clusters,
    missingClusters: described.missing,
    sharers,
    groups,
    groupUsers,
    ...(leased && { heldGroups }),
  };
};
