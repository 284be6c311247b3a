/**
 * An environment (tag `nightshift:environment`) in moto for the tests and the demo: a database (a DB
 * instance or an Aurora cluster with its writer), a standalone Auto Scaling group (not a capacity
 * provider) and an ECS cluster with its services, all on one schedule (`nightshift:schedule`). Reads
 * back everything the two schedulers may change, and makes moto answer what AWS answers where the
 * order of an environment depends on it (`answerAsAws`).
 */
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { DescribeCapacityProvidersCommand, type CapacityProvider } from '@aws-sdk/client-ecs';
import {
  createGroup,
  observe,
  seedClients,
  seedEstate,
  type ObservedGroup,
  type ObservedService,
  type SeedClients,
} from './ecs-estate.ts';
import { CREATED_LONG_AGO, type Proxy } from './proxy.ts';

export const ENVIRONMENT = 'nightshift:environment';
export const SCHEDULE = 'nightshift:schedule';
export const STOPPED = 'nightshift:stopped';

export interface EnvironmentClients extends SeedClients {
  rds: RDSClient;
}

export const environmentClients = (endpoint: string, region = 'eu-central-1'): EnvironmentClients => ({
  ...seedClients(endpoint, region),
  rds: new RDSClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  }),
});

export interface EnvironmentSpec {
  /** The value of `nightshift:environment` on the database, the group and the ECS cluster. */
  environment: string;
  /** The value of `nightshift:schedule` on the database, the group and the ECS cluster. */
  schedule: string;
  /** A DB instance, or an Aurora cluster (with its writer `<id>-1`): the tags go on the cluster. */
  database: { kind: 'instance' | 'cluster'; id: string };
  group: { name: string; min: number; desired: number; max: number };
  /** The ECS cluster; its services take its tags (a service without the tags takes its cluster's). */
  cluster: string;
  services: { name: string; desired: number; scaling?: { min: number; max: number } }[];
}

/** The environment `shop`: a postgres DB instance, a batch group and two services, on office-hours. */
export const SHOP: EnvironmentSpec = {
  environment: 'shop',
  schedule: 'office-hours',
  database: { kind: 'instance', id: 'shop-db' },
  group: { name: 'shop-batch', min: 1, desired: 2, max: 4 },
  cluster: 'shop',
  services: [
    { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
    { name: 'worker', desired: 2 },
  ],
};

/** The environment `reports`: an Aurora PostgreSQL cluster, a group and two services, on office-hours. */
export const REPORTS: EnvironmentSpec = {
  environment: 'reports',
  schedule: 'office-hours',
  database: { kind: 'cluster', id: 'reports-db' },
  group: { name: 'reports-etl', min: 1, desired: 1, max: 3 },
  cluster: 'reports',
  services: [
    { name: 'api', desired: 2, scaling: { min: 1, max: 4 } },
    { name: 'renderer', desired: 1 },
  ],
};

const rdsTags = (tags: Record<string, string>) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

/** Seeds one environment; the ECS task definition and the launch configuration are shared. */
export const seedEnvironment = async (c: EnvironmentClients, spec: EnvironmentSpec): Promise<void> => {
  const tags = { [ENVIRONMENT]: spec.environment, [SCHEDULE]: spec.schedule };
  const common = { MasterUsername: 'nightshift', MasterUserPassword: 'not-a-secret-1' };
  if (spec.database.kind === 'instance') {
    await c.rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: spec.database.id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        AllocatedStorage: 20,
        Tags: rdsTags(tags),
        ...common,
      }),
    );
  } else {
    await c.rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: spec.database.id,
        Engine: 'aurora-postgresql',
        Tags: rdsTags(tags),
        ...common,
      }),
    );
    await c.rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: `${spec.database.id}-1`,
        DBInstanceClass: 'db.r6g.large',
        Engine: 'aurora-postgresql',
        DBClusterIdentifier: spec.database.id,
      }),
    );
  }
  // seedEstate forgets which clients made the launch configuration (moto may have been reset since).
  await seedEstate(c, [{ name: spec.cluster, tags, services: spec.services }]);
  await createGroup(c, { ...spec.group, tags });
};

export interface ObservedDatabase {
  arn: string;
  /** DBInstanceStatus, or the cluster's Status. */
  status: string;
  /** Aurora: the writer's DBInstanceStatus. */
  writer?: string;
  tags: Record<string, string>;
}

export interface ObservedEnvironment {
  database: ObservedDatabase;
  group: ObservedGroup;
  services: Record<string, ObservedService>;
}

const tagObject = (tags: { Key?: string; Value?: string }[] | undefined) =>
  Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

/** The database's state and tags, as RDS reports them (through `c`, so through a proxy if it is one). */
export const observeDatabase = async (
  c: EnvironmentClients,
  db: EnvironmentSpec['database'],
): Promise<ObservedDatabase> => {
  if (db.kind === 'instance') {
    const out = await c.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: db.id }));
    const d = out.DBInstances?.[0];
    return {
      arn: d?.DBInstanceArn ?? '',
      status: d?.DBInstanceStatus ?? 'missing',
      tags: tagObject(d?.TagList),
    };
  }
  const out = await c.rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: db.id }));
  const cluster = out.DBClusters?.[0];
  const writerId = cluster?.DBClusterMembers?.find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
  const writer = writerId
    ? (await c.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: writerId }))).DBInstances?.[0]
    : undefined;
  return {
    arn: cluster?.DBClusterArn ?? '',
    status: cluster?.Status ?? 'missing',
    writer: writer?.DBInstanceStatus ?? 'missing',
    tags: tagObject(cluster?.TagList),
  };
};

