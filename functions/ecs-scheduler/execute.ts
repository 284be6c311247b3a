import {
  DescribeServicesCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import { RegisterScalableTargetCommand } from '@aws-sdk/client-application-auto-scaling';
import {
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { executeWork, resultOf, runSteps, type ExecuteOptions, type PlannedWork } from '#shared/execute.ts';
import { PARKED_TAG } from '#shared/group-tags.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { tagMap, tagMapUpper } from '#shared/tags.ts';
import type { Clients } from './inventory.ts';
import { digestKeyOf, type PlannedAction, type Plan, type Step } from './plan.ts';
import { ALL_SUSPENDED, SAVED_STATE_TAG, type Suspension } from './saved.ts';

/** How many resources change at once: enough for speed, few enough to stay under ECS's update rate. */
export const MUTATION_CONCURRENCY = 5;

const STEP_NAMES: Record<Step['op'], string> = {
  'save-service-state': 'save state (TagResource)',
  'park-scaling': 'park scaling (RegisterScalableTarget)',
  'restore-scaling': 'restore scaling (RegisterScalableTarget)',
  'set-desired-count': 'set desiredCount (UpdateService)',
  'clear-service-state': 'remove saved state (UntagResource)',
  'save-group-state': 'save state (CreateOrUpdateTags)',
  'set-group-size': 'resize group (UpdateAutoScalingGroup)',
  'clear-group-state': 'remove saved state (DeleteTags)',
};

const suspendedState = (s: Suspension) => ({
  DynamicScalingInSuspended: s.in,
  DynamicScalingOutSuspended: s.out,
  ScheduledScalingSuspended: s.scheduled,
});

/** The saved state changed between this run's read and its removal: someone else's, so it stays. */
export class SavedStateChangedError extends Error {
  override name = 'SavedStateChangedError';
  constructor(expected: string, found: string) {
    super(
      `the saved state changed since this start read it (read "${expected}", now "${found}"): a stop saved it ` +
        'while this start ran, so it stays for the next start',
    );
  }
}

/**
 * Checks, right before removing a saved-state tag, that it still holds what the plan was made from.
 * A stop that began after this start read the resource saves its state again before it parks
 * anything; removing that would leave the resource parked with nothing to come back to. AWS tags
 * have no conditional delete: this re-read narrows the window to one round trip, and the lease closes it.
 * Returns false when the tag is already gone (nothing to remove).
 */
const stillSaved = (expected: string, found: string | undefined): boolean => {
  if (found === undefined) return false;
  if (found !== expected) throw new SavedStateChangedError(expected, found);
  return true;
};

const serviceTag = async (clients: Clients, action: PlannedAction): Promise<string | undefined> => {
  const out = await clients.ecs.send(
    new DescribeServicesCommand({ cluster: action.cluster, services: [action.arn], include: ['TAGS'] }),
  );
  return tagMap(out.services?.[0]?.tags)[SAVED_STATE_TAG];
};

const groupTag = async (clients: Clients, action: PlannedAction): Promise<string | undefined> => {
  const out = await clients.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [action.name] }),
  );
  return tagMapUpper(out.AutoScalingGroups?.[0]?.Tags)[PARKED_TAG];
};

