import {
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  ResumeProcessesCommand,
  SetDesiredCapacityCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { UpdateContainerInstancesStateCommand } from '@aws-sdk/client-ecs';
import { executeWork, resultOf, runSteps, type ExecuteOptions } from '#shared/execute.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { ABANDONED_TAG, ROTATION_TAG, type Clients } from './inventory.ts';
import type { RotationWork, Step } from './plan.ts';

/** Groups are independent; a few at a time. */
export const ROTATION_CONCURRENCY = 4;

const STEP_NAMES: Record<Step['op'], string> = {
  'save-rotation': 'save rotation state (CreateOrUpdateTags)',
  'set-desired': 'set desired capacity (SetDesiredCapacity)',
  drain: 'drain ECS container instance (UpdateContainerInstancesState)',
  undrain: 'set ECS container instance back to ACTIVE (UpdateContainerInstancesState)',
  suspend: 'hold scaling processes (SuspendProcesses)',
  resume: 'resume scaling processes (ResumeProcesses)',
  terminate: 'terminate instance (TerminateInstanceInAutoScalingGroup)',
  'terminate-replacement': 'terminate the replacement (TerminateInstanceInAutoScalingGroup)',
  'save-abandoned': 'record the abandonment (CreateOrUpdateTags)',
  'clear-rotation': 'remove rotation state (DeleteTags)',
};

const tag = (group: string, key: string, value: string) => ({
  ResourceId: group,
  ResourceType: 'auto-scaling-group',
  Key: key,
  Value: value,
  PropagateAtLaunch: false,
});

const runStep = async (clients: Clients, group: string, step: Step) => {
  switch (step.op) {
    case 'save-rotation':
      await clients.autoscaling.send(
        new CreateOrUpdateTagsCommand({ Tags: [tag(group, ROTATION_TAG, step.value)] }),
      );
      return;
    case 'save-abandoned':
      await clients.autoscaling.send(
        new CreateOrUpdateTagsCommand({ Tags: [tag(group, ABANDONED_TAG, step.value)] }),
      );
      return;
    case 'set-desired':
      await clients.autoscaling.send(
        new SetDesiredCapacityCommand({
          AutoScalingGroupName: group,
          DesiredCapacity: step.desired,
          HonorCooldown: false,
        }),
      );
      return;
    case 'drain':
    case 'undrain':
      await clients.ecs.send(
        new UpdateContainerInstancesStateCommand({
          cluster: step.cluster,
          containerInstances: [step.containerInstance],
          status: step.op === 'drain' ? 'DRAINING' : 'ACTIVE',
        }),
      );
      return;
    case 'suspend':
      await clients.autoscaling.send(
        new SuspendProcessesCommand({ AutoScalingGroupName: group, ScalingProcesses: step.processes }),
      );
      return;
    case 'resume':
      await clients.autoscaling.send(
        new ResumeProcessesCommand({ AutoScalingGroupName: group, ScalingProcesses: step.processes }),
      );
      return;
    case 'terminate':
    case 'terminate-replacement':
      // By id, decrementing desired: the group goes back to its size before the rotation, and never
      // picks a victim itself (which could be an instance with tasks, or none at all when its
      // instances are protected from scale in, leaving desired lowered and the extra instance running).
      await clients.autoscaling.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: step.instanceId,
          ShouldDecrementDesiredCapacity: true,
        }),
      );
      return;
    case 'clear-rotation':
      await clients.autoscaling.send(
        new DeleteTagsCommand({
          Tags: step.keys.map((Key) => ({ ResourceId: group, ResourceType: 'auto-scaling-group', Key })),
        }),
      );
      return;
  }
};

const apply = async (clients: Clients, w: RotationWork): Promise<ResourceResult> => {
  const error = await runSteps(w.steps, STEP_NAMES, (step) => runStep(clients, w.group, step));
  if (error) {
    const left = w.closing
      ? '; the rotation is still in flight, and its processes may stay suspended outside the window: ' +
        `the next run ends it, or run \`nightshift rotate --group ${w.group}\``
      : '';
    return resultOf(w, 'failed', { error: `${error}${left}` });
  }
  return w.failure ? resultOf(w, 'failed', { error: w.failure }) : resultOf(w, 'changed');
};

/** Advances each group's rotation by one step, or only reports the steps in a dry run. */
export const executeRotations = async (
  items: RotationWork[],
  clients: Clients,
  options: Omit<ExecuteOptions, 'concurrency'>,
  /** Rows decided before planning (a lease held elsewhere, a read the deadline cut): reported as they are. */
  extra: ResourceResult[] = [],
): Promise<Report> => {
  const results = await executeWork(items, { ...options, concurrency: ROTATION_CONCURRENCY }, (w) =>
    apply(clients, w),
  );
  return buildReport('rotate', options.dryRun, [...results, ...extra]);
};
