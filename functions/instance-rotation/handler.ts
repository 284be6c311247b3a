import type { AutoScalingGroup } from '@aws-sdk/client-auto-scaling';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { OutOfTimeError } from '#shared/deadline.ts';
import { parseDuration } from '#shared/duration.ts';
import { parseEnv } from '#shared/env.ts';
import { groupLeaseScope } from '#shared/group-tags.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { tagMapUpper } from '#shared/tags.ts';
import { parseRotateInput, type RotateInput } from '#events/instance-rotation/schema.ts';
import { RotationConfig } from './config.ts';
import { executeRotations } from './execute.ts';
import {
  describeGroups,
  readGroupStates,
  ROTATION_TAG,
  type Clients,
  type InFlight,
  type UnreadGroup,
} from './inventory.ts';
import { decodeRotation, leftSuspended, planRotations, type RotationOptions } from './plan.ts';
import { windowAt, type WindowFacts } from './window.ts';
import { bundledSchedules } from './schedules.ts';
import type { BundledSchedules } from '#shared/parked.ts';

export interface Deps {
  clients: Clients;
  config: RotationConfig;
  now: () => Date;
  /** The schedules a group may follow (default: those bundled into the function). */
  schedules?: () => BundledSchedules;
}

let deps: Deps | undefined;
/** The clients of a run: where the function runs, or a fleet target's (RunContext.target). */
const clientsFor = (scope?: ClientScope): Clients => ({
  autoscaling: autoScalingClient(scope),
  ec2: ec2Client(scope),
  // Only runs that look up or drain a container instance load ECS (one client per scope, as the others).
  ecs: () => import('#shared/aws/ecs.ts').then(({ ecsClient }) => ecsClient(scope)),
});

const defaultDeps = (): Deps =>
  (deps ??= {
    clients: clientsFor(),
    config: parseEnv(RotationConfig),
    now: () => new Date(),
  });

/**
 * The rotation in flight on a group, read from its saved state, so only its instances (the one being
 * rotated, its replacement, those launched since it began) are looked up in ECS.
 */
const inFlightOf = (tags: Record<string, string>): InFlight | undefined => {
  try {
    if (!tags[ROTATION_TAG]) return undefined;
    const r = decodeRotation(tags[ROTATION_TAG]);
    return { instance: r.instance, started: r.started, ...(r.replacement && { replacement: r.replacement }) };
  } catch {
    return undefined;
  }
};

/**
 * What stays suspended outside the window when a rotation in flight cannot be ended in this run: none
 * when the rotation has nothing suspended any more (its processes were resumed: a roll-back draining
 * its replacement, or one that could not tell its replacement apart).
 */
const inFlightNote = (g: { tags: Record<string, string>; suspended: string[] }, window: WindowFacts) => {
  const text = g.tags[ROTATION_TAG];
  if (text === undefined) return '';
  try {
    const r = decodeRotation(text);
    if (!r.suspended.some((p) => g.suspended.includes(p))) return '';
  } catch {
    // Unreadable: say what is suspended, whatever suspended it.
  }
  return leftSuspended(g, window);
};

/**
 * A group this run could not claim: `undone` when another run holds it (its work is still to do: it is
 * carried over, and the undone alarm fires if it keeps happening), `failed` when the lease table could
 * not be used, and `failed` too when that leaves a rotation in flight suspended outside its window.
 */
const leaseRow = (
  g: AutoScalingGroup,
  refused: { reason: string; outcome: 'undone' | 'failed' },
  window: WindowFacts,
): ResourceResult => {
  const brief = {
    tags: tagMapUpper(g.Tags),
    suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName ?? ''),
  };
  const note = inFlightNote(brief, window);
  return {
    arn: g.AutoScalingGroupARN ?? '',
    type: 'autoscaling-group',
    outcome: note ? 'failed' : refused.outcome,
    detail: `${refused.reason}${note}`,
  };
};

/** A group the deadline kept from being read: undone, so the next run starts with it. */
const unreadRow = (u: UnreadGroup, window: WindowFacts): ResourceResult => ({
  arn: u.arn,
  type: 'autoscaling-group',
  outcome: 'undone',
  detail:
    `not read: the Lambda was about to time out while reading ${u.what}; nothing changed — the next run starts with it` +
    inFlightNote(u, window),
});

const asUnread = (g: AutoScalingGroup, what: string): UnreadGroup => ({
  name: g.AutoScalingGroupName ?? '',
  arn: g.AutoScalingGroupARN ?? '',
  tags: tagMapUpper(g.Tags),
  suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName ?? ''),
  what,
});

/**
 * Reads stop this long before the Lambda's deadline (its timeout is 120 s), so a run whose reads are cut
 * still applies what it read: the groups it read first (carried over, rotations in flight) advance, the
 * rest are `undone` and go first in the next run. Without it a cut read would leave no time to change
 * anything, and the same estate would be read, and left, run after run.
 */
export const APPLY_RESERVE_MS = 30_000;

