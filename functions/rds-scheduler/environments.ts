/**
 * The environment gate's read (inventory.ts EnvironmentRest): the ECS services and Auto Scaling groups of
 * the environments whose databases a run would stop. Imported on demand (handler.ts), with the ECS and
 * Auto Scaling clients: a run that stops no environment's database never loads them.
 */
import {
  DescribeClustersCommand,
  DescribeServicesCommand,
  paginateListClusters,
  paginateListServices,
} from '@aws-sdk/client-ecs';
import { paginateDescribeAutoScalingGroups } from '@aws-sdk/client-auto-scaling';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { chunk } from '#shared/concurrency.ts';
import { assertTime, pagesWithin } from '#shared/deadline.ts';
import { ENVIRONMENT_TAG, environmentOf, type GroupRest, type ServiceRest } from '#shared/environment.ts';
import { tagMap, tagMapUpper } from '#shared/tags.ts';
import type { EnvironmentRest, GateClients } from './inventory.ts';

/** The gate's clients where the function runs, or a fleet target's (one per cold start / per scope). */
export const environmentClients = (scope?: ClientScope): GateClients => ({
  ecs: ecsClient(scope),
  autoscaling: autoScalingClient(scope),
});

// ListClusters / ListServices: maxResults up to 100. DescribeClusters: up to 100 clusters a call;
// DescribeServices: up to 10 services a call (Amazon ECS API Reference). DescribeAutoScalingGroups:
// MaxRecords up to 100 (Amazon EC2 Auto Scaling API Reference).
const ECS_PAGE = 100;
const DESCRIBE_CLUSTERS = 100;
const DESCRIBE_SERVICES = 10;
const GROUP_PAGE = 100;

/**
 * Read-only: the ECS services (a service without `nightshift:environment` takes its cluster's) and the
 * Auto Scaling groups of the environments named, for the stop gate (shared/environment.ts).
 */
export const readEnvironments = async (
  { clients, hasTime }: { clients: GateClients; hasTime: () => boolean },
  environments: ReadonlySet<string>,
): Promise<EnvironmentRest> => {
  const services = new Map<string, ServiceRest[]>();
  const groups = new Map<string, GroupRest[]>();
  if (environments.size === 0) return { services, groups };
  const add = <T>(map: Map<string, T[]>, env: string, item: T) =>
    map.set(env, [...(map.get(env) ?? []), item]);

  const clusterArns: string[] = [];
  const listed = paginateListClusters({ client: clients.ecs, pageSize: ECS_PAGE }, {});
  for await (const page of pagesWithin(listed, hasTime, 'ECS clusters'))
    clusterArns.push(...(page.clusterArns ?? []));
  for (const batch of chunk(clusterArns, DESCRIBE_CLUSTERS)) {
    assertTime(hasTime, 'ECS clusters');
    const out = await clients.ecs.send(new DescribeClustersCommand({ clusters: batch, include: ['TAGS'] }));
    for (const cluster of out.clusters ?? []) {
      const clusterTags = tagMap(cluster.tags);
      const serviceArns: string[] = [];
      const pages = paginateListServices(
        { client: clients.ecs, pageSize: ECS_PAGE },
        { cluster: cluster.clusterArn },
      );
      for await (const page of pagesWithin(pages, hasTime, `ECS services of ${cluster.clusterName}`))
        serviceArns.push(...(page.serviceArns ?? []));
      for (const names of chunk(serviceArns, DESCRIBE_SERVICES)) {
        assertTime(hasTime, `ECS services of ${cluster.clusterName}`);
        const described = await clients.ecs.send(
          new DescribeServicesCommand({ cluster: cluster.clusterArn, services: names, include: ['TAGS'] }),
        );
        for (const s of described.services ?? []) {
          if (s.status === 'INACTIVE') continue;
          const env = environmentOf(tagMap(s.tags), clusterTags);
          if (env === undefined || !environments.has(env)) continue;
          add(services, env, {
            name: `${cluster.clusterName}/${s.serviceName}`,
            desiredCount: s.desiredCount ?? 0,
            tasks: (s.runningCount ?? 0) + (s.pendingCount ?? 0),
          });
        }
      }
    }
  }
  assertTime(hasTime, 'Auto Scaling groups');
  const groupPages = paginateDescribeAutoScalingGroups(
    { client: clients.autoscaling, pageSize: GROUP_PAGE },
    { Filters: [{ Name: 'tag-key', Values: [ENVIRONMENT_TAG] }] },
  );
  for await (const page of pagesWithin(groupPages, hasTime, 'Auto Scaling groups')) {
    for (const g of page.AutoScalingGroups ?? []) {
      const env = environmentOf(tagMapUpper(g.Tags));
      if (env === undefined || !environments.has(env)) continue;
      add(groups, env, {
        name: g.AutoScalingGroupName ?? '',
        min: g.MinSize ?? 0,
        desired: g.DesiredCapacity ?? 0,
        max: g.MaxSize ?? 0,
        instances: (g.Instances ?? []).length,
      });
    }
  }
  return { services, groups };
};
