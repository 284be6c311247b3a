import type { PlannedWork } from '#shared/execute.ts';
import { countField, decodeSavedState, encodeSavedState } from '#shared/saved-state.ts';
import { formatAge, parseDuration } from '#shared/duration.ts';
import { errorMessage } from '#shared/errors.ts';
import { formatLocal } from '#shared/cron.ts';
import { isParked, PARKED_TAG } from '#shared/group-tags.ts';
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
  phase: 'launching' | 'draining';
  /** When the current phase began. */
  at: string;
  /** When the rotation began, before desired was raised: instances launched after it are its replacement. */
  started: string;
  /** Processes this rotation suspended (not those that were suspended already): resumed at the end. */
  suspended: string[];
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
}

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

export const encodeRotation = (r: Rotation) =>
  encodeSavedState({
    desired: r.desired,
    instance: r.instance,
    phase: r.phase,
    at: r.at,
    started: r.started,
    suspended: r.suspended.length > 0 ? r.suspended.join('+') : 'none',
  });

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

export const decodeRotation = (text: string): Rotation => {
  const f = decodeSavedState(text);
  if (!INSTANCE_ID.test(f.instance ?? '')) throw new Error(`no valid instance in "${text}"`);
  if (f.phase !== 'launching' && f.phase !== 'draining') throw new Error(`no valid phase in "${text}"`);
  const suspended = !f.suspended || f.suspended === 'none' ? [] : f.suspended.split('+');
  if (suspended.some((p) => !HELD_PROCESSES.includes(p)))
    throw new Error(`no valid suspended list in "${text}"`);
  return {
    desired: countField(f, 'desired'),
    instance: f.instance as string,
    phase: f.phase,
    at: f.at ?? '',
    // Saved before `started` existed: a launching rotation's `at` is its start.
    started: f.started ?? f.at ?? '',
    suspended,
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

/** Steps that end a rotation: resume what it suspended and remove its state. */
const finish = (g: GroupState, r: Rotation): Step[] => [
  ...(r.suspended.length > 0 ? [{ op: 'resume' as const, processes: r.suspended }] : []),
  clear(g),
];

const canTerminateOld = (g: GroupState, r: Rotation) => {
  const others = g.instances.filter((i) => i.id !== r.instance && inService(i)).length;
  // After terminating the old instance with a decrement, in service must still cover both the saved
  // desired and the new desired, and desired must stay within min.
  return {
    others,
    ok: others >= Math.max(r.desired, g.desired - 1) && g.desired - 1 >= g.min && g.activities.length === 0,
  };
};

/**
 * The instance launched for this rotation: in the group, not the old instance, not terminating, and
 * launched after the rotation began (its state was saved before desired was raised). An instance EC2
 * does not know yet is brand new. Exactly one such instance is the replacement; none means nothing was
 * launched for it yet; several (the group replaced an unhealthy one meanwhile) cannot be told apart.
 */
export const replacementOf = (g: GroupState, r: Rotation): InstanceState | 'none' | 'ambiguous' => {
  const started = Date.parse(r.started);
  if (!Number.isFinite(started)) return 'ambiguous';
  const candidates = g.instances.filter(
    (i) =>
      i.id !== r.instance &&
      !i.lifecycle.startsWith('Terminat') &&
      (i.since === undefined || i.since.getTime() >= started),
  );
  if (candidates.length === 0) return 'none';
  return candidates.length === 1 ? (candidates[0] as InstanceState) : 'ambiguous';
};

/**
 * A roll-back: the old instance stays. Its ECS container instance goes back to ACTIVE if the rotation
 * drained it; our +1 leaves desired (the replacement terminated by id, decrementing desired, rather
 * than letting the group pick a victim); exactly the processes the rotation suspended are resumed; its
 * state is removed. A parked group's size is ecs-scheduler's: it is never touched.
 */
const rollback = (
  g: GroupState,
  r: Rotation,
  opts: { parked?: boolean; abandoned?: Abandonment },
): { steps: Step[]; notes: string[] } => {
  const steps: Step[] = [];
  const notes: string[] = [];
  const container = g.containers[r.instance];
  if (r.phase === 'draining' && container?.status === 'DRAINING') {
    steps.push({ op: 'undrain', cluster: container.cluster, containerInstance: container.arn });
    notes.push(`ECS container instance on ${r.instance} set back to ACTIVE`);
  }
  if (opts.parked) {
    notes.push(`size left to ecs-scheduler (now desired ${g.desired})`);
  } else if (g.desired === r.desired + 1) {
    const replacement = replacementOf(g, r);
    if (g.desired - 1 < g.min) {
      notes.push(`desired left at ${g.desired}: min is ${g.min} now (changed by someone else)`);
    } else if (typeof replacement === 'object') {
      steps.push({ op: 'terminate-replacement', instanceId: replacement.id });
      notes.push(`replacement ${replacement.id} terminated, desired ${g.desired} → ${r.desired}`);
    } else {
      steps.push({ op: 'set-desired', desired: r.desired });
      notes.push(
        replacement === 'none'
          ? `desired ${g.desired} → ${r.desired} (no replacement launched yet)`
          : `desired ${g.desired} → ${r.desired} (more than one instance launched since the rotation began: the group picks which one goes)`,
      );
    }
  } else if (g.desired !== r.desired) {
    notes.push(`desired left at ${g.desired} (changed by someone else; the rotation saved ${r.desired})`);
  }
  if (r.suspended.length > 0) {
    steps.push({ op: 'resume', processes: r.suspended });
    notes.push(`${r.suspended.join(', ')} resumed`);
  }
  // The back-off is written before the state is removed: a failure in between leaves the rotation in
  // flight (the next run ends it again), never a cleared rotation without its back-off.
  if (opts.abandoned && g.tags[ROTATE_TAG] !== undefined)
    steps.push({ op: 'save-abandoned', value: encodeAbandonment(opts.abandoned) });
  steps.push(clear(g));
  return { steps, notes };
};

/** The rotation's old instance has left the group: restore desired if our +1 is still in it, and finish. */
const oldGone = (g: GroupState, r: Rotation): { steps: Step[]; text: string } => {
  const restore: Step[] = g.desired === r.desired + 1 ? [{ op: 'set-desired', desired: r.desired }] : [];
  return {
    steps: [...restore, ...finish(g, r)],
    text:
      `${r.instance} left the group` +
      (restore.length > 0 ? `; desired ${g.desired} → ${r.desired} restored` : '') +
      '; rotation finished',
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
    return work(g, {
      hasWork: true,
      closing: true,
      steps,
      detail: `rotation of ${r.instance} ${text} — ${why.late ? 'overdue: ' : ''}${why.reason}`,
      ...(failure && { failure }),
    });
  };
  const old = g.instances.find((i) => i.id === r.instance);
  if (!old || old.lifecycle.startsWith('Terminat')) {
    if (why.parked)
      return end(finish(g, r), `ended: ${r.instance} left the group; size left to ecs-scheduler`);
    const gone = oldGone(g, r);
    return end(gone.steps, `ended: ${gone.text}`);
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
  const back = rollback(g, r, { parked: why.parked });
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

/** A rotation in flight inside its window: wait for the replacement, drain, terminate, or give up. */
const continueRotation = (g: GroupState, r: Rotation, opts: RotationOptions): RotationWork => {
  const old = g.instances.find((i) => i.id === r.instance);
  if (!old || old.lifecycle.startsWith('Terminat')) {
    const gone = oldGone(g, r);
    return work(g, { hasWork: true, steps: gone.steps, detail: gone.text });
  }
  const healthy = g.instances.filter(inService).length;
  const { others, ok: canTerminate } = canTerminateOld(g, r);
  const container = g.containers[r.instance];
  const tasksLeft = container !== undefined && container.status !== 'INACTIVE' && container.runningTasks > 0;
  const progressing =
    r.phase === 'launching' ? canTerminate && healthy >= r.desired + 1 : canTerminate && !tasksLeft;
  const raiseMissed = r.phase === 'launching' && g.desired === r.desired && g.activities.length === 0;
  const waited = opts.now.getTime() - Date.parse(r.at);
  const timedOut = Number.isFinite(waited) && waited > opts.replacementTimeoutMinutes * 60_000;

  if (timedOut && !progressing && !raiseMissed) {
    const back = rollback(g, r, { abandoned: { at: stamp(opts.now), instance: r.instance } });
    const retry = new Date(opts.now.getTime() + opts.abandonBackoff.ms);
    return work(g, {
      hasWork: true,
      steps: back.steps,
      detail: `rotation of ${r.instance} abandoned: ${back.notes.join('; ') || 'nothing to undo'}`,
      failure:
        (r.phase === 'launching'
          ? `the replacement for ${r.instance} did not come into service within ${opts.replacementTimeoutMinutes} min ` +
            `(${healthy} of ${r.desired + 1} in service)`
          : `${r.instance} did not finish draining within ${opts.replacementTimeoutMinutes} min ` +
            `(${container?.runningTasks ?? 0} ECS task(s) left; standalone tasks do not drain)`) +
        `; rotation abandoned: ${back.notes.join('; ') || 'nothing to undo'}` +
        (g.tags[ROTATE_TAG] !== undefined
          ? `; no new rotation in this group before ${stamp(retry)} (ABANDON_BACKOFF ${opts.abandonBackoff.text}, tag ${ABANDONED_TAG})`
          : ''),
    });
  }

  if (r.phase === 'launching') {
    if (raiseMissed) {
      // The state was saved but desired was never raised (the run stopped between the two): raise it now.
      return work(g, {
        hasWork: true,
        steps: [{ op: 'set-desired', desired: r.desired + 1 }],
        detail: `launch the replacement for ${r.instance} saved at ${r.at}: desired ${g.desired} → ${r.desired + 1}`,
      });
    }
    if (!canTerminate || healthy < r.desired + 1) {
      return idle(
        g,
        'unchanged',
        `waiting for the replacement of ${r.instance}: ${healthy} of ${r.desired + 1} in service` +
          (g.activities[0] ? `, ${g.activities[0]}` : ''),
      );
    }
    if (container && container.status === 'ACTIVE') {
      return work(g, {
        hasWork: true,
        steps: [
          { op: 'drain', cluster: container.cluster, containerInstance: container.arn },
          { op: 'save-rotation', value: encodeRotation({ ...r, phase: 'draining', at: stamp(opts.now) }) },
        ],
        detail: `replacement in service (${healthy} of ${r.desired + 1}); ECS container instance on ${r.instance} set to DRAINING before it is terminated`,
      });
    }
  }
  if (tasksLeft) {
    return idle(g, 'unchanged', `draining ${r.instance}: ${container?.runningTasks} ECS task(s) still on it`);
  }
  if (!canTerminate) {
    return idle(
      g,
      'unchanged',
      `waiting before terminating ${r.instance}: ${others} other instance(s) in service, desired ${g.desired}, min ${g.min}`,
    );
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
  const late = overdue(r, opts);
  if (isParked(g.tags))
    return closeRotation(g, r, {
      reason: `the group was parked by ecs-scheduler (${PARKED_TAG}) while the rotation was in flight`,
      parked: true,
      ...(late && { late }),
    });
  if (late || !opts.window.open)
    return closeRotation(g, r, {
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
  if (isParked(g.tags))
    return idle(g, 'skipped', `parked by ecs-scheduler (${PARKED_TAG}): a parked group is never rotated`);
  if (g.tags[ROTATE_TAG] === undefined)
    return idle(g, 'skipped', `not opted in: the group has no ${ROTATE_TAG} tag`);
  const maxAge = maxAgeFor(g, opts);
  if (maxAge === false) return idle(g, 'skipped', `opted out: ${ROTATE_TAG}=false`);
  if ('error' in maxAge) return idle(g, 'failed', maxAge.error);
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
      (due.length > 1 ? `; ${due.length - 1} more due after it` : ''),
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
