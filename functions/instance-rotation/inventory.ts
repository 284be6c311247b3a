import {
  DescribeInstanceRefreshesCommand,
  paginateDescribeAutoScalingGroups,
  paginateDescribeScalingActivities,
  type AutoScalingClient,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling';
import { paginateDescribeInstances, type EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient } from '@aws-sdk/client-ecs';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { assertTime, OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import { isParked, ROTATION_TAG } from '#shared/group-tags.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';

/** Opt-in tag on a group: `true`, or a duration overriding maxAge. Public contract. */
export const ROTATE_TAG = 'nightshift:rotate';
/** The rotation in flight, saved on the group (shared with ecs-scheduler through shared/group-tags.ts). */
export { ROTATION_TAG };
/** A rotation was abandoned at this time: no new one starts before ABANDON_BACKOFF has passed. */
export const ABANDONED_TAG = 'nightshift:rotation-abandoned';

const READ_CONCURRENCY = 4;
const ACTIVITY_DONE = new Set(['Successful', 'Failed', 'Cancelled']);
const REFRESH_ACTIVE = new Set(['Pending', 'InProgress', 'Cancelling', 'RollbackInProgress', 'Baking']);

// Page sizes, each the API's maximum (Auto Scaling and ECS API references):
// DescribeAutoScalingGroups MaxRecords 100, at most 50 names a call by default;
// DescribeScalingActivities MaxRecords 100; DescribeInstanceRefreshes MaxRecords 100;
// EC2 DescribeInstances MaxResults 1000, at most 200 values in one filter (ECS's in containers.ts).
const GROUPS_PAGE = 100;
const GROUP_NAMES_PER_CALL = 50;
const ACTIVITIES_PAGE = 100;
const INSTANCES_PAGE = 1000;
const FILTER_VALUES = 200;

/**
 * Scaling activities come newest first. An activity cannot stay in progress longer than a lifecycle
 * hook can hold an instance (48 hours at most, Auto Scaling user guide), so older pages are not read;
 * a group with more than ACTIVITY_PAGES pages in that time is treated as "cannot tell".
 */
const ACTIVITY_LOOKBACK_MS = 48 * 3_600_000;
const ACTIVITY_PAGES = 10;

export interface InstanceState {
  id: string;
  lifecycle: string;
  health: string;
  /** Since when the instance has been running: the primary network interface's attach time (LaunchTime resets on stop/start). */
  since?: Date;
}

/**
 * A scaling activity that brought an instance into the group or took one out, since the rotation in
 * flight began: how a run tells the rotation's replacement from an instance the group launched for
 * another reason (an unhealthy one replaced, say).
 */
export interface ActivityRecord {
  kind: 'launch' | 'terminate';
  /** The instance it names (`Launching a new EC2 instance: i-…`); a launch that failed early names none. */
  instance?: string;
  /** Why it happened, as Auto Scaling says (`… changing the desired capacity from 3 to 4. …`). */
  cause: string;
  status: string;
}

/** What a run needs to know of a rotation in flight to read its group (from the group's tag). */
export interface InFlight {
  /** The instance being replaced. */
  instance: string;
  /** Its replacement, once recorded. */
  replacement?: string;
  /** When the rotation began: instances launched since may be its replacement. */
  started: string;
}

export interface ContainerInstanceState {
  cluster: string;
  arn: string;
  status: string;
  runningTasks: number;
}

export interface GroupState {
  name: string;
  arn: string;
  min: number;
  max: number;
  desired: number;
  tags: TagMap;
  suspended: string[];
  instances: InstanceState[];
  /** Descriptions of scaling activities still in progress (or why that could not be told). */
  activities: string[];
  /**
   * With a rotation in flight: the group's launches and terminations since it began, newest first.
   * Undefined when they could not all be read (more than ACTIVITY_PAGES pages back to its start).
   */
  history?: ActivityRecord[];
  /** Status of an instance refresh in progress, or the error that kept us from knowing. */
  refresh?: string;
  /**
   * ECS container instances on the instances that matter, by EC2 instance id: with a rotation in
   * flight, the one being rotated and those launched since it began (its replacement among them);
   * otherwise the oldest in service (the next to rotate, which would be drained first).
   */
  containers: Record<string, ContainerInstanceState>;
  /** The group has a warm pool (its instances keep their age when reused). */
  warmPool?: boolean;
  /** Desired capacity counts units (vCPU, memory or weights), not instances. */
  weighted?: boolean;
  /** What kept the group's state from being read; the planner reports it and changes nothing. */
  readError?: string;
}

/** A group the Lambda's deadline kept from being read: reported `undone`, first in the next run. */
export interface UnreadGroup {
  name: string;
  arn: string;
  tags: TagMap;
  suspended: string[];
  /** What was being read: `scaling activities of web`. */
  what: string;
}

export interface Clients {
  autoscaling: AutoScalingClient;
  ec2: EC2Client;
  /**
   * ECS, or how to get it: the handler loads the ECS client (and containers.ts) only in runs that look up
   * or drain a container instance, which most runs (nothing due) never do.
   */
  ecs: ECSClient | (() => Promise<ECSClient>);
}

/** The run's ECS client, loaded on first use when the handler gave a factory. */
export const ecsOf = async (clients: Clients): Promise<ECSClient> =>
  typeof clients.ecs === 'function' ? clients.ecs() : clients.ecs;

/** Instances, the longest-running first; those whose start is unknown (just launched) last. */
export const oldestFirst = <I extends { since?: Date }>(instances: readonly I[]): I[] =>
  [...instances].sort(
    (a, b) =>
      (a.since?.getTime() ?? Number.MAX_SAFE_INTEGER) - (b.since?.getTime() ?? Number.MAX_SAFE_INTEGER),
  );

/**
 * The groups to look at: those named (all of them, opted in or not, so the report can say why one is
 * left alone), or every group carrying the opt-in tag or a rotation in flight (tag-key filter, values
 * OR-ed). Every page, within the deadline.
 */
export const describeGroups = async (
  clients: Clients,
  names: readonly string[] | undefined,
  hasTime: () => boolean,
): Promise<AutoScalingGroup[]> => {
  const out: AutoScalingGroup[] = [];
  const requests = names
    ? chunk(names, GROUP_NAMES_PER_CALL).map((batch) => ({ AutoScalingGroupNames: batch }))
    : [{ Filters: [{ Name: 'tag-key', Values: [ROTATE_TAG, ROTATION_TAG] }] }];
  for (const request of requests) {
    assertTime(hasTime, 'Auto Scaling groups');
    const pages = paginateDescribeAutoScalingGroups(
      { client: clients.autoscaling, pageSize: GROUPS_PAGE },
      request,
    );
    for await (const page of pagesWithin(pages, hasTime, 'Auto Scaling groups')) {
      out.push(...(page.AutoScalingGroups ?? []));
    }
  }
  return out;
};

/**
 * Attach time of the primary network interface (device 0), falling back to LaunchTime. Read with an
 * instance-id filter: a just-launched instance is not yet visible to InstanceIds everywhere (EC2 is
 * eventually consistent), which would fail the whole call.
 */
const runningSince = async (
  ec2: EC2Client,
  ids: string[],
  hasTime: () => boolean,
): Promise<Map<string, Date | undefined>> => {
  const since = new Map<string, Date | undefined>();
  for (const batch of chunk(ids, FILTER_VALUES)) {
    assertTime(hasTime, 'EC2 instances');
    const pages = paginateDescribeInstances(
      { client: ec2, pageSize: INSTANCES_PAGE },
      { Filters: [{ Name: 'instance-id', Values: batch }] },
    );
    for await (const page of pagesWithin(pages, hasTime, 'EC2 instances')) {
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const primary = instance.NetworkInterfaces?.find((n) => n.Attachment?.DeviceIndex === 0);
        since.set(instance.InstanceId ?? '', primary?.Attachment?.AttachTime ?? instance.LaunchTime);
      }
    }
  }
  return since;
};

/** Activities this far before a rotation's start still count as its own (clocks differ a little). */
const HISTORY_MARGIN_MS = 60_000;
const LAUNCH = /^(?:Launching a new EC2 instance|Attaching an existing EC2 instance)(?::\s*(i-[0-9a-f]+))?/;
const TERMINATE = /^(?:Terminating EC2 instance|Detaching EC2 instance)(?::\s*(i-[0-9a-f]+))?/;

const recordOf = (description: string, cause: string, status: string): ActivityRecord | undefined => {
  const launch = LAUNCH.exec(description);
  if (launch) return { kind: 'launch', ...(launch[1] && { instance: launch[1] }), cause, status };
  const terminate = TERMINATE.exec(description);
  if (terminate) return { kind: 'terminate', ...(terminate[1] && { instance: terminate[1] }), cause, status };
  return undefined;
};

/**
 * The group's scaling activities still in progress and, with `since` (a rotation's start), its launches
 * and terminations since then. Activities come newest first; pages are read back ACTIVITY_LOOKBACK_MS,
 * or to `since` when that is earlier, at most ACTIVITY_PAGES pages.
 */
const readActivities = async (
  client: AutoScalingClient,
  group: string,
  hasTime: () => boolean,
  now: Date,
  since: Date | undefined,
): Promise<{ inProgress: string[]; history?: ActivityRecord[] }> => {
  const inProgress: string[] = [];
  const history: ActivityRecord[] = [];
  const from = since ? since.getTime() - HISTORY_MARGIN_MS : undefined;
  const back = Math.min(now.getTime() - ACTIVITY_LOOKBACK_MS, from ?? Number.POSITIVE_INFINITY);
  let complete = false;
  let pages = 0;
  const all = paginateDescribeScalingActivities(
    { client, pageSize: ACTIVITIES_PAGE },
    { AutoScalingGroupName: group },
  );
  for await (const page of pagesWithin(all, hasTime, `scaling activities of ${group}`)) {
    pages += 1;
    const activities = page.Activities ?? [];
    inProgress.push(
      ...activities
        .filter((a) => !ACTIVITY_DONE.has(a.StatusCode ?? ''))
        .map((a) => `${a.Description ?? 'activity'} (${a.StatusCode})`),
    );
    if (from !== undefined) {
      for (const a of activities) {
        if ((a.StartTime?.getTime() ?? now.getTime()) < from) continue;
        const record = recordOf(a.Description ?? '', a.Cause ?? '', a.StatusCode ?? '');
        if (record) history.push(record);
      }
    }
    const oldest = Math.min(...activities.map((a) => a.StartTime?.getTime() ?? now.getTime()));
    if (!page.NextToken || oldest < back) {
      complete = true;
      break;
    }
    if (pages >= ACTIVITY_PAGES) {
      inProgress.push(
        `more than ${ACTIVITY_PAGES * ACTIVITIES_PAGE} scaling activities in the last 48 h: cannot tell whether one is still in progress`,
      );
      break;
    }
  }
  return { inProgress, ...(from !== undefined && complete && { history }) };
};

const refreshInProgress = async (client: AutoScalingClient, group: string): Promise<string | undefined> => {
  try {
    // Newest first ("sorted by creation timestamp in descending order"), and a group has at most one
    // refresh in progress (StartInstanceRefresh refuses a second): an active one is on the first page.
    const out = await client.send(
      new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: group, MaxRecords: 10 }),
    );
    const active = (out.InstanceRefreshes ?? []).find((r) => REFRESH_ACTIVE.has(r.Status ?? ''));
    return active && `instance refresh ${active.InstanceRefreshId} is ${active.Status}`;
  } catch (error) {
    // Not knowing is not "no refresh": the planner treats it as unstable.
    return `could not tell whether an instance refresh is in progress (${errorMessage(error)})`;
  }
};

