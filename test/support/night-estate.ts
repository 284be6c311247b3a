/**
 * The estate of the night demo (scripts/demo/night.ts), in moto: the environment `shop` of
 * environment-estate.ts (a DB instance, a standalone Auto Scaling group and two ECS services on
 * office-hours), and what runs all night beside it — a cluster `ops` with a service `gateway`, a group
 * `ops-runners` that opts in to instance rotation, and a database `ledger-db` whose nightly snapshot is
 * copied and tagged — plus CloudWatch alarms about each. Reads back everything the night may change, to
 * tell whether it all came back exactly.
 */
import { readFileSync } from 'node:fs';
import {
  CloudWatchClient,
  DescribeAlarmsCommand,
  ListTagsForResourceCommand as ListAlarmTagsCommand,
  PutMetricAlarmCommand,
} from '@aws-sdk/client-cloudwatch';
import { TagResourceCommand } from '@aws-sdk/client-ecs';
import { CreateDBInstanceCommand, CreateDBSnapshotCommand } from '@aws-sdk/client-rds';
import { createCluster, createGroup, observe } from './ecs-estate.ts';
import {
  environmentClients,
  observeDatabase,
  seedEnvironment,
  SHOP,
  type EnvironmentClients,
} from './environment-estate.ts';
import type { Proxy } from './proxy.ts';

export const REGION = 'eu-central-1';
/** moto's default account. */
export const ACCOUNT = '123456789012';
/** Where rds-snapshot-copy copies to in the demo. */
export const COPY_REGION = 'eu-west-1';

/** The opt-in ssm-restart requires on an ECS service, and the alarm tag naming what to restart. */
const RESTARTABLE = { key: 'nightshift:restartable', value: 'true' };
const RESTART = 'nightshift:restart';

export interface NightClients extends EnvironmentClients {
  cloudwatch: CloudWatchClient;
}

export const nightClients = (endpoint: string, region = REGION): NightClients => ({
  ...environmentClients(endpoint, region),
  cloudwatch: new CloudWatchClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  }),
});

/** What runs all night beside the environment `shop`. */
export const NIGHT = {
  ops: { cluster: 'ops', service: 'gateway', desired: 2 },
  runners: { name: 'ops-runners', min: 1, desired: 2, max: 3 },
  ledger: {
    id: 'ledger-db',
    tags: { team: 'finance', 'cost-center': '4711' },
    snapshot: 'ledger-db-nightly',
  },
} as const;

export interface NightAlarm {
  name: string;
  dimensions: Record<string, string>;
  /** `nightshift:restart` on the alarm: what ssm-restart restarts when it fires. */
  restart?: string;
}

/** A CloudWatch alarm about each parked tier of `shop`, and one about the service that runs all night. */
export const NIGHT_ALARMS: NightAlarm[] = [
  { name: 'shop-web-5xx', dimensions: { ClusterName: 'shop', ServiceName: 'web' }, restart: 'ecs-service' },
  { name: 'shop-batch-cpu', dimensions: { AutoScalingGroupName: SHOP.group.name } },
  { name: 'shop-db-cpu', dimensions: { DBInstanceIdentifier: SHOP.database.id } },
  {
    name: 'ops-gateway-5xx',
    dimensions: { ClusterName: NIGHT.ops.cluster, ServiceName: NIGHT.ops.service },
    restart: 'ecs-service',
  },
];

export const alarmArn = (name: string) => `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${name}`;

