/**
 * Silence while parked (shared/silence.ts): after a stop, the CloudWatch alarms about the services and
 * groups it parked have their actions disabled (tagged `nightshift:silenced` first); after a start,
 * exactly those are enabled again. One row per alarm in the run's report. Alarms on ClusterName alone
 * are about a whole cluster: silenced when a read after the stop finds every service of the cluster
 * parked, enabled again when a start brings back the first service of it.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { OutOfTimeError } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import type { ResourceResult } from '#shared/report.ts';
import {
  ALARM_TYPE,
  findAlarmsAbout,
  silence,
  sweepSilenced,
  unsilence,
  type ParkedResource,
} from '#shared/silence.ts';
import { PARKED_TAG } from '#shared/group-tags.ts';
import { readClusters, withServices, type Estate, type Reader } from './inventory.ts';

/** The resource an alarm may be about, from a service's or group's row. */
const parkedOf = (r: ResourceResult): ParkedResource | undefined => {
  if (r.type === 'ecs-service') {
    const m = r.arn.match(/:service\/([^/]+)\/([^/]+)$/);
    return m ? { kind: 'ecs-service', arn: r.arn, cluster: m[1]!, service: m[2]! } : undefined;
  }
  if (r.type === 'autoscaling-group') {
    const name = r.arn.split(':autoScalingGroupName/')[1];
    return name ? { kind: 'auto-scaling-group', arn: r.arn, name } : undefined;
  }
  return undefined;
};

/** The cluster of a service row, from the service's (long) ARN. */
const clusterOf = (serviceArn: string): { arn: string; name: string } | undefined => {
  const m = serviceArn.match(/^(arn:[^:]+:ecs:[^:]+:[^:]+:)service\/([^/]+)\/[^/]+$/);
  return m ? { arn: `${m[1]}cluster/${m[2]}`, name: m[2]! } : undefined;
};

const clusterResource = (c: { arn: string; name: string }): ParkedResource => ({
  kind: 'ecs-cluster',
  arn: c.arn,
  cluster: c.name,
});

/**
 * The clusters a stop left wholly parked, read after it (not assumed from its rows: a cluster has
 * services this run did not select): those of its parked service rows in which every ACTIVE service now
 * has desiredCount 0 — in a dry run, or one this run plans to stop — and no task runs outside services
 * (RunTask and scheduled tasks: a ClusterName alarm is about them too). A DAEMON service counts once ECS
 * reports its desiredCount 0 (its instances gone), which a later stop of the cluster sees.
 */
export const parkedClusters = async (
  reader: Reader,
  rows: readonly ResourceResult[],
  dryRun: boolean,
): Promise<ParkedResource[]> => {
  const parked = rows.filter(
    (r) => r.type === 'ecs-service' && ['changed', 'unchanged', 'planned'].includes(r.outcome),
  );
  const candidates = new Map(
    parked.flatMap((r) => {
      const c = clusterOf(r.arn);
      return c ? [[c.arn, c] as const] : [];
    }),
  );
  if (candidates.size === 0) return [];
  const planned = new Set(parked.filter((r) => dryRun && r.outcome === 'planned').map((r) => r.arn));
  const read = await readClusters(reader, [...candidates.keys()]);
  const clusters = await withServices(reader, read.found);
  return clusters.flatMap((c) => {
    const active = c.services.filter((s) => s.status === 'ACTIVE');
    const resting = active.every((s) => s.desiredCount === 0 || planned.has(s.arn));
    const outside = c.tasks - c.services.reduce((sum, s) => sum + s.tasks, 0);
    const mine = candidates.get(c.arn);
    return resting && outside <= 0 && mine ? [clusterResource(mine)] : [];
  });
};

/** The clusters of the services a start brought back (changed, or planned in a dry run). */
const wokenClusters = (rows: readonly ResourceResult[]): ParkedResource[] => [
  ...new Map(
    rows
      .filter((r) => r.type === 'ecs-service' && ['changed', 'planned'].includes(r.outcome))
      .flatMap((r) => {
        const c = clusterOf(r.arn);
        return c ? [[c.arn, clusterResource(c)] as const] : [];
      }),
  ).values(),
];

/**
 * After a stop (`silence`: the rows now parked — changed, or unchanged because already parked, or
 * planned in a dry run) or a start (`unsilence`: the rows brought back). A failure to read the alarms is
 * one row, never the run's failure: the services are parked either way.
 */
