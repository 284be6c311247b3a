/**
 * Silence while parked (shared/silence.ts): after a stop, the CloudWatch alarms about the services and
 * groups it parked have their actions disabled (tagged `nightshift:silenced` first); after a start,
 * exactly those are enabled again. One row per alarm in the run's report.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { OutOfTimeError } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import type { ResourceResult } from '#shared/report.ts';
import { ALARM_TYPE, findAlarmsAbout, silence, unsilence, type ParkedResource } from '#shared/silence.ts';

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

/**
 * After a stop (`silence`: the rows now parked — changed, or unchanged because already parked, or
 * planned in a dry run) or a start (`unsilence`: the rows brought back). A failure to read the alarms is
 * one row, never the run's failure: the services are parked either way.
 */
export const alarmRows = async (
  mode: 'silence' | 'unsilence',
  rows: readonly ResourceResult[],
  options: { dryRun: boolean; hasTime: () => boolean; now: Date; cloudwatch?: CloudWatchClient },
): Promise<ResourceResult[]> => {
  const settled = mode === 'silence' ? ['changed', 'unchanged', 'planned'] : ['changed', 'planned'];
  const resources = rows.filter((r) => settled.includes(r.outcome)).flatMap((r) => parkedOf(r) ?? []);
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
          `the alarms about the ${mode === 'silence' ? 'parked' : 'woken'} resources were not ${mode === 'silence' ? 'silenced' : 'enabled again'}: ` +
          `${errorMessage(error)}; the next ${mode === 'silence' ? 'stop' : 'start'} tries again`,
      },
    ];
  }
};
