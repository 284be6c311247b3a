import type { PlannedWork } from '#shared/execute.ts';
import { countField, decodeSavedState, encodeSavedState } from '#shared/saved-state.ts';
import { formatAge, parseDuration } from '#shared/duration.ts';
import { errorMessage } from '#shared/errors.ts';
import { formatLocal } from '#shared/cron.ts';
import { isParked, PARKED_TAG } from '#shared/group-tags.ts';
import {
  parkDecision,
  SCHEDULE_TAG,
  wakeHint,
  type BundledSchedules,
  type ParkDecision,
} from '#shared/parked.ts';
import {
  ABANDONED_TAG,
  oldestFirst,
  ROTATE_TAG,
  ROTATION_TAG,
  type GroupState,
  type InstanceState,
} from './inventory.ts';
import { LATE_MS, type WindowFacts } from './window.ts';

/** Processes whose suspension makes a group unsafe to rotate: nothing could replace what is removed. */
export const BLOCKING_PROCESSES = ['Launch', 'Terminate', 'HealthCheck', 'ReplaceUnhealthy'];

/**
 * Processes suspended while a rotation is in flight, and resumed after: scaling policies
 * (AlarmNotification), scheduled actions and AZ rebalancing would otherwise scale in the extra
 * instance or move desired under the rotation's feet.
 */
export const HELD_PROCESSES = ['AlarmNotification', 'ScheduledActions', 'AZRebalance'];

export type Step =
  | { op: 'save-rotation'; value: string }
  | { op: 'suspend'; processes: string[] }
  | { op: 'set-desired'; desired: number }
  | { op: 'drain'; cluster: string; containerInstance: string }
  | { op: 'undrain'; cluster: string; containerInstance: string }
  | { op: 'terminate'; instanceId: string }
  | { op: 'terminate-replacement'; instanceId: string }
  | { op: 'resume'; processes: string[] }
  | { op: 'save-abandoned'; value: string }
  | { op: 'clear-rotation'; keys: string[] };

export interface RotationWork extends PlannedWork {
  group: string;
  steps: Step[];
  /** Reported as failed once the steps are done: the rotation had to be abandoned, or was overdue. */
  failure?: string;
  /**
   * The steps end a rotation because its window ends (or ended): if one fails, the group may keep
   * processes suspended outside the window, and the row says so.
   */
  closing?: boolean;
}

export interface Rotation {
  desired: number;
  instance: string;
  /**
   * `launching` (desired raised, waiting for the replacement), `draining` (the old instance's ECS
   * container instance is DRAINING), `rolling-back` (the rotation is being undone: its replacement's
   * ECS container instance drains before the replacement is terminated; nothing is suspended).
   */
  phase: 'launching' | 'draining' | 'rolling-back';
  /** When the current phase began. */
  at: string;
  /** When the rotation began, before desired was raised: instances launched after it are its replacement. */
  started: string;
  /** Processes this rotation suspended (not those that were suspended already): resumed at the end. */
  suspended: string[];
  /**
   * The replacement's instance id, recorded as soon as a run can tell it exactly (replacementOf);
   * always set in `rolling-back`. A roll-back terminates only this instance.
   */
  replacement?: string;
}

export interface RotationOptions {
  /** maxAge from the input, else MAX_AGE. A group's own duration tag overrides it. */
  maxAge: { text: string; ms: number };
  replacementTimeoutMinutes: number;
  /** After an abandoned rotation, no new one starts in the group for this long (ABANDON_BACKOFF). */
  abandonBackoff: { text: string; ms: number };
  now: Date;
  /** Where `now` stands in the rotation schedule's windows (window.ts). */
  window: WindowFacts;
  /**
   * The schedules bundled into the function: no rotation starts in a group whose own schedule wants it
   * stopped now (shared/parked.ts). Undefined: not checked (a parked group is still never rotated).
   */
  schedules?: BundledSchedules;
}

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The tag value, at most 256 characters (encodeSavedState refuses more): with a 9-digit desired,
 * 19-character instance ids, the longest phase and every held process it is 203.
 */
export const encodeRotation = (r: Rotation) =>
  encodeSavedState({
    desired: r.desired,
    instance: r.instance,
    phase: r.phase,
    at: r.at,
    started: r.started,
    suspended: r.suspended.length > 0 ? r.suspended.join('+') : 'none',
    ...(r.replacement && { replacement: r.replacement }),
  });

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const PHASES = ['launching', 'draining', 'rolling-back'] as const;

export const decodeRotation = (text: string): Rotation => {
  const f = decodeSavedState(text);
  if (!INSTANCE_ID.test(f.instance ?? '')) throw new Error(`no valid instance in "${text}"`);
  const phase = PHASES.find((p) => p === f.phase);
  if (!phase) throw new Error(`no valid phase in "${text}"`);
  const suspended = !f.suspended || f.suspended === 'none' ? [] : f.suspended.split('+');
  if (suspended.some((p) => !HELD_PROCESSES.includes(p)))
    throw new Error(`no valid suspended list in "${text}"`);
  if (f.replacement !== undefined && !INSTANCE_ID.test(f.replacement))
    throw new Error(`no valid replacement in "${text}"`);
  if (phase === 'rolling-back' && f.replacement === undefined)
    throw new Error(`a rolling-back rotation names no replacement in "${text}"`);
  return {
    desired: countField(f, 'desired'),
    instance: f.instance as string,
    phase,
    at: f.at ?? '',
    // Saved before `started` existed: a launching rotation's `at` is its start.
    started: f.started ?? f.at ?? '',
    suspended,
    ...(f.replacement && { replacement: f.replacement }),
  };
};

/** What an abandoned rotation leaves on its group, so no new one starts before the back-off ends. */
export interface Abandonment {
  at: string;
  instance: string;
}

