/**
 * The clients of a run, and what every run reads first: the tags of the alarm that triggered it. What a
 * run with targets reads and sends (inventory.ts, execute.ts) comes with targets.ts, imported on demand.
 */
import { ListTagsForResourceCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { errorMessage } from '#shared/errors.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';

/** What reading and restarting targets sends to: instances (EC2, SSM, Auto Scaling) and services (ECS). */
export interface TargetClients {
  ec2: EC2Client;
  ssm: SSMClient;
  ecs: ECSClient;
  autoscaling: AutoScalingClient;
}

/**
 * The clients of a run: CloudWatch, to read an alarm's tags, and the targets' clients as they are, or as
 * `targets`, which makes them on first use: the handler's, so that a run that restarts nothing (an
 * alarm without `nightshift:restart`, the most frequent run) never loads their SDK clients (targets.ts,
 * an on-demand chunk of the bundle).
 */
export type Clients = { cloudwatch: CloudWatchClient } & (
  TargetClients | { targets: () => Promise<TargetClients> }
);

/** The targets' clients: those given, or made now (`targets`). */
export const targetClients = async (clients: Clients): Promise<TargetClients> =>
  'targets' in clients
    ? clients.targets()
    : { ec2: clients.ec2, ssm: clients.ssm, ecs: clients.ecs, autoscaling: clients.autoscaling };

/**
 * The alarm's tags (ListTagsForResource returns them all, at most 50, in one answer), undefined when
 * the alarm no longer exists, or why the role may not read them (an alarm of another account).
 */
export const readAlarmTags = async (
  cloudwatch: CloudWatchClient,
  alarmArn: string,
): Promise<{ tags: TagMap } | { denied: string } | undefined> => {
  try {
    const out = await cloudwatch.send(new ListTagsForResourceCommand({ ResourceARN: alarmArn }));
    return { tags: tagMapUpper(out.Tags) };
  } catch (error) {
    if (/ResourceNotFound/.test((error as Error).name ?? '')) return undefined;
    if (/AccessDenied/.test((error as Error).name ?? '')) return { denied: errorMessage(error) };
    throw error;
  }
};
