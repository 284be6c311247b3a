import { paginateDescribeInstances, type EC2Client, type Filter, type Instance } from '@aws-sdk/client-ec2';
import { paginateDescribeAutoScalingGroups, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { DescribeClustersCommand, DescribeServicesCommand, type ECSClient } from '@aws-sdk/client-ecs';
import {
  GetCommandInvocationCommand,
  paginateDescribeInstanceInformation,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { assertTime, OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import type { Lease, LeaseOwner, LeaseStore } from '#shared/lease.ts';
import { matchesTags, tagMap, tagMapUpper, type TagMap } from '#shared/tags.ts';
import type { TargetClients } from './clients.ts';
import { awaitedCommand } from './guard.ts';

export type { Clients, TargetClients } from './clients.ts';

/** What a request acts on, before it is resolved to running instances or active services. */
export interface Selection {
  instanceIds: string[];
  /** Auto Scaling groups whose InService instances are targets. */
  groups: string[];
  /** Running instances carrying every one of these tags. */
  tags?: TagMap;
  services: { cluster: string; service: string }[];
}

export interface InstanceState {
  id: string;
  arn: string;
  /** EC2 state name: pending, running, stopping, stopped, shutting-down, terminated. */
  state: string;
  tags: TagMap;
  /**
   * The SSM agent's PingStatus (Online, ConnectionLost, Inactive); undefined when SSM does not list the
   * instance as a managed node, or it was not asked because the instance is not running.
   */
  pingStatus?: string;
  /**
   * The Auto Scaling group the instance is a member of (DescribeAutoScalingGroups lists it), with the
   * group's tags: a parked group's instances are not restarted. Undefined when it is in none.
   */
  group?: { name: string; tags: TagMap };
}

export interface ServiceState {
  arn: string;
  /** The cluster as asked for (name or ARN), and the service's name. */
  cluster: string;
  name: string;
  tags: TagMap;
  /** ECS (rolling update, the default), CODE_DEPLOY (blue/green) or EXTERNAL. */
  deploymentController?: string;
  /** The tags of its cluster (schedule and override a service without its own follows); undefined: not read. */
  clusterTags?: TagMap;
  /** Why its cluster's tags could not be read (its schedule is then not checked; the restart goes ahead). */
  clusterTagsError?: string;
}

export interface RestartEstate {
  /** Every instance selected, named ones in any state, each once, in the order they were selected. */
  instances: InstanceState[];
  /** Named instance ids (and group members) that EC2 does not know. */
  missingInstances: string[];
  /** InService instance ids of each selected group; undefined when the group does not exist. */
  groups: Record<string, string[] | undefined>;
  /** The tags of each selected group that exists (a parked group restarts nothing). */
  groupTags?: Record<string, TagMap>;
  /** Active services found. */
  services: ServiceState[];
  /** Services asked for that do not exist or are not ACTIVE, as `cluster/service`. */
  missingServices: string[];
}

/** EC2 takes up to 200 filter values a call, all filters together (FilterLimitExceeded). */
const FILTER_VALUES = 200;
/**
 * Instance ids per DescribeInstanceInformation call (its InstanceIds filter takes up to 100 values), and
 * results per page (its MaxResults is 5 to 50): one page holds every id asked about, and further pages
 * are followed all the same.
 */
const SSM_IDS = 50;
/** DescribeAutoScalingGroups: 50 names a call by default, and pages of up to 100 groups (MaxRecords). */
const GROUP_NAMES = 50;
const GROUP_PAGE = 100;
/** DescribeServices takes up to 10 services of one cluster a call, and has no pages. */
/** DescribeClusters takes up to 100 clusters a call and has no pages (ECS API reference, `clusters`). */
const CLUSTERS_PER_CALL = 100;
/** The tag EC2 Auto Scaling puts on the instances it launches; `aws:` tags cannot be written by users. */
const GROUP_NAME_TAG = 'aws:autoscaling:groupName';
const SERVICES_PER_CALL = 10;
/** Restart records read from the lease table at once (GetItem, one a target). */
const RECORD_READS = 10;
/** GetCommandInvocation calls at once (one a target another run is restarting). */
const INVOCATION_READS = 5;

/** False once the Lambda is close to its timeout: reads stop with OutOfTimeError. */
type HasTime = () => boolean;

export const partitionOf = (region: string): string =>
  region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';

export const instanceArn = (region: string, account: string, id: string) =>
  `arn:${partitionOf(region)}:ec2:${region}:${account}:instance/${id}`;

const describeInstances = async (ec2: EC2Client, region: string, Filters: Filter[], hasTime: HasTime) => {
  const found: InstanceState[] = [];
  const pages = paginateDescribeInstances({ client: ec2 }, { Filters });
  for await (const page of pagesWithin(pages, hasTime, 'EC2 instances')) {
    for (const reservation of page.Reservations ?? []) {
      for (const i of reservation.Instances ?? ([] as Instance[])) {
        if (!i.InstanceId) continue;
        found.push({
          id: i.InstanceId,
          arn: instanceArn(region, reservation.OwnerId ?? '', i.InstanceId),
          state: i.State?.Name ?? 'unknown',
          tags: tagMapUpper(i.Tags),
        });
      }
    }
  }
  return found;
};

/**
 * Named instances are read by an `instance-id` filter, not `InstanceIds`, so one unknown id does not
 * fail the whole call, and in every state, so the report can say why one was not restarted.
 */
const instancesById = async (ec2: EC2Client, region: string, ids: string[], hasTime: HasTime) => {
  const found: InstanceState[] = [];
  for (const [n, batch] of chunk(ids, FILTER_VALUES).entries()) {
    if (n > 0) assertTime(hasTime, 'EC2 instances');
    found.push(...(await describeInstances(ec2, region, [{ Name: 'instance-id', Values: batch }], hasTime)));
  }
  return found;
};

/**
 * Running instances carrying every tag. EC2 filter values treat `*` and `?` as wildcards, so what
 * EC2 returns is checked again for exact values.
 */
const instancesByTags = async (ec2: EC2Client, region: string, tags: TagMap, hasTime: HasTime) => {
  const filters: Filter[] = [
    { Name: 'instance-state-name', Values: ['running'] },
    ...Object.entries(tags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
  ];
  return (await describeInstances(ec2, region, filters, hasTime)).filter((i) => matchesTags(i.tags, tags));
};

const isInvalidInstanceId = (error: unknown) => /InvalidInstanceId/.test((error as Error)?.name ?? '');

/** The PingStatus of each of `ids` that SSM lists as a managed node; the others are absent. */
const pingStatusesOf = async (ssm: SSMClient, ids: string[], hasTime: HasTime) => {
  const found = new Map<string, string>();
  const asked = new Set(ids);
  const pages = paginateDescribeInstanceInformation(
    { client: ssm, pageSize: SSM_IDS },
    { Filters: [{ Key: 'InstanceIds', Values: ids }] },
  );
  for await (const page of pagesWithin(pages, hasTime, 'SSM managed nodes')) {
    for (const info of page.InstanceInformationList ?? []) {
      if (info.InstanceId && asked.has(info.InstanceId))
        found.set(info.InstanceId, info.PingStatus ?? 'unknown');
    }
  }
  return found;
};

/**
 * Asks SSM which instances are managed nodes and whether their agent is online, 50 ids a call.
 * Unlisted instances are simply left out of the answer; AWS also documents InvalidInstanceId for this
 * call, so a batch refused that way is asked again one id at a time, and an id refused alone is
 * treated as not managed rather than taking its batch down with it.
 */
const pingStatuses = async (ssm: SSMClient, ids: string[], hasTime: HasTime) => {
  const found = new Map<string, string>();
  const ask = async (batch: string[]): Promise<void> => {
    try {
      for (const [id, status] of await pingStatusesOf(ssm, batch, hasTime)) found.set(id, status);
    } catch (error) {
      if (!isInvalidInstanceId(error)) throw error;
      if (batch.length > 1) {
        await mapLimit(batch, 5, async (id) => {
          assertTime(hasTime, 'SSM managed nodes');
          await ask([id]);
        });
      }
    }
  };
  for (const [n, batch] of chunk(ids, SSM_IDS).entries()) {
    if (n > 0) assertTime(hasTime, 'SSM managed nodes');
    await ask(batch);
  }
  return found;
};

interface GroupRead {
  /** InService instance ids of each group asked for; undefined when it does not exist. */
  members: Record<string, string[] | undefined>;
  /** Every instance of each group that exists, in any lifecycle state. */
  all: Record<string, Set<string>>;
  tags: Record<string, TagMap>;
}

/**
 * The InService instances of each group (the only ones that are targets), every instance of it and its
 * tags, 50 names a call, every page.
 */
const readGroups = async (
  autoscaling: AutoScalingClient,
  names: string[],
  hasTime: HasTime,
): Promise<GroupRead> => {
  const read: GroupRead = {
    members: Object.fromEntries(names.map((n) => [n, undefined])),
    all: {},
    tags: {},
  };
  for (const [n, batch] of chunk(names, GROUP_NAMES).entries()) {
    if (n > 0) assertTime(hasTime, 'Auto Scaling groups');
    const pages = paginateDescribeAutoScalingGroups(
      { client: autoscaling, pageSize: GROUP_PAGE },
      { AutoScalingGroupNames: batch },
    );
    for await (const page of pagesWithin(pages, hasTime, 'Auto Scaling groups')) {
      for (const g of page.AutoScalingGroups ?? []) {
        const name = g.AutoScalingGroupName;
        if (!name || !(name in read.members)) continue;
        read.members[name] = (g.Instances ?? [])
          .filter((i) => i.LifecycleState === 'InService' && i.InstanceId)
          .map((i) => i.InstanceId as string);
        read.all[name] = new Set((g.Instances ?? []).flatMap((i) => (i.InstanceId ? [i.InstanceId] : [])));
        read.tags[name] = tagMapUpper(g.Tags);
      }
    }
  }
  return read;
};

/**
 * The tags of each cluster as asked for (name or ARN), 100 a call; a missing cluster has none. They only
 * tell whether a service's cluster schedule holds it: an error reading them is returned, not thrown, so
 * it never blocks a restart.
 */
const clusterTags = async (
  ecs: ECSClient,
  clusters: string[],
  hasTime: HasTime,
): Promise<{ tags: Map<string, TagMap> } | { error: string }> => {
  const tags = new Map<string, TagMap>();
  try {
    for (const [n, batch] of chunk([...new Set(clusters)], CLUSTERS_PER_CALL).entries()) {
      if (n > 0) assertTime(hasTime, 'ECS clusters');
      const out = await ecs.send(new DescribeClustersCommand({ clusters: batch, include: ['TAGS'] }));
      for (const asked of batch) {
        const c = (out.clusters ?? []).find((x) => x.clusterName === asked || x.clusterArn === asked);
        if (c) tags.set(asked, tagMap(c.tags));
      }
    }
  } catch (error) {
    if (error instanceof OutOfTimeError) throw error;
    return { error: `DescribeClusters: ${errorMessage(error)}` };
  }
  return { tags };
};

/** DescribeServices takes 10 services of one cluster a call; tags come in the same call. */
const describeServices = async (ecs: ECSClient, wanted: Selection['services'], hasTime: HasTime) => {
  const services: ServiceState[] = [];
  const missing: string[] = [];
  const byCluster = new Map<string, string[]>();
  for (const w of wanted) byCluster.set(w.cluster, [...(byCluster.get(w.cluster) ?? []), w.service]);
  let calls = 0;
  for (const [cluster, names] of byCluster) {
    for (const batch of chunk([...new Set(names)], SERVICES_PER_CALL)) {
      if (calls++ > 0) assertTime(hasTime, 'ECS services');
      const out = await ecs
        .send(new DescribeServicesCommand({ cluster, services: batch, include: ['TAGS'] }))
        .catch((error: Error) => {
          // An unknown cluster fails the whole call: every service asked for in it is missing.
          if (/ClusterNotFound/.test(error.name)) return { services: [], failures: [] };
          throw error;
        });
      for (const name of batch) {
        const s = (out.services ?? []).find(
          (x) => x.status === 'ACTIVE' && (x.serviceName === name || x.serviceArn === name),
        );
        if (s?.serviceArn) {
          services.push({
            arn: s.serviceArn,
            cluster,
            name: s.serviceName ?? name,
            tags: tagMap(s.tags),
            ...(s.deploymentController?.type && { deploymentController: s.deploymentController.type }),
          });
        } else {
          missing.push(`${cluster}/${name}`);
        }
      }
    }
  }
  return { services, missing };
};

/**
 * Reads every target of a selection, in batches, following every page. Reads respect the deadline: one
 * still paging when the Lambda must stop throws OutOfTimeError, and nothing is planned from half a picture.
 */
export const readTargets = async (
  clients: TargetClients,
  selection: Selection,
  region: string,
  hasTime: HasTime = () => true,
): Promise<RestartEstate> => {
  const read =
    selection.groups.length > 0
      ? await readGroups(clients.autoscaling, selection.groups, hasTime)
      : { members: {}, all: {}, tags: {} };
  const groups = read.members;
  const ids = [...new Set([...selection.instanceIds, ...Object.values(groups).flatMap((m) => m ?? [])])];
  const named = ids.length > 0 ? await instancesById(clients.ec2, region, ids, hasTime) : [];
  const tagged = selection.tags ? await instancesByTags(clients.ec2, region, selection.tags, hasTime) : [];
  const byId = new Map(named.map((i) => [i.id, i]));
  const instances: InstanceState[] = [];
  const seen = new Set<string>();
  for (const i of [...ids.map((id) => byId.get(id)), ...tagged]) {
    if (!i || seen.has(i.id)) continue;
    seen.add(i.id);
    instances.push(i);
  }
  // Only running instances can take a command; SSM is not asked about the others.
  const running = instances.filter((i) => i.state === 'running');
  // The groups of running instances, for whether they are parked. The launch tag only says which group
  // to ask: membership is what the group itself lists (an instance detached from it keeps the tag).
  const unread = [
    ...new Set(running.flatMap((i) => i.tags[GROUP_NAME_TAG] ?? []).filter((g) => !(g in read.all))),
  ];
  const more =
    unread.length > 0
      ? await readGroups(clients.autoscaling, unread, hasTime)
      : { members: {}, all: {}, tags: {} };
  const groupOf = (id: string, launchedBy: string | undefined) =>
    [launchedBy, ...Object.keys(read.all)]
      .filter((g): g is string => g !== undefined)
      .find((g) => (read.all[g] ?? more.all[g])?.has(id));
  const statuses =
    running.length > 0
      ? await pingStatuses(
          clients.ssm,
          running.map((i) => i.id),
          hasTime,
        )
      : new Map<string, string>();
  const { services, missing } =
    selection.services.length > 0
      ? await describeServices(clients.ecs, selection.services, hasTime)
      : { services: [], missing: [] };
  const clusters =
    services.length > 0
      ? await clusterTags(
          clients.ecs,
          services.map((s) => s.cluster),
          hasTime,
        )
      : { tags: new Map<string, TagMap>() };
  return {
    instances: instances.map((i) => {
      const pingStatus = statuses.get(i.id);
      const group = i.state === 'running' ? groupOf(i.id, i.tags[GROUP_NAME_TAG]) : undefined;
      const groupTags = group === undefined ? undefined : (read.tags[group] ?? more.tags[group]);
      return {
        ...i,
        ...(pingStatus !== undefined && { pingStatus }),
        ...(group !== undefined && groupTags && { group: { name: group, tags: groupTags } }),
      };
    }),
    missingInstances: ids.filter((id) => !byId.has(id)),
    groups,
    groupTags: read.tags,
    services: services.map((s) => {
      if ('error' in clusters) return { ...s, clusterTagsError: clusters.error };
      const tags = clusters.tags.get(s.cluster);
      return tags ? { ...s, clusterTags: tags } : s;
    }),
    missingServices: missing,
  };
};

/**
 * The restart records of `scopes` in the lease table (GetItem each, consistent reads, a few at a time),
 * or why they could not be read: no table (LEASE_TABLE unset) or an error. Only what the planner shows
 * depends on them: the executor claims each target with a conditional write whatever was read here.
 */
export const readRestartRecords = async (
  store: LeaseStore | undefined,
  scopes: readonly string[],
  hasTime: HasTime = () => true,
): Promise<{ records: Map<string, Lease | undefined> } | { error: string }> => {
  const records = new Map<string, Lease | undefined>();
  if (scopes.length === 0) return { records };
  if (!store) return { error: 'LEASE_TABLE is not set' };
  try {
    for (const [n, batch] of chunk([...new Set(scopes)], RECORD_READS).entries()) {
      if (n > 0) assertTime(hasTime, 'restart records in the lease table');
      await Promise.all(batch.map(async (scope) => records.set(scope, await store.read(scope))));
    }
  } catch (error) {
    if (error instanceof OutOfTimeError) throw error;
    return { error: `${store.table}: ${errorMessage(error)}` };
  }
  return { records };
};

/**
 * The status of one instance's invocation of an SSM command (GetCommandInvocation `Status`: Pending,
 * InProgress, Delayed, Success, Cancelled, TimedOut, Failed, Cancelling), or, when SSM does not say, why
 * not, in words that are no status: the restart then counts as still in progress. SSM may not know an
 * invocation yet right after the send (InvocationDoesNotExist).
 */
export const invocationStatus = async (
  ssm: SSMClient,
  commandId: string,
  instanceId: string,
): Promise<string> => {
  try {
    const out = await ssm.send(
      new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
    );
    return out.Status ?? 'of unknown status';
  } catch (error) {
    if (/InvocationDoesNotExist/.test((error as Error)?.name ?? '')) return 'not known to SSM yet';
    return `of unknown status (GetCommandInvocation: ${errorMessage(error)})`;
  }
};

/**
 * For the restart records that another run's restart still holds in progress with an SSM command, the
 * status of that command on the instance, by scope: the planner lets a restart whose command ended go
 * ahead. A few calls at a time; reads respect the deadline.
 */
export const readCommandStatuses = async (
  ssm: SSMClient,
  records: { records: ReadonlyMap<string, Lease | undefined> } | { error: string },
  now: Date,
  owner: LeaseOwner,
  hasTime: HasTime = () => true,
): Promise<Map<string, string>> => {
  const statuses = new Map<string, string>();
  if ('error' in records) return statuses;
  const asked = [...records.records].flatMap(([scope, lease]) => {
    const awaited = awaitedCommand(lease, now, owner);
    return awaited ? [{ scope, ...awaited }] : [];
  });
  for (const [n, batch] of chunk(asked, INVOCATION_READS).entries()) {
    if (n > 0) assertTime(hasTime, 'SSM command invocations');
    await Promise.all(
      batch.map(async (a) => statuses.set(a.scope, await invocationStatus(ssm, a.commandId, a.instanceId))),
    );
  }
  return statuses;
};