export const encodeAbandonment = (a: Abandonment) => encodeSavedState({ at: a.at, instance: a.instance });

export const decodeAbandonment = (text: string): Abandonment => {
  const f = decodeSavedState(text);
  if (!Number.isFinite(Date.parse(f.at ?? ''))) throw new Error(`no valid time in "${text}"`);
  return { at: f.at as string, instance: f.instance ?? 'unknown' };
};

const inService = (i: InstanceState) => i.lifecycle === 'InService' && i.health === 'Healthy';

/** The max age that applies to a group, `false` when it opted out, or an error naming the bad tag. */
const maxAgeFor = (
  g: GroupState,
  opts: RotationOptions,
): { text: string; ms: number } | { error: string } | false => {
  const tag = (g.tags[ROTATE_TAG] ?? '').trim();
  if (tag.toLowerCase() === 'true') return opts.maxAge;
  if (tag.toLowerCase() === 'false') return false;
  const ms = parseDuration(tag);
  if (ms === undefined)
    return { error: `tag ${ROTATE_TAG}=${tag} is neither true, false nor a duration such as 7d` };
  return { text: tag, ms };
};

/** Why a group must not start a rotation now, or undefined when it is stable. */
const instability = (g: GroupState): string | undefined => {
  const blocked = g.suspended.filter((p) => BLOCKING_PROCESSES.includes(p));
  if (blocked.length > 0) return `processes suspended: ${blocked.join(', ')}`;
  if (g.activities.length > 0) return `scaling activity in progress: ${g.activities[0]}`;
  if (g.refresh) return g.refresh;
  if (g.warmPool)
    return 'the group has a warm pool: its instances keep their age across reuse, so rotation is not supported';
  if (g.weighted)
    return 'desired capacity is in units (vCPU, memory or instance weights), not instances: rotation is not supported';
  const healthy = g.instances.filter(inService).length;
  if (healthy !== g.desired) return `not stable: ${healthy} of ${g.desired} desired instances in service`;
  return undefined;
};

/**
 * The plan digest's view of the steps: what changes, without the clock (`at=`, `started=`), so a dry run
 * and its apply minutes later agree.
 */
const stepsKey = (steps: readonly Step[], failure: string | undefined) =>
  steps
    .map((s) =>
      s.op === 'save-rotation' || s.op === 'save-abandoned'
        ? `${s.op} ${s.value.replace(/ ?\b(at|started)=\S+/g, '')}`
        : JSON.stringify(s),
    )
    .join('; ') + (failure ? '; reported failed' : '');

const work = (g: GroupState, fields: Omit<RotationWork, 'arn' | 'type' | 'group'>): RotationWork => ({
  arn: g.arn,
  type: 'autoscaling-group',
  group: g.name,
  ...(fields.hasWork && { digestKey: stepsKey(fields.steps, fields.failure) }),
  ...fields,
});
const idle = (g: GroupState, outcome: 'unchanged' | 'skipped' | 'failed', detail: string) =>
  work(g, { hasWork: false, outcome, detail, steps: [] });

/** Removes the rotation's state (and an expired abandonment, which a finished rotation makes moot). */
const clear = (g: GroupState): Step => ({
  op: 'clear-rotation',
  keys: g.tags[ABANDONED_TAG] !== undefined ? [ROTATION_TAG, ABANDONED_TAG] : [ROTATION_TAG],
});

/** Removes only the rotation's state: an abandonment written by this run or a recent one stays. */
const CLEAR_ROTATION: Step = { op: 'clear-rotation', keys: [ROTATION_TAG] };

/** Steps that end a rotation: resume what it suspended and remove its state. */
const finish = (g: GroupState, r: Rotation): Step[] => [
  ...(r.suspended.length > 0 ? [{ op: 'resume' as const, processes: r.suspended }] : []),
  clear(g),
];

/** On its way out of the group (terminating, or detaching). */
const leaving = (i: InstanceState) => i.lifecycle.startsWith('Terminat') || i.lifecycle.startsWith('Detach');

/**
 * Counted in desired capacity: an instance in service, or launching for it. One in Standby is not
 * (EnterStandby either decrements desired or has the group launch a replacement for it; ExitStandby
 * increments it), so terminating it with ShouldDecrementDesiredCapacity would make the group take an
 * instance in service out instead.
 */
const counted = (i: InstanceState) => i.lifecycle === 'InService' || i.lifecycle.startsWith('Pending');

/** Whether the old instance may be terminated now, with a decrement; why not otherwise. */
const canTerminateOld = (g: GroupState, r: Rotation): { others: number; ok: boolean; why?: string } => {
  const old = g.instances.find((i) => i.id === r.instance);
  const others = g.instances.filter((i) => i.id !== r.instance && inService(i)).length;
  // After terminating the old instance with a decrement, in service must still cover both the saved
  // desired and the new desired, and desired must stay within min; and only an instance in service is
  // counted in desired, so only one in service may be terminated with a decrement.
  const why =
    old && old.lifecycle !== 'InService'
      ? `${r.instance} is ${old.lifecycle}, and only an instance in service is counted in desired capacity: ` +
        'terminating it with ShouldDecrementDesiredCapacity would make the group take an instance in service out instead'
      : others < Math.max(r.desired, g.desired - 1) || g.desired - 1 < g.min
        ? `${others} other instance(s) in service, desired ${g.desired}, min ${g.min}`
        : g.activities[0] && `scaling activity in progress: ${g.activities[0]}`;
  return { others, ok: !why, ...(why && { why }) };
};

/** The replacement, told apart from every other instance; or none of it in the group; or why not. */
export type ReplacementFound =
  { instance: InstanceState; how: string } | { none: string } | { unknown: string };

