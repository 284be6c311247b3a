import {
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  ResumeProcessesCommand,
  SetDesiredCapacityCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { errorMessage } from '#shared/errors.ts';
import { executeWork, resultOf, runSteps, type ExecuteOptions } from '#shared/execute.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { ABANDONED_TAG, ecsOf, ROTATION_TAG, type Clients } from './inventory.ts';
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
      await (
        await import('./containers.ts')
      ).setContainerInstanceState(
        await ecsOf(clients),
        step.cluster,
        step.containerInstance,
        step.op === 'drain' ? 'DRAINING' : 'ACTIVE',
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

/**
 * When a rotation must end (its window closes) and a step before the resume fails, the processes it
 * suspended are resumed anyway: nothing stays suspended outside the window. Its state stays on the
 * group, so the next run finishes undoing the rest.
 */
const resumeAnyway = async (clients: Clients, w: RotationWork, failedAt: number): Promise<string> => {
  const index = w.steps.findIndex((s) => s.op === 'resume');
  const resume = w.steps[index];
  const rerun = `run \`nightshift rotate --group ${w.group}\``;
  const stuck = (processes: string[]) =>
    `; ${processes.join(', ')} stay suspended outside the window until a run ends the rotation: ${rerun}, or resume them by hand`;
  if (resume?.op !== 'resume') return `; the rotation is still in flight: the next run ends it, or ${rerun}`;
  if (index < failedAt)
    return `; ${resume.processes.join(', ')} were resumed; the rotation is still in flight: the next run ends it, or ${rerun}`;
  if (index === failedAt) return stuck(resume.processes);
  try {
    await runStep(clients, w.group, resume);
    return (
      `; ${resume.processes.join(', ')} resumed anyway, so nothing stays suspended outside the window; ` +
      `the rotation's state is kept for the next run to finish undoing it (or ${rerun})`
    );
  } catch (error) {
    return `; resuming failed too (${errorMessage(error)})${stuck(resume.processes)}`;
  }
};

const apply = async (clients: Clients, w: RotationWork): Promise<ResourceResult> => {
  let next = 0;
  let failedAt = -1;
  const error = await runSteps(w.steps, STEP_NAMES, async (step) => {
    const index = next++;
    try {
      await runStep(clients, w.group, step);
    } catch (e) {
      failedAt = index;
      throw e;
    }
  });
  if (error) {
    const left = w.closing ? await resumeAnyway(clients, w, failedAt) : '';
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
