/**
 * What a run that has targets loads: reading them, restarting them, and the EC2, SSM, ECS and Auto
 * Scaling clients that does it with. The handler imports this module on demand, once a request names
 * targets: a run that restarts nothing (an alarm without `nightshift:restart`, muted, stale, for
 * another stage) loads only the CloudWatch client it reads the alarm's tags with (issue 12's lean bundles).
 */
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { ssmClient } from '#shared/aws/ssm.ts';
import type { TargetClients } from './clients.ts';

export { executeRestart } from './execute.ts';
export { readCommandStatuses, readRestartRecords, readTargets } from './inventory.ts';

/** The targets' clients where the function runs, or a fleet target's (one per cold start / per scope). */
export const targetClientsFor = (scope?: ClientScope): TargetClients => ({
  ec2: ec2Client(scope),
  ssm: ssmClient(scope),
  ecs: ecsClient(scope),
  autoscaling: autoScalingClient(scope),
});
