import { decodeSavedState, encodeSavedState, SavedStateError } from '#shared/saved-state.ts';

/**
 * The tag on an instance or ECS service that holds its last restart by nightshift, e.g.
 * `at=2026-11-23T02:14:41Z what=container:web via=alarm`. Public contract: the visible record of the
 * restart (`nightshift status` reads it), written after the target was claimed in the lease table
 * (guard.ts, which makes the cooldown atomic) and before the restart is sent. Its cooldown holds alarm
 * restarts off too, including restarts made from another stage.
 */
export const LAST_RESTART_TAG = 'nightshift:last-restart';

export type Trigger = 'alarm' | 'on-demand';

export interface LastRestart {
  at: Date;
  /** `container:web`, `unit:nginx.service` or `ecs-service`. */
  what: string;
  via: string;
}

/** ISO time to the second: tag values allow `:` but the milliseconds add nothing. */
export const stamp = (at: Date): string => at.toISOString().replace(/\.\d{3}Z$/, 'Z');

export const encodeLastRestart = (r: { at: Date; what: string; via: Trigger }): string =>
  encodeSavedState({ at: stamp(r.at), what: r.what, via: r.via });

/** Reads the tag value; throws SavedStateError when it is not one nightshift wrote. */
export const decodeLastRestart = (text: string): LastRestart => {
  const fields = decodeSavedState(text);
  const at = new Date(fields.at ?? '');
  if (!fields.at || Number.isNaN(at.getTime())) {
    throw new SavedStateError(`${LAST_RESTART_TAG} "${text}" has no valid at= time`);
  }
  return { at, what: fields.what ?? 'unknown', via: fields.via ?? 'unknown' };
};