/** Seeds the environment `shop` and what runs beside it. */
export const seedNight = async (c: NightClients): Promise<void> => {
  // Independent parts in parallel: moto answers each request on its own thread.
  await Promise.all([
    (async () => {
      await seedEnvironment(c, SHOP);
      await c.ecs.send(
        new TagResourceCommand({
          resourceArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${SHOP.cluster}/web`,
          tags: [RESTARTABLE],
        }),
      );
      // After seedEnvironment: it creates the launch configuration both groups use.
      await createGroup(c, { ...NIGHT.runners, tags: { 'nightshift:rotate': 'true' } });
    })(),
    createCluster(c, {
      name: NIGHT.ops.cluster,
      services: [
        {
          name: NIGHT.ops.service,
          desired: NIGHT.ops.desired,
          tags: { [RESTARTABLE.key]: RESTARTABLE.value },
        },
      ],
    }),
    c.rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: NIGHT.ledger.id,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        AllocatedStorage: 20,
        MasterUsername: 'nightshift',
        MasterUserPassword: 'not-a-secret-1',
        Tags: Object.entries(NIGHT.ledger.tags).map(([Key, Value]) => ({ Key, Value })),
      }),
    ),
    ...NIGHT_ALARMS.map((alarm) =>
      c.cloudwatch.send(
        new PutMetricAlarmCommand({
          AlarmName: alarm.name,
          Namespace: alarm.dimensions.DBInstanceIdentifier ? 'AWS/RDS' : 'AWS/ECS',
          MetricName: 'CPUUtilization',
          Statistic: 'Average',
          Period: 60,
          EvaluationPeriods: 1,
          Threshold: 90,
          ComparisonOperator: 'GreaterThanThreshold',
          ActionsEnabled: true,
          AlarmActions: [`arn:aws:sns:${REGION}:${ACCOUNT}:pager`],
          Dimensions: Object.entries(alarm.dimensions).map(([Name, Value]) => ({ Name, Value })),
          ...(alarm.restart && { Tags: [{ Key: RESTART, Value: alarm.restart }] }),
        }),
      ),
    ),
  ]);
};

/** The nightly manual snapshot of ledger-db (only the backup job's own tag); returns its ARN. */
export const takeLedgerSnapshot = async (c: NightClients): Promise<string> => {
  const out = await c.rds.send(
    new CreateDBSnapshotCommand({
      DBInstanceIdentifier: NIGHT.ledger.id,
      DBSnapshotIdentifier: NIGHT.ledger.snapshot,
      Tags: [{ Key: 'backup', Value: 'nightly' }],
    }),
  );
  return out.DBSnapshot?.DBSnapshotArn ?? '';
};

/** The real "manual snapshot created" event (events/aws.rds/samples), about the snapshot `arn`. */
export const snapshotCreatedEvent = (arn: string, at: Date) => {
  const event = JSON.parse(
    readFileSync('events/aws.rds/samples/db-snapshot-manual-created.json', 'utf8'),
  ) as {
    detail: Record<string, unknown>;
  };
  return {
    ...event,
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    resources: [arn],
    detail: {
      ...event.detail,
      SourceArn: arn,
      SourceIdentifier: arn.split(':').pop(),
      Date: at.toISOString(),
    },
  };
};

/**
 * A CloudWatch alarm state change to ALARM, from the sample AWS publishes in its documentation
 * (test/fixtures/aws-events/aws.cloudwatch/awsdocs-single-metric-ec2-instance.json, see PROVENANCE.md),
 * about `alarm` in this account and region, at `at`.
 */
export const alarmStateChange = (alarm: NightAlarm, at: Date) => {
  const event = JSON.parse(
    readFileSync('test/fixtures/aws-events/aws.cloudwatch/awsdocs-single-metric-ec2-instance.json', 'utf8'),
  ) as {
    detail: {
      state: Record<string, unknown>;
      configuration: { metrics: { metricStat: { metric: Record<string, unknown> } }[] };
    } & Record<string, unknown>;
  } & Record<string, unknown>;
  const cloudwatchTime = at.toISOString().replace(/Z$/, '+0000');
  const [metric] = event.detail.configuration.metrics;
  return {
    ...event,
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: REGION,
    account: ACCOUNT,
    resources: [alarmArn(alarm.name)],
    detail: {
      ...event.detail,
      alarmName: alarm.name,
      configuration: {
        ...event.detail.configuration,
        metrics: [
          {
            ...metric,
            metricStat: {
              ...metric?.metricStat,
              metric: { ...metric?.metricStat.metric, namespace: 'AWS/ECS', dimensions: alarm.dimensions },
            },
          },
        ],
      },
      state: { ...event.detail.state, timestamp: cloudwatchTime },
    },
  };
};

/**
 * moto stamps instances and scaling activities with the real clock, while the demo's clock is at night.
 * The proxy answers those times on the demo's clock: the instances the estate started with were launched
 * long ago (`longAgo`, what a real estate looks like), and any instance or activity moto made since is
 * `ahead()` ms later than moto says (it happened "now" on the demo's clock).
 */
export const instanceTimesOnDemoClock = (
  proxy: Proxy,
  longAgo: string,
  seeded: Set<string>,
  ahead: () => number,
) => {
  const shift = (time: string) => new Date(new Date(time).getTime() + ahead()).toISOString();
  proxy.rewrite('DescribeInstances', (body) => {
    let instance = '';
    return body.replace(
      /<instanceId>(i-[0-9a-f]+)<\/instanceId>|<(launchTime|attachTime)>([^<]*)<\/\2>/g,
      (whole, id: string | undefined, tag: string | undefined, time: string | undefined) => {
        if (id) {
          instance = id;
          return whole;
        }
        return `<${tag}>${seeded.has(instance) ? longAgo : shift(time ?? '')}</${tag}>`;
      },
    );
  });
  proxy.rewrite('DescribeScalingActivities', (body) =>
    body.replace(
      /<(StartTime|EndTime)>([^<]*)<\/\1>/g,
      (_, tag: string, time: string) => `<${tag}>${shift(time)}</${tag}>`,
    ),
  );
};

/**
 * Everything the night may change and must give back, one line per fact (`service shop/web: desired 3`):
 * desired counts, scaling targets, group sizes, the databases' status, each alarm's actions, and every
 * tag on them (so a saved state, a silence, an override or a rotation left behind shows).
 * `actionsEnabled` is the emulated CloudWatch's (alarm-actions.ts).
 */
export const observeNight = async (
  c: NightClients,
  actionsEnabled: Map<string, boolean>,
): Promise<Map<string, string>> => {
  const facts = new Map<string, string>();
  const tags = (t: Record<string, string>) =>
    Object.entries(t)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(', ') || '(none)';
  const { services, groups } = await observe(
    c,
    [SHOP.cluster, NIGHT.ops.cluster],
    [SHOP.group.name, NIGHT.runners.name],
  );
  for (const [name, s] of Object.entries(services)) {
    facts.set(`service ${name}: desired`, String(s.desired));
    if (s.scaling)
      facts.set(
        `service ${name}: autoscaling`,
        `min ${s.scaling.min} max ${s.scaling.max}${s.scaling.suspended.some(Boolean) ? ' (suspended)' : ''}`,
      );
    facts.set(`service ${name}: tags`, tags(s.tags));
  }
  for (const [name, g] of Object.entries(groups)) {
    facts.set(`group ${name}: size`, `min ${g.min} desired ${g.desired} max ${g.max}`);
    facts.set(`group ${name}: tags`, tags(g.tags));
  }
  for (const id of [SHOP.database.id, NIGHT.ledger.id]) {
    const db = await observeDatabase(c, { kind: 'instance', id });
    facts.set(`database ${id}: status`, db.status);
    facts.set(`database ${id}: tags`, tags(db.tags));
  }
  const alarms = await c.cloudwatch.send(
    new DescribeAlarmsCommand({ AlarmNames: NIGHT_ALARMS.map((a) => a.name) }),
  );
  for (const a of alarms.MetricAlarms ?? []) {
    const name = a.AlarmName ?? '';
    facts.set(
      `alarm ${name}: actions`,
      (actionsEnabled.get(name) ?? a.ActionsEnabled) ? 'enabled' : 'disabled',
    );
    const out = await c.cloudwatch.send(new ListAlarmTagsCommand({ ResourceARN: a.AlarmArn }));
    facts.set(
      `alarm ${name}: tags`,
      tags(Object.fromEntries((out.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']))),
    );
  }
  return facts;
};

/**
 * What did not come back exactly, one line per fact (`service shop/web: desired: was 3, now 0`). The one
 * change a night should leave is ssm-restart's record on what it restarted (`nightshift:last-restart` on
 * ops/gateway): a fact's tags may gain that, and only that.
 */
export const differences = (before: Map<string, string>, after: Map<string, string>): string[] => {
  const restarted = `service ${NIGHT.ops.cluster}/${NIGHT.ops.service}: tags`;
  const withoutRestart = (key: string, value: string | undefined) =>
    key === restarted && value
      ? value
          .split(', ')
          .filter((t) => !/^nightshift:last-restart=at=\S+ what=ecs-service via=alarm$/.test(t))
          .join(', ') || '(none)'
      : value;
  return [...new Set([...before.keys(), ...after.keys()])].flatMap((key) => {
    const was = before.get(key);
    const now = withoutRestart(key, after.get(key));
    return was === now ? [] : [`${key}: was ${was ?? '(absent)'}, now ${now ?? '(absent)'}`];
  });
};