/** What a container-instance lookup found, and which ids it settled before the deadline, if it came. */
export interface ContainerLookup {
  found: Map<string, ContainerInstanceState>;
  /** Ids looked for in every cluster: found, or known to be no container instance. */
  settled: Set<string>;
  /** The deadline stopped the lookup: ids not in `settled` are unknown. */
  cut?: OutOfTimeError;
}

const baseState = (g: AutoScalingGroup, since: Map<string, Date | undefined>): GroupState => ({
  name: g.AutoScalingGroupName ?? '',
  arn: g.AutoScalingGroupARN ?? '',
  min: g.MinSize ?? 0,
  max: g.MaxSize ?? 0,
  desired: g.DesiredCapacity ?? 0,
  tags: tagMapUpper(g.Tags),
  suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName ?? ''),
  instances: (g.Instances ?? []).map((i) => ({
    id: i.InstanceId ?? '',
    lifecycle: i.LifecycleState ?? 'Unknown',
    health: i.HealthStatus ?? 'Unknown',
    since: since.get(i.InstanceId ?? ''),
  })),
  activities: [],
  containers: {},
  ...(g.WarmPoolConfiguration && { warmPool: true }),
  ...(((g.DesiredCapacityType && g.DesiredCapacityType !== 'units') ||
    (g.Instances ?? []).some((i) => i.WeightedCapacity && i.WeightedCapacity !== '1')) && {
    weighted: true,
  }),
});

