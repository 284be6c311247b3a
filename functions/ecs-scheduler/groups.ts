/**
 * Auto Scaling groups that are not ECS capacity providers, stopped and started on their own (`"groups":
 * [names]`, CLI `--group`): parked at 0/0/0 with their min/desired/max saved on the group, restored
 * exactly — with the same group planners as capacity groups (plan.ts), no second copy of them.
 */
import { DescribeCapacityProvidersCommand } from '@aws-sdk/client-ecs';
import { paginateDescribeAutoScalingGroups, type AutoScalingGroup } from '@aws-sdk/client-auto-scaling';
import { assertTime, pagesWithin } from '#shared/deadline.ts';
import { protectedBy, tagMapUpper, type TagRule } from '#shared/tags.ts';
import type { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import type { GroupState, Held, Reader } from './inventory.ts';
import { planGroupStart, planGroupStop, type PlannedAction } from './plan.ts';
import {
  decideSubject,
  SCHEDULE_TAG,
  withOverrideClear,
  type Decided,
  type ReconcileOptions,
} from './reconcile.ts';
import type { Evaluation } from '#shared/schedules.ts';

/** A standalone group as its own stop and start need it. */
export interface StandaloneGroup extends GroupState {
  /** It has a warm pool (WarmPoolConfiguration): instances outside the group's capacity. */
  warmPool: boolean;
  /** Instances protected from scale-in: a desired capacity of 0 would not terminate them. */
  protectedInstances: string[];
  /** When AWS created it (CreatedTime): a reconcile's grace period. */
  createdAt?: Date;
}

/** DescribeAutoScalingGroups: MaxRecords up to 100, which also caps the names a call. */
const GROUPS_PAGE = 100;

export const standaloneOf = (g: AutoScalingGroup): StandaloneGroup => ({
  arn: g.AutoScalingGroupARN ?? '',
  name: g.AutoScalingGroupName ?? '',
  min: g.MinSize ?? 0,
  max: g.MaxSize ?? 0,
  desired: g.DesiredCapacity ?? 0,
  tags: tagMapUpper(g.Tags),
  warmPool: g.WarmPoolConfiguration !== undefined,
  protectedInstances: (g.Instances ?? [])
    .filter((i) => i.ProtectedFromScaleIn)
    .map((i) => i.InstanceId ?? ''),
  ...(g.CreatedTime && { createdAt: new Date(g.CreatedTime) }),
});

/** The named groups, 100 names a call; the names not found are returned apart. */
export const readStandaloneGroups = async (
  { clients, hasTime }: Reader,
  names: readonly string[],
): Promise<{ groups: StandaloneGroup[]; missing: string[] }> => {
  const what = 'Auto Scaling groups';
  const unique = [...new Set(names)];
  const groups: StandaloneGroup[] = [];
  for (let i = 0; i < unique.length; i += GROUPS_PAGE) {
    if (i > 0) assertTime(hasTime, what);
    const pages = paginateDescribeAutoScalingGroups(
      { client: clients.autoscaling },
      { AutoScalingGroupNames: unique.slice(i, i + GROUPS_PAGE), MaxRecords: GROUPS_PAGE },
    );
    for await (const page of pagesWithin(pages, hasTime, what)) {
      groups.push(...(page.AutoScalingGroups ?? []).map(standaloneOf));
    }
  }
  const found = new Set(groups.map((g) => g.name));
  return { groups, missing: unique.filter((n) => !found.has(n)) };
};

/**
 * Every ECS capacity provider of the account, by the ARN of its group: a group behind one parks and
 * comes back with its cluster's services, never on its own. DescribeCapacityProviders without names
 * lists them all, 10 a page (maxResults 1–10), the rest behind nextToken.
 */
export const capacityProviderGroups = async ({ clients, hasTime }: Reader): Promise<Map<string, string>> => {
  const what = 'ECS capacity providers';
  const byGroup = new Map<string, string>();
  let nextToken: string | undefined;
  do {
    if (nextToken) assertTime(hasTime, what);
    const out = await clients.ecs.send(new DescribeCapacityProvidersCommand({ nextToken }));
    for (const p of out.capacityProviders ?? []) {
      const arn = p.autoScalingGroupProvider?.autoScalingGroupArn;
      if (arn && p.name) byGroup.set(arn, p.name);
    }
    nextToken = out.nextToken || undefined;
  } while (nextToken);
  return byGroup;
};

const row = (
  g: { arn: string; name: string },
  outcome: PlannedAction['outcome'],
  detail: string,
): PlannedAction => ({ arn: g.arn, type: 'autoscaling-group', name: g.name, steps: [], outcome, detail });

/**
 * Why a standalone group may not be parked, or undefined. A warm pool keeps instances outside the
 * group's capacity (stopped or running, by its pool state), which a size of 0/0/0 does not park; an
 * instance protected from scale-in is never terminated when desired capacity drops (EC2 Auto Scaling
 * "Use instance scale-in protection"), so the group would not reach 0.
 */
const cannotPark = (g: StandaloneGroup): string | undefined => {
  if (g.warmPool) {
    return 'has a warm pool: parking the group at 0/0/0 would leave its warm instances as they are; not parked — remove the warm pool (or set its size to 0) to park it';
  }
  if (g.protectedInstances.length > 0) {
    const shown = g.protectedInstances.slice(0, 5).join(', ');
    const more = g.protectedInstances.length > 5 ? ` and ${g.protectedInstances.length - 5} more` : '';
    return `instances protected from scale-in (${shown}${more}): at desired 0 they would keep running; not parked — remove the protection to park it`;
  }
  return undefined;
};

/**
 * The rows of the named standalone groups for a stop or a start. Pure. A capacity-provider group, a
 * protected one, and (on a stop) one that cannot be parked are skipped with the reason; a group this run
 * holds no lease on gets the lease's row.
 */
export const planStandaloneGroups = (
  action: SchedulerInput['action'],
  read: { groups: readonly StandaloneGroup[]; missing: readonly string[]; held?: readonly Held[] },
  providers: ReadonlyMap<string, string>,
  opts: { protectedTags: readonly TagRule[]; now: Date },
): PlannedAction[] => [
  ...read.missing.map((name) =>
    row({ arn: name, name }, 'failed', 'Auto Scaling group not found; nothing done for it'),
  ),
  ...(read.held ?? []).map((h) => row(h, h.outcome, h.reason)),
  ...read.groups.map((g) => {
    const provider = providers.get(g.arn);
    if (provider) {
      return row(
        g,
        'skipped',
        `capacity provider ${provider} of an ECS cluster: it parks and comes back with the cluster's services — ${action} the cluster instead`,
      );
    }
    const rule = protectedBy(g.tags, opts.protectedTags);
    if (rule) return row(g, 'skipped', `protected by tag ${rule} on the group`);
    if (action === 'start') return planGroupStart(g, opts.protectedTags, [], opts.now);
    const reason = cannotPark(g);
    return reason ? row(g, 'skipped', reason) : planGroupStop(g, undefined, [], opts.now);
  }),
];

/**
 * Every group of the account that opted in with `nightshift:schedule` (DescribeAutoScalingGroups with
 * a `tag-key` filter, 100 a page).
 */
export const readScheduledGroups = async ({ clients, hasTime }: Reader): Promise<StandaloneGroup[]> => {
  const what = 'Auto Scaling groups tagged nightshift:schedule';
  const groups: StandaloneGroup[] = [];
  const pages = paginateDescribeAutoScalingGroups(
    { client: clients.autoscaling },
    { Filters: [{ Name: 'tag-key', Values: [SCHEDULE_TAG] }], MaxRecords: GROUPS_PAGE },
  );
  for await (const page of pagesWithin(pages, hasTime, what)) {
    groups.push(...(page.AutoScalingGroups ?? []).map(standaloneOf));
  }
  return groups;
};

export interface GroupReconcile {
  /** Rows with nothing to stop or start (or a tag to remove only). */
  idle: PlannedAction[];
  stop: PlannedAction[];
  start: PlannedAction[];
  /** The groups with work: a mutating run leases them and reads them again. */
  withWork: string[];
  /** Groups a start brings back because an override asks for it: when that override ends. */
  overrideStarts: Map<string, Date>;
}

const prefixed = (p: PlannedAction, why: string): PlannedAction => ({ ...p, detail: `${why}: ${p.detail}` });

/**
 * What a reconcile does to the groups that opted in on their own: the same decision as for services
 * (decideSubject: schedule, override, grace, enforced, stage), and the standalone group plans. A
 * capacity-provider group is its cluster's: skipped, saying so. Pure.
 */
export const planGroupReconcile = (
  groups: readonly StandaloneGroup[],
  providers: ReadonlyMap<string, string>,
  opts: ReconcileOptions,
  evaluations: Map<string, Evaluation>,
): GroupReconcile => {
  const out: GroupReconcile = { idle: [], stop: [], start: [], withWork: [], overrideStarts: new Map() };
  for (const g of groups) {
    const provider = providers.get(g.arn);
    if (provider) {
      out.idle.push(
        row(
          g,
          'skipped',
          `capacity provider ${provider} of an ECS cluster: it follows its cluster's services (put ${SCHEDULE_TAG} on the cluster or its services)`,
        ),
      );
      continue;
    }
    const d: Decided | undefined = decideSubject(
      {
        arn: g.arn,
        name: g.name,
        type: 'autoscaling-group',
        tags: g.tags,
        ...(g.createdAt && { createdAt: g.createdAt }),
      },
      opts,
      evaluations,
    );
    if (!d) continue;
    const expired = d.override && !d.override.active ? d.override.text : undefined;
    const withClear = (p: PlannedAction) => withOverrideClear(p, expired);
    if (!d.want) {
      const r = withClear(row(g, d.idle?.outcome ?? 'unchanged', d.idle?.detail ?? d.why));
      out.idle.push(r);
      if (r.steps.length > 0) out.withWork.push(g.name);
      continue;
    }
    const [planned] = planStandaloneGroups(d.want, { groups: [g], missing: [] }, providers, opts);
    const p = withClear(prefixed(planned!, d.why));
    (d.want === 'stop' ? out.stop : out.start).push(p);
    if (p.steps.length > 0) out.withWork.push(g.name);
    if (d.want === 'start' && d.override?.active) out.overrideStarts.set(g.arn, d.override.override.until);
  }
  return out;
};
