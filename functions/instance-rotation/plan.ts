import type { PlannedWork } from '#shared/execute.ts';
import { countField, decodeSavedState, encodeSavedState } from '#shared/saved-state.ts';
import { formatAge, parseDuration } from '#shared/duration.ts';
import { errorMessage } from '#shared/errors.ts';
import { ROTATE_TAG, ROTATION_TAG, type GroupState, type InstanceState } from './inventory.ts';

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
  | { op: 'resume'; processes: string[] }
  | { op: 'clear-rotation' };

export interface RotationWork extends PlannedWork {
  group: string;
  steps: Step[];
  /** Reported as failed once the steps are done: the rotation had to be abandoned. */
  failure?: string;
}

export interface Rotation {
  desired: number;
  instance: string;
  phase: 'launching' | 'draining';
  at: string;
  /** Processes this rotation suspended (not those that were suspended already): resumed at the end. */
  suspended: string[];
}

export interface RotationOptions {
  /** maxAge from the input, else MAX_AGE. A group's own duration tag overrides it. */
  maxAge: { text: string; ms: number };
  replacementTimeoutMinutes: number;
  now: Date;
}

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

export const encodeRotation = (r: Rotation) =>
  encodeSavedState({
    desired: r.desired,
    instance: r.instance,
    phase: r.phase,
    at: r.at,
    suspended: r.suspended.length > 0 ? r.suspended.join('+') : 'none',
  });

