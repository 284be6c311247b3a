import {
  DescribeServicesCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import {
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeTagsCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  executeWork,
  resultOf,
  runStepsWithin,
  type ExecuteOptions,
  type PlannedWork,
} from '#shared/execute.ts';
import { PARKED_TAG } from '#shared/group-tags.ts';
import { OVERRIDE_TAG } from '#shared/override.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { tagMap, tagMapUpper } from '#shared/tags.ts';
import { scalingResourceId, type Clients } from './inventory.ts';
import { digestKeyOf, type PlannedAction, type Plan, type Step } from './plan.ts';
import {
  decodeGroup,
  decodeService,
  PARKED_LIMITS,
  PARKED_SIZE,
  SAVED_STATE_TAG,
  sameScaling,
  sameSize,
  type GroupSize,
  type SavedService,
  type Suspension,
} from './saved.ts';

/** How many resources change at once: enough for speed, few enough to stay under ECS's update rate. */
export const MUTATION_CONCURRENCY = 5;

const STEP_NAMES: Record<Step['op'], string> = {
  'save-service-state': 'save state (TagResource)',
  'park-scaling': 'park scaling (RegisterScalableTarget)',
  'restore-scaling': 'restore scaling (RegisterScalableTarget)',
  'set-desired-count': 'set desiredCount (UpdateService)',
  'clear-service-state': 'remove saved state (UntagResource)',
  'verify-service-state': 'check saved state is still there (DescribeServices)',
  'save-group-state': 'save state (CreateOrUpdateTags)',
  'set-group-size': 'resize group (UpdateAutoScalingGroup)',
  'clear-group-state': 'remove saved state (DeleteTags)',
  'verify-group-state': 'check saved state is still there (DescribeAutoScalingGroups)',
  'set-override': 'record the override (TagResource, or CreateOrUpdateTags on a group)',
  'clear-override': 'remove the expired override (UntagResource)',
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

/** A service as it is now: its saved-state tag and desiredCount; undefined when it is gone. */
const liveService = async (clients: Clients, action: PlannedAction) => {
  const out = await clients.ecs.send(
    new DescribeServicesCommand({ cluster: action.cluster, services: [action.arn], include: ['TAGS'] }),
  );
  const s = out.services?.[0];
  return s && { tag: tagMap(s.tags)[SAVED_STATE_TAG], desiredCount: s.desiredCount ?? 0 };
};

/** A group as it is now: its saved-state tag and size; undefined when it is gone. */
const liveGroup = async (clients: Clients, action: PlannedAction) => {
  const out = await clients.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [action.name] }),
  );
  const g = out.AutoScalingGroups?.[0];
  return (
    g && {
      tag: tagMapUpper(g.Tags)[PARKED_TAG],
      size: { min: g.MinSize ?? 0, desired: g.DesiredCapacity ?? 0, max: g.MaxSize ?? 0 },
    }
  );
};

/**
 * True when nothing says a start brought the service back: desiredCount 0 and, when its saved state
 * has live scaling limits, the scaling target still parked (or gone). A start restores the target
 * before desiredCount, so a service a start brought back shows one or the other.
 */
const stillParked = async (
  clients: Clients,
  action: PlannedAction,
  desiredCount: number,
  saved: SavedService,
): Promise<boolean> => {
  if (desiredCount !== 0) return false;
  if (!saved.scaling || sameScaling(saved.scaling, PARKED_LIMITS)) return true;
  const out = await clients.scaling.send(
    new DescribeScalableTargetsCommand({
      ServiceNamespace: 'ecs',
      ScalableDimension: 'ecs:service:DesiredCount',
      ResourceIds: [scalingResourceId(action.cluster ?? '', action.name)],
    }),
  );
  const t = out.ScalableTargets?.[0];
  return (
    !t ||
    sameScaling(PARKED_LIMITS, {
      min: t.MinCapacity ?? 0,
      max: t.MaxCapacity ?? 0,
      suspended: {
        in: t.SuspendedState?.DynamicScalingInSuspended ?? false,
        out: t.SuspendedState?.DynamicScalingOutSuspended ?? false,
        scheduled: t.SuspendedState?.ScheduledScalingSuspended ?? false,
      },
    })
  );
};

