/**
 * `nightshift status`: what nightshift holds right now, read from the resources themselves with the
 * caller's credentials — services and databases on a schedule, parked services, groups and databases
 * (and what they come back to), rotations in
 * progress, recent restarts and ssm-restart's restart guard, snapshot copies in flight, and the stage's
 * leases and carried-over work.
 *
 * Every list is read to its last page (page sizes below are the APIs' maximums, so an estate of
 * thousands of resources takes as few calls as it can). Unlike the functions, status has no Lambda
 * deadline: it reads everything.
 */
import {
  DescribeClustersCommand,
  DescribeServicesCommand,
  paginateListClusters,
  paginateListServices,
} from '@aws-sdk/client-ecs';
import { paginateDescribeAutoScalingGroups } from '@aws-sdk/client-auto-scaling';
import { paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { paginateScan, type AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  paginateDescribeDBClusters,
  paginateDescribeDBClusterSnapshots,
  paginateDescribeDBInstances,
  paginateDescribeDBSnapshots,
  type DBCluster,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import Table from 'cli-table3';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { rdsClient } from '#shared/aws/rds.ts';
import { dynamoDbClient } from '#shared/aws/dynamodb.ts';
import { formatAge } from '#shared/duration.ts';
import { chunk } from '#shared/concurrency.ts';
import { otherStage, tagMap, tagMapUpper, type TagMap } from '#shared/tags.ts';
import { evaluate, localLabel, type Evaluation, type Schedule, type Schedules } from '#shared/schedules.ts';
import { decodeOverride, overrideActive, OVERRIDE_TAG } from '#shared/override.ts';
import {
  SCHEDULE_TAG as DB_SCHEDULE_TAG,
  STOPPED_TAG as DB_STOPPED_TAG,
  AUTO_START_AFTER_MS,
} from '#functions/rds-scheduler/plan.ts';
import { overrideOf, scheduleOf } from '#functions/ecs-scheduler/reconcile.ts';
import type { ClusterState, ServiceState } from '#functions/ecs-scheduler/inventory.ts';
import {
  decodeGroup,
  decodeService,
  describeSuspension,
  SAVED_STATE_TAG,
} from '#functions/ecs-scheduler/saved.ts';
import { decodeRotation } from '#functions/instance-rotation/plan.ts';
import { ROTATION_TAG } from '#functions/instance-rotation/inventory.ts';
import { decodeLastRestart, LAST_RESTART_TAG } from '#functions/ssm-restart/cooldown.ts';

export interface StatusRow {
  resource: string;
  detail: string;
}

export interface Status {
  /**
   * Every service that follows a schedule (tag nightshift:schedule on it or its cluster): the schedule,
   * the state it wants now and the actual one, any override (who, why, until) and the next transition.
   */
  schedules: StatusRow[];
  /**
   * Every DB instance and Aurora cluster that follows a schedule (its own tag nightshift:schedule): the
   * schedule, the state it wants now and the actual one, any override (who, why, until) and the next
   * transition. A database tagged nightshift:stage for another stage is left out.
   */
  databases: StatusRow[];
  parked: StatusRow[];
  rotations: StatusRow[];
  restarts: StatusRow[];
  /**
   * ssm-restart's record of each restart target (`restart#<target ARN>` in the lease table): a restart
   * in progress, the flap guard, the cooldown and the alarm restarts of the last hour.
   */
  restartGuard: StatusRow[];
  copies: StatusRow[];
  /** Leases held now in the stage's lease table: who is acting on what. */
  leases: StatusRow[];
  /** What the last run of a function and action left undone, which its next run starts with. */
  carriedOver: StatusRow[];
  notes: string[];
  /**
   * Set when the lease table could not be read (missing, not allowed): leases, carried-over work and
   * the restart guard are then not known, not empty.
   */
  leasesUnknown?: true;
}

export interface StatusOptions {
  /** Target regions of snapshot copies. */
  copyRegions: string[];
  /** The stage's lease table (nightshift-<stage>-leases). */
  leaseTable: string;
  /** The stage, to name it when its lease table is not there. */
  stage?: string;
  /** The schedules the stage's functions were built with (infra/schedules.yml). */
  schedules?: Schedules;
}

const RECENT_MS = 24 * 3_600_000;
const IN_FLIGHT = new Set(['pending', 'copying', 'creating']);

const readable = <T>(decode: (text: string) => T, text: string): T | string => {
  try {
    return decode(text);
  } catch (error) {
    return `unreadable: ${(error as Error).message}`;
  }
};

/** One row of the Schedules section: what the schedule (or an override) wants, and what is. */
const scheduleRow = (
  s: ServiceState,
  cluster: ClusterState,
  schedules: Schedules,
  now: Date,
  evaluations: Map<string, Evaluation>,
): StatusRow | undefined => {
  const tag = scheduleOf(s, cluster);
  if (!tag) return undefined;
  const resource = `service ${cluster.name}/${s.name}`;
  const actual = s.desiredCount > 0 ? `running (desiredCount ${s.desiredCount})` : 'stopped (desiredCount 0)';
  const schedule = schedules.get(tag.name);
  if (!schedule) {
    return {
      resource,
      detail: `schedule "${tag.name}" (${tag.from}) is not defined in infra/schedules.yml: reconcile fails it; actual ${actual}`,
    };
  }
  // One evaluation per schedule and status (it searches transitions: milliseconds each).
  let ev = evaluations.get(schedule.name);
  if (!ev) {
    try {
      ev = evaluate(schedule, now);
    } catch (error) {
      return { resource, detail: `${schedule.name}: cannot be evaluated: ${(error as Error).message}` };
    }
    evaluations.set(schedule.name, ev);
  }
  const ov = overrideOf(s, cluster, now);
  const zone = schedule.timezone;
  let desired: string = ev.state;
  let override = '';
  if (ov && 'error' in ov) override = `; ${ov.error}`;
  else if (ov) {
    const who = `by ${ov.override.by}${ov.override.why ? ` (why: ${ov.override.why})` : ''}`;
    const where = ov.type === 'ecs-cluster' ? ` on cluster ${cluster.name}` : '';
    if (ov.active) {
      desired = ov.override.state;
      override = `; override${where} ${who} until ${localLabel(zone, ov.override.until, now)} ${zone}`;
    } else {
      override = `; override${where} ${who} ended at ${localLabel(zone, ov.override.until, now)}: the next reconcile returns it to its schedule`;
    }
  }
  const next = ev.next
    ? `; next ${ev.next.to === 'running' ? 'start' : ev.next.to === 'stopped' ? 'stop' : 'change'} ${localLabel(zone, ev.next.at, now)} ${zone}`
    : '';
  return {
    resource,
    detail: `${schedule.name}${tag.from === 'on the service' ? '' : ` (${tag.from})`}: desired ${desired}, actual ${actual}${override}${next}`,
  };
};

const ecsRows = async (
  now: Date,
  parked: StatusRow[],
  restarts: StatusRow[],
  scheduled: StatusRow[],
  schedules: Schedules | undefined,
) => {
  const ecs = ecsClient();
  const evaluations = new Map<string, Evaluation>();
  // ListClusters and ListServices return at most 100 per page; DescribeServices takes at most 10 services,
  // DescribeClusters 100 clusters.
  for await (const clusters of paginateListClusters({ client: ecs }, { maxResults: 100 })) {
    const described = (clusters.clusterArns ?? []).length
      ? await ecs.send(new DescribeClustersCommand({ clusters: clusters.clusterArns, include: ['TAGS'] }))
      : { clusters: [] };
    const clusterTags = new Map<string, TagMap>(
      (described.clusters ?? []).map((c) => [c.clusterArn ?? '', tagMap(c.tags)]),
    );
    for (const cluster of clusters.clusterArns ?? []) {
      const info: ClusterState = {
        arn: cluster,
        name: cluster.split('/').pop() ?? cluster,
        tags: clusterTags.get(cluster) ?? {},
        capacityProviders: [],
        tasks: 0,
        services: [],
      };
      const arns: string[] = [];
      for await (const page of paginateListServices({ client: ecs }, { cluster, maxResults: 100 })) {
        arns.push(...(page.serviceArns ?? []));
      }
      for (const batch of chunk(arns, 10)) {
        const out = await ecs.send(
          new DescribeServicesCommand({ cluster, services: batch, include: ['TAGS'] }),
        );
        for (const s of out.services ?? []) {
          const tags = tagMap(s.tags);
          const name = `service ${cluster.split('/').pop()}/${s.serviceName}`;
          if (schedules && s.status === 'ACTIVE') {
            const state: ServiceState = {
              arn: s.serviceArn ?? '',
              name: s.serviceName ?? '',
              clusterArn: cluster,
              clusterName: info.name,
              status: s.status,
              schedulingStrategy: s.schedulingStrategy ?? 'REPLICA',
              desiredCount: s.desiredCount ?? 0,
              tasks: (s.runningCount ?? 0) + (s.pendingCount ?? 0),
              tags,
            };
            const r = scheduleRow(state, info, schedules, now, evaluations);
            if (r) scheduled.push(r);
          }
          const stopped = tags[SAVED_STATE_TAG];
          if (stopped !== undefined) {
            const saved = readable(decodeService, stopped);
            parked.push({
              resource: name,
              detail:
                typeof saved === 'string'
                  ? saved
                  : `stopped at ${saved.at}; comes back to desiredCount ${saved.desired}` +
                    (saved.scaling
                      ? `, scaling min ${saved.scaling.min} max ${saved.scaling.max} (${describeSuspension(saved.scaling.suspended)})`
                      : ''),
            });
          }
          const restarted = tags[LAST_RESTART_TAG];
          if (restarted !== undefined) {
            const last = readable(decodeLastRestart, restarted);
            if (typeof last === 'string' || now.getTime() - last.at.getTime() < RECENT_MS) {
              restarts.push({
                resource: name,
                detail:
                  typeof last === 'string' ? last : `${last.what} at ${last.at.toISOString()} (${last.via})`,
              });
            }
          }
        }
      }
    }
  }
};

/** A schedule's evaluation now, once per schedule and status; an error message when it cannot be evaluated. */
const evaluationOf = (
  schedule: Schedule,
  now: Date,
  evaluations: Map<string, Evaluation>,
): Evaluation | string => {
  const known = evaluations.get(schedule.name);
  if (known) return known;
  try {
    const ev = evaluate(schedule, now);
    evaluations.set(schedule.name, ev);
    return ev;
  } catch (error) {
    return `${schedule.name}: cannot be evaluated: ${(error as Error).message}`;
  }
};

interface DbState {
  resource: string;
  /** `--db <id>` or `--db-cluster <id>`: how to name it to the CLI. */
  flag: string;
  tags: TagMap;
  status: string;
  /** What runs: the instance's status, or the cluster's and its writer's. */
  actual: string;
  memberOf?: string;
  /** InstanceCreateTime / ClusterCreateTime: a nightshift:stopped older than this was copied. */
  createdAt?: Date;
}

/** One row of "On a schedule (databases)": what the schedule (or an override) wants, and what is. */
const databaseScheduleRow = (
  db: DbState,
  schedules: Schedules,
  now: Date,
  evaluations: Map<string, Evaluation>,
): StatusRow => {
  const name = db.tags[DB_SCHEDULE_TAG] ?? '';
  const { resource } = db;
  if (db.memberOf)
    return {
      resource,
      detail: `member of cluster ${db.memberOf}: its own ${DB_SCHEDULE_TAG} (${name}) is not read — tag the cluster; actual ${db.actual}`,
    };
  const schedule = schedules.get(name);
  if (!schedule)
    return {
      resource,
      detail: `schedule "${name}" is not defined in infra/schedules.yml: reconcile fails it; actual ${db.actual}`,
    };
  const ev = evaluationOf(schedule, now, evaluations);
  if (typeof ev === 'string') return { resource, detail: ev };
  const zone = schedule.timezone;
  let desired: string = ev.state;
  let override = '';
  const text = db.tags[OVERRIDE_TAG];
  if (text !== undefined) {
    try {
      const o = decodeOverride(text);
      const who = `by ${o.by}${o.why ? ` (why: ${o.why})` : ''}`;
      if (overrideActive(o, now)) {
        desired = o.state;
        override = `; override ${who} until ${localLabel(zone, o.until, now)} ${zone}`;
      } else
        override = `; override ${who} ended at ${localLabel(zone, o.until, now)}: the next reconcile returns it to its schedule`;
    } catch (error) {
      override = `; ${(error as Error).message}: the next reconcile fails it (fix it, or nightshift wake --cancel ${db.flag})`;
    }
  }
  const next = ev.next
    ? `; next ${ev.next.to === 'running' ? 'start' : ev.next.to === 'stopped' ? 'stop' : 'change'} ${localLabel(zone, ev.next.at, now)} ${zone}`
    : '';
  return { resource, detail: `${schedule.name}: desired ${desired}, actual ${db.actual}${override}${next}` };
};

/**
 * RDS DB instances and clusters: those on a schedule, and those nightshift stopped (tag
 * nightshift:stopped, `at=<time> by=nightshift`). DescribeDBInstances and DescribeDBClusters return at
 * most 100 records a call (MaxRecords 20 to 100), the rest by Marker: every page is followed. Their tags
 * come with them (TagList). Aurora members are read for their cluster's writer; a member is never
 * stopped on its own, so only its schedule tag (which is not read) is shown.
 */
const databaseRows = async (
  now: Date,
  parked: StatusRow[],
  scheduled: StatusRow[],
  schedules: Schedules | undefined,
  stage: string | undefined,
) => {
  const rds = rdsClient();
  const instances: DBInstance[] = [];
  for await (const page of paginateDescribeDBInstances({ client: rds, pageSize: 100 }, {}))
    instances.push(...(page.DBInstances ?? []));
  const clusters: DBCluster[] = [];
  for await (const page of paginateDescribeDBClusters({ client: rds, pageSize: 100 }, {}))
    clusters.push(...(page.DBClusters ?? []));
  const statusOf = new Map(
    instances.map((i) => [i.DBInstanceIdentifier ?? '', i.DBInstanceStatus ?? 'unknown']),
  );
  const dbs: DbState[] = [
    ...clusters.map((c): DbState => {
      const writer = (c.DBClusterMembers ?? []).find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
      const status = c.Status ?? 'unknown';
      return {
        resource: `DB cluster ${c.DBClusterIdentifier}`,
        flag: `--db-cluster ${c.DBClusterIdentifier}`,
        tags: tagMapUpper(c.TagList),
        status,
        ...(c.ClusterCreateTime && { createdAt: new Date(c.ClusterCreateTime) }),
        actual: writer ? `${status} (writer ${writer} ${statusOf.get(writer) ?? 'not found'})` : status,
      };
    }),
    ...instances.map((i): DbState => ({
      resource: `DB instance ${i.DBInstanceIdentifier}`,
      flag: `--db ${i.DBInstanceIdentifier}`,
      tags: tagMapUpper(i.TagList),
      status: i.DBInstanceStatus ?? 'unknown',
      ...(i.InstanceCreateTime && { createdAt: new Date(i.InstanceCreateTime) }),
      actual: i.DBInstanceStatus ?? 'unknown',
      ...(i.DBClusterIdentifier && { memberOf: i.DBClusterIdentifier }),
    })),
  ];
  const evaluations = new Map<string, Evaluation>();
  for (const db of dbs) {
    if (otherStage(stage, db.tags) !== undefined) continue;
    if (schedules && db.tags[DB_SCHEDULE_TAG] !== undefined)
      scheduled.push(databaseScheduleRow(db, schedules, now, evaluations));
    const stopped = db.tags[DB_STOPPED_TAG];
    if (stopped === undefined || db.memberOf) continue;
    const at = Date.parse(stopped.match(/(?:^| )at=(\S+)/)?.[1] ?? '');
    // As rds-scheduler reads it (inventory.ts withoutCopiedTags): a tag older than the database is a copy.
    if (!Number.isNaN(at) && db.createdAt && db.createdAt <= now && at < db.createdAt.getTime() - 60_000) {
      parked.push({
        resource: db.resource,
        detail: `carries ${DB_STOPPED_TAG} "${stopped}", older than the database (created ${stamp(db.createdAt.getTime())}): copied from another database's snapshot; nightshift does not count it as stopped by it, nor start it`,
      });
      continue;
    }
    const since = Number.isNaN(at)
      ? `${DB_STOPPED_TAG} "${stopped}": no readable at=`
      : `stopped by nightshift since ${stamp(at)} (${formatAge(now.getTime() - at)} ago)`;
    parked.push({
      resource: db.resource,
      detail:
        db.status === 'stopped' || db.status === 'stopping'
          ? `${since}; now ${db.actual}; comes back with nightshift start ${db.flag} (or its schedule)`
          : !Number.isNaN(at) && now.getTime() - at >= AUTO_START_AFTER_MS
            ? `${since}, but ${db.actual} again (AWS starts a database stopped for 7 days): a reconcile stops it ` +
              `again while its schedule wants it stopped; nightshift start ${db.flag} keeps it running`
            : `${since}, but ${db.actual} again (someone started it, not AWS's 7-day start): stopped again only by ` +
              `an enforced schedule or a stop; under enforced: false it runs until the next transition`,
    });
  }
};

const groupRows = async (parked: StatusRow[], rotations: StatusRow[]) => {
  // DescribeAutoScalingGroups returns 50 groups per page by default, 100 at most.
  const pages = paginateDescribeAutoScalingGroups({ client: autoScalingClient() }, { MaxRecords: 100 });
  for await (const page of pages) {
    for (const g of page.AutoScalingGroups ?? []) {
      const tags = tagMapUpper(g.Tags);
      const name = `group ${g.AutoScalingGroupName}`;
      const size = `min ${g.MinSize} desired ${g.DesiredCapacity} max ${g.MaxSize}`;
      if (tags[SAVED_STATE_TAG] !== undefined) {
        const saved = readable(decodeGroup, tags[SAVED_STATE_TAG]);
        parked.push({
          resource: name,
          detail:
            typeof saved === 'string'
              ? saved
              : `parked at ${saved.at} (now ${size}); comes back to min ${saved.min} desired ${saved.desired} max ${saved.max}`,
        });
      }
      if (tags[ROTATION_TAG] !== undefined) {
        const r = readable(decodeRotation, tags[ROTATION_TAG]);
        const inService = (g.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length;
        rotations.push({
          resource: name,
          detail:
            typeof r === 'string'
              ? r
              : `replacing ${r.instance} (${r.phase} since ${r.at}); ${inService} in service, ${size}; desired returns to ${r.desired}`,
        });
      }
    }
  }
};

const instanceRows = async (now: Date, restarts: StatusRow[]) => {
  // DescribeInstances returns at most 1,000 per page (MaxResults 5 to 1000).
  const pages = paginateDescribeInstances(
    { client: ec2Client() },
    { Filters: [{ Name: 'tag-key', Values: [LAST_RESTART_TAG] }], MaxResults: 1000 },
  );
  for await (const page of pages) {
    for (const i of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const text = tagMapUpper(i.Tags)[LAST_RESTART_TAG];
      if (text === undefined) continue;
      const last = readable(decodeLastRestart, text);
      if (typeof last !== 'string' && now.getTime() - last.at.getTime() >= RECENT_MS) continue;
      restarts.push({
        resource: `instance ${i.InstanceId}`,
        detail: typeof last === 'string' ? last : `${last.what} at ${last.at.toISOString()} (${last.via})`,
      });
    }
  }
};

/**
 * The tags that mark a snapshot as a nightshift copy and name its source: `nightshift:copy-source` on
 * new copies, `nightshift:source-arn` on copies made before it was renamed. Either will do here: status
 * only shows what is in flight, it deletes nothing.
 */
const COPY_SOURCE_TAGS = ['nightshift:copy-source', 'nightshift:source-arn'];

const copySource = (tags: { Key?: string; Value?: string }[] | undefined): string | undefined => {
  const map = tagMapUpper(tags);
  return COPY_SOURCE_TAGS.map((key) => map[key]).find((value) => value !== undefined && value !== '');
};

const copyRows = async (regions: string[], copies: StatusRow[]) => {
  // DescribeDBSnapshots and DescribeDBClusterSnapshots return at most 100 per page (MaxRecords 20 to
  // 100), followed by Marker to the last page.
  const inRegion = async (region: string, rds: RDSClient) => {
    for await (const page of paginateDescribeDBSnapshots({ client: rds, pageSize: 100 }, {})) {
      for (const s of page.DBSnapshots ?? []) {
        const source = copySource(s.TagList);
        if (!source || !IN_FLIGHT.has(s.Status ?? '')) continue;
        copies.push({
          resource: `snapshot ${region}/${s.DBSnapshotIdentifier}`,
          detail: `${s.Status}, copy of ${source}`,
        });
      }
    }
    for await (const page of paginateDescribeDBClusterSnapshots({ client: rds, pageSize: 100 }, {})) {
      for (const s of page.DBClusterSnapshots ?? []) {
        const source = copySource(s.TagList);
        if (!source || !IN_FLIGHT.has(s.Status ?? '')) continue;
        copies.push({
          resource: `cluster snapshot ${region}/${s.DBClusterSnapshotIdentifier}`,
          detail: `${s.Status}, copy of ${source}`,
        });
      }
    }
  };
  for (const region of regions) await inRegion(region, rdsClient(region));
};

const stamp = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const RESTART_PREFIX = 'restart#';
const HOUR_MS = 3_600_000;

const time = (text: string | undefined): number | undefined => {
  const ms = text ? Date.parse(text) : NaN;
  return Number.isNaN(ms) ? undefined : ms;
};

/** `instance i-0abc…`, `service shop/web`, or the ARN as it is. */
const targetName = (arn: string): string => {
  const instance = arn.match(/:instance\/(i-\w+)$/);
  if (instance) return `instance ${instance[1]}`;
  const service = arn.match(/:service\/([^/]+)\/([^/]+)$/);
  if (service) return `service ${service[1]}/${service[2]}`;
  return arn;
};

/**
 * ssm-restart's record of a restart target, as functions/ssm-restart/guard.ts writes it: `acquiredAt`
 * the last restart, by `holder`; `expiresAt` the end of its cooldown (or of the latched flap guard);
 * `data.what`/`data.via` what was restarted and how; `data.runUntil` until when that restart is in
 * progress; `data.restarts` the alarm restarts since the last on-demand one (ISO times, space
 * separated); `data.flapped` since when the flap guard stops alarm restarts. Read tolerantly: a field
 * it does not know is ignored, a field it cannot read is left out. Undefined when there is nothing to
 * say (no restart in progress, no guard, no cooldown, no restart in the last hour).
 */
const restartGuardRow = (item: Record<string, AttributeValue>, now: number): StatusRow | undefined => {
  const scope = item.scope?.S ?? '';
  const data = Object.fromEntries(
    Object.entries(item.data?.M ?? {}).flatMap(([k, v]) => (v.S === undefined ? [] : [[k, v.S]])),
  ) as Record<string, string | undefined>;
  const holder = item.holder?.S || 'an unknown holder';
  const last = Number(item.acquiredAt?.N ?? NaN);
  const expiresAt = Number(item.expiresAt?.N ?? NaN);
  const runUntil = time(data.runUntil);
  const flapped = time(data.flapped);
  const restarts = (data.restarts ?? '')
    .split(/[\s,]+/)
    .flatMap((t) => time(t) ?? [])
    .filter((t) => t > now - HOUR_MS && t <= now)
    .sort((a, b) => a - b);
  const what = `${data.what ?? 'a restart'} via ${data.via ?? 'unknown'}`;
  const parts: string[] = [];
  if (runUntil !== undefined && runUntil > now)
    parts.push(`restart in progress (${what}, by ${holder}) until ${stamp(runUntil)} at the latest`);
  if (flapped !== undefined)
    parts.push(
      `flap guard latched since ${stamp(flapped)}: more alarm restarts in an hour than RESTART_MAX_PER_HOUR, ` +
        'so alarms restart it no more until a person restarts it on demand (nightshift restart)',
    );
  else if (Number.isFinite(expiresAt) && expiresAt > now)
    parts.push(`alarm restarts wait for its cooldown until ${stamp(expiresAt)}`);
  if (restarts.length > 0)
    parts.push(`${restarts.length} alarm restart(s) in the last hour (${restarts.map(stamp).join(', ')})`);
  if (parts.length === 0) return undefined;
  if (Number.isFinite(last)) parts.push(`last restart ${what} at ${stamp(last)} by ${holder}`);
  return { resource: targetName(scope.slice(RESTART_PREFIX.length)), detail: parts.join('; ') };
};

/**
 * The stage's lease table, read whole: a Scan (1 MB per page, followed by LastEvaluatedKey) of a table
 * that holds one item per scope being acted on, per restart target and per carried-over list. Expired
 * leases linger until DynamoDB's TTL removes them and are left out. A stage without a table (not
 * deployed in this region) is a note, not an error.
 */
const leaseRows = async (table: string, now: Date, status: Status, stage: string | undefined) => {
  try {
    for await (const page of paginateScan({ client: dynamoDbClient() }, { TableName: table })) {
      for (const item of page.Items ?? []) {
        const scope = item.scope?.S ?? '';
        if (scope.startsWith('carryover#')) {
          const [, fn = '?', action = '?'] = scope.split('#');
          const count = item.arns?.L?.length ?? 0;
          status.carriedOver.push({
            resource: `${fn} ${action}`,
            detail: `${count} resource(s) left undone by the last run (${stamp(Number(item.savedAt?.N ?? 0))}); the next ${action} starts with them`,
          });
          continue;
        }
        if (scope.startsWith(RESTART_PREFIX)) {
          const row = restartGuardRow(item, now.getTime());
          if (row) status.restartGuard.push(row);
          continue;
        }
        const expiresAt = Number(item.expiresAt?.N ?? 0);
        if (expiresAt <= now.getTime()) continue;
        const acquiredAt = Number(item.acquiredAt?.N ?? 0);
        status.leases.push({
          resource: scope,
          detail: `held by ${item.holder?.S || 'an unknown holder'} for ${formatAge(now.getTime() - acquiredAt)} (since ${stamp(acquiredAt)}, expires ${stamp(expiresAt)})`,
        });
      }
    }
    return undefined;
  } catch (error) {
    status.leasesUnknown = true;
    if ((error as Error).name === 'ResourceNotFoundException') {
      const region = await dynamoDbClient()
        .config.region()
        .catch(() => 'this region');
      return (
        `leases: ${stage ? `stage ${stage} has ` : 'there is '}no lease table ${table} in ${region}, so the leases ` +
        'held now, the work carried over and the restart guard are not known here. Is the stage deployed in ' +
        'this region? (--stage, --region, --service-name)'
      );
    }
    throw error;
  }
};

/** Reads everything in parallel; a part that cannot be read becomes a note, not a crash. */
export const readStatus = async (options: StatusOptions, now = new Date()): Promise<Status> => {
  const { copyRegions, leaseTable } = options;
  const status: Status = {
    schedules: [],
    databases: [],
    parked: [],
    rotations: [],
    restarts: [],
    restartGuard: [],
    copies: [],
    leases: [],
    carriedOver: [],
    notes: [],
  };
  const parts: [string, Promise<string | void>][] = [
    ['ECS services', ecsRows(now, status.parked, status.restarts, status.schedules, options.schedules)],
    [
      'RDS DB instances and clusters',
      databaseRows(now, status.parked, status.databases, options.schedules, options.stage),
    ],
    ['Auto Scaling groups', groupRows(status.parked, status.rotations)],
    ['EC2 instances', instanceRows(now, status.restarts)],
    ['RDS snapshot copies', copyRows(copyRegions, status.copies)],
    [`leases in ${leaseTable}`, leaseRows(leaseTable, now, status, options.stage)],
  ];
  const settled = await Promise.allSettled(parts.map(([, p]) => p));
  settled.forEach((s, i) => {
    if (s.status === 'rejected')
      status.notes.push(`could not read ${parts[i]?.[0]}: ${(s.reason as Error).message}`);
    else if (typeof s.value === 'string') status.notes.push(s.value);
  });
  if (copyRegions.length === 0)
    status.notes.push('copies in flight: name the target regions with --copy-region');
  const { schedules, databases, parked, rotations, restarts, restartGuard, copies, leases, carriedOver } =
    status;
  for (const list of [
    schedules,
    databases,
    parked,
    rotations,
    restarts,
    restartGuard,
    copies,
    leases,
    carriedOver,
  ]) {
    list.sort((a, b) => a.resource.localeCompare(b.resource));
  }
  return status;
};

const section = (title: string, rows: StatusRow[], empty: string) => {
  if (rows.length === 0) return `${title}: ${empty}`;
  const table = new Table({
    head: ['RESOURCE', 'DETAIL'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [44, 80],
  });
  for (const r of rows) table.push([r.resource, r.detail]);
  return `${title} (${rows.length}):\n${table.toString()}`;
};

const UNKNOWN = 'not known (the lease table could not be read: see the note below)';

export const renderStatus = (s: Status): string =>
  [
    section('On a schedule (ECS services)', s.schedules, 'none (no nightshift:schedule tags)'),
    section('On a schedule (databases)', s.databases, 'none (no nightshift:schedule tags)'),
    section('Parked by nightshift', s.parked, 'nothing'),
    section('Rotations in progress', s.rotations, 'none'),
    section('Restarts in the last 24 h', s.restarts, 'none'),
    section(
      'Restart guard (ssm-restart)',
      s.restartGuard,
      s.leasesUnknown ? UNKNOWN : 'nothing in progress, no cooldown, no flap guard',
    ),
    section('Snapshot copies in flight', s.copies, 'none'),
    section('Leases held now', s.leases, s.leasesUnknown ? UNKNOWN : 'none'),
    section('Work carried over to the next run', s.carriedOver, s.leasesUnknown ? UNKNOWN : 'none'),
    ...s.notes.map((n) => `note: ${n}`),
  ].join('\n\n');