const runStep = async (clients: Clients, action: PlannedAction, step: Step): Promise<void> => {
  switch (step.op) {
    case 'save-service-state':
      await clients.ecs.send(
        new TagResourceCommand({
          resourceArn: action.arn,
          tags: [{ key: SAVED_STATE_TAG, value: step.value }],
        }),
      );
      return;
    case 'clear-service-state':
      if (!stillSaved(step.expected, await serviceTag(clients, action))) return;
      await clients.ecs.send(
        new UntagResourceCommand({ resourceArn: action.arn, tagKeys: [SAVED_STATE_TAG] }),
      );
      return;
    case 'set-desired-count':
      await clients.ecs.send(
        new UpdateServiceCommand({
          cluster: action.cluster,
          service: action.name,
          desiredCount: step.desiredCount,
        }),
      );
      return;
    case 'park-scaling':
    case 'restore-scaling': {
      const limits = step.op === 'park-scaling' ? { min: 0, max: 0, suspended: ALL_SUSPENDED } : step.limits;
      await clients.scaling.send(
        new RegisterScalableTargetCommand({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          ResourceId: step.resourceId,
          MinCapacity: limits.min,
          MaxCapacity: limits.max,
          SuspendedState: suspendedState(limits.suspended),
        }),
      );
      return;
    }
    case 'save-group-state':
      await clients.autoscaling.send(
        new CreateOrUpdateTagsCommand({
          Tags: [
            {
              ResourceId: action.name,
              ResourceType: 'auto-scaling-group',
              Key: PARKED_TAG,
              Value: step.value,
              PropagateAtLaunch: false,
            },
          ],
        }),
      );
      return;
    case 'clear-group-state':
      if (!stillSaved(step.expected, await groupTag(clients, action))) return;
      await clients.autoscaling.send(
        new DeleteTagsCommand({
          Tags: [{ ResourceId: action.name, ResourceType: 'auto-scaling-group', Key: PARKED_TAG }],
        }),
      );
      return;
    case 'set-group-size':
      await clients.autoscaling.send(
        new UpdateAutoScalingGroupCommand({
          AutoScalingGroupName: action.name,
          MinSize: step.size.min,
          MaxSize: step.size.max,
          DesiredCapacity: step.size.desired,
        }),
      );
      return;
  }
};

/** A planned action as the shared executor and the plan digest see it. */
export const plannedWork = (action: PlannedAction): PlannedAction & PlannedWork => ({
  ...action,
  hasWork: action.steps.length > 0,
  digestKey: digestKeyOf(action),
});
const asWork = plannedWork;

const result = (
  action: PlannedAction,
  outcome: ResourceResult['outcome'],
  extra: Partial<ResourceResult> = {},
) => resultOf(asWork(action), outcome, extra);

/** Applies one resource's steps in order; a failure stops that resource only and says what was done. */
const apply = async (clients: Clients, action: PlannedAction): Promise<ResourceResult> => {
  const error = await runSteps(action.steps, STEP_NAMES, (step) => runStep(clients, action, step));
  return error ? result(action, 'failed', { error }) : result(action, 'changed');
};

const blockedDetail = (action: Plan['action'], blocker: ResourceResult) =>
  action === 'stop'
    ? `capacity left running: ${blocker.arn} did not stop (${blocker.outcome}); nothing changed`
    : `not started: its capacity group ${blocker.arn} is not back (${blocker.outcome}), so its tasks would ` +
      'have nowhere to run; nothing changed — run start again';

/**
 * Carries out a plan phase by phase with bounded concurrency, or only reports it in a dry run.
 * A resource that `requires` others runs only when they all changed cleanly. Work the previous run
 * left undone (`options.first`) starts first within its phase.
 */
export const executePlan = async (
  plan: Plan,
  clients: Clients,
  options: Omit<ExecuteOptions, 'concurrency'>,
): Promise<Report> => {
  const results: ResourceResult[] = [];
  const byArn = new Map<string, ResourceResult>();
  for (const phase of plan.phases) {
    const outcomes = await executeWork(
      phase.map(asWork),
      { ...options, concurrency: MUTATION_CONCURRENCY },
      async (action) => {
        const blocker = (action.requires ?? [])
          .map((arn) => byArn.get(arn))
          .find((r) => r && r.outcome !== 'changed');
        if (blocker) {
          return result(action, 'skipped', { detail: blockedDetail(plan.action, blocker) });
        }
        return apply(clients, action);
      },
    );
    for (const r of outcomes) {
      results.push(r);
      byArn.set(r.arn, r);
    }
  }
  return buildReport(plan.action, options.dryRun, results);
};
