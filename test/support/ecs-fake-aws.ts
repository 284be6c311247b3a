/**
 * A small ECS, Application Auto Scaling and Auto Scaling for component tests, on aws-sdk-client-mock:
 * it keeps state, applies the scheduler's writes, and answers every read with AWS's own page sizes and
 * batch limits (moto answers ListServices, ListClusters and DescribeCapacityProviders in one page and
 * accepts any batch size, so it cannot show a read that stops after the first page). Limits, from the
 * AWS API references: ListClusters maxResults 1–100 (default 100); DescribeClusters up to 100 clusters;
 * ListServices maxResults 1–100 (default 10); DescribeServices up to 10 services; DescribeScalableTargets
 * MaxResults 1–50 (default 50); DescribeCapacityProviders up to 100 names, maxResults 1–10 (default 10);
 * DescribeAutoScalingGroups MaxRecords 1–100 (default 50), and at most MaxRecords names.
 */
import { mockClient } from 'aws-sdk-client-mock';
import {
  DescribeCapacityProvidersCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  ECSClient,
  ListClustersCommand,
  ListServicesCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  AutoScalingClient,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import type { Clients } from '#functions/ecs-scheduler/inventory.ts';
import type { Claim, Lease, LeaseOwner, LeaseStore } from '#shared/lease.ts';

export const REGION = 'eu-central-1';
export const ACCOUNT = '123456789012';
export const clusterArn = (cluster: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${cluster}`;
export const serviceArn = (cluster: string, service: string) =>
  `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${cluster}/${service}`;
export const groupArn = (group: string) =>
  `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:0e5c2a4b-7d1f-4a8e-9b3c-5d6e7f8a9b0c:autoScalingGroupName/${group}`;

export interface FakeScaling {
  min: number;
  max: number;
  suspended?: [boolean, boolean, boolean];
}

export interface FakeService {
  name: string;
  desired: number;
  tags?: Record<string, string>;
  daemon?: boolean;
  scaling?: FakeScaling;
}

export interface FakeCluster {
  name: string;
  tags?: Record<string, string>;
  /** Capacity provider names. */
  providers?: string[];
  /** Tasks running outside services. */
  standalone?: number;
  services: FakeService[];
}

export interface FakeGroup {
  name: string;
  min: number;
  desired: number;
  max: number;
  tags?: Record<string, string>;
}

export interface FakeEstate {
  clusters: FakeCluster[];
  /** Capacity provider name → Auto Scaling group name. */
  providers?: Record<string, string>;
  groups?: FakeGroup[];
}

const awsError = (name: string, message: string) => Object.assign(new Error(message), { name });

const page = <T>(items: readonly T[], token: string | undefined, size: number) => {
  const start = token ? Number(token) : 0;
  const next = start + size < items.length ? String(start + size) : undefined;
  return { items: items.slice(start, start + size), next };
};

const limit = (value: number | undefined, fallback: number, max: number, what: string) => {
  const n = value ?? fallback;
  if (n < 1 || n > max) throw awsError('InvalidParameterException', `${what} must be between 1 and ${max}`);
  return n;
};

const toTags = (tags: Record<string, string> = {}) =>
  Object.entries(tags).map(([key, value]) => ({ key, value }));

/**
 * Installs the fake on the three SDK clients (every client instance) and returns its state, which
 * the tests read after a run, and hooks to act between two calls.
 */
export const fakeAws = (estate: FakeEstate) => {
  const ecs = mockClient(ECSClient);
  const scaling = mockClient(ApplicationAutoScalingClient);
  const autoscaling = mockClient(AutoScalingClient);
  const state = structuredClone(estate);
  const groups = new Map((state.groups ?? []).map((g) => [g.name, g]));
  const clusterOf = (ref: string) => state.clusters.find((c) => c.name === ref || clusterArn(c.name) === ref);
  const serviceOf = (cluster: string | undefined, ref: string) => {
    const c = clusterOf(cluster ?? 'default');
    const name = ref.split('/').pop();
    return c?.services.find((s) => s.name === name);
  };
  const scalingOf = (resourceId: string) => {
    const [, cluster, service] = resourceId.split('/');
    return serviceOf(cluster, service ?? '');
  };
  /** Runs before each call: a test can act between two calls of a run. */
  const hooks: { before?: (operation: string, input: Record<string, unknown>) => Promise<void> | void } = {};
  const on = <I, O>(operation: string, answer: (input: I) => O): ((input: I) => Promise<O>) => {
    return async (input: I) => {
      await hooks.before?.(operation, input as Record<string, unknown>);
      return answer(input);
    };
  };

  ecs.on(ListClustersCommand).callsFake(
    on('ListClusters', (input: { maxResults?: number; nextToken?: string }) => {
      const size = limit(input.maxResults, 100, 100, 'maxResults');
      const { items, next } = page(
        state.clusters.map((c) => clusterArn(c.name)),
        input.nextToken,
        size,
      );
      return { clusterArns: items, nextToken: next };
    }),
  );
  ecs.on(DescribeClustersCommand).callsFake(
    on('DescribeClusters', (input: { clusters: string[] }) => {
      if (input.clusters.length > 100) throw awsError('InvalidParameterException', 'at most 100 clusters');
      const found = input.clusters.map((ref) => ({ ref, c: clusterOf(ref) }));
      return {
        clusters: found
          .filter((f) => f.c)
          .map(({ c }) => ({
            clusterArn: clusterArn(c!.name),
            clusterName: c!.name,
            status: 'ACTIVE',
            tags: toTags(c!.tags),
            capacityProviders: c!.providers ?? [],
            runningTasksCount: c!.services.reduce((n, s) => n + s.desired, c!.standalone ?? 0),
            pendingTasksCount: 0,
          })),
        failures: found.filter((f) => !f.c).map((f) => ({ arn: f.ref, reason: 'MISSING' })),
      };
    }),
  );
  ecs.on(ListServicesCommand).callsFake(
    on('ListServices', (input: { cluster: string; maxResults?: number; nextToken?: string }) => {
      const size = limit(input.maxResults, 10, 100, 'maxResults');
      const c = clusterOf(input.cluster);
      const { items, next } = page(
        (c?.services ?? []).map((s) => serviceArn(c!.name, s.name)),
        input.nextToken,
        size,
      );
      return { serviceArns: items, nextToken: next };
    }),
  );
  ecs.on(DescribeServicesCommand).callsFake(
    on('DescribeServices', (input: { cluster: string; services: string[]; include?: string[] }) => {
      if (input.services.length > 10) throw awsError('InvalidParameterException', 'at most 10 services');
      const c = clusterOf(input.cluster);
      return {
        services: input.services
          .map((ref) => serviceOf(input.cluster, ref))
          .filter((s): s is FakeService => !!s)
          .map((s) => ({
            serviceArn: serviceArn(c!.name, s.name),
            serviceName: s.name,
            status: 'ACTIVE',
            schedulingStrategy: s.daemon ? 'DAEMON' : 'REPLICA',
            desiredCount: s.desired,
            runningCount: s.desired,
            pendingCount: 0,
            ...(input.include?.includes('TAGS') && { tags: toTags(s.tags) }),
          })),
        failures: [],
      };
    }),
  );
  ecs.on(DescribeCapacityProvidersCommand).callsFake(
    on(
      'DescribeCapacityProviders',
      (input: { capacityProviders: string[]; maxResults?: number; nextToken?: string }) => {
        if (input.capacityProviders.length > 100)
          throw awsError('InvalidParameterException', 'at most 100 capacity providers');
        const size = limit(input.maxResults, 10, 10, 'maxResults');
        const known = input.capacityProviders.filter((p) => state.providers?.[p]);
        const { items, next } = page(known, input.nextToken, size);
        return {
          capacityProviders: items.map((name) => ({
            name,
            autoScalingGroupProvider: { autoScalingGroupArn: groupArn(state.providers![name]!) },
          })),
          nextToken: next,
        };
      },
    ),
  );
  ecs.on(TagResourceCommand).callsFake(
    on('TagResource', (input: { resourceArn: string; tags: { key: string; value: string }[] }) => {
      const [cluster, name] = input.resourceArn.split(':service/')[1]?.split('/') ?? [];
      const s = serviceOf(cluster, name ?? '');
      if (!s) throw awsError('InvalidParameterException', 'no such service');
      for (const t of input.tags) s.tags = { ...s.tags, [t.key]: t.value };
      return {};
    }),
  );
  ecs.on(UntagResourceCommand).callsFake(
    on('UntagResource', (input: { resourceArn: string; tagKeys: string[] }) => {
      const [cluster, name] = input.resourceArn.split(':service/')[1]?.split('/') ?? [];
      const s = serviceOf(cluster, name ?? '');
      if (!s) throw awsError('InvalidParameterException', 'no such service');
      s.tags = Object.fromEntries(Object.entries(s.tags ?? {}).filter(([k]) => !input.tagKeys.includes(k)));
      return {};
    }),
  );
  ecs.on(UpdateServiceCommand).callsFake(
    on('UpdateService', (input: { cluster: string; service: string; desiredCount: number }) => {
      const s = serviceOf(input.cluster, input.service);
      if (!s) throw awsError('ServiceNotFoundException', 'no such service');
      s.desired = input.desiredCount;
      return {};
    }),
  );
  scaling.on(DescribeScalableTargetsCommand).callsFake(
    on(
      'DescribeScalableTargets',
      (input: { ResourceIds?: string[]; MaxResults?: number; NextToken?: string }) => {
        const size = limit(input.MaxResults, 50, 50, 'MaxResults');
        const targets = (input.ResourceIds ?? []).filter((id) => scalingOf(id)?.scaling);
        const { items, next } = page(targets, input.NextToken, size);
        return {
          ScalableTargets: items.map((id) => {
            const t = scalingOf(id)!.scaling!;
            const [i, o, sch] = t.suspended ?? [false, false, false];
            return {
              ResourceId: id,
              ServiceNamespace: 'ecs',
              ScalableDimension: 'ecs:service:DesiredCount',
              MinCapacity: t.min,
              MaxCapacity: t.max,
              SuspendedState: {
                DynamicScalingInSuspended: i,
                DynamicScalingOutSuspended: o,
                ScheduledScalingSuspended: sch,
              },
            };
          }),
          NextToken: next,
        };
      },
    ),
  );
  scaling.on(RegisterScalableTargetCommand).callsFake(
    on(
      'RegisterScalableTarget',
      (input: {
        ResourceId: string;
        MinCapacity: number;
        MaxCapacity: number;
        SuspendedState: Record<string, boolean>;
      }) => {
        const s = scalingOf(input.ResourceId);
        if (!s?.scaling) throw awsError('ObjectNotFoundException', 'no such target');
        s.scaling = {
          min: input.MinCapacity,
          max: input.MaxCapacity,
          suspended: [
            input.SuspendedState.DynamicScalingInSuspended ?? false,
            input.SuspendedState.DynamicScalingOutSuspended ?? false,
            input.SuspendedState.ScheduledScalingSuspended ?? false,
          ],
        };
        // Application Auto Scaling moves desiredCount into the new [min, max].
        s.desired = Math.min(Math.max(s.desired, input.MinCapacity), Math.max(input.MaxCapacity, 0));
        return {};
      },
    ),
  );
  autoscaling.on(DescribeAutoScalingGroupsCommand).callsFake(
    on(
      'DescribeAutoScalingGroups',
      (input: { AutoScalingGroupNames?: string[]; MaxRecords?: number; NextToken?: string }) => {
        const size = limit(input.MaxRecords, 50, 100, 'MaxRecords');
        const names = input.AutoScalingGroupNames ?? [];
        if (names.length > size) throw awsError('ValidationError', `at most ${size} names`);
        const found = names.map((n) => groups.get(n)).filter((g): g is FakeGroup => !!g);
        const { items, next } = page(found, input.NextToken, size);
        return {
          AutoScalingGroups: items.map((g) => ({
            AutoScalingGroupName: g.name,
            AutoScalingGroupARN: groupArn(g.name),
            MinSize: g.min,
            MaxSize: g.max,
            DesiredCapacity: g.desired,
            Tags: Object.entries(g.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
          })),
          NextToken: next,
        };
      },
    ),
  );
  autoscaling.on(CreateOrUpdateTagsCommand).callsFake(
    on('CreateOrUpdateTags', (input: { Tags: { ResourceId: string; Key: string; Value: string }[] }) => {
      for (const t of input.Tags) {
        const g = groups.get(t.ResourceId);
        if (g) g.tags = { ...g.tags, [t.Key]: t.Value };
      }
      return {};
    }),
  );
  autoscaling.on(DeleteTagsCommand).callsFake(
    on('DeleteTags', (input: { Tags: { ResourceId: string; Key: string }[] }) => {
      for (const t of input.Tags) {
        const g = groups.get(t.ResourceId);
        if (g) g.tags = Object.fromEntries(Object.entries(g.tags ?? {}).filter(([k]) => k !== t.Key));
      }
      return {};
    }),
  );
  autoscaling.on(UpdateAutoScalingGroupCommand).callsFake(
    on(
      'UpdateAutoScalingGroup',
      (input: {
        AutoScalingGroupName: string;
        MinSize: number;
        MaxSize: number;
        DesiredCapacity: number;
      }) => {
        const g = groups.get(input.AutoScalingGroupName);
        if (!g) throw awsError('ValidationError', 'no such group');
        Object.assign(g, { min: input.MinSize, max: input.MaxSize, desired: input.DesiredCapacity });
        return {};
      },
    ),
  );

  const service = (cluster: string, name: string) => serviceOf(cluster, name);
  return { ecs, scaling, autoscaling, state, groups, service, hooks };
};

export type FakeAws = ReturnType<typeof fakeAws>;

export const fakeClients = (): Clients => ({
  ecs: new ECSClient({ region: REGION }),
  scaling: new ApplicationAutoScalingClient({ region: REGION }),
  autoscaling: new AutoScalingClient({ region: REGION }),
});

/**
 * The lease table in memory, with DynamoDB's semantics as shared/lease.ts uses them: a claim succeeds
 * when the scope is free, expired, or already the claimer's.
 */
export const memoryLeaseStore = (
  table = 'nightshift-test-leases',
): LeaseStore & { items: Map<string, Lease> } => {
  const items = new Map<string, Lease>();
  return {
    table,
    items,
    read: async (scope) => items.get(scope),
    acquire: async (scope, owner: LeaseOwner, now, ttlMs): Promise<Claim> => {
      const held = items.get(scope);
      if (held && held.expiresAt > now && held.token !== owner.token) return { ok: false, heldBy: held };
      items.set(scope, {
        scope,
        holder: owner.holder,
        token: owner.token,
        acquiredAt: now,
        expiresAt: new Date(now.getTime() + ttlMs),
        version: 1,
        data: {},
      });
      return { ok: true };
    },
    release: async (scope, owner) => {
      if (items.get(scope)?.token === owner.token) items.delete(scope);
    },
    compareAndSet: async (next, expected) => {
      if (items.get(next.scope)?.version !== expected) return false;
      items.set(next.scope, { ...next, version: (expected ?? 0) + 1 });
      return true;
    },
    remove: async (scope) => {
      items.delete(scope);
    },
  };
};
