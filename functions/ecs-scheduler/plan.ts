import { formatAge } from '#shared/duration.ts';
import { decodeOverride, OVERRIDE_TAG, overrideActive, type Override } from '#shared/override.ts';
import { PARKED_TAG, ROTATION_TAG, rotationInFlight } from '#shared/group-tags.ts';
import { matchesTags, protectedBy, type TagMap, type TagRule } from '#shared/tags.ts';
import type { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import type { ClusterState, Estate, GroupState, Held, ServiceState } from './inventory.ts';
import {
  decodeGroup,
  decodeService,
  describeSuspension,
  encodeGroup,
  encodeService,
  PARKED_LIMITS,
  PARKED_SIZE,
  sameScaling,
  sameSize,
  SAVED_STATE_TAG,
  type GroupSize,
  type SavedGroup,
  type SavedService,
  type ScalingLimits,
} from './saved.ts';
import { scalingResourceId } from './inventory.ts';

export type Step =
  | { op: 'save-service-state'; value: string }
  | { op: 'park-scaling'; resourceId: string }
  | { op: 'restore-scaling'; resourceId: string; limits: ScalingLimits }
  | { op: 'set-desired-count'; desiredCount: number }
  /**
   * Removes the saved state only if the tag still holds `expected`, the value this run planned from;
   * then, if a stop parked the service right after that re-read, writes `expected` back.
   */
  | { op: 'clear-service-state'; expected: string }
  /**
   * A stop's last step: reads the tag again after parking and writes `value` back if it is gone or
   * different while the service is still parked (a start without a common lease removed it).
   */
  | { op: 'verify-service-state'; value: string }
  | { op: 'save-group-state'; value: string }
  | { op: 'set-group-size'; size: GroupSize }
  | { op: 'clear-group-state'; expected: string }
  | { op: 'verify-group-state'; value: string }
  /** An override (`nightshift wake|sleep`) on the row's service or cluster: tag nightshift:override. */
  /** `fromNow`: its end is `--for` from now, which moves between a dry run and the apply. */
  | { op: 'set-override'; value: string; fromNow?: true }
  /** Removes an expired override, only if the tag still holds `expected` (a new one may have replaced it). */
  | { op: 'clear-override'; expected: string };

export type ResourceType = 'ecs-service' | 'autoscaling-group' | 'ecs-cluster';

export interface PlannedAction {
  arn: string;
  type: ResourceType;
  name: string;
  /** Cluster name, for services. */
  cluster?: string;
  /** What to do, in order. Empty: nothing to do, and `outcome` says why. */
  steps: Step[];
  /** `undone`: another run holds its scope (or its capacity group's); the next run starts with it. */
  /** `waiting`: its environment's databases are not ready yet (environment.ts); a later run does it. */
  outcome?: 'unchanged' | 'skipped' | 'undone' | 'waiting' | 'failed';
  /** What the steps do, or why there are none, for a person at 3 a.m. */
  detail: string;
  /**
   * Resources whose change must succeed before this one runs: a group parks only once its services
   * are at 0, and a service starts only once its capacity group is back.
   */
  requires?: string[];
  /** On a start's group row: the group cannot come back in this run, so its services wait too. */
  capacityWithheld?: boolean;
}

export interface Plan {
  action: SchedulerInput['action'];
  /** In execution order: services then groups for stop, groups then services for start. */
  phases: PlannedAction[][];
}

export interface PlanOptions {
  protectedTags: readonly TagRule[];
  now: Date;
}

/**
 * How long a stop may still be working on a resource after it saved its state: the longest a run can
 * last (Lambda's 15-minute maximum timeout, which `--local` keeps to as well) plus a minute for clocks
 * that disagree. A start leaves alone a tag younger than this on a resource that is not parked yet.
 */
export const STOP_IN_FLIGHT_MS = 16 * 60_000;

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * True when state saved at `at` may belong to a stop that is still running. A start that read a
 * resource between that stop's tag write and its parking would see the resource running at the saved
 * values and remove the tag; the stop would then park it with nothing saved.
 */
const mayBeStopping = (at: string, now: Date): boolean => {
  const saved = Date.parse(at);
  return !Number.isNaN(saved) && now.getTime() - saved < STOP_IN_FLIGHT_MS;
};

const stopInFlightReason = (what: string, at: string, now: Date) => {
  const saved = Date.parse(at);
  return (
    `saved state from ${at} is ${formatAge(now.getTime() - saved)} old and the ${what} is not parked yet: ` +
    'a stop may still be running on it (a stop saves its state before it parks); nothing changed — ' +
    `if no stop is running, run start again after ${stamp(new Date(saved + STOP_IN_FLIGHT_MS))}`
  );
};

const describeLimits = (s: ScalingLimits) =>
  `scaling min ${s.min} max ${s.max}, ${describeSuspension(s.suspended)}`;
const describeSaved = (s: SavedService) =>
  `desiredCount ${s.desired}${s.scaling ? `, ${describeLimits(s.scaling)}` : ''}`;
const limitsChange = (from: ScalingLimits, to: ScalingLimits) => {
  const parts = [
    ...(from.min !== to.min || from.max !== to.max
      ? [`scaling min ${from.min}→${to.min} max ${from.max}→${to.max}`]
      : []),
    ...(describeSuspension(from.suspended) !== describeSuspension(to.suspended)
      ? [describeSuspension(to.suspended)]
      : []),
  ];
  return parts.join(', ');
};
const sizeText = (g: GroupSize) => `min ${g.min} desired ${g.desired} max ${g.max}`;
const sizeChange = (from: GroupSize, to: GroupSize) =>
  `min ${from.min}→${to.min}, desired ${from.desired}→${to.desired}, max ${from.max}→${to.max}`;

const isReplica = (s: ServiceState) => s.status === 'ACTIVE' && s.schedulingStrategy !== 'DAEMON';

export interface Selection {
  selected: ServiceState[];
  /** Cluster ARNs where every active service was selected (and the cluster's own tags match). */
  fully: Set<string>;
  /** Rows for named services that do not exist, or exist but do not match the tags. */
  unmatched: PlannedAction[];
}

interface ServiceRef {
  ref: string;
  name: string;
  /** Set when the ref is a long-format ARN, which names its cluster. */
  cluster?: string;
}

const parseServiceRef = (ref: string): ServiceRef => {
  const arn = ref.match(/:service\/(?:([^/]+)\/)?([^/]+)$/);
  return arn ? { ref, name: arn[2] ?? ref, ...(arn[1] && { cluster: arn[1] }) } : { ref, name: ref };
};

const refMatches = (r: ServiceRef, s: ServiceState) =>
  r.name === s.name && (r.cluster === undefined || r.cluster === s.clusterName);

/** A service row with nothing to do, and the reason. */
const skipService = (s: ServiceState, reason: string): PlannedAction => ({
  arn: s.arn,
  type: 'ecs-service',
  name: s.name,
  cluster: s.clusterName,
  steps: [],
  outcome: 'skipped',
  detail: reason,
});

export const select = (input: SchedulerInput, clusters: ClusterState[]): Selection => {
  const wanted = input.services && [
    ...new Map(input.services.map((ref) => [ref, parseServiceRef(ref)])).values(),
  ];
  const tags: TagMap | undefined = input.tags;
  const selected: ServiceState[] = [];
  const fully = new Set<string>();
  for (const cluster of clusters) {
    const active = cluster.services.filter((s) => s.status === 'ACTIVE');
    const chosen = active.filter(
      (s) =>
        (!wanted || wanted.some((r) => refMatches(r, s))) &&
        (!tags || matchesTags({ ...cluster.tags, ...s.tags }, tags)),
    );
    selected.push(...chosen);
    // Naming every service of a cluster selects it whole; naming none of them does not select it at all.
    const clusterMatches = wanted
      ? chosen.length > 0
      : !tags || matchesTags(cluster.tags, tags) || chosen.length > 0;
    if (chosen.length === active.length && clusterMatches) fully.add(cluster.arn);
  }
  const unmatched: PlannedAction[] = [];
  const active = clusters.flatMap((c) => c.services.filter((s) => s.status === 'ACTIVE'));
  for (const r of wanted ?? []) {
    if (selected.some((s) => refMatches(r, s))) continue;
    const existing = active.filter((s) => refMatches(r, s));
    if (existing.length === 0) {
      unmatched.push({
        arn: r.ref,
        type: 'ecs-service',
        name: r.name,
        steps: [],
        outcome: 'failed',
        detail: `service not found in cluster(s) ${clusters.map((c) => c.name).join(', ') || '(none)'}`,
      });
    }
    const wantedTags = Object.entries(tags ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    for (const s of existing) {
      unmatched.push(
        skipService(
          s,
          `named, but its tags (merged with cluster ${s.clusterName}'s) do not match ${wantedTags}`,
        ),
      );
    }
  }
  return { selected, fully, unmatched };
};

export const protection = (
  service: ServiceState,
  cluster: ClusterState | undefined,
  rules: readonly TagRule[],
) => {
  const own = protectedBy(service.tags, rules);
  if (own) return `protected by tag ${own} on the service`;
  const inherited = cluster && protectedBy(cluster.tags, rules);
  return inherited ? `protected by tag ${inherited} on cluster ${cluster.name}` : undefined;
};

const readSaved = <T>(
  tags: TagMap,
  decode: (text: string) => T,
  key: string = SAVED_STATE_TAG,
): { saved?: T; text?: string; error?: string } => {
  const text = tags[key];
  if (text === undefined) return {};
  try {
    return { saved: decode(text), text };
  } catch (error) {
    return {
      error: `saved state in tag ${key} is unreadable (${(error as Error).message}); nothing changed — fix or delete the tag`,
    };
  }
};

/** Nothing of the service is parked: it runs and its scaling target (if any) is live. */
const isRunning = (s: ServiceState) =>
  s.desiredCount > 0 && (!s.scaling || !sameScaling(s.scaling, PARKED_LIMITS));

/** Everything of the service is parked: desiredCount 0, and its scaling target (if any) at 0/0, suspended. */
const isParked = (s: ServiceState) =>
  s.desiredCount === 0 && (!s.scaling || sameScaling(s.scaling, PARKED_LIMITS));

/** The live values are the saved ones: a stop was interrupted before it parked anything, or a start finished. */
const matchesSaved = (s: ServiceState, saved: SavedService) =>
  s.desiredCount === saved.desired &&
  (saved.scaling === undefined || (s.scaling !== undefined && sameScaling(s.scaling, saved.scaling)));

/**
 * A start restored the scaling target and then could not set the saved desiredCount. Registering the
 * limits moves the current capacity into [min, max] ("it changes the resource's current capacity to a
 * value that is inside of this range", RegisterScalableTarget API reference), so from a parked 0 it
 * lands on exactly the saved min: that, with the target back at the saved limits, is what such a start
 * leaves. The tag is still the state to come back to: the next start finishes the job, and a stop
 * keeps it. Any other desiredCount means something moved the service since (Application Auto Scaling
 * after a start that set desiredCount but could not remove the tag, or a person): it is not ours to
 * set back, and the tag is stale.
 */
const interruptedStart = (s: ServiceState, saved: SavedService) =>
  saved.scaling !== undefined &&
  s.scaling !== undefined &&
  sameScaling(s.scaling, saved.scaling) &&
  s.desiredCount !== saved.desired &&
  s.desiredCount === saved.scaling.min;

/**
 * A saved-state tag on a service that runs with other values than it saved is stale — left by a
 * start that could not remove it, or the service was changed by hand. Restoring it, or keeping it
 * for the next start, would bring back old values: refuse and let a person decide.
 */
const staleTag = (s: ServiceState, saved: SavedService) =>
  isRunning(s) && !matchesSaved(s, saved) && !interruptedStart(s, saved)
    ? `saved state from ${saved.at} (${describeSaved(saved)}) does not match the running service ` +
      `(desiredCount ${s.desiredCount}${s.scaling ? `, ${describeLimits(s.scaling)}` : ''}): it may be left over ` +
      `from a start that could not remove it; nothing changed — delete tag ${SAVED_STATE_TAG} and run again`
    : undefined;

/**
 * A service nightshift parked that someone started by hand since (the console, a deploy): it runs with
 * other values than it saved, and no stop can still be working on it. Returns the saved-state tag as
 * read, which a reconcile that wants it running removes (the person's values are the ones to keep; the
 * next stop saves them), instead of failing every run as a start does (staleTag).
 */
export const startedByHand = (s: ServiceState, now: Date): { text: string; reason: string } | undefined => {
  const { saved, text } = readSaved(s.tags, decodeService);
  if (!saved || text === undefined || mayBeStopping(saved.at, now)) return undefined;
  const reason = staleTag(s, saved);
  return reason === undefined
    ? undefined
    : {
        text,
        reason:
          `started by hand since nightshift stopped it (now desiredCount ${s.desiredCount}; saved at ${saved.at}: ` +
          `${describeSaved(saved)}): the saved state is removed, so the next stop saves what runs then`,
      };
};

/**
 * A stop or start cut short with the scaling target at the saved limits, after which Application Auto
 * Scaling moved desiredCount within them (a stop that saved its tag but could not park; a start that
 * restored the target, or set desiredCount, but could not remove the tag). Only a stop finishes it:
 * the limits it saved are the ones in force, and the saved desiredCount is kept. A start still
 * refuses (staleTag): it would set back a count Application Auto Scaling chose.
 */
const driftedWithinSaved = (s: ServiceState, saved: SavedService) =>
  isRunning(s) &&
  saved.scaling !== undefined &&
  s.scaling !== undefined &&
  sameScaling(s.scaling, saved.scaling) &&
  // With every kind of scaling suspended, Application Auto Scaling moved nothing: a person did.
  !(s.scaling.suspended.in && s.scaling.suspended.out && s.scaling.suspended.scheduled) &&
  s.desiredCount !== saved.desired &&
  s.desiredCount >= saved.scaling.min &&
  s.desiredCount <= saved.scaling.max;

/**
 * No saved state, but a scaling target parked (min 0 max 0, all suspended) under a service that still
 * runs: the state a stop leaves between its park and its UpdateService, seen by a run that read the
 * service before that stop saved its tag and the target after it parked it. Saving now would save the
 * parked limits as the service's own and lose the real ones.
 */
const parkedWithoutTag = (s: ServiceState) =>
  s.desiredCount > 0 && s.scaling !== undefined && sameScaling(s.scaling, PARKED_LIMITS);

const planServiceStop = (s: ServiceState, now: Date): PlannedAction => {
  const base = { arn: s.arn, type: 'ecs-service' as const, name: s.name, cluster: s.clusterName };
  const read = readSaved(s.tags, decodeService);
  if (read.error) return { ...base, steps: [], outcome: 'failed', detail: read.error };
  let saved = read.saved;
  if (!saved && parkedWithoutTag(s)) {
    return {
      ...base,
      steps: [],
      outcome: 'undone',
      detail:
        `desiredCount ${s.desiredCount} with its scaling target parked (min 0 max 0, all scaling suspended) and no ` +
        `saved state: another stop may be parking it; nothing saved or changed — the next run finishes. If this ` +
        `persists, no stop is: register the target with its real limits (or tag ${SAVED_STATE_TAG}) and run stop again`,
    };
  }
  const stale = saved && !driftedWithinSaved(s, saved) && staleTag(s, saved);
  if (stale) return { ...base, steps: [], outcome: 'failed', detail: stale };
  const steps: Step[] = [];
  const changes: string[] = [];
  const liveScaling = s.scaling && !sameScaling(s.scaling, PARKED_LIMITS) ? s.scaling : undefined;
  let fresh: string | undefined;
  if (!saved) {
    const state: SavedService = {
      desired: s.desiredCount,
      ...(s.scaling && { scaling: s.scaling }),
      at: stamp(now),
    };
    fresh = encodeService(state);
    steps.push({ op: 'save-service-state', value: fresh });
  } else if (!saved.scaling && liveScaling) {
    // A scalable target was registered after the stop saved state without one: its limits are added
    // to the saved state (nothing saved is replaced) before it is parked, so start can restore them.
    saved = { ...saved, scaling: liveScaling };
    changes.push(
      `scaling target registered since the stop: min ${liveScaling.min} max ${liveScaling.max} added to the saved state`,
    );
  }
  if (liveScaling) {
    steps.push({ op: 'park-scaling', resourceId: scalingResourceId(s.clusterName, s.name) });
    changes.push(limitsChange(liveScaling, PARKED_LIMITS));
  }
  if (s.desiredCount > 0) {
    steps.push({ op: 'set-desired-count', desiredCount: 0 });
    changes.unshift(`desiredCount ${s.desiredCount} → 0`);
  }
  if (saved) {
    const restores = `start restores ${describeSaved(saved)}`;
    if (steps.length === 0) {
      return {
        ...base,
        steps,
        outcome: 'unchanged',
        detail: `already stopped by nightshift at ${saved.at}; ${restores}`,
      };
    }
    // The saved values are written again, with this run's time, before anything is parked: a start
    // that read the old tag and is about to remove it then finds another value and leaves it, and a
    // start that removed it already sees it come back. The values themselves are never replaced. Last,
    // the tag is read again: a start without a common lease that read the old value before this write
    // may have removed the new one since (tags have no conditional delete); it is written back.
    const value = encodeService({ ...saved, at: stamp(now) });
    steps.unshift({ op: 'save-service-state', value });
    steps.push({ op: 'verify-service-state', value });
    const why =
      read.saved && interruptedStart(s, read.saved)
        ? `a start from before restored its scaling but not its desiredCount; saved state from ${saved.at} kept`
        : read.saved && driftedWithinSaved(s, read.saved)
          ? `a stop or start from before was cut short at the saved scaling limits and Application Auto Scaling ` +
            `moved desiredCount since; saved state from ${saved.at} kept`
          : `finishing a stop from ${saved.at}; saved state kept`;
    return { ...base, steps, detail: `${changes.join('; ')} (${why}, ${restores})` };
  }
  if (fresh !== undefined) steps.push({ op: 'verify-service-state', value: fresh });
  if (changes.length === 0) {
    return { ...base, steps, detail: `already at desiredCount 0; saved as 0 so start leaves it at 0` };
  }
  return { ...base, steps, detail: `${changes.join('; ')}; saved in tag ${SAVED_STATE_TAG}` };
};

const planServiceStart = (s: ServiceState, now: Date): PlannedAction => {
  const base = { arn: s.arn, type: 'ecs-service' as const, name: s.name, cluster: s.clusterName };
  const { saved, text, error } = readSaved(s.tags, decodeService);
  if (error) return { ...base, steps: [], outcome: 'failed', detail: error };
  if (!saved || text === undefined) {
    return s.desiredCount > 0
      ? {
          ...base,
          steps: [],
          outcome: 'unchanged',
          detail: `running at desiredCount ${s.desiredCount}; no saved state`,
        }
      : {
          ...base,
          steps: [],
          outcome: 'skipped',
          detail:
            'desiredCount 0 and no saved state: nightshift did not stop it, so there is nothing to restore',
        };
  }
  if (!isParked(s) && mayBeStopping(saved.at, now)) {
    // Work still to do, not a reason to leave it: `undone` is carried over and counted by the undone alarm.
    return { ...base, steps: [], outcome: 'undone', detail: stopInFlightReason('service', saved.at, now) };
  }
  const stale = staleTag(s, saved);
  if (stale) return { ...base, steps: [], outcome: 'failed', detail: stale };
  if (saved.scaling && !s.scaling) {
    return {
      ...base,
      steps: [],
      outcome: 'failed',
      detail:
        `saved scaling min ${saved.scaling.min} max ${saved.scaling.max} cannot be restored: the scalable target ` +
        `is no longer registered; nothing changed — register the target again (or delete tag ${SAVED_STATE_TAG}) and run start`,
    };
  }
  const steps: Step[] = [];
  const changes: string[] = [];
  if (saved.scaling && s.scaling && !sameScaling(saved.scaling, s.scaling)) {
    steps.push({
      op: 'restore-scaling',
      resourceId: scalingResourceId(s.clusterName, s.name),
      limits: saved.scaling,
    });
    changes.push(limitsChange(s.scaling, saved.scaling));
  }
  if (s.desiredCount !== saved.desired) {
    steps.push({ op: 'set-desired-count', desiredCount: saved.desired });
    changes.unshift(
      interruptedStart(s, saved)
        ? `desiredCount ${s.desiredCount} → ${saved.desired} (finishing a start that restored the scaling target but not desiredCount)`
        : `desiredCount ${s.desiredCount} → ${saved.desired}`,
    );
  }
  steps.push({ op: 'clear-service-state', expected: text });
  const what = changes.length > 0 ? changes.join('; ') : `already at ${describeSaved(saved)}`;
  return { ...base, steps, detail: `${what}; saved state from ${saved.at} removed` };
};

const planServices = (
  action: SchedulerInput['action'],
  selected: ServiceState[],
  clusters: Map<string, ClusterState>,
  opts: PlanOptions,
) =>
  selected.map((s) => {
    const reason = protection(s, clusters.get(s.clusterArn), opts.protectedTags);
    if (reason) return skipService(s, reason);
    if (s.schedulingStrategy === 'DAEMON') {
      return skipService(
        s,
        action === 'stop'
          ? 'DAEMON service: desiredCount does not apply; its tasks stop when the cluster capacity is parked'
          : 'DAEMON service: its tasks run again when the cluster capacity is back',
      );
    }
    const overridden = contraryOverride(action, s, clusters.get(s.clusterArn), opts.now);
    if (overridden) return skipService(s, overridden);
    return action === 'stop' ? planServiceStop(s, opts.now) : planServiceStart(s, opts.now);
  });

/**
 * An explicit stop of a service an active override keeps running (or a start of one it keeps stopped)
 * would be undone by the next reconcile: refused, saying how to do it so that it holds.
 */
const contraryOverride = (
  action: SchedulerInput['action'],
  s: ServiceState,
  cluster: ClusterState | undefined,
  now: Date,
): string | undefined => {
  const own = s.tags[OVERRIDE_TAG];
  const text = own ?? cluster?.tags[OVERRIDE_TAG];
  if (text === undefined) return undefined;
  let o: Override;
  try {
    o = decodeOverride(text);
  } catch {
    return undefined;
  }
  if (!overrideActive(o, now) || (o.state === 'running') === (action === 'start')) return undefined;
  const where = own !== undefined ? 'on the service' : `on cluster ${cluster?.name}`;
  return (
    `an override ${where} keeps it ${o.state} until ${stamp(o.until)} (by ${o.by}${o.why ? `, why: ${o.why}` : ''}): ` +
    `the next reconcile would undo this ${action}; nothing changed — use nightshift ${action === 'stop' ? 'sleep' : 'wake'} ` +
    'for a change that holds, or end the override first (nightshift wake --cancel)'
  );
};

const groupBase = (g: { arn: string; name: string }) => ({
  arn: g.arn,
  type: 'autoscaling-group' as const,
  name: g.name,
});

/** Why a group must keep running after this stop, or undefined when it may be parked. */
const groupKeepReason = (
  g: GroupState,
  users: ClusterState[],
  selection: Selection,
  planned: Map<string, PlannedAction>,
  rules: readonly TagRule[],
): string | undefined => {
  const own = protectedBy(g.tags, rules);
  if (own) return `protected by tag ${own} on the group`;
  for (const c of users) {
    const tag = protectedBy(c.tags, rules);
    if (tag) return `protected: used by cluster ${c.name} (${tag})`;
    const guarded = c.services.find((s) => s.status === 'ACTIVE' && protectedBy(s.tags, rules));
    if (guarded) return `protected: cluster ${c.name} has protected service ${guarded.name}`;
  }
  // Parking a group mid-rotation would leave instance-rotation's raised desired count in the saved
  // state (desired creeps up night after night) and its new instance unaccounted for.
  if (rotationInFlight(g.tags)) {
    return (
      `rotation in flight (tag ${ROTATION_TAG}=${g.tags[ROTATION_TAG]}): the group is parked by the next stop ` +
      'after instance-rotation finishes or rolls it back; its services stop now'
    );
  }
  for (const c of users) {
    const standalone = c.tasks - c.services.reduce((sum, s) => sum + s.tasks, 0);
    if (standalone > 0) {
      return `capacity left running: cluster ${c.name} runs ${standalone} task(s) outside services (RunTask or scheduled tasks)`;
    }
  }
  const partial = users.find((c) => planned.has(c.arn) && !selection.fully.has(c.arn));
  if (partial)
    return `capacity left running: this run selected only some services of cluster ${partial.name}`;
  for (const c of users) {
    for (const s of c.services.filter(isReplica)) {
      const action = planned.get(s.arn);
      // Only a row with work (or nothing left to do) stops it: failed, skipped and undone rows leave it up.
      const stops = action !== undefined && (action.outcome === undefined || action.outcome === 'unchanged');
      if (!stops && s.desiredCount > 0) {
        return `capacity left running: service ${s.name} in cluster ${c.name} still runs (desiredCount ${s.desiredCount})`;
      }
    }
  }
  return undefined;
};

/** Same rule as for services: a group that runs with other sizes than it saved carries a stale tag. */
const staleGroupTag = (g: GroupState, saved: SavedGroup) =>
  !sameSize(g, PARKED_SIZE) && !sameSize(g, saved)
    ? `saved state from ${saved.at} (${sizeText(saved)}) does not match the running group (${sizeText(g)}): ` +
      `it may be left over from a start that could not remove it; nothing changed — delete tag ${PARKED_TAG} and run again`
    : undefined;

/**
 * A stop cut short after saving the group's tag (UpdateAutoScalingGroup failed, or the deadline), after
 * which ECS managed scaling moved desired within the saved min and max. Only a stop finishes it, keeping
 * the saved values; a start still refuses (staleGroupTag).
 */
const groupDriftedWithinSaved = (g: GroupState, saved: SavedGroup) =>
  !sameSize(g, PARKED_SIZE) &&
  g.min === saved.min &&
  g.max === saved.max &&
  g.desired !== saved.desired &&
  g.desired >= g.min &&
  g.desired <= g.max;

export const planGroupStop = (
  g: GroupState,
  keep: string | undefined,
  requires: string[],
  now: Date,
): PlannedAction => {
  if (keep) return { ...groupBase(g), steps: [], outcome: 'skipped', detail: keep };
  const { saved, error } = readSaved(g.tags, decodeGroup, PARKED_TAG);
  if (error) return { ...groupBase(g), steps: [], outcome: 'failed', detail: error };
  const drifted = saved !== undefined && groupDriftedWithinSaved(g, saved);
  const stale = saved && !drifted && staleGroupTag(g, saved);
  if (stale) return { ...groupBase(g), steps: [], outcome: 'failed', detail: stale };
  if (saved) {
    if (sameSize(g, PARKED_SIZE)) {
      return {
        ...groupBase(g),
        steps: [],
        outcome: 'unchanged',
        detail: `already parked by nightshift at ${saved.at}; start restores ${sizeText(saved)}`,
      };
    }
    // Saved again with this run's time before parking, as for services: a start about to remove the
    // old tag leaves the new one alone, and one that removed it anyway finds it written back.
    const value = encodeGroup({ ...saved, at: stamp(now) });
    return {
      ...groupBase(g),
      steps: [
        { op: 'save-group-state', value },
        { op: 'set-group-size', size: PARKED_SIZE },
        { op: 'verify-group-state', value },
      ],
      requires,
      detail:
        `${sizeChange(g, PARKED_SIZE)} (finishing a stop from ${saved.at}` +
        `${drifted ? ' cut short before it parked the group, whose desired managed scaling moved since' : ''}; ` +
        `saved state kept, start restores ${sizeText(saved)})`,
    };
  }
  const value = encodeGroup({ min: g.min, desired: g.desired, max: g.max, at: stamp(now) });
  return {
    ...groupBase(g),
    steps: [
      { op: 'save-group-state', value },
      ...(sameSize(g, PARKED_SIZE) ? [] : [{ op: 'set-group-size' as const, size: PARKED_SIZE }]),
      { op: 'verify-group-state', value },
    ],
    requires,
    detail: sameSize(g, PARKED_SIZE)
      ? 'already at min 0 desired 0 max 0; saved as 0 so start leaves it at 0'
      : `${sizeChange(g, PARKED_SIZE)}; saved in tag ${PARKED_TAG}`,
  };
};

export const planGroupStart = (
  g: GroupState,
  rules: readonly TagRule[],
  users: ClusterState[],
  now: Date,
): PlannedAction => {
  const own = protectedBy(g.tags, rules) ?? users.map((c) => protectedBy(c.tags, rules)).find(Boolean);
  if (own) return { ...groupBase(g), steps: [], outcome: 'skipped', detail: `protected by tag ${own}` };
  const { saved, text, error } = readSaved(g.tags, decodeGroup, PARKED_TAG);
  if (error) return { ...groupBase(g), steps: [], outcome: 'failed', detail: error };
  if (!saved || text === undefined) {
    return {
      ...groupBase(g),
      steps: [],
      outcome: 'unchanged',
      detail: `not parked by nightshift (${sizeText(g)})`,
    };
  }
  if (!sameSize(g, PARKED_SIZE) && mayBeStopping(saved.at, now)) {
    return {
      ...groupBase(g),
      steps: [],
      outcome: 'undone',
      detail: stopInFlightReason('group', saved.at, now),
      capacityWithheld: true,
    };
  }
  const stale = staleGroupTag(g, saved);
  if (stale) return { ...groupBase(g), steps: [], outcome: 'failed', detail: stale };
  const restore = sameSize(g, saved)
    ? []
    : [{ op: 'set-group-size' as const, size: { min: saved.min, desired: saved.desired, max: saved.max } }];
  return {
    ...groupBase(g),
    steps: [...restore, { op: 'clear-group-state', expected: text }],
    detail: `${restore.length > 0 ? sizeChange(g, saved) : `already at ${sizeText(saved)}`}; saved state from ${saved.at} removed`,
  };
};

/**
 * The row of a cluster or group this run holds no lease on: nothing of it changes. `undone` when another
 * run holds it (still to do: carried over to the next run), `failed` when the lease table is unusable.
 */
const heldRow = (h: Held, type: 'ecs-cluster' | 'autoscaling-group'): PlannedAction => ({
  arn: h.arn,
  type,
  name: h.name,
  steps: [],
  outcome: h.outcome,
  detail: h.reason,
});

/**
 * Decides, from what was observed and the time, what a stop or start does to each service and
 * capacity group, with a reason for each. Pure: no I/O, no clock, no environment.
 */
export const planSchedule = (input: SchedulerInput, estate: Estate, opts: PlanOptions): Plan => {
  const selection = select(input, estate.clusters);
  const clustersByArn = new Map([...estate.clusters, ...estate.sharers].map((c) => [c.arn, c]));
  const notFound: PlannedAction[] = [
    ...estate.missingClusters.map((name) => ({
      arn: name,
      type: 'ecs-cluster' as const,
      name,
      steps: [],
      outcome: 'failed' as const,
      detail: 'cluster not found (or not ACTIVE); nothing done for it',
    })),
    ...(estate.heldClusters ?? []).map((h) => heldRow(h, 'ecs-cluster')),
    ...selection.unmatched,
  ];
  let services = planServices(input.action, selection.selected, clustersByArn, opts);
  const plannedByArn = new Map<string, PlannedAction>(services.map((p) => [p.arn, p]));
  // Clusters in play are marked in the same map by ARN, so group rules can tell them from sharers.
  const inPlay = estate.clusters.filter(
    (c) => selection.fully.has(c.arn) || selection.selected.some((s) => s.clusterArn === c.arn),
  );
  for (const c of inPlay)
    plannedByArn.set(c.arn, { arn: c.arn, type: 'ecs-cluster', name: c.name, steps: [], detail: '' });
  const usersOf = (name: string) =>
    (estate.groupUsers[name] ?? [])
      .map((arn) => clustersByArn.get(arn))
      .filter((c): c is ClusterState => !!c);
  const touched = (name: string) => usersOf(name).some((c) => plannedByArn.has(c.arn));

  const groups = estate.groups
    .filter((g) => touched(g.name))
    .map((g) => {
      const users = usersOf(g.name);
      if (input.action === 'start') return planGroupStart(g, opts.protectedTags, users, opts.now);
      const keep = groupKeepReason(g, users, selection, plannedByArn, opts.protectedTags);
      const requires = services
        .filter((p) => p.steps.length > 0 && users.some((c) => c.name === p.cluster))
        .map((p) => p.arn);
      return planGroupStop(g, keep, requires, opts.now);
    });
  const held = (estate.heldGroups ?? []).filter((h) => touched(h.name));

  if (input.action === 'start') {
    // A service starts only on capacity that is back: never while another run holds its group (the
    // service is then as undone as the group, or failed with it when the lease table is unusable) or a
    // stop may still be parking it (undone with the group: a later start does it once that stop is
    // done), and only after this run's restore of the group succeeded.
    const withheld: { name: string; reason: string; outcome: 'undone' | 'failed' }[] = [
      ...held,
      ...groups
        .filter((g) => g.capacityWithheld)
        .map((g) => ({ name: g.name, reason: g.detail, outcome: 'undone' as const })),
    ];
    services = services.map((p) => {
      if (p.steps.length === 0) return p;
      const mine = (g: { name: string }) => usersOf(g.name).some((c) => c.name === p.cluster);
      const blocked = withheld.find(mine);
      if (blocked) {
        return {
          ...p,
          steps: [],
          outcome: blocked.outcome,
          detail: `not started: its capacity group ${blocked.name} is not this run's to restore (${blocked.reason})`,
        };
      }
      const restores = groups.filter((g) => g.steps.length > 0 && mine(g)).map((g) => g.arn);
      return restores.length > 0 ? { ...p, requires: restores } : p;
    });
  }
  const capacity = [...groups, ...held.map((h) => heldRow(h, 'autoscaling-group'))];

  return {
    action: input.action,
    phases: input.action === 'stop' ? [notFound, services, capacity] : [notFound, capacity, services],
  };
};

/**
 * The clusters a run acts on, from the clusters and services it read: those the selection takes whole
 * or in part, and those holding a service named in the input (to report it). A mutating run leases
 * these, and only these, before it reads their state again.
 */
export const clustersInPlay = (input: SchedulerInput, clusters: ClusterState[]): Set<string> => {
  const selection = select(input, clusters);
  const wanted = input.services?.map(parseServiceRef);
  return new Set([
    ...selection.fully,
    ...selection.selected.map((s) => s.clusterArn),
    ...clusters
      .filter((c) => wanted?.some((r) => c.services.some((s) => s.status === 'ACTIVE' && refMatches(r, s))))
      .map((c) => c.arn),
  ]);
};

/**
 * What a planned change does, in words that stay the same between a dry run and the apply minutes
 * later: its steps, without the time a saved state is stamped with.
 */
export const digestKeyOf = (action: PlannedAction): string =>
  JSON.stringify(
    action.steps.map((step) => {
      if (!('value' in step)) return step;
      // A saved state's time moves between plan and apply, and so does an override's end given as
      // `--for 3h`; `--until 22:00` stays, unless 22:00 passed in between (then it is tomorrow's: a new plan).
      if (step.op === 'set-override' && !step.fromNow) return step;
      const moving = step.op === 'set-override' ? /(^| )until=\S+/g : /(^| )at=\S+/g;
      return { ...step, value: step.value.replace(moving, '') };
    }),
  );
