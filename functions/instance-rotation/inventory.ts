import {
  DescribeInstanceRefreshesCommand,
  DescribeScalingActivitiesCommand,
  paginateDescribeAutoScalingGroups,
  type AutoScalingClient,
} from '@aws-sdk/client-auto-scaling';
import { paginateDescribeInstances, type EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeContainerInstancesCommand,
  ListContainerInstancesCommand,
  paginateListClusters,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { errorMessage } from '#shared/errors.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';

/** Opt-in tag on a group: `true`, or a duration overriding maxAge. Public contract. */
export const ROTATE_TAG = 'nightshift:rotate';
/** The rotation in flight, saved on the group. */
export const ROTATION_TAG = 'nightshift:rotation';

const READ_CONCURRENCY = 4;
const ACTIVITY_DONE = new Set(['Successful', 'Failed', 'Cancelled']);
const REFRESH_ACTIVE = new Set(['Pending', 'InProgress', 'Cancelling', 'RollbackInProgress', 'Baking']);

export interface InstanceState {
  id: string;
  lifecycle: string;
  health: string;
  /** Since when the instance has been running: the primary network interface's attach time (LaunchTime resets on stop/start). */
  since?: Date;
}

export interface ContainerInstanceState {
  cluster: string;
  arn: string;
  status: string;
  runningTasks: number;
}

export interface GroupState {
  name: string;
  arn: string;
  min: number;
  max: number;
  desired: number;
  tags: TagMap;
  suspended: string[];
  instances: InstanceState[];
  /** Descriptions of scaling activities still in progress. */
  activities: string[];
  /** Status of an instance refresh in progress, or the error that kept us from knowing. */
  refresh?: string;
  /** The ECS container instance on the EC2 instance being rotated, if it is one. */
  container?: ContainerInstanceState;
  /** The group has a warm pool (its instances keep their age when reused). */
  warmPool?: boolean;
  /** Desired capacity counts units (vCPU, memory or weights), not instances. */
  weighted?: boolean;
  /** What kept the group's state from being read; the planner reports it and changes nothing. */
  readError?: string;
}

export interface Clients {
  autoscaling: AutoScalingClient;
  ec2: EC2Client;
  ecs: ECSClient;
}

/**
 * Attach time of the primary network interface (device 0), falling back to LaunchTime. Read with an
 * instance-id filter: a just-launched instance is not yet visible to InstanceIds everywhere (EC2 is
 * eventually consistent), which would fail the whole call.
 */
const runningSince = async (ec2: EC2Client, ids: string[]): Promise<Map<string, Date | undefined>> => {
  const since = new Map<string, Date | undefined>();
  for (const batch of chunk(ids, 200)) {
    const pages = paginateDescribeInstances(
      { client: ec2 },
      { Filters: [{ Name: 'instance-id', Values: batch }] },
    );
    for await (const page of pages) {
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const primary = instance.NetworkInterfaces?.find((n) => n.Attachment?.DeviceIndex === 0);
        since.set(instance.InstanceId ?? '', primary?.Attachment?.AttachTime ?? instance.LaunchTime);
      }
    }
  }
  return since;
};

const activitiesInProgress = async (client: AutoScalingClient, group: string) => {
  const out = await client.send(
    new DescribeScalingActivitiesCommand({ AutoScalingGroupName: group, MaxRecords: 20 }),
  );
  return (out.Activities ?? [])
    .filter((a) => !ACTIVITY_DONE.has(a.StatusCode ?? ''))
    .map((a) => `${a.Description ?? 'activity'} (${a.StatusCode})`);
};

const refreshInProgress = async (client: AutoScalingClient, group: string): Promise<string | undefined> => {
  try {
    const out = await client.send(
      new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: group, MaxRecords: 5 }),
    );
    const active = (out.InstanceRefreshes ?? []).find((r) => REFRESH_ACTIVE.has(r.Status ?? ''));
    return active && `instance refresh ${active.InstanceRefreshId} is ${active.Status}`;
  } catch (error) {
    // Not knowing is not "no refresh": the planner treats it as unstable.
    return `could not tell whether an instance refresh is in progress (${errorMessage(error)})`;
  }
};

