import { matchesTags, protectedBy, type TagMap, type TagRule } from '#shared/tags.ts';
import type { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import type { ClusterState, Estate, GroupState, ServiceState } from './inventory.ts';
import {
  ALL_SUSPENDED,
  decodeGroup,
  decodeService,
  describeSuspension,
  encodeGroup,
  encodeService,
  sameScaling,
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
  | { op: 'clear-service-state' }
  | { op: 'save-group-state'; value: string }
  | { op: 'set-group-size'; size: GroupSize }
  | { op: 'clear-group-state' };

export type ResourceType = 'ecs-service' | 'autoscaling-group' | 'ecs-cluster';

export interface PlannedAction {
  arn: string;
  type: ResourceType;
  name: string;
  /** Cluster name, for services. */
  cluster?: string;
  /** What to do, in order. Empty: nothing to do, and `outcome` says why. */
  steps: Step[];
  outcome?: 'unchanged' | 'skipped' | 'failed';
  /** What the steps do, or why there are none, for a person at 3 a.m. */
  detail: string;
  /** Services whose change must succeed before this one runs (a group parks only once they are at 0). */
  requires?: string[];
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

const PARKED: ScalingLimits = { min: 0, max: 0, suspended: ALL_SUSPENDED };
const PARKED_GROUP: GroupSize = { min: 0, desired: 0, max: 0 };

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

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
const sameSize = (a: GroupSize, b: GroupSize) =>
  a.min === b.min && a.desired === b.desired && a.max === b.max;

const isReplica = (s: ServiceState) => s.status === 'ACTIVE' && s.schedulingStrategy !== 'DAEMON';

interface Selection {
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

const select = (input: SchedulerInput, clusters: ClusterState[]): Selection => {
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

const protection = (service: ServiceState, cluster: ClusterState | undefined, rules: readonly TagRule[]) => {
  const own = protectedBy(service.tags, rules);
  if (own) return `protected by tag ${own} on the service`;
  const inherited = cluster && protectedBy(cluster.tags, rules);
  return inherited ? `protected by tag ${inherited} on cluster ${cluster.name}` : undefined;
};

const readSaved = <T>(tags: TagMap, decode: (text: string) => T): { saved?: T; error?: string } => {
  const text = tags[SAVED_STATE_TAG];
  if (text === undefined) return {};
  try {
    return { saved: decode(text) };
  } catch (error) {
    return {
      error: `saved state in tag ${SAVED_STATE_TAG} is unreadable (${(error as Error).message}); nothing changed — fix or delete the tag`,
    };
  }
};

/** Nothing of the service is parked: it runs and its scaling target (if any) is live. */
const isRunning = (s: ServiceState) => s.desiredCount > 0 && (!s.scaling || !sameScaling(s.scaling, PARKED));

/** The live values are the saved ones: a stop was interrupted before it parked anything, or a start finished. */
const matchesSaved = (s: ServiceState, saved: SavedService) =>
  s.desiredCount === saved.desired &&
  (saved.scaling === undefined || (s.scaling !== undefined && sameScaling(s.scaling, saved.scaling)));

/**
 * A saved-state tag on a service that runs with other values than it saved is stale — left by a
 * start that could not remove it, or the service was changed by hand. Restoring it, or keeping it
 * for the next start, would bring back old values: refuse and let a person decide.
 */
const staleTag = (s: ServiceState, saved: SavedService) =>
  isRunning(s) && !matchesSaved(s, saved)
    ? `saved state from ${saved.at} (${describeSaved(saved)}) does not match the running service ` +
      `(desiredCount ${s.desiredCount}${s.scaling ? `, ${describeLimits(s.scaling)}` : ''}): it may be left over ` +
      `from a start that could not remove it; nothing changed — delete tag ${SAVED_STATE_TAG} and run again`
    : undefined;

const planServiceStop = (s: ServiceState, now: Date): PlannedAction => {
  const base = { arn: s.arn, type: 'ecs-service' as const, name: s.name, cluster: s.clusterName };
  const read = readSaved(s.tags, decodeService);
  if (read.error) return { ...base, steps: [], outcome: 'failed', detail: read.error };
  let saved = read.saved;
  const stale = saved && staleTag(s, saved);
  if (stale) return { ...base, steps: [], outcome: 'failed', detail: stale };
  const steps: Step[] = [];
  const changes: string[] = [];
  const liveScaling = s.scaling && !sameScaling(s.scaling, PARKED) ? s.scaling : undefined;
  if (!saved) {
    const state: SavedService = {
      desired: s.desiredCount,
      ...(s.scaling && { scaling: s.scaling }),
      at: stamp(now),
    };
    steps.push({ op: 'save-service-state', value: encodeService(state) });
  } else if (!saved.scaling && liveScaling) {
    // A scalable target was registered after the stop saved state without one: its limits are added
    // to the saved state (nothing saved is replaced) before it is parked, so start can restore them.
    saved = { ...saved, scaling: liveScaling };
    steps.push({ op: 'save-service-state', value: encodeService(saved) });
    changes.push(
      `scaling target registered since the stop: min ${liveScaling.min} max ${liveScaling.max} added to the saved state`,
    );
  }
  if (liveScaling) {
    steps.push({ op: 'park-scaling', resourceId: scalingResourceId(s.clusterName, s.name) });
    changes.push(limitsChange(liveScaling, PARKED));
  }
  if (s.desiredCount > 0) {
    steps.push({ op: 'set-desired-count', desiredCount: 0 });
    changes.unshift(`desiredCount ${s.desiredCount} → 0`);
  }
  if (saved) {
    const restores = `start restores ${describeSaved(saved)}`;
    if (changes.length === 0) {
      return {
        ...base,
        steps,
        outcome: 'unchanged',
        detail: `already stopped by nightshift at ${saved.at}; ${restores}`,
      };
    }
    return {
      ...base,
      steps,
      detail: `${changes.join('; ')} (finishing a stop from ${saved.at}; saved state kept, ${restores})`,
    };
  }
  if (changes.length === 0) {
    return { ...base, steps, detail: `already at desiredCount 0; saved as 0 so start leaves it at 0` };
  }
  return { ...base, steps, detail: `${changes.join('; ')}; saved in tag ${SAVED_STATE_TAG}` };
};

const planServiceStart = (s: ServiceState): PlannedAction => {
  const base = { arn: s.arn, type: 'ecs-service' as const, name: s.name, cluster: s.clusterName };
  const { saved, error } = readSaved(s.tags, decodeService);
  if (error) return { ...base, steps: [], outcome: 'failed', detail: error };
  if (!saved) {
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
    changes.unshift(`desiredCount ${s.desiredCount} → ${saved.desired}`);
  }
  steps.push({ op: 'clear-service-state' });
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
    return action === 'stop' ? planServiceStop(s, opts.now) : planServiceStart(s);
  });

const groupBase = (g: GroupState) => ({ arn: g.arn, type: 'autoscaling-group' as const, name: g.name });

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
      const stops = action !== undefined && action.outcome !== 'failed' && action.outcome !== 'skipped';
      if (!stops && s.desiredCount > 0) {
        return `capacity left running: service ${s.name} in cluster ${c.name} still runs (desiredCount ${s.desiredCount})`;
      }
    }
  }
  return undefined;
};

/** Same rule as for services: a group that runs with other sizes than it saved carries a stale tag. */
const staleGroupTag = (g: GroupState, saved: SavedGroup) =>
  !sameSize(g, PARKED_GROUP) && !sameSize(g, saved)
    ? `saved state from ${saved.at} (${sizeText(saved)}) does not match the running group (${sizeText(g)}): ` +
      `it may be left over from a start that could not remove it; nothing changed — delete tag ${SAVED_STATE_TAG} and run again`
    : undefined;

const planGroupStop = (
  g: GroupState,
  keep: string | undefined,
  requires: string[],
  now: Date,
): PlannedAction => {
  if (keep) return { ...groupBase(g), steps: [], outcome: 'skipped', detail: keep };
  const { saved, error } = readSaved(g.tags, decodeGroup);
  if (error) return { ...groupBase(g), steps: [], outcome: 'failed', detail: error };
  const stale = saved && staleGroupTag(g, saved);
  if (stale) return { ...groupBase(g), steps: [], outcome: 'failed', detail: stale };
  if (saved) {
    if (sameSize(g, PARKED_GROUP)) {
      return {
        ...groupBase(g),
        steps: [],
        outcome: 'unchanged',
        detail: `already parked by nightshift at ${saved.at}; start restores ${sizeText(saved)}`,
      };
    }
    return {
      ...groupBase(g),
      steps: [{ op: 'set-group-size', size: PARKED_GROUP }],
      requires,
      detail: `${sizeChange(g, PARKED_GROUP)} (finishing a stop from ${saved.at}; saved state kept, start restores ${sizeText(saved)})`,
    };
  }
  const value = encodeGroup({ min: g.min, desired: g.desired, max: g.max, at: stamp(now) });
  return {
    ...groupBase(g),
    steps: [
      { op: 'save-group-state', value },
      ...(sameSize(g, PARKED_GROUP) ? [] : [{ op: 'set-group-size' as const, size: PARKED_GROUP }]),
    ],
    requires,
    detail: sameSize(g, PARKED_GROUP)
      ? 'already at min 0 desired 0 max 0; saved as 0 so start leaves it at 0'
      : `${sizeChange(g, PARKED_GROUP)}; saved in tag ${SAVED_STATE_TAG}`,
  };
};

const planGroupStart = (g: GroupState, rules: readonly TagRule[], users: ClusterState[]): PlannedAction => {
  const own = protectedBy(g.tags, rules) ?? users.map((c) => protectedBy(c.tags, rules)).find(Boolean);
  if (own) return { ...groupBase(g), steps: [], outcome: 'skipped', detail: `protected by tag ${own}` };
  const { saved, error } = readSaved(g.tags, decodeGroup);
  if (error) return { ...groupBase(g), steps: [], outcome: 'failed', detail: error };
  if (!saved) {
    return {
      ...groupBase(g),
      steps: [],
      outcome: 'unchanged',
      detail: `not parked by nightshift (${sizeText(g)})`,
    };
  }
  const stale = staleGroupTag(g, saved);
  if (stale) return { ...groupBase(g), steps: [], outcome: 'failed', detail: stale };
  const restore = sameSize(g, saved)
    ? []
    : [{ op: 'set-group-size' as const, size: { min: saved.min, desired: saved.desired, max: saved.max } }];
  return {
    ...groupBase(g),
    steps: [...restore, { op: 'clear-group-state' }],
    detail: `${restore.length > 0 ? sizeChange(g, saved) : `already at ${sizeText(saved)}`}; saved state from ${saved.at} removed`,
  };
};

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
    ...selection.unmatched,
  ];
  const services = planServices(input.action, selection.selected, clustersByArn, opts);
  const plannedByArn = new Map<string, PlannedAction>(services.map((p) => [p.arn, p]));
  // Clusters in play are marked in the same map by ARN, so group rules can tell them from sharers.
  const inPlay = estate.clusters.filter(
    (c) => selection.fully.has(c.arn) || selection.selected.some((s) => s.clusterArn === c.arn),
  );
  for (const c of inPlay)
    plannedByArn.set(c.arn, { arn: c.arn, type: 'ecs-cluster', name: c.name, steps: [], detail: '' });

  const groups = estate.groups
    .map((g) => ({
      g,
      users: (estate.groupUsers[g.name] ?? [])
        .map((arn) => clustersByArn.get(arn))
        .filter((c): c is ClusterState => !!c),
    }))
    .filter(({ users }) => users.some((c) => plannedByArn.has(c.arn)))
    .map(({ g, users }) => {
      if (input.action === 'start') return planGroupStart(g, opts.protectedTags, users);
      const keep = groupKeepReason(g, users, selection, plannedByArn, opts.protectedTags);
      const requires = services
        .filter((p) => p.steps.length > 0 && users.some((c) => c.name === p.cluster))
        .map((p) => p.arn);
      return planGroupStop(g, keep, requires, opts.now);
    });

  return {
    action: input.action,
    phases: input.action === 'stop' ? [notFound, services, groups] : [notFound, groups, services],
  };
};
