import type { PlannedWork } from '#shared/execute.ts';
import { countField, decodeSavedState, encodeSavedState } from '#shared/saved-state.ts';
import { formatAge, parseDuration } from '#shared/duration.ts';
import { errorMessage } from '#shared/errors.ts';
import { ROTATE_TAG, ROTATION_TAG, type GroupState, type InstanceState } from './inventory.ts';

/** Processes whose suspension makes a group unsafe to rotate: nothing could replace what is removed. */
export const BLOCKING_PROCESSES = ['Launch', 'Terminate', 'HealthCheck', 'ReplaceUnhealthy'];

export type Step =
  | { op: 'save-rotation'; value: string }
  | { op: 'set-desired'; desired: number }
  | { op: 'drain'; cluster: string; containerInstance: string }
  | { op: 'terminate'; instanceId: string }
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
}

export interface RotationOptions {
  /** maxAge from the input, else MAX_AGE. A group's own duration tag overrides it. */
  maxAge: { text: string; ms: number };
  replacementTimeoutMinutes: number;
  now: Date;
}

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

export const encodeRotation = (r: Rotation) =>
  encodeSavedState({ desired: r.desired, instance: r.instance, phase: r.phase, at: r.at });

export const decodeRotation = (text: string): Rotation => {
  const f = decodeSavedState(text);
  if (!/^i-[0-9a-f]{8,17}$/.test(f.instance ?? '')) throw new Error(`no valid instance in "${text}"`);
  if (f.phase !== 'launching' && f.phase !== 'draining') throw new Error(`no valid phase in "${text}"`);
  return {
    desired: countField(f, 'desired'),
    instance: f.instance as string,
    phase: f.phase,
    at: f.at ?? '',
  };
};

const inService = (i: InstanceState) => i.lifecycle === 'InService' && i.health === 'Healthy';

/** The max age that applies to a group, or an error naming the bad tag. */
const maxAgeFor = (
  g: GroupState,
  opts: RotationOptions,
): { text: string; ms: number } | { error: string } => {
  const tag = (g.tags[ROTATE_TAG] ?? '').trim();
  if (tag.toLowerCase() === 'true') return opts.maxAge;
  const ms = parseDuration(tag);
  if (ms === undefined)
    return { error: `tag ${ROTATE_TAG}=${tag} is neither true nor a duration such as 7d` };
  return { text: tag, ms };
};

/** Why a group must not start a rotation now, or undefined when it is stable. */
const instability = (g: GroupState): string | undefined => {
  const blocked = g.suspended.filter((p) => BLOCKING_PROCESSES.includes(p));
  if (blocked.length > 0) return `processes suspended: ${blocked.join(', ')}`;
  if (g.activities.length > 0) return `scaling activity in progress: ${g.activities[0]}`;
  if (g.refresh) return g.refresh;
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

/** A rotation in flight: wait for the replacement, drain, terminate, or give up and restore. */
const continueRotation = (g: GroupState, r: Rotation, opts: RotationOptions): RotationWork => {
  const old = g.instances.find((i) => i.id === r.instance);
  const restore = g.desired !== r.desired ? [{ op: 'set-desired' as const, desired: r.desired }] : [];
  if (!old || old.lifecycle.startsWith('Terminat')) {
    return work(g, {
      hasWork: true,
      steps: [...restore, { op: 'clear-rotation' }],
      detail:
        `${r.instance} left the group` +
        (restore.length > 0 ? `; desired ${g.desired} → ${r.desired} restored` : '') +
        '; rotation finished',
    });
  }
  const healthy = g.instances.filter(inService).length;
  if (r.phase === 'launching') {
    const ready = healthy >= r.desired + 1 && g.activities.length === 0;
    if (!ready) {
      const waited = opts.now.getTime() - Date.parse(r.at);
      if (Number.isFinite(waited) && waited > opts.replacementTimeoutMinutes * 60_000) {
        return work(g, {
          hasWork: true,
          steps: [...restore, { op: 'clear-rotation' }],
          detail: `desired ${g.desired} → ${r.desired}`,
          failure:
            `the replacement for ${r.instance} did not come into service within ${opts.replacementTimeoutMinutes} min ` +
            `(${healthy} of ${r.desired + 1} in service); rotation abandoned, desired restored to ${r.desired}`,
        });
      }
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
  if (g.container && g.container.status !== 'INACTIVE' && g.container.runningTasks > 0) {
    return idle(
      g,
      'unchanged',
      `draining ${r.instance}: ${g.container.runningTasks} ECS task(s) still on it`,
    );
  }
  return work(g, {
    hasWork: true,
    steps: [{ op: 'terminate', instanceId: r.instance }, { op: 'clear-rotation' }],
    detail: `terminate ${r.instance} now that its replacement is in service (${healthy} in service): desired ${g.desired} → ${g.desired - 1}`,
  });
};

const planGroup = (g: GroupState, opts: RotationOptions): RotationWork => {
  if (g.tags[ROTATE_TAG] === undefined)
    return idle(g, 'skipped', `not opted in: the group has no ${ROTATE_TAG} tag`);
  const maxAge = maxAgeFor(g, opts);
  if ('error' in maxAge) return idle(g, 'failed', maxAge.error);
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
  const rotation: Rotation = {
    desired: g.desired,
    instance: oldest.id,
    phase: 'launching',
    at: stamp(opts.now),
  };
  return work(g, {
    hasWork: true,
    steps: [
      { op: 'save-rotation', value: encodeRotation(rotation) },
      { op: 'set-desired', desired: g.desired + 1 },
    ],
    detail:
      `launch a replacement for ${oldest.id} (${formatAge(ageOf(oldest))} old, max ${maxAge.text}): desired ${g.desired} → ${g.desired + 1}` +
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