/** What Auto Scaling writes in the Cause of the launch our SetDesiredCapacity(desired + 1) started. */
const raiseCause = (r: Rotation) =>
  `explicitly set group desired capacity changing the desired capacity from ${r.desired} to ${r.desired + 1}`;

/**
 * The rotation's replacement, as exactly as the group lets us tell it, in this order:
 * 1. `none`: no more instances count towards desired than the saved desired, and no scaling activity
 *    is in progress: setting desired back terminates nothing (whatever was launched, nothing of the
 *    rotation's extra capacity is there).
 * 2. The instance recorded in the rotation's state, while it is in the group.
 * 3. The instance launched by the scaling activity our SetDesiredCapacity caused: its Description is
 *    `Launching a new EC2 instance: i-…`, its Cause says the desired capacity was set from the saved
 *    desired to one more (an instance the group launches to replace an unhealthy one says neither).
 * 4. The only instance launched since the rotation began (by its primary interface's attach time),
 *    when every scaling activity since is known, none took out an instance that was there before
 *    (terminations of instances launched since are the replacement's own: it was replaced), every
 *    other instance's start is known, and none that was there before is unhealthy or leaving (which
 *    the group would replace, maybe launching first).
 * Anything else cannot be told apart: `unknown`, saying why.
 */
export const replacementOf = (g: GroupState, r: Rotation): ReplacementFound => {
  const present = (id: string | undefined) =>
    g.instances.find((i) => i.id === id && i.id !== r.instance && !leaving(i));
  const countedNow = g.instances.filter(counted).length;
  if (countedNow <= r.desired && g.activities.length === 0)
    return { none: `only ${countedNow} instance(s) count towards desired` };
  const recorded = present(r.replacement);
  if (recorded) return { instance: recorded, how: `recorded in ${ROTATION_TAG}` };

  const history = g.history;
  const ours = [
    ...new Set(
      (history ?? [])
        .filter((a) => a.kind === 'launch' && a.instance && a.cause.includes(raiseCause(r)))
        .map((a) => a.instance as string),
    ),
  ]
    .map(present)
    .filter((i): i is InstanceState => i !== undefined);
  if (ours.length === 1) return { instance: ours[0] as InstanceState, how: 'its launch activity' };

  const started = Date.parse(r.started);
  const others = g.instances.filter((i) => i.id !== r.instance && !leaving(i));
  const newcomers = others.filter((i) => i.since && Number.isFinite(started) && i.since.getTime() >= started);
  const olders = others.filter((i) => i.since && Number.isFinite(started) && i.since.getTime() < started);
  const ageless = others.filter((i) => !i.since);
  const launched = new Set(
    (history ?? []).flatMap((a) => (a.kind === 'launch' && a.instance ? [a.instance] : [])),
  );
  const departed = (history ?? []).filter(
    (a) => a.kind === 'terminate' && (!a.instance || !launched.has(a.instance)),
  );
  const troubled = olders.filter((i) => i.health !== 'Healthy');
  const why: string[] = [];
  if (g.activities[0]) why.push(`a scaling activity is in progress (${g.activities[0]})`);
  if (ours.length > 1)
    why.push(
      `${ours.map((i) => i.id).join(', ')} were each launched by a raise of desired from ${r.desired} to ${r.desired + 1}`,
    );
  if (!Number.isFinite(started)) why.push(`the rotation's start (${r.started}) is unreadable`);
  if (history === undefined) why.push(`its scaling activities since ${r.started} could not all be read`);
  if (ageless.length > 0)
    why.push(`EC2 does not say yet when ${ageless.map((i) => i.id).join(', ')} started`);
  if (newcomers.length !== 1)
    why.push(
      newcomers.length === 0
        ? 'no instance launched since the rotation began is in the group'
        : `${newcomers.length} instances launched since the rotation began are in the group (${newcomers.map((i) => i.id).join(', ')})`,
    );
  if (departed.length > 0)
    why.push(
      `the group took out ${departed.map((a) => a.instance ?? 'an instance').join(', ')} since the rotation began, and may have launched one in its place`,
    );
  if (troubled.length > 0)
    why.push(`${troubled.map((i) => `${i.id} is ${i.health}`).join(', ')}: the group may be replacing it`);
  if (why.length === 0)
    return {
      instance: newcomers[0] as InstanceState,
      how: 'the only instance launched since the rotation began',
    };
  return { unknown: `cannot tell which instance is the replacement of ${r.instance}: ${why.join('; ')}` };
};

/** What a person should check and do when the replacement cannot be told apart. */
const holdAdvice = (g: GroupState, r: Rotation) =>
  `nothing was terminated and desired stays at ${g.desired}, rather than letting the group pick which instance goes; ` +
  `check the group's activity history for the instance launched for this rotation (desired ${r.desired} → ${r.desired + 1} at ${r.started}), ` +
  `then either terminate it with \`aws autoscaling terminate-instance-in-auto-scaling-group --instance-id <id> --should-decrement-desired-capacity\`, ` +
  `or add replacement=<id> to tag ${ROTATION_TAG} and run \`nightshift rotate --group ${g.name}\`: the next run then finishes the roll-back`;

interface Undo {
  steps: Step[];
  notes: string[];
  /** The replacement cannot be told apart (or not removed safely): why. Nothing was terminated. */
  hold?: string;
}

/**
 * A roll-back: the old instance stays. Its ECS container instance goes back to ACTIVE if the rotation
 * drained it; our +1 leaves desired: the replacement (replacementOf) is terminated by id, decrementing
 * desired, never a victim the group picks; when it carries an ECS container instance, that is drained
 * first and the replacement terminated by a later run once its tasks have left (phase `rolling-back`);
 * exactly the processes the rotation suspended are resumed; its state is removed. A parked group's size
 * is ecs-scheduler's: it is never touched.
 *
 * When the replacement cannot be told apart, nothing is terminated and desired is not lowered: inside
 * the window nothing changes (`hold`); at a closing run (`closing`) the processes are resumed and the
 * state kept, saying they were, and the row fails saying what a person should check.
 */
