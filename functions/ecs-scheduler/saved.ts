import { countField, decodeSavedState, encodeSavedState, SavedStateError } from '#shared/saved-state.ts';

/** The tag that carries what a stopped service or capacity group comes back to. Public contract. */
export const SAVED_STATE_TAG = 'nightshift:stopped';

export interface Suspension {
  in: boolean;
  out: boolean;
  scheduled: boolean;
}

export interface ScalingLimits {
  min: number;
  max: number;
  suspended: Suspension;
}

export interface SavedService {
  desired: number;
  scaling?: ScalingLimits;
  at: string;
}

export interface GroupSize {
  min: number;
  desired: number;
  max: number;
}

export interface SavedGroup extends GroupSize {
  at: string;
}

export const ALL_SUSPENDED: Suspension = { in: true, out: true, scheduled: true };

/** A scaling target a stop parked: min 0, max 0, every kind of scaling suspended. */
export const PARKED_LIMITS: ScalingLimits = { min: 0, max: 0, suspended: ALL_SUSPENDED };

/** A capacity group a stop parked. */
export const PARKED_SIZE: GroupSize = { min: 0, desired: 0, max: 0 };

export const sameSize = (a: GroupSize, b: GroupSize): boolean =>
  a.min === b.min && a.desired === b.desired && a.max === b.max;

const encodeSuspension = (s: Suspension): string =>
  (['in', 'out', 'scheduled'] as const).filter((k) => s[k]).join('+') || 'none';

const decodeSuspension = (text: string | undefined): Suspension => {
  if (text === undefined) throw new SavedStateError('saved state has scaling limits but no suspended field');
  const parts = text === 'none' ? [] : text.split('+');
  if (parts.some((p) => !['in', 'out', 'scheduled'].includes(p))) {
    throw new SavedStateError(`saved state has an unreadable suspended field "${text}"`);
  }
  return { in: parts.includes('in'), out: parts.includes('out'), scheduled: parts.includes('scheduled') };
};

export const encodeService = (s: SavedService): string =>
  encodeSavedState({
    desired: s.desired,
    ...(s.scaling && {
      min: s.scaling.min,
      max: s.scaling.max,
      suspended: encodeSuspension(s.scaling.suspended),
    }),
    at: s.at,
  });

export const decodeService = (text: string): SavedService => {
  const f = decodeSavedState(text);
  const hasScaling = f.min !== undefined || f.max !== undefined;
  return {
    desired: countField(f, 'desired'),
    ...(hasScaling && {
      scaling: {
        min: countField(f, 'min'),
        max: countField(f, 'max'),
        suspended: decodeSuspension(f.suspended),
      },
    }),
    at: f.at ?? 'unknown',
  };
};

export const encodeGroup = (g: SavedGroup): string =>
  encodeSavedState({ min: g.min, desired: g.desired, max: g.max, at: g.at });

export const decodeGroup = (text: string): SavedGroup => {
  const f = decodeSavedState(text);
  return {
    min: countField(f, 'min'),
    desired: countField(f, 'desired'),
    max: countField(f, 'max'),
    at: f.at ?? 'unknown',
  };
};

export const describeSuspension = (s: Suspension): string =>
  s.in && s.out && s.scheduled
    ? 'all scaling suspended'
    : s.in || s.out || s.scheduled
      ? `suspended: ${encodeSuspension(s)}`
      : 'scaling active';

export const sameScaling = (a: ScalingLimits, b: ScalingLimits): boolean =>
  a.min === b.min &&
  a.max === b.max &&
  a.suspended.in === b.suspended.in &&
  a.suspended.out === b.suspended.out &&
  a.suspended.scheduled === b.suspended.scheduled;
