/**
 * Silence while parked (shared/silence.ts) for databases: after a stop, the CloudWatch alarms about the DB
 * instances and clusters nightshift parked have their actions disabled (tagged `nightshift:silenced`
 * first); after a start, exactly those are enabled again. One row per alarm in the run's report.
 *
 * The same pattern as functions/ecs-scheduler/alarms.ts (function folders never import each other); only
 * `parkedOf` differs.
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
import { TYPE } from './plan.ts';

/** The resource an alarm may be about, from a database's row (alarms name DBInstanceIdentifier / DBClusterIdentifier). */
export const parkedOf = (r: ResourceResult): ParkedResource | undefined => {
  if (r.type === TYPE.instance) {
    const id = r.arn.split(':db:')[1];
    return id ? { kind: 'db-instance', arn: r.arn, id } : undefined;
  }
  if (r.type === TYPE.cluster) {
    const id = r.arn.split(':cluster:')[1];
    return id ? { kind: 'db-cluster', arn: r.arn, id } : undefined;
  }
  return undefined;
};

/**
 * `silence`: the databases now parked by nightshift (stopped by this run, planned in a dry run, or
 * already stopped with nightshift's tag); `unsilence`: those this run brought back. The caller selects
 * the rows. A failure to read the alarms is one row, never the run's failure: the databases are parked
 * (or started) either way, and the next run tries again.
 */
export const alarmRows = async (
  mode: 'silence' | 'unsilence',
  rows: readonly ResourceResult[],
  options: { dryRun: boolean; hasTime: () => boolean; now: Date; cloudwatch?: CloudWatchClient },
): Promise<ResourceResult[]> => {
  const resources = rows.flatMap((r) => parkedOf(r) ?? []);
  // Without a CloudWatch client (a caller that wires none: tests of other behaviour) alarms are not handled.
  if (resources.length === 0 || !options.cloudwatch) return [];
  const clients = { cloudwatch: options.cloudwatch };
  try {
    const alarms = await findAlarmsAbout(clients, resources, options.hasTime);
    return mode === 'silence'
      ? await silence(clients, alarms, options)
      : await unsilence(clients, alarms, { dryRun: options.dryRun, hasTime: options.hasTime });
  } catch (error) {
    return [
      {
        arn: 'cloudwatch-alarms',
        type: ALARM_TYPE,
        outcome: error instanceof OutOfTimeError ? 'undone' : 'failed',
        detail:
          `the alarms about the ${mode === 'silence' ? 'parked' : 'woken'} databases were not ${mode === 'silence' ? 'silenced' : 'enabled again'}: ` +
          `${errorMessage(error)}; the next ${mode === 'silence' ? 'stop' : 'start'} tries again`,
      },
    ];
  }
};

/**
 * The sweep (shared/silence.ts sweepSilenced), in a scheduled reconcile: alarms still silenced for
 * databases that run now are enabled again. `awake`: the databases' rows as parkedOf reads them. A failure
 * is one row; the next reconcile sweeps again.
 */
export const sweepRows = async (
  awake: readonly ResourceResult[],
  options: { dryRun: boolean; hasTime: () => boolean; now: Date; cloudwatch?: CloudWatchClient },
): Promise<ResourceResult[]> => {
  const resources = awake.flatMap((r) => parkedOf(r) ?? []);
  if (resources.length === 0 || !options.cloudwatch) return [];
  try {
    return await sweepSilenced({ cloudwatch: options.cloudwatch }, resources, options);
  } catch (error) {
    return [
      {
        arn: 'cloudwatch-alarms',
        type: ALARM_TYPE,
        outcome: error instanceof OutOfTimeError ? 'undone' : 'failed',
        detail: `the alarms about running databases were not checked for a silence left behind: ${errorMessage(error)}; the next reconcile tries again`,
      },
    ];
  }
};