const rollback = (
  g: GroupState,
  r: Rotation,
  opts: { parked?: boolean; abandoned?: Abandonment; closing: boolean; now: Date; oldLeft?: boolean },
): Undo => {
  const notes: string[] = [];
  const container = g.containers[r.instance];
  const undrain: Step[] =
    !opts.oldLeft && r.phase === 'draining' && container?.status === 'DRAINING'
      ? [{ op: 'undrain', cluster: container.cluster, containerInstance: container.arn }]
      : [];
  if (undrain.length > 0) notes.push(`ECS container instance on ${r.instance} set back to ACTIVE`);
  const removal: Step[] = [];
  let hold: string | undefined;
  let draining: string | undefined;
  if (opts.parked) {
    notes.push(`size left to ecs-scheduler (now desired ${g.desired})`);
  } else if (g.desired === r.desired + 1) {
    const found = g.desired - 1 < g.min ? undefined : replacementOf(g, r);
    if (!found) {
      notes.push(`desired left at ${g.desired}: min is ${g.min} now (changed by someone else)`);
    } else if ('none' in found) {
      removal.push({ op: 'set-desired', desired: r.desired });
      notes.push(`desired ${g.desired} → ${r.desired}, which terminates nothing: ${found.none}`);
    } else if ('unknown' in found) {
      hold = found.unknown;
    } else {
      const x = found.instance;
      const c = g.containers[x.id];
      if (!counted(x)) {
        hold =
          `its replacement ${x.id} is ${x.lifecycle}, which desired capacity does not count: terminating it with ` +
          'ShouldDecrementDesiredCapacity would make the group take an instance in service out instead';
      } else if (c && c.status !== 'INACTIVE' && !(c.status === 'DRAINING' && c.runningTasks === 0)) {
        // Terminating it now would kill its tasks without their load balancer deregistration delay.
        if (c.status !== 'DRAINING')
          removal.push({ op: 'drain', cluster: c.cluster, containerInstance: c.arn });
        draining = x.id;
        notes.push(
          `replacement ${x.id} (${found.how}) set to DRAINING, ${c.runningTasks} ECS task(s) on it: ` +
            `a later run terminates it, desired ${g.desired} → ${r.desired}, once they have left`,
        );
      } else {
        removal.push({ op: 'terminate-replacement', instanceId: x.id });
        notes.push(`replacement ${x.id} (${found.how}) terminated, desired ${g.desired} → ${r.desired}`);
      }
    }
  } else if (g.desired !== r.desired) {
    notes.push(`desired left at ${g.desired} (changed by someone else; the rotation saved ${r.desired})`);
  }
  const resume: Step[] = r.suspended.length > 0 ? [{ op: 'resume', processes: r.suspended }] : [];
  const resumed = resume.length > 0 ? [`${r.suspended.join(', ')} resumed`] : [];

  if (hold) {
    if (!opts.closing) return { steps: [], notes: [], hold };
    // Resumed before the state says so: a failure in between leaves them listed, and resumed again.
    const steps = [...undrain, ...resume];
    if (steps.length > 0)
      steps.push({
        op: 'save-rotation',
        value: encodeRotation({ ...r, phase: undrain.length > 0 ? 'launching' : r.phase, suspended: [] }),
      });
    return { steps, notes: [...notes, ...resumed], hold };
  }
  // The back-off is written before the state is removed: a failure in between leaves the rotation in
  // flight (the next run ends it again), never a cleared rotation without its back-off.
  const backOff: Step[] =
    opts.abandoned && g.tags[ROTATE_TAG] !== undefined
      ? [{ op: 'save-abandoned', value: encodeAbandonment(opts.abandoned) }]
      : [];
  const end: Step = draining
    ? {
        op: 'save-rotation',
        value: encodeRotation({
          ...r,
          phase: 'rolling-back',
          at: stamp(opts.now),
          suspended: [],
          replacement: draining,
        }),
      }
    : // An abandonment just written stays; otherwise an old one is moot once the rotation is over.
      opts.abandoned
      ? CLEAR_ROTATION
      : clear(g);
  return { steps: [...undrain, ...removal, ...resume, ...backOff, end], notes: [...notes, ...resumed] };
};

/**
 * A rotation being rolled back whose replacement drains first (phase `rolling-back`): nothing is
 * suspended, so any run, in a window or not, finishes it once the replacement's ECS tasks have left:
 * the replacement is terminated by id with a decrement, and the state removed.
 */