export const run = async (input: RotateInput, ctx: RunContext, d: Deps = defaultDeps()): Promise<Report> => {
  const now = d.now();
  const readTime = () => ctx.hasTime() && ctx.remainingMs() > APPLY_RESERVE_MS;
  const dryRun = input.dryRun === true || d.config.DRY_RUN;
  // A run that may still hold leases when the window's last run starts closes the window itself.
  const runsUntil = new Date(now.getTime() + ctx.remainingMs());
  const window = windowAt(d.config.schedule, now, d.config.scheduleEnabled, runsUntil);
  const opts: RotationOptions = {
    maxAge: input.maxAge ? { text: input.maxAge, ms: parseDuration(input.maxAge) ?? 0 } : d.config.MAX_AGE,
    replacementTimeoutMinutes: d.config.REPLACEMENT_TIMEOUT_MINUTES,
    abandonBackoff: d.config.ABANDON_BACKOFF,
    now,
    window,
    schedules: (d.schedules ?? bundledSchedules)(),
  };

  // The groups the previous run left undone (its deadline, or another run's lease) are claimed, read
  // and advanced first, so a run cut short every day does not leave the same tail unread every day;
  // rotations in flight before the rest (a closing run must end them; the others only start rotations).
  // In order: carried over with a rotation in flight, in flight, carried over, the rest.
  const first = await ctx.carriedOver('rotate');
  const rank = (g: AutoScalingGroup) =>
    (first.has(g.AutoScalingGroupARN ?? '') ? 0 : 2) +
    ((g.Tags ?? []).some((t) => t.Key === ROTATION_TAG) ? 0 : 1);
  const order = [0, 1, 2, 3];
  const carriedFirst = (groups: AutoScalingGroup[]) =>
    order.flatMap((n) => groups.filter((g) => rank(g) === n));

  let listed: AutoScalingGroup[];
  // The report keeps the order AWS lists the groups in.
  const position = new Map<string, number>();
  try {
    const described = await describeGroups(d.clients, input.groups, readTime);
    described.forEach((g, i) => position.set(g.AutoScalingGroupARN ?? '', i));
    listed = carriedFirst(described);
  } catch (error) {
    if (!(error instanceof OutOfTimeError)) throw error;
    const note = window.open
      ? ''
      : `; rotations in flight stay as they are, with their processes suspended, outside the window (${window.reason}): the next run, or \`nightshift rotate\`, ends them`;
    return buildReport('rotate', dryRun, [
      { arn: '', type: 'run', outcome: 'undone', detail: `${error.message}; nothing changed${note}` },
    ]);
  }

  // Each group is claimed before the state the plan is made from is read (dry runs take no leases):
  // ecs-scheduler takes the same lease, so neither parks nor rotates a group the other is changing.
  const extra: ResourceResult[] = [];
  const setAside = new Set<string>();
  let toRead = listed;
  if (!dryRun) {
    const scopeOf = (g: AutoScalingGroup) => groupLeaseScope(g.AutoScalingGroupARN ?? '');
    const refused = await ctx.leases.takeEach(listed.map(scopeOf));
    const leased: AutoScalingGroup[] = [];
    for (const g of listed) {
      const claim = refused.get(scopeOf(g));
      if (claim === undefined) leased.push(g);
      else {
        extra.push(leaseRow(g, claim, window));
        setAside.add(g.AutoScalingGroupName ?? '');
      }
    }
    try {
      toRead =
        leased.length > 0
          ? carriedFirst(
              await describeGroups(
                d.clients,
                leased.map((g) => g.AutoScalingGroupName ?? ''),
                readTime,
              ),
            )
          : [];
    } catch (error) {
      if (!(error instanceof OutOfTimeError)) throw error;
      toRead = [];
      extra.push(...leased.map((g) => unreadRow(asUnread(g, error.what), window)));
      for (const g of leased) setAside.add(g.AutoScalingGroupName ?? '');
    }
  }

  const { states, unread } = await readGroupStates(d.clients, toRead, inFlightOf, readTime, now);
  extra.push(...unread.map((u) => unreadRow(u, window)));
  for (const u of unread) setAside.add(u.name);
  const inListOrder = [...states].sort((a, b) => (position.get(a.arn) ?? 0) - (position.get(b.arn) ?? 0));
  const plan = planRotations(
    inListOrder,
    input.groups?.filter((name) => !setAside.has(name)),
    opts,
  );

  if (dryRun) {
    const report = await executeRotations(plan, d.clients, { dryRun, hasTime: ctx.hasTime }, extra);
    return { ...report, planDigest: planDigest(plan) };
  }
  const changed = refuseChangedPlan(input.planDigest, plan);
  if (changed) return buildReport('rotate', false, [...changed, ...extra]);
  // Applied in the order read: carried over and in flight first, should the deadline come mid-way.
  const urgent = new Set(listed.filter((g) => rank(g) < 3).map((g) => g.AutoScalingGroupARN ?? ''));
  return executeRotations(plan, d.clients, { dryRun, hasTime: ctx.hasTime, first: urgent }, extra);
};

/** A fleet target's run acts there, with the spoke role's credentials (shared/handler.ts). */
const depsFor = (ctx: RunContext): Deps =>
  ctx.target ? { ...defaultDeps(), clients: clientsFor(ctx.target.scope) } : defaultDeps();

export const handler = withOps('instance-rotation', parseRotateInput, (input, ctx) =>
  run(input, ctx, depsFor(ctx)),
);