const unread = (g: GroupState | AutoScalingGroup, what: string): UnreadGroup =>
  'AutoScalingGroupName' in g
    ? {
        name: g.AutoScalingGroupName ?? '',
        arn: g.AutoScalingGroupARN ?? '',
        tags: tagMapUpper(g.Tags),
        suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName ?? ''),
        what,
      }
    : { name: g.name, arn: g.arn, tags: g.tags, suspended: g.suspended, what };

/**
 * Reads everything the planner needs about these groups: their instances' ages, whether anything is
 * changing them, and ECS container instances. With a rotation in flight (`inFlight` reads it from the
 * group's tags): the launches and terminations since it began, and the container instances on the
 * instance being rotated and on every instance launched since (its replacement among them). Without
 * one: the container instance on the oldest instance in service. One group's failed read is that
 * group's failed row; the deadline leaves the rest `unread`, the groups given first read first.
 */
export const readGroupStates = async (
  clients: Clients,
  groups: readonly AutoScalingGroup[],
  inFlight: (tags: TagMap) => InFlight | undefined,
  hasTime: () => boolean,
  now: Date,
): Promise<{ states: GroupState[]; unread: UnreadGroup[] }> => {
  let since: Map<string, Date | undefined>;
  try {
    since = await runningSince(
      clients.ec2,
      groups.flatMap((g) => (g.Instances ?? []).map((i) => i.InstanceId ?? '')).filter(Boolean),
      hasTime,
    );
  } catch (error) {
    if (error instanceof OutOfTimeError)
      return { states: [], unread: groups.map((g) => unread(g, error.what)) };
    const readError = `EC2 DescribeInstances failed: ${errorMessage(error)}`;
    return { states: groups.map((g) => ({ ...baseState(g, new Map()), readError })), unread: [] };
  }

  const startOf = (tags: TagMap) => {
    const started = Date.parse(inFlight(tags)?.started ?? '');
    return Number.isFinite(started) ? new Date(started) : undefined;
  };
  type Read = { state: GroupState } | { unread: UnreadGroup };
  const reads = await mapLimit<AutoScalingGroup, Read>(
    groups,
    READ_CONCURRENCY,
    async (g) => {
      const base = baseState(g, since);
      try {
        const [activities, refresh] = await Promise.all([
          readActivities(clients.autoscaling, base.name, hasTime, now, startOf(base.tags)),
          refreshInProgress(clients.autoscaling, base.name),
        ]);
        return {
          state: {
            ...base,
            activities: activities.inProgress,
            ...(activities.history && { history: activities.history }),
            ...(refresh && { refresh }),
          },
        };
      } catch (error) {
        if (error instanceof OutOfTimeError) return { unread: unread(base, error.what) };
        return { state: { ...base, readError: errorMessage(error) } };
      }
    },
    { shouldStart: hasTime, notStarted: (g) => ({ unread: unread(g, 'Auto Scaling groups') }) },
  );
  const states = reads.flatMap((r) => ('state' in r ? [r.state] : []));
  const missed = reads.flatMap((r) => ('unread' in r ? [r.unread] : []));

  // The container instances that decide the next step.
  const lookup = new Map<GroupState, string[]>();
  for (const s of states) {
    if (s.readError) continue;
    const rotation = inFlight(s.tags);
    const started = startOf(s.tags);
    const ids = rotation
      ? [
          rotation.instance,
          ...(rotation.replacement ? [rotation.replacement] : []),
          // Launched since the rotation began, or so new EC2 cannot tell yet
          ...s.instances
            .filter((i) => i.id !== rotation.instance && i.id !== rotation.replacement)
            .filter((i) => !i.since || !started || i.since.getTime() >= started.getTime())
            .map((i) => i.id),
        ]
      : s.tags[ROTATE_TAG] !== undefined && !isParked(s.tags)
        ? oldestFirst(s.instances.filter((i) => i.lifecycle === 'InService' && i.health === 'Healthy'))
            .slice(0, 1)
            .map((i) => i.id)
        : [];
    if (ids.length > 0) lookup.set(s, ids);
  }
  let containers: ContainerLookup;
  try {
    // In the groups' order: those the previous run left undone come first, and are settled first.
    const ids = [...lookup.values()].flat();
    containers =
      ids.length === 0
        ? { found: new Map(), settled: new Set() }
        : await (await import('./containers.ts')).findContainerInstances(await ecsOf(clients), ids, hasTime);
  } catch (error) {
    const readError = `ECS container instances could not be read: ${errorMessage(error)}`;
    return { states: states.map((s) => (lookup.has(s) ? { ...s, readError } : s)), unread: missed };
  }
  const { found, settled, cut } = containers;
  const cutShort = (s: GroupState) =>
    cut !== undefined && (lookup.get(s) ?? []).some((id) => !settled.has(id));
  for (const [s, ids] of lookup) {
    for (const id of ids) {
      const c = found.get(id);
      if (c) s.containers[id] = c;
    }
  }
  return {
    states: states.filter((s) => !cutShort(s)),
    unread: [...missed, ...states.filter(cutShort).map((s) => unread(s, cut?.what ?? ''))],
  };
};