const rollingBack = (g: GroupState, r: Rotation, opts: RotationOptions): RotationWork => {
  const x = r.replacement as string;
  const inst = g.instances.find((i) => i.id === x);
  const c = g.containers[x];
  const undrainX: Step[] =
    c?.status === 'DRAINING' ? [{ op: 'undrain', cluster: c.cluster, containerInstance: c.arn }] : [];
  const done = (steps: Step[], text: string) =>
    work(g, {
      hasWork: true,
      steps: [...steps, CLEAR_ROTATION],
      detail: `roll-back of the rotation of ${r.instance} finished: ${text}`,
    });
  if (isParked(g.tags))
    return done(
      [],
      `the group was parked by ecs-scheduler (${PARKED_TAG}); size left to it (now desired ${g.desired})`,
    );
  if (!inst || leaving(inst)) {
    if (g.desired === r.desired + 1)
      return idle(
        g,
        'failed',
        `rolling back the rotation of ${r.instance}: its replacement ${x} left the group, but desired is still ${g.desired} ` +
          `(saved ${r.desired}); the group may have launched another instance in its place, which cannot be told apart: ` +
          `set desired back to ${r.desired}, or terminate the extra instance with --should-decrement-desired-capacity; ` +
          'the next run then removes the rotation’s state',
      );
    return done([], `${x} left the group; desired is ${g.desired}`);
  }
  if (g.desired !== r.desired + 1)
    return done(
      undrainX,
      `desired is ${g.desired}, no longer the rotation's ${r.desired + 1} (changed by someone else or a scaling policy): ` +
        `${x} stays` +
        (undrainX.length > 0 ? ', its ECS container instance set back to ACTIVE' : ''),
    );
  if (c?.status === 'ACTIVE')
    return work(g, {
      hasWork: true,
      steps: [{ op: 'drain', cluster: c.cluster, containerInstance: c.arn }],
      detail: `rolling back the rotation of ${r.instance}: ECS container instance on replacement ${x} set to DRAINING again (it was ACTIVE) before ${x} is terminated`,
    });
  const tasks = c && c.status !== 'INACTIVE' ? c.runningTasks : 0;
  if (tasks > 0) {
    const waited = opts.now.getTime() - Date.parse(r.at);
    if (Number.isFinite(waited) && waited > opts.replacementTimeoutMinutes * 60_000)
      return idle(
        g,
        'failed',
        `rolling back the rotation of ${r.instance}: replacement ${x} has not finished draining after ${formatAge(waited)} ` +
          `(REPLACEMENT_TIMEOUT_MINUTES ${opts.replacementTimeoutMinutes}): ${tasks} ECS task(s) still on it; standalone tasks ` +
          `do not drain: stop them, and the next run terminates ${x}; nothing is suspended meanwhile`,
      );
    return idle(
      g,
      'unchanged',
      `rolling back the rotation of ${r.instance}: waiting for replacement ${x} to drain before it is terminated (${tasks} ECS task(s) still on it)`,
    );
  }
  if (!counted(inst))
    return idle(
      g,
      'failed',
      `rolling back the rotation of ${r.instance}: its replacement ${x} is ${inst.lifecycle}, which desired capacity does not count: ` +
        'terminating it with ShouldDecrementDesiredCapacity would make the group take an instance in service out instead; ' +
        `move it back in service, or set desired back to ${r.desired} and terminate it by hand`,
    );
  if (g.desired - 1 < g.min)
    return done(
      undrainX,
      `desired left at ${g.desired}: min is ${g.min} now (changed by someone else); ${x} stays`,
    );
  return done(
    [{ op: 'terminate-replacement', instanceId: x }],
    `replacement ${x} terminated, its ECS tasks gone, desired ${g.desired} → ${r.desired}`,
  );
};

/**
 * The rotation's old instance has left the group (someone terminated it, or the group replaced it):
 * if our +1 is still in desired, it leaves as in a roll-back (the replacement terminated by id, or
 * drained first; desired lowered only where that terminates nothing), and the rotation is finished.
 * When the +1 cannot be told apart, the processes are resumed, the state kept, and the row fails.
 */
const oldGone = (
  g: GroupState,
  r: Rotation,
  now: Date,
): { steps: Step[]; text: string; failure?: string } => {
  if (g.desired !== r.desired + 1)
    return { steps: finish(g, r), text: `${r.instance} left the group; rotation finished` };
  const back = rollback(g, r, { closing: true, now, oldLeft: true });
  if (back.hold)
    return {
      steps: back.steps,
      text: `${r.instance} left the group; its extra capacity stays: ${back.notes.join('; ') || 'nothing changed'}`,
      failure: `${back.hold}; ${holdAdvice(g, r)}`,
    };
  return {
    steps: back.steps,
    text: `${r.instance} left the group; ${back.notes.join('; ')}; rotation finished`,
  };
};

/**
 * Why a rotation in flight has outlived its window, or undefined. It began before the window this run
 * belongs to, or this closing run comes well after the window's last run: either way the last run did
 * not end it, and processes stayed suspended outside the window.
 */
const overdue = (r: Rotation, opts: RotationOptions): string | undefined => {
  const w = opts.window;
  const started = Date.parse(r.started);
  if (w.start && Number.isFinite(started) && started < w.start.getTime())
    return `the rotation began at ${r.started}, before this window began (${formatLocal(w.start, w.timeZone)}): the last run of its window did not finish it`;
  if (!w.open && w.last && opts.now.getTime() - w.last.getTime() > LATE_MS)
    return `the window's last run (${formatLocal(w.last, w.timeZone)}) did not finish it`;
  return undefined;
};

/**
 * A rotation that must end in this run: the window closes, it is overdue, or the group was parked.
 * It is finished when the old instance can be terminated now (no drain to wait for), else rolled back.
 */