export const alarmRows = async (
  mode: 'silence' | 'unsilence',
  rows: readonly ResourceResult[],
  options: {
    dryRun: boolean;
    hasTime: () => boolean;
    now: Date;
    cloudwatch?: CloudWatchClient;
    /** To read the clusters of a stop's services again (parkedClusters); without it, no ClusterName alarms. */
    reader?: Reader;
  },
): Promise<ResourceResult[]> => {
  const settled = mode === 'silence' ? ['changed', 'unchanged', 'planned'] : ['changed', 'planned'];
  const own = rows.filter((r) => settled.includes(r.outcome)).flatMap((r) => parkedOf(r) ?? []);
  // Without a CloudWatch client (a caller that wires none: tests of other behaviour) alarms are not handled.
  if (own.length === 0 || !options.cloudwatch) return [];
  const clients = { cloudwatch: options.cloudwatch };
  const problems: ResourceResult[] = [];
  let clusters: ParkedResource[] = [];
  if (mode === 'unsilence') clusters = wokenClusters(rows);
  else if (options.reader) {
    try {
      clusters = await parkedClusters(options.reader, rows, options.dryRun);
    } catch (error) {
      // The services' and groups' own alarms are silenced all the same.
      problems.push({
        arn: 'cloudwatch-alarms',
        type: ALARM_TYPE,
        outcome: error instanceof OutOfTimeError ? 'undone' : 'failed',
        detail: `the alarms on ClusterName alone were not silenced: the clusters could not be read again (${errorMessage(error)}); the next stop tries again`,
      });
    }
  }
  const resources = [...own, ...clusters];
  try {
    const alarms = await findAlarmsAbout(clients, resources, options.hasTime);
    return [
      ...(mode === 'silence'
        ? await silence(clients, alarms, options)
        : await unsilence(clients, alarms, { dryRun: options.dryRun, hasTime: options.hasTime })),
      ...problems,
    ];
  } catch (error) {
    return [
      {
        arn: 'cloudwatch-alarms',
        type: ALARM_TYPE,
        outcome: error instanceof OutOfTimeError ? 'undone' : 'failed',
        detail:
          `the alarms about the ${mode === 'silence' ? 'parked' : 'woken'} resources were not ${mode === 'silence' ? 'silenced' : 'enabled again'}: ` +
          `${errorMessage(error)}; the next ${mode === 'silence' ? 'stop' : 'start'} tries again`,
      },
    ];
  }
};

/**
 * What a reconcile sees running now (its estate read), for the sweep: ACTIVE services with desiredCount
 * above 0 and no saved state, the clusters they run in, and capacity groups with a desired capacity and
 * no saved state — less the resources this run acted on (`acted`: its own silence or unsilence did that).
 */
export const awakeResources = (estate: Estate, acted: ReadonlySet<string>): ParkedResource[] => {
  const out: ParkedResource[] = [];
  for (const c of estate.clusters) {
    let running = false;
    for (const s of c.services) {
      if (s.status !== 'ACTIVE' || s.desiredCount === 0 || s.tags[PARKED_TAG] !== undefined) continue;
      running = true;
      if (!acted.has(s.arn))
        out.push({ kind: 'ecs-service', arn: s.arn, cluster: c.name, service: s.arn.split('/').pop() ?? '' });
    }
    if (running && !acted.has(c.arn)) out.push({ kind: 'ecs-cluster', arn: c.arn, cluster: c.name });
  }
  for (const g of estate.groups)
    if (g.desired > 0 && g.tags[PARKED_TAG] === undefined && !acted.has(g.arn))
      out.push({ kind: 'auto-scaling-group', arn: g.arn, name: g.name });
  return out;
};

/**
 * The sweep (shared/silence.ts sweepSilenced), in a reconcile: alarms still silenced for services,
 * clusters or groups that run now are enabled again. A failure is one row; the next reconcile sweeps again.
 */
export const sweepRows = async (
  awake: readonly ParkedResource[],
  options: { dryRun: boolean; hasTime: () => boolean; now: Date; cloudwatch?: CloudWatchClient },
): Promise<ResourceResult[]> => {
  if (awake.length === 0 || !options.cloudwatch) return [];
  try {
    return await sweepSilenced({ cloudwatch: options.cloudwatch }, awake, options);
  } catch (error) {
    return [
      {
        arn: 'cloudwatch-alarms',
        type: ALARM_TYPE,
        outcome: error instanceof OutOfTimeError ? 'undone' : 'failed',
        detail: `the alarms about running services and groups were not checked for a silence left behind: ${errorMessage(error)}; the next reconcile tries again`,
      },
    ];
  }
};