const saveServiceTag = (clients: Clients, action: PlannedAction, value: string) =>
  clients.ecs.send(
    new TagResourceCommand({ resourceArn: action.arn, tags: [{ key: SAVED_STATE_TAG, value }] }),
  );

const saveGroupTag = (clients: Clients, action: PlannedAction, value: string) =>
  clients.autoscaling.send(
    new CreateOrUpdateTagsCommand({
      Tags: [
        {
          ResourceId: action.name,
          ResourceType: 'auto-scaling-group',
          Key: PARKED_TAG,
          Value: value,
          PropagateAtLaunch: false,
        },
      ],
    }),
  );

/**
 * Whether a stop writes its own saved state back over what its re-read found on a resource still
 * parked: yes when the tag is gone or unreadable; not when it holds the same values (another stop's
 * copy, with its own time); and never to replace other values with a state that restores nothing (a
 * stop that found the resource parked without a tag saves desired 0: the state it found is better).
 */
const writesBack = <T>(
  value: string,
  found: string | undefined,
  decode: (text: string) => T,
  same: (a: T, b: T) => boolean,
  worse: (ours: T, theirs: T) => boolean,
): boolean => {
  if (found === undefined) return true;
  let theirs: T;
  try {
    theirs = decode(found);
  } catch {
    return true;
  }
  const ours = decode(value);
  return !same(ours, theirs) && !worse(ours, theirs);
};

const sameService = (a: SavedService, b: SavedService) =>
  a.desired === b.desired &&
  (a.scaling === undefined || b.scaling === undefined
    ? a.scaling === b.scaling
    : sameScaling(a.scaling, b.scaling));
const serviceRestoresNothing = (s: SavedService) =>
  s.desired === 0 && (!s.scaling || sameScaling(s.scaling, PARKED_LIMITS));
/**
 * Our state is worse than theirs when it restores nothing, or when it saved parked scaling limits
 * (min 0 max 0, suspended: read from a target another stop had parked) where theirs has live ones.
 */
const serviceWorse = (ours: SavedService, theirs: SavedService) =>
  serviceRestoresNothing(ours) ||
  (ours.scaling !== undefined &&
    sameScaling(ours.scaling, PARKED_LIMITS) &&
    theirs.scaling !== undefined &&
    !sameScaling(theirs.scaling, PARKED_LIMITS));

/** Why a tag a stop wrote is not what it wrote any more, for the row. */
const lostTag = (found: string | undefined) =>
  found === undefined
    ? 'its saved state was removed after this stop wrote it'
    : `its saved state was replaced by "${found}" after this stop wrote it`;

/**
 * A stop's last check found that a start brought the resource back after this stop parked it: the row
 * fails (the resource runs), so a capacity group that requires the service is not parked under it.
 */
export class StartedMeanwhileError extends Error {
  override name = 'StartedMeanwhileError';
}

/** Without a common lease (another stage, an older version, --local with another --stage). */
const NO_COMMON_LEASE = 'by a start without a common lease';

/**
 * Runs one step. `note` collects what the row should say beyond the plan: a saved state written back.
 *
 * Without a common lease, a start that re-read a tag just before a stop saved it again removes the
 * stop's tag (UntagResource and DeleteTags have no condition). Both sides check after the fact: the
 * stop reads the tag again as its last step and writes it back if the resource is still parked; the
 * start reads the resource again right after its removal and writes the removed value back if a stop
 * parked it in between. Whichever way the calls interleave, the removal lands either before the
 * stop's re-read or before the start's own check.
 */