const closeRotation = (
  g: GroupState,
  r: Rotation,
  opts: RotationOptions,
  why: { reason: string; parked?: boolean; late?: string },
): RotationWork => {
  // What is still suspended of what the rotation suspended (a failed roll-back may have resumed them).
  const still = r.suspended.filter((p) => g.suspended.includes(p));
  const end = (steps: Step[], text: string, extra?: string): RotationWork => {
    const failure = [
      why.late &&
        `${why.late}: ` +
          (still.length > 0
            ? `processes (${still.join(', ')}) stayed suspended outside the window until now`
            : 'its processes were resumed, but its extra capacity and state stayed') +
          `; rotation of ${r.instance} ${text}`,
      extra,
    ]
      .filter(Boolean)
      .join('; ');
    const detail = `rotation of ${r.instance} ${text} — ${why.late ? 'overdue: ' : ''}${why.reason}`;
    if (steps.length === 0 && failure) return idle(g, 'failed', `${detail}; ${failure}`);
    return work(g, {
      hasWork: true,
      closing: true,
      steps,
      detail,
      ...(failure && { failure }),
    });
  };
  const old = g.instances.find((i) => i.id === r.instance);
  if (!old || leaving(old)) {
    if (why.parked)
      return end(finish(g, r), `ended: ${r.instance} left the group; size left to ecs-scheduler`);
    const gone = oldGone(g, r, opts.now);
    return end(gone.steps, `ended: ${gone.text}`, gone.failure);
  }
  const healthy = g.instances.filter(inService).length;
  const container = g.containers[r.instance];
  const noDrain =
    !container ||
    container.status === 'INACTIVE' ||
    (container.status === 'DRAINING' && container.runningTasks === 0);
  const ready = canTerminateOld(g, r).ok && noDrain && (r.phase === 'draining' || healthy >= r.desired + 1);
  if (!why.parked && ready) {
    return end(
      [{ op: 'terminate', instanceId: r.instance }, ...finish(g, r)],
      `finished: ${r.instance} terminated now that its replacement is in service (${healthy} in service), desired ${g.desired} → ${g.desired - 1}` +
        (r.suspended.length > 0 ? `; ${r.suspended.join(', ')} resumed` : ''),
    );
  }
  const back = rollback(g, r, { parked: why.parked, closing: true, now: opts.now });
  if (back.hold) {
    return end(
      back.steps,
      `not rolled back (${r.instance} stays): ${back.notes.join('; ') || 'nothing changed'}` +
        (back.steps.length > 0 ? `; the rotation's state is kept` : ''),
      `${back.hold}; ${holdAdvice(g, r)}`,
    );
  }
  // A parked group whose saved size includes our +1 comes back one instance larger: a person must fix it.
  const parkedDesired = why.parked ? /\bdesired=(\d+)/.exec(g.tags[PARKED_TAG] ?? '')?.[1] : undefined;
  const creep =
    parkedDesired !== undefined && Number(parkedDesired) === r.desired + 1
      ? `ecs-scheduler saved desired=${parkedDesired} in ${PARKED_TAG}, which includes this rotation's +1: ` +
        `a start would bring the group back one instance larger; change it to desired=${r.desired} in that tag`
      : undefined;
  return end(
    back.steps,
    `rolled back (${r.instance} stays): ${back.notes.join('; ') || 'nothing to undo'}`,
    creep,
  );
};

/** The rotation with its replacement recorded, when this run told it exactly and it was not recorded yet. */
const learned = (g: GroupState, r: Rotation): Rotation | undefined => {
  if (r.replacement && g.instances.some((i) => i.id === r.replacement && !leaving(i))) return undefined;
  const found = replacementOf(g, r);
  return 'instance' in found && found.instance.id !== r.replacement
    ? { ...r, replacement: found.instance.id }
    : undefined;
};