export const decodeRotation = (text: string): Rotation => {
  const f = decodeSavedState(text);
  if (!/^i-[0-9a-f]{8,17}$/.test(f.instance ?? '')) throw new Error(`no valid instance in "${text}"`);
  if (f.phase !== 'launching' && f.phase !== 'draining') throw new Error(`no valid phase in "${text}"`);
  const suspended = !f.suspended || f.suspended === 'none' ? [] : f.suspended.split('+');
  if (suspended.some((p) => !HELD_PROCESSES.includes(p)))
    throw new Error(`no valid suspended list in "${text}"`);
  return {
    desired: countField(f, 'desired'),
    instance: f.instance as string,
    phase: f.phase,
    at: f.at ?? '',
    suspended,
  };
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

const work = (g: GroupState, fields: Omit<RotationWork, 'arn' | 'type' | 'group'>): RotationWork => ({
  arn: g.arn,
  type: 'autoscaling-group',
  group: g.name,
  ...fields,
});
const idle = (g: GroupState, outcome: 'unchanged' | 'skipped' | 'failed', detail: string) =>
  work(g, { hasWork: false, outcome, detail, steps: [] });

/** Steps that end a rotation: resume what it suspended and remove its state. */
const finish = (r: Rotation): Step[] => [
  ...(r.suspended.length > 0 ? [{ op: 'resume' as const, processes: r.suspended }] : []),
  { op: 'clear-rotation' },
];

/** Our +1 is still in desired: the only case where desired is put back to the saved value. */
const restoreDesired = (g: GroupState, r: Rotation): Step[] =>
  g.desired === r.desired + 1 ? [{ op: 'set-desired', desired: r.desired }] : [];

/** A rotation in flight: wait for the replacement, drain, terminate, or give up and restore. */
const continueRotation = (g: GroupState, r: Rotation, opts: RotationOptions): RotationWork => {
  const old = g.instances.find((i) => i.id === r.instance);
  if (!old || old.lifecycle.startsWith('Terminat')) {
    const restore = restoreDesired(g, r);
    return work(g, {
      hasWork: true,
      steps: [...restore, ...finish(r)],
      detail:
        `${r.instance} left the group` +
        (restore.length > 0 ? `; desired ${g.desired} → ${r.desired} restored` : '') +
        '; rotation finished',
    });
  }
  const healthy = g.instances.filter(inService).length;
  const others = g.instances.filter((i) => i.id !== r.instance && inService(i)).length;
  // After terminating the old instance with a decrement, in service must still cover both the saved
  // desired and the new desired, and desired must stay within min.
  const canTerminate =
    others >= Math.max(r.desired, g.desired - 1) && g.desired - 1 >= g.min && g.activities.length === 0;
  const tasksLeft =
    g.container !== undefined && g.container.status !== 'INACTIVE' && g.container.runningTasks > 0;
  const progressing =
    r.phase === 'launching' ? canTerminate && healthy >= r.desired + 1 : canTerminate && !tasksLeft;
  const raiseMissed = r.phase === 'launching' && g.desired === r.desired && g.activities.length === 0;
  const waited = opts.now.getTime() - Date.parse(r.at);
  const timedOut = Number.isFinite(waited) && waited > opts.replacementTimeoutMinutes * 60_000;

  if (timedOut && !progressing && !raiseMissed) {
    const undrain =
      r.phase === 'draining' && g.container?.status === 'DRAINING'
        ? [{ op: 'undrain' as const, cluster: g.container.cluster, containerInstance: g.container.arn }]
        : [];
    const restore = restoreDesired(g, r);
    return work(g, {
      hasWork: true,
      steps: [...undrain, ...restore, ...finish(r)],
      detail:
        (restore.length > 0
          ? `desired ${g.desired} → ${r.desired}`
          : `desired left at ${g.desired} (changed by someone else)`) +
        (undrain.length > 0 ? `; ECS container instance on ${r.instance} set back to ACTIVE` : ''),
      failure:
        r.phase === 'launching'
          ? `the replacement for ${r.instance} did not come into service within ${opts.replacementTimeoutMinutes} min ` +
            `(${healthy} of ${r.desired + 1} in service); rotation abandoned, desired restored to ${r.desired}`
          : `${r.instance} did not finish draining within ${opts.replacementTimeoutMinutes} min ` +
            `(${g.container?.runningTasks ?? 0} ECS task(s) left; standalone tasks do not drain); rotation abandoned`,
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
    if (g.container && g.container.status === 'ACTIVE') {
      return work(g, {
        hasWork: true,
        steps: [
          { op: 'drain', cluster: g.container.cluster, containerInstance: g.container.arn },
          { op: 'save-rotation', value: encodeRotation({ ...r, phase: 'draining', at: stamp(opts.now) }) },
        ],
        detail: `replacement in service (${healthy} of ${r.desired + 1}); ECS container instance on ${r.instance} set to DRAINING before it is terminated`,
      });
    }
  }
  if (tasksLeft) {
    return idle(
      g,
      'unchanged',
      `draining ${r.instance}: ${g.container?.runningTasks} ECS task(s) still on it`,
    );
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
    steps: [{ op: 'terminate', instanceId: r.instance }, ...finish(r)],
    detail:
      `terminate ${r.instance} now that its replacement is in service (${healthy} in service): desired ${g.desired} → ${g.desired - 1}` +
      (r.suspended.length > 0 ? `; resume ${r.suspended.join(', ')}` : ''),
  });
};

const planGroup = (g: GroupState, opts: RotationOptions): RotationWork => {
  if (g.readError) return idle(g, 'failed', `could not read the group's state: ${g.readError}`);
  // A rotation in flight is finished even if the group opted out meanwhile: never leave it half done.
  const saved = g.tags[ROTATION_TAG];
  if (saved !== undefined) {
    try {
      return continueRotation(g, decodeRotation(saved), opts);
    } catch (error) {
      return idle(
        g,
        'failed',
        `tag ${ROTATION_TAG} is unreadable (${errorMessage(error)}); nothing changed — fix or delete it`,
      );
    }
  }
  if (g.tags[ROTATE_TAG] === undefined)
    return idle(g, 'skipped', `not opted in: the group has no ${ROTATE_TAG} tag`);
  const maxAge = maxAgeFor(g, opts);
  if (maxAge === false) return idle(g, 'skipped', `opted out: ${ROTATE_TAG}=false`);
  if ('error' in maxAge) return idle(g, 'failed', maxAge.error);
  const unstable = instability(g);
  if (unstable) return idle(g, 'skipped', unstable);
  const ageOf = (i: InstanceState) => (i.since ? opts.now.getTime() - i.since.getTime() : 0);
  const byAge = g.instances.filter(inService).sort((a, b) => ageOf(b) - ageOf(a));
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
  const hold = HELD_PROCESSES.filter((p) => !g.suspended.includes(p));
  const rotation: Rotation = {
    desired: g.desired,
    instance: oldest.id,
    phase: 'launching',
    at: stamp(opts.now),
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
 * oldest first, launch before terminate. Pure: no I/O, no clock, no environment.
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