/** Everything of the environment that the two schedulers may change. */
export const observeEnvironment = async (
  c: EnvironmentClients,
  spec: EnvironmentSpec,
): Promise<ObservedEnvironment> => {
  const { services, groups } = await observe(c, [spec.cluster], [spec.group.name]);
  const group = groups[spec.group.name];
  if (!group) throw new Error(`group ${spec.group.name} not found`);
  return { database: await observeDatabase(c, spec.database), group, services };
};

/** What a test or the demo makes the proxy answer for a while, as AWS would (see answerAsAws). */
export interface AwsAnswers {
  /** Database (instance or cluster) identifier → the status RDS reports, e.g. `starting`. */
  databaseStatus: Map<string, string>;
  /** `cluster/service` → the tasks ECS still reports running (they drain after desiredCount 0). */
  draining: Map<string, number>;
}

/** Long before any test's `now`: what a real estate's creation times look like. */
export { CREATED_LONG_AGO };

const statusIn = (block: string, idTag: string, statusTag: string, status: Map<string, string>) => {
  const id = new RegExp(`<${idTag}>([^<]*)</${idTag}>`).exec(block)?.[1];
  const wanted = id === undefined ? undefined : status.get(id);
  return wanted === undefined
    ? block
    : block.replace(
        new RegExp(`<${statusTag}>available</${statusTag}>`),
        `<${statusTag}>${wanted}</${statusTag}>`,
      );
};

/**
 * Makes the proxy answer as AWS does where moto does not, for an environment's order:
 * - RDS state changes are instant in moto (a started database is `available` at once); AWS reports a
 *   database `starting` for minutes: `answers.databaseStatus` says which and what.
 * - ECS tasks stop at once in moto when desiredCount goes to 0; AWS drains them (runningCount stays up
 *   for the deregistration delay): `answers.draining`.
 * - moto has no `createdAt` on ECS services and stamps groups and databases with the real clock, not
 *   the test's `now`: every creation time is answered as CREATED_LONG_AGO (no grace period applies).
 * - moto 5.2.1 answers DescribeCapacityProviders without names (AWS: every provider of the account)
 *   with a 500: it is answered with the providers `capacityProviders` names, read from moto by name.
 */
export const answerAsAws = async (
  proxy: Proxy,
  moto: EnvironmentClients,
  answers: AwsAnswers,
  capacityProviders: string[] = [],
): Promise<void> => {
  const created = new Date(CREATED_LONG_AGO).getTime() / 1000;
  proxy.rewrite('DescribeServices', (body) => {
    const out = JSON.parse(body) as {
      services?: { clusterArn?: string; serviceName?: string; createdAt?: number; runningCount?: number }[];
    };
    for (const s of out.services ?? []) {
      s.createdAt = created;
      const key = `${(s.clusterArn ?? '').split('/').pop()}/${s.serviceName}`;
      const running = answers.draining.get(key);
      if (running !== undefined) s.runningCount = running;
    }
    return JSON.stringify(out);
  });
  proxy.rewrite('DescribeAutoScalingGroups', (body) =>
    body.replace(/<CreatedTime>[^<]*<\/CreatedTime>/g, `<CreatedTime>${CREATED_LONG_AGO}</CreatedTime>`),
  );
  proxy.rewrite('DescribeDBInstances', (body) =>
    body
      .replace(
        /<InstanceCreateTime>[^<]*<\/InstanceCreateTime>/g,
        `<InstanceCreateTime>${CREATED_LONG_AGO}</InstanceCreateTime>`,
      )
      .replace(/<DBInstance>[\s\S]*?<\/DBInstance>/g, (block) =>
        statusIn(block, 'DBInstanceIdentifier', 'DBInstanceStatus', answers.databaseStatus),
      ),
  );
  proxy.rewrite('DescribeDBClusters', (body) =>
    body
      .replace(
        /<ClusterCreateTime>[^<]*<\/ClusterCreateTime>/g,
        `<ClusterCreateTime>${CREATED_LONG_AGO}</ClusterCreateTime>`,
      )
      .replace(/<DBCluster>[\s\S]*?<\/DBCluster>/g, (block) =>
        statusIn(block, 'DBClusterIdentifier', 'Status', answers.databaseStatus),
      ),
  );
  // DescribeCapacityProviders: up to 100 names a call, at most 10 results a page (nextToken).
  const known: CapacityProvider[] = [];
  for (let i = 0; i < capacityProviders.length; i += 100) {
    let nextToken: string | undefined;
    do {
      const out = await moto.ecs.send(
        new DescribeCapacityProvidersCommand({
          capacityProviders: capacityProviders.slice(i, i + 100),
          maxResults: 10,
          nextToken,
        }),
      );
      known.push(...(out.capacityProviders ?? []));
      nextToken = out.nextToken || undefined;
    } while (nextToken);
  }
  proxy.stub('DescribeCapacityProviders', (request) =>
    request.body.includes('capacityProviders')
      ? undefined
      : {
          contentType: 'application/x-amz-json-1.1',
          body: JSON.stringify({
            capacityProviders: known.map((p) => ({
              name: p.name,
              capacityProviderArn: p.capacityProviderArn,
              autoScalingGroupProvider: {
                autoScalingGroupArn: p.autoScalingGroupProvider?.autoScalingGroupArn,
              },
            })),
          }),
        },
  );
};

/** Removes every answer answerAsAws installed. */
export const answerAsMoto = (proxy: Proxy): void => {
  for (const op of [
    'DescribeServices',
    'DescribeAutoScalingGroups',
    'DescribeDBInstances',
    'DescribeDBClusters',
  ])
    proxy.rewrite(op, undefined);
  proxy.stub('DescribeCapacityProviders', undefined);
};