/** A rotation in flight inside its window: wait for the replacement, drain, terminate, or give up. */
const continueRotation = (g: GroupState, r: Rotation, opts: RotationOptions): RotationWork => {
  const old = g.instances.find((i) => i.id === r.instance);
  if (!old || leaving(old)) {
    // The group took the old instance out without a decrement (a failed health check, say) and is
    // launching one in its place: removing the rotation's +1 now would take an instance in service out
    // while that one is not yet, and in-service capacity would drop below desired. Inside the window,
    // wait until the others in service cover the saved desired without the +1; the window's last run
    // ends it whatever the state.
    // (Where fewer count towards desired than the saved desired, setting it back terminates nothing.)
    const serving = g.instances.filter((i) => i.id !== r.instance && inService(i)).length;
    const countedNow = g.instances.filter(counted).length;
    if (
      g.desired === r.desired + 1 &&
      (g.activities[0] || (countedNow > r.desired && serving < r.desired + 1))
    )
      return idle(
        g,
        'unchanged',
        `${r.instance} left the group, which is replacing it (${serving} of ${g.desired} in service` +
          (g.activities[0] ? `, ${g.activities[0]}` : '') +
          `): the rotation's +1 is removed once the others in service cover desired ${r.desired} without it`,
      );
    const gone = oldGone(g, r, opts.now);
    if (gone.steps.length === 0) return idle(g, 'failed', `${gone.text}; ${gone.failure}`);
    return work(g, {
      hasWork: true,
      steps: gone.steps,
      detail: gone.text,
      ...(gone.failure && { failure: gone.failure }),
    });
  }
  const healthy = g.instances.filter(inService).length;
  const { ok: canTerminate, why: cannot } = canTerminateOld(g, r);
  const container = g.containers[r.instance];
  const tasksLeft = container !== undefined && container.status !== 'INACTIVE' && container.runningTasks > 0;
  const progressing =
    r.phase === 'launching' ? canTerminate && healthy >= r.desired + 1 : canTerminate && !tasksLeft;
  const raiseMissed = r.phase === 'launching' && g.desired === r.desired && g.activities.length === 0;
  const waited = opts.now.getTime() - Date.parse(r.at);
  const timedOut = Number.isFinite(waited) && waited > opts.replacementTimeoutMinutes * 60_000;

  if (timedOut && !progressing && !raiseMissed) {
    const stalled =
      r.phase === 'launching'
        ? `the replacement for ${r.instance} did not come into service within ${opts.replacementTimeoutMinutes} min ` +
          `(${healthy} of ${r.desired + 1} in service)`
        : `${r.instance} did not finish draining within ${opts.replacementTimeoutMinutes} min ` +
          `(${container?.runningTasks ?? 0} ECS task(s) left; standalone tasks do not drain)`;
    const back = rollback(g, r, {
      abandoned: { at: stamp(opts.now), instance: r.instance },
      closing: false,
      now: opts.now,
    });
    if (back.hold)
      return idle(
        g,
        'failed',
        `${stalled}; the rotation cannot be abandoned safely: ${back.hold}; ${holdAdvice(g, r)}. ` +
          `The processes it suspended stay suspended until the window's last run, which resumes them`,
      );
    const retry = new Date(opts.now.getTime() + opts.abandonBackoff.ms);
    return work(g, {
      hasWork: true,
      steps: back.steps,
      detail: `rotation of ${r.instance} abandoned: ${back.notes.join('; ') || 'nothing to undo'}`,
      failure:
        `${stalled}; rotation abandoned: ${back.notes.join('; ') || 'nothing to undo'}` +
        (g.tags[ROTATE_TAG] !== undefined
          ? `; no new rotation in this group before ${stamp(retry)} (ABANDON_BACKOFF ${opts.abandonBackoff.text}, tag ${ABANDONED_TAG})`
          : ''),
    });
  }

  // The replacement is recorded as soon as it can be told exactly: a roll-back terminates only it.
  const known = learned(g, r);
  const record = (w: RotationWork): RotationWork =>
    known && !w.hasWork && w.outcome === 'unchanged'
      ? work(g, {
          hasWork: true,
          steps: [{ op: 'save-rotation', value: encodeRotation(known) }],
          detail: `${w.detail}; replacement ${known.replacement} recorded in ${ROTATION_TAG}`,
        })
      : w;

  if (r.phase === 'launching') {
    if (raiseMissed) {
      // The state was saved but desired was never raised (the run stopped between the two): raise it now.
      return work(g, {
        hasWork: true,
        steps: [{ op: 'set-desired', desired: r.desired + 1 }],
        detail: `launch the replacement for ${r.instance} saved at ${r.at}: desired ${g.desired} → ${r.desired + 1}`,
      });
    }
    if (old.lifecycle !== 'InService') {
      return record(
        idle(
          g,
          'unchanged',
          `waiting before terminating ${r.instance}: ${cannot}; it is terminated once it is in service again ` +
            '(ExitStandby), or the rotation is rolled back at the window’s last run or after REPLACEMENT_TIMEOUT_MINUTES',
        ),
      );
    }
    if (!canTerminate || healthy < r.desired + 1) {
      return record(
        idle(
          g,
          'unchanged',
          `waiting for the replacement of ${r.instance}: ${healthy} of ${r.desired + 1} in service` +
            (g.activities[0] ? `, ${g.activities[0]}` : ''),
        ),
      );
    }
    if (container && container.status === 'ACTIVE') {
      return work(g, {
        hasWork: true,
        steps: [
          { op: 'drain', cluster: container.cluster, containerInstance: container.arn },
          {
            op: 'save-rotation',
            value: encodeRotation({ ...(known ?? r), phase: 'draining', at: stamp(opts.now) }),
          },
        ],
        detail: `replacement in service (${healthy} of ${r.desired + 1}); ECS container instance on ${r.instance} set to DRAINING before it is terminated`,
      });
    }
  }
  if (tasksLeft) {
    return record(
      idle(g, 'unchanged', `draining ${r.instance}: ${container?.runningTasks} ECS task(s) still on it`),
    );
  }
  if (!canTerminate) {
    return record(idle(g, 'unchanged', `waiting before terminating ${r.instance}: ${cannot}`));
  }
  return work(g, {
    hasWork: true,
    steps: [{ op: 'terminate', instanceId: r.instance }, ...finish(g, r)],
    detail:
      `terminate ${r.instance} now that its replacement is in service (${healthy} in service): desired ${g.desired} → ${g.desired - 1}` +
      (r.suspended.length > 0 ? `; resume ${r.suspended.join(', ')}` : ''),
  });
};

/** A rotation in flight: continued inside its window; finished or rolled back when it must end. */
const inFlight = (g: GroupState, r: Rotation, opts: RotationOptions): RotationWork => {
  // Nothing is suspended while a roll-back drains its replacement: any run finishes it.
  if (r.phase === 'rolling-back') return rollingBack(g, r, opts);
  const late = overdue(r, opts);
  if (isParked(g.tags))
    return closeRotation(g, r, opts, {
      reason: `the group was parked by ecs-scheduler (${PARKED_TAG}) while the rotation was in flight`,
      parked: true,
      ...(late && { late }),
    });
  if (late || !opts.window.open)
    return closeRotation(g, r, opts, {
      reason: opts.window.reason ?? 'it belongs to an earlier window',
      ...(late && { late }),
    });
  return continueRotation(g, r, opts);
};

/** Says which processes stay suspended when a rotation in flight cannot be ended outside its window. */
export const leftSuspended = (g: { suspended: string[] }, window: WindowFacts): string =>
  window.open
    ? ''
    : `; the rotation in flight stays as it is, with ${g.suspended.join(', ') || 'no processes'} suspended, ` +
      `outside its window (${window.reason}): run \`nightshift rotate\` for the group to finish or roll it back`;