/** Finds the ECS container instance running on an EC2 instance, in any cluster of the account. */
export const findContainerInstance = async (
  ecs: ECSClient,
  ec2InstanceId: string,
): Promise<ContainerInstanceState | undefined> => {
  for await (const page of paginateListClusters({ client: ecs }, {})) {
    for (const cluster of page.clusterArns ?? []) {
      const listed = await ecs.send(
        new ListContainerInstancesCommand({ cluster, filter: `ec2InstanceId == ${ec2InstanceId}` }),
      );
      const arns = listed.containerInstanceArns ?? [];
      if (arns.length === 0) continue;
      const out = await ecs.send(
        new DescribeContainerInstancesCommand({ cluster, containerInstances: arns }),
      );
      const found = (out.containerInstances ?? []).find((c) => c.ec2InstanceId === ec2InstanceId);
      if (found) {
        return {
          cluster,
          arn: found.containerInstanceArn ?? '',
          status: found.status ?? 'UNKNOWN',
          runningTasks: (found.runningTasksCount ?? 0) + (found.pendingTasksCount ?? 0),
        };
      }
    }
  }
  return undefined;
};

/**
 * Reads the groups that opted in (or were named), their instances' ages and whether anything is
 * changing them. `rotatingInstance` says which instance of a group is being rotated, if any, so its
 * ECS container instance is looked up only then.
 */
export const readGroups = async (
  clients: Clients,
  names: string[] | undefined,
  rotatingInstance: (tags: TagMap) => string | undefined,
): Promise<GroupState[]> => {
  const raw = [];
  // DescribeAutoScalingGroups takes at most 50 names a call.
  for (const batch of names ? chunk(names, 50) : [undefined]) {
    for await (const page of paginateDescribeAutoScalingGroups(
      { client: clients.autoscaling },
      batch ? { AutoScalingGroupNames: batch } : {},
    )) {
      raw.push(...(page.AutoScalingGroups ?? []));
    }
  }
  const chosen = raw.filter((g) => {
    const tags = tagMapUpper(g.Tags);
    return names !== undefined || tags[ROTATE_TAG] !== undefined || tags[ROTATION_TAG] !== undefined;
  });
  const since = await runningSince(
    clients.ec2,
    chosen.flatMap((g) => (g.Instances ?? []).map((i) => i.InstanceId ?? '')).filter(Boolean),
  );
  return mapLimit(chosen, READ_CONCURRENCY, async (g): Promise<GroupState> => {
    const name = g.AutoScalingGroupName ?? '';
    const tags = tagMapUpper(g.Tags);
    const base: GroupState = {
      name,
      arn: g.AutoScalingGroupARN ?? '',
      min: g.MinSize ?? 0,
      max: g.MaxSize ?? 0,
      desired: g.DesiredCapacity ?? 0,
      tags,
      suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName ?? ''),
      instances: (g.Instances ?? []).map((i) => ({
        id: i.InstanceId ?? '',
        lifecycle: i.LifecycleState ?? 'Unknown',
        health: i.HealthStatus ?? 'Unknown',
        since: since.get(i.InstanceId ?? ''),
      })),
      activities: [],
      ...(g.WarmPoolConfiguration && { warmPool: true }),
      ...(((g.DesiredCapacityType && g.DesiredCapacityType !== 'units') ||
        (g.Instances ?? []).some((i) => i.WeightedCapacity && i.WeightedCapacity !== '1')) && {
        weighted: true,
      }),
    };
    // One group's failed read is that group's failed row, not the run's.
    try {
      const [activities, refresh] = await Promise.all([
        activitiesInProgress(clients.autoscaling, name),
        refreshInProgress(clients.autoscaling, name),
      ]);
      const rotating = rotatingInstance(tags);
      const container = rotating ? await findContainerInstance(clients.ecs, rotating) : undefined;
      return { ...base, activities, ...(refresh && { refresh }), ...(container && { container }) };
    } catch (error) {
      return { ...base, readError: errorMessage(error) };
    }
  });
};