const runStep = async (
  clients: Clients,
  action: PlannedAction,
  step: Step,
  note: (text: string) => void,
): Promise<void> => {
  switch (step.op) {
    case 'set-override':
      if (action.type === 'autoscaling-group') {
        // Not propagated: an override is about the group, never about the instances it launches.
        await clients.autoscaling.send(
          new CreateOrUpdateTagsCommand({
            Tags: [
              {
                ResourceId: action.name,
                ResourceType: 'auto-scaling-group',
                Key: OVERRIDE_TAG,
                Value: step.value,
                PropagateAtLaunch: false,
              },
            ],
          }),
        );
        return;
      }
      await clients.ecs.send(
        new TagResourceCommand({ resourceArn: action.arn, tags: [{ key: OVERRIDE_TAG, value: step.value }] }),
      );
      return;
    case 'clear-override': {
      if (action.type === 'autoscaling-group') {
        // DeleteTags has no condition either: read first (DescribeTags), keep a newer one.
        const out = await clients.autoscaling.send(
          new DescribeTagsCommand({
            Filters: [
              { Name: 'auto-scaling-group', Values: [action.name] },
              { Name: 'key', Values: [OVERRIDE_TAG] },
            ],
          }),
        );
        const current = out.Tags?.find((t) => t.Key === OVERRIDE_TAG)?.Value;
        if (current === undefined) return;
        if (current !== step.expected) {
          note(`a new override was set meanwhile (${current}): kept`);
          return;
        }
        await clients.autoscaling.send(
          new DeleteTagsCommand({
            Tags: [{ ResourceId: action.name, ResourceType: 'auto-scaling-group', Key: OVERRIDE_TAG }],
          }),
        );
        return;
      }
      // ECS has no conditional untag: read first, so an override set since this run read it stays.
      const out = await clients.ecs.send(new ListTagsForResourceCommand({ resourceArn: action.arn }));
      const now = tagMap(out.tags)[OVERRIDE_TAG];
      if (now === undefined) return;
      if (now !== step.expected) {
        note(`a new override was set meanwhile (${now}): kept`);
        return;
      }
      await clients.ecs.send(new UntagResourceCommand({ resourceArn: action.arn, tagKeys: [OVERRIDE_TAG] }));
      return;
    }
    case 'save-service-state':
      await saveServiceTag(clients, action, step.value);
      return;
    case 'clear-service-state': {
      if (!stillSaved(step.expected, (await liveService(clients, action))?.tag)) return;
      await clients.ecs.send(
        new UntagResourceCommand({ resourceArn: action.arn, tagKeys: [SAVED_STATE_TAG] }),
      );
      // Only a service this start leaves running tells a stop that parked it since from this start.
      const saved = decodeService(step.expected);
      if (saved.desired === 0 && (!saved.scaling || sameScaling(saved.scaling, PARKED_LIMITS))) return;
      const now = await liveService(clients, action);
      if (!now || now.tag !== undefined) return;
      if (!(await stillParked(clients, action, now.desiredCount, saved))) return;
      await saveServiceTag(clients, action, step.expected);
      note(
        "a stop parked it again right after this start read its saved state, and this start's removal took the " +
          `state that stop saved: "${step.expected}" written back for the next start`,
      );
      return;
    }
    case 'verify-service-state': {
      const now = await liveService(clients, action);
      if (!now || now.tag === step.value) return;
      if (!(await stillParked(clients, action, now.desiredCount, decodeService(step.value)))) {
        throw new StartedMeanwhileError(
          `${lostTag(now.tag)}, and the service runs again (desiredCount ${now.desiredCount}): restored ` +
            `${NO_COMMON_LEASE}; left as it is, running, and its capacity group with it`,
        );
      }
      if (!writesBack(step.value, now.tag, decodeService, sameService, serviceWorse)) return;
      await saveServiceTag(clients, action, step.value);
      note(`${lostTag(now.tag)} (${NO_COMMON_LEASE}) while the service stayed parked: written back`);
      return;
    }
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
      const limits = step.op === 'park-scaling' ? PARKED_LIMITS : step.limits;
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
      await saveGroupTag(clients, action, step.value);
      return;
    case 'clear-group-state': {
      if (!stillSaved(step.expected, (await liveGroup(clients, action))?.tag)) return;
      await clients.autoscaling.send(
        new DeleteTagsCommand({
          Tags: [{ ResourceId: action.name, ResourceType: 'auto-scaling-group', Key: PARKED_TAG }],
        }),
      );
      if (sameSize(decodeGroup(step.expected), PARKED_SIZE)) return;
      const now = await liveGroup(clients, action);
      if (!now || now.tag !== undefined || !sameSize(now.size, PARKED_SIZE)) return;
      await saveGroupTag(clients, action, step.expected);
      note(
        "a stop parked it again right after this start read its saved state, and this start's removal took the " +
          `state that stop saved: "${step.expected}" written back for the next start`,
      );
      return;
    }
    case 'verify-group-state': {
      const now = await liveGroup(clients, action);
      if (!now || now.tag === step.value) return;
      if (!sameSize(now.size, PARKED_SIZE)) {
        throw new StartedMeanwhileError(
          `${lostTag(now.tag)}, and the group runs again (min ${now.size.min} desired ${now.size.desired} max ` +
            `${now.size.max}): restored ${NO_COMMON_LEASE}; left as it is, running`,
        );
      }
      const restoresNothing = (ours: GroupSize) => sameSize(ours, PARKED_SIZE);
      if (!writesBack(step.value, now.tag, decodeGroup, sameSize, restoresNothing)) return;
      await saveGroupTag(clients, action, step.value);
      note(`${lostTag(now.tag)} (${NO_COMMON_LEASE}) while the group stayed parked: written back`);
      return;
    }
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

/**
 * A planned action as the shared executor and the plan digest see it. The shared executor knows no
 * planner `undone` (a scope another run holds): executePlan gives those rows their outcome.
 */
export const plannedWork = (action: PlannedAction): PlannedAction & PlannedWork => ({
  ...action,
  outcome: action.outcome === 'undone' ? undefined : action.outcome,
  hasWork: action.steps.length > 0,
  digestKey: digestKeyOf(action),
});
const asWork = plannedWork;

const result = (
  action: PlannedAction,
  outcome: ResourceResult['outcome'],
  extra: Partial<ResourceResult> = {},
) => resultOf(asWork(action), outcome, extra);

/**
 * Applies one resource's steps in order. A failure stops that resource only and says what was done.
 * Once the run has no time left (a `--local` run whose laptop slept, an SDK retrying for minutes: its
 * leases may have expired) it stops between two steps: the row is `undone`, says what was done, and
 * the next run finishes it from there — every state between two steps is one a stop or start plans
 * from correctly (an interrupted stop, or a start that restored part of what was saved).
 */
const apply = async (
  clients: Clients,
  action: PlannedAction,
  hasTime: () => boolean,
): Promise<ResourceResult> => {
  const notes: string[] = [];
  const ended = await runStepsWithin(
    action.steps,
    STEP_NAMES,
    (step) => runStep(clients, action, step, (text) => notes.push(text)),
    hasTime,
  );
  const detail = notes.length > 0 ? `${action.detail}; ${notes.join('; ')}` : action.detail;
  switch (ended.outcome) {
    case 'done':
      return result(action, 'changed', { detail });
    case 'failed':
      return result(action, 'failed', { detail, error: ended.message });
    case 'undone':
      return result(action, 'undone', { detail: `${ended.message} (planned: ${detail})` });
  }
};

const blockedDetail = (action: Plan['action'], blocker: ResourceResult) =>
  action === 'stop'
    ? `capacity left running: ${blocker.arn} did not stop (${blocker.outcome}); nothing changed`
    : `not started: its capacity group ${blocker.arn} is not back (${blocker.outcome}), so its tasks would ` +
      'have nowhere to run; nothing changed — run start again';

/**
 * Carries out a plan phase by phase with bounded concurrency, or only reports it in a dry run.
 * A resource that `requires` others runs only when they all changed cleanly, else it is `undone`
 * (the next run does it, once they are done). Work the previous run
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
        // Blocked by a step that did not complete: work still to do, so `undone` (carried over to the
        // next run, counted by the undone alarm), never `skipped`, which reads as done.
        if (blocker) return result(action, 'undone', { detail: blockedDetail(plan.action, blocker) });
        return apply(clients, action, options.hasTime);
      },
    );
    outcomes.forEach((outcome, index) => {
      // Results keep the order of the items: the planner's `undone` (a scope another run holds) is restored here.
      const r = phase[index]?.outcome === 'undone' ? { ...outcome, outcome: 'undone' as const } : outcome;
      results.push(r);
      byArn.set(r.arn, r);
    });
  }
  return buildReport(plan.action, options.dryRun, results);
};