const planGroup = (g: GroupState, opts: RotationOptions): RotationWork => {
  const saved = g.tags[ROTATION_TAG];
  if (g.readError) {
    return idle(
      g,
      'failed',
      `could not read the group's state: ${g.readError}` +
        (saved !== undefined ? leftSuspended(g, opts.window) : ''),
    );
  }
  // A rotation in flight is ended even if the group opted out meanwhile: never leave it half done.
  if (saved !== undefined) {
    try {
      return inFlight(g, decodeRotation(saved), opts);
    } catch (error) {
      return idle(
        g,
        'failed',
        `tag ${ROTATION_TAG} is unreadable (${errorMessage(error)}); nothing changed — fix or delete it` +
          leftSuspended(g, opts.window),
      );
    }
  }
  const hint = () =>
    wakeHint({ kind: 'autoscaling-group', group: g.name }, g.tags[SCHEDULE_TAG] !== undefined).replace(
      'to restart it now',
      'to rotate it now',
    );
  if (isParked(g.tags))
    return idle(
      g,
      'skipped',
      `parked by ecs-scheduler (${PARKED_TAG}): a parked group is never rotated; ${hint()}, then \`nightshift rotate --group ${g.name}\``,
    );
  if (g.tags[ROTATE_TAG] === undefined)
    return idle(g, 'skipped', `not opted in: the group has no ${ROTATE_TAG} tag`);
  const maxAge = maxAgeFor(g, opts);
  if (maxAge === false) return idle(g, 'skipped', `opted out: ${ROTATE_TAG}=false`);
  if ('error' in maxAge) return idle(g, 'failed', maxAge.error);
  // A group on its own schedule that wants it stopped now is parked by the next reconcile: a rotation
  // started now would hold that off (ecs-scheduler does not park a group with a rotation in flight).
  const park: ParkDecision = opts.schedules
    ? parkDecision({ tags: g.tags }, opts.schedules, opts.now)
    : { held: false };
  if (park.held)
    return idle(
      g,
      'skipped',
      `${park.reason}: a group nightshift parks is not rotated; ${hint()}, then \`nightshift rotate --group ${g.name}\``,
    );
  const note = !park.held && park.note ? `; ${park.note}` : '';
  const unstable = instability(g);
  if (unstable) return idle(g, 'skipped', unstable);
  const ageOf = (i: InstanceState) => (i.since ? opts.now.getTime() - i.since.getTime() : 0);
  const byAge = oldestFirst(g.instances.filter(inService));
  const due = byAge.filter((i) => ageOf(i) >= maxAge.ms);
  const oldest = due[0];
  if (!oldest) {
    const top = byAge[0];
    return idle(
      g,
      'unchanged',
      `no instance older than ${maxAge.text}` + (top ? ` (oldest: ${top.id}, ${formatAge(ageOf(top))})` : ''),
    );
  }
  if (g.desired >= g.max) {
    return idle(
      g,
      'skipped',
      `no headroom: desired ${g.desired} = max ${g.max}, and capacity never drops below desired; raise max by one to rotate`,
    );
  }
  const abandonedText = g.tags[ABANDONED_TAG];
  if (abandonedText !== undefined) {
    let abandoned: Abandonment;
    try {
      abandoned = decodeAbandonment(abandonedText);
    } catch (error) {
      return idle(
        g,
        'skipped',
        `tag ${ABANDONED_TAG} is unreadable (${errorMessage(error)}): no rotation starts until it is fixed or deleted`,
      );
    }
    const until = Date.parse(abandoned.at) + opts.abandonBackoff.ms;
    if (opts.now.getTime() < until)
      return idle(
        g,
        'skipped',
        `a rotation of ${abandoned.instance} was abandoned at ${abandoned.at}: no new rotation before ` +
          `${stamp(new Date(until))} (ABANDON_BACKOFF ${opts.abandonBackoff.text}); delete tag ${ABANDONED_TAG} to retry sooner`,
      );
  }
  if (!opts.window.open)
    return idle(g, 'skipped', `${oldest.id} is due, but no rotation starts: ${opts.window.reason}`);
  const container = g.containers[oldest.id];
  const drains = container !== undefined && container.status !== 'INACTIVE';
  const needMs = opts.replacementTimeoutMinutes * 60_000 * (drains ? 2 : 1);
  const last = opts.window.last;
  if (last && last.getTime() - opts.now.getTime() < needMs) {
    return idle(
      g,
      'skipped',
      `${oldest.id} is due, but too little of the window is left: its last run is ${formatLocal(last, opts.window.timeZone)}, ` +
        `in ${formatAge(Math.max(0, last.getTime() - opts.now.getTime()))}, and a rotation may take ${formatAge(needMs)} ` +
        `(REPLACEMENT_TIMEOUT_MINUTES to launch${drains ? ', and as long again to drain its ECS container instance' : ''})`,
    );
  }
  const hold = HELD_PROCESSES.filter((p) => !g.suspended.includes(p));
  const rotation: Rotation = {
    desired: g.desired,
    instance: oldest.id,
    phase: 'launching',
    at: stamp(opts.now),
    started: stamp(opts.now),
    suspended: hold,
  };
  return work(g, {
    hasWork: true,
    steps: [
      { op: 'save-rotation', value: encodeRotation(rotation) },
      ...(hold.length > 0 ? [{ op: 'suspend' as const, processes: hold }] : []),
      { op: 'set-desired', desired: g.desired + 1 },
    ],
    detail:
      `launch a replacement for ${oldest.id} (${formatAge(ageOf(oldest))} old, max ${maxAge.text}): desired ${g.desired} → ${g.desired + 1}` +
      (hold.length > 0 ? `; ${hold.join(', ')} suspended until it is done` : '') +
      (due.length > 1 ? `; ${due.length - 1} more due after it` : '') +
      note,
  });
};

/**
 * Decides, for every group, the next step of its rotation: at most one instance per group in flight,
 * oldest first, launch before terminate, and nothing left suspended when the run is the last of its
 * window. Pure: no I/O, no clock, no environment — `now` and the window are inputs.
 */
export const planRotations = (
  groups: GroupState[],
  named: string[] | undefined,
  opts: RotationOptions,
): RotationWork[] => {
  const missing = (named ?? [])
    .filter((name) => !groups.some((g) => g.name === name))
    .map((name) => ({
      arn: name,
      type: 'autoscaling-group',
      group: name,
      hasWork: false,
      outcome: 'failed' as const,
      detail: 'Auto Scaling group not found',
      steps: [],
    }));
  return [...missing, ...groups.map((g) => planGroup(g, opts))];
};
