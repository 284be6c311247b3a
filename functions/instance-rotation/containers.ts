/**
 * The ECS side of a rotation: finding the container instances on a group's instances, and draining or
 * undraining one. Its own module, imported on demand (inventory.ts, execute.ts), so the ECS client is
 * parsed only by runs that need it.
 */
import {
  DescribeContainerInstancesCommand,
  paginateListClusters,
  paginateListContainerInstances,
  UpdateContainerInstancesStateCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { chunk } from '#shared/concurrency.ts';
import { assertTime, OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import type { ContainerInstanceState, ContainerLookup } from './inventory.ts';

// ECS ListClusters, ListContainerInstances maxResults 100; DescribeContainerInstances 100 ARNs a call
// (ECS API reference).
const ECS_PAGE = 100;
const DESCRIBE_CONTAINER_INSTANCES = 100;
/** EC2 instance ids per cluster-query filter (`ec2InstanceId in [...]`), keeping the expression short. */
const IDS_PER_FILTER = 20;

/**
 * Finds the ECS container instances running on these EC2 instances, in every cluster of the account.
 * The ids are looked for in the order given, IDS_PER_FILTER at a time, each batch in every cluster
 * (one filtered listing per cluster, every page, described 100 at a time) before the next batch: when
 * the deadline comes, the ids asked for first (the groups the previous run left undone) are settled.
 */
export const findContainerInstances = async (
  ecs: ECSClient,
  ec2InstanceIds: readonly string[],
  hasTime: () => boolean,
): Promise<ContainerLookup> => {
  const wanted = [...new Set(ec2InstanceIds)];
  const found = new Map<string, ContainerInstanceState>();
  const settled = new Set<string>();
  if (wanted.length === 0) return { found, settled };
  try {
    const clusters: string[] = [];
    const listed = paginateListClusters({ client: ecs, pageSize: ECS_PAGE }, {});
    for await (const page of pagesWithin(listed, hasTime, 'ECS clusters'))
      clusters.push(...(page.clusterArns ?? []));
    for (const batch of chunk(wanted, IDS_PER_FILTER)) {
      const ids = new Set(batch);
      for (const cluster of clusters) {
        const remaining = batch.filter((id) => !found.has(id));
        if (remaining.length === 0) break;
        assertTime(hasTime, `ECS container instances of ${cluster}`);
        const arns: string[] = [];
        const pages = paginateListContainerInstances(
          { client: ecs, pageSize: ECS_PAGE },
          { cluster, filter: `ec2InstanceId in [${remaining.map((id) => `'${id}'`).join(', ')}]` },
        );
        for await (const list of pagesWithin(pages, hasTime, `ECS container instances of ${cluster}`)) {
          arns.push(...(list.containerInstanceArns ?? []));
        }
        for (const described of chunk(arns, DESCRIBE_CONTAINER_INSTANCES)) {
          assertTime(hasTime, `ECS container instances of ${cluster}`);
          const out = await ecs.send(
            new DescribeContainerInstancesCommand({ cluster, containerInstances: described }),
          );
          for (const c of out.containerInstances ?? []) {
            if (!c.ec2InstanceId || !ids.has(c.ec2InstanceId)) continue;
            found.set(c.ec2InstanceId, {
              cluster,
              arn: c.containerInstanceArn ?? '',
              status: c.status ?? 'UNKNOWN',
              runningTasks: (c.runningTasksCount ?? 0) + (c.pendingTasksCount ?? 0),
            });
          }
        }
      }
      for (const id of batch) settled.add(id);
    }
  } catch (error) {
    if (error instanceof OutOfTimeError) return { found, settled, cut: error };
    throw error;
  }
  return { found, settled };
};

/** Drains (before a termination) or undrains (on an abandoned rotation) one container instance. */
export const setContainerInstanceState = async (
  ecs: ECSClient,
  cluster: string,
  containerInstance: string,
  status: 'DRAINING' | 'ACTIVE',
): Promise<void> => {
  await ecs.send(
    new UpdateContainerInstancesStateCommand({ cluster, containerInstances: [containerInstance], status }),
  );
};
