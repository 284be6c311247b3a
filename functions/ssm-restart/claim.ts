import { errorMessage } from '#shared/errors.ts';
import { leaseErrorReason, type Lease, type LeaseStore } from '#shared/lease.ts';
import {
  awaitedCommand,
  commandSent,
  decideRestart,
  finished,
  type GuardOptions,
  type GuardWrite,
} from './guard.ts';
import { stamp } from './cooldown.ts';

/**
 * Claims restart targets in the lease table before anything is tagged or sent (guard.ts): one
 * conditional write per target on the version of its restart record. A run that loses the write reads
 * the record again and decides again, so it meets the winner's cooldown (or its restart in progress).
 */

/** How many times a claim is decided again after losing its write to another run. */
const ATTEMPTS = 3;

export interface ClaimContext {
  /** The lease table; undefined without LEASE_TABLE (every claim then fails, and nothing changes). */
  store: LeaseStore | undefined;
  /** Its name, for messages. */
  table: string;
  options: GuardOptions;
  /**
   * The status of another run's SSM command that a restart record names (GetCommandInvocation), or
   * undefined when SSM does not say: a claim decided again asks it, as the planner did.
   */
  commandStatus?: (commandId: string, instanceId: string) => Promise<string | undefined>;
}

/** A target this run holds: the record it wrote, at `version`. */
export interface Claimed {
  write: GuardWrite;
  version: number;
}

export type ClaimResult = { claimed: Claimed } | { outcome: 'skipped' | 'undone' | 'failed'; detail: string };

/**
 * Why a target was left alone when its restart record could not be written at all. An alarm restart
 * never goes ahead unguarded: without the record another alarm, or a second delivery of this one, could
 * restart the same target at the same time.
 */
const unguarded = (table: string, error: string, nothing: string): ClaimResult => ({
  outcome: 'failed',
  detail: `${leaseErrorReason(table, error)}; no restart goes ahead unguarded: ${nothing}`,
});

/**
 * Latches (or renews) the flap guard; a write lost to another run is left to that run. Returns what the
 * row must add when the latch could not be written: the row stays `failed`, but it cannot claim that
 * automatic restarts stopped when the record does not say so.
 */
export const writeLatch = async (ctx: ClaimContext, latch: GuardWrite): Promise<string | undefined> => {
  let error: string;
  try {
    if (!ctx.store) error = 'LEASE_TABLE is not set';
    else {
      await ctx.store.compareAndSet(latch.next, latch.expected);
      return undefined;
    }
  } catch (e) {
    error = errorMessage(e);
  }
  const before = latch.previous;
  // Renewing a latch that is there: it still holds, until the time its record says.
  const holds =
    before?.data.flapped !== undefined && before.expiresAt.getTime() > ctx.options.now.getTime()
      ? `and the latch recorded before still holds, until ${stamp(before.expiresAt)}`
      : 'so nothing stops automatic restarts of it yet: alarms in the next hour meet the flap guard again and try ' +
        'to latch it, but once its last restarts are more than an hour old, alarms restart it again';
  return `; but the latch could not be written to its restart record in ${ctx.table} (${error}), ${holds}`;
};

/** `write` with its restart in progress until `until` at least (a command SSM may still start then). */
const inProgressUntil = (write: GuardWrite, until: Date | undefined): GuardWrite => {
  const planned = write.next.data.runUntil ? new Date(write.next.data.runUntil) : undefined;
  if (!until || (planned && planned.getTime() >= until.getTime())) return write;
  return { ...write, next: finished(write.next, until) };
};

/**
 * Claims the target of `scope`: first with the write the planner decided (`planned`), then, whenever
 * another run wrote its record first, deciding again from what is there now. `until`: the restart stays
 * in progress until then at least, whatever this run's own end (an SSM command queued behind others
 * may start long after the Lambda ended).
 */
export const claimTarget = async (
  ctx: ClaimContext,
  scope: string,
  planned: GuardWrite | undefined,
  nothing: string,
  until?: Date,
): Promise<ClaimResult> => {
  if (!ctx.store) {
    return {
      outcome: 'failed',
      detail:
        'LEASE_TABLE is not set: its restart cannot be claimed, and without a claim another alarm, or a second ' +
        `delivery of this one, could restart it at the same time; no restart goes ahead unguarded: ${nothing}`,
    };
  }
  let write = planned;
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (!write) {
        const current: Lease | undefined = await ctx.store.read(scope);
        const awaited = awaitedCommand(current, ctx.options.now, ctx.options.owner);
        const status = awaited && (await ctx.commandStatus?.(awaited.commandId, awaited.instanceId));
        const decision = decideRestart(scope, current, ctx.options, status);
        if (decision.kind === 'skip') return { outcome: 'skipped', detail: decision.reason };
        if (decision.kind === 'flap') {
          const unwritten = await writeLatch(ctx, decision.write);
          return { outcome: 'failed', detail: `${decision.reason}${unwritten ?? ''}` };
        }
        write = decision.write;
      }
      const claim = inProgressUntil(write, until);
      const version = (claim.expected ?? 0) + 1;
      if (await ctx.store.compareAndSet(claim.next, claim.expected))
        return { claimed: { write: claim, version } };
      // A write whose answer was lost and whose retry then failed its condition against itself is this
      // run's own claim: never "restarted 0 min ago" by itself.
      if (ownClaim(await ctx.store.read(scope), claim, version))
        return { claimed: { write: claim, version } };
      write = undefined;
    }
  } catch (error) {
    return unguarded(ctx.table, errorMessage(error), nothing);
  }
  // Other runs kept writing it: the work is still to do (carried over to the next run), as for any
  // scope another run holds.
  return {
    outcome: 'undone',
    detail:
      `other runs wrote its restart record in ${ctx.table} under every one of ${ATTEMPTS} claims; ${nothing}: ` +
      'its restart is still to do — run again once they are done',
  };
};

/** Whether the record read is the very claim this run wrote at `version`. */
const ownClaim = (current: Lease | undefined, claim: GuardWrite, version: number): boolean =>
  current !== undefined &&
  current.version === version &&
  current.token === claim.next.token &&
  current.acquiredAt.getTime() === claim.next.acquiredAt.getTime() &&
  current.data.runUntil === claim.next.data.runUntil;

/**
 * Records the SSM command of a restart in its record, in progress until `until` (when that command can
 * no longer start or run): a later run asks SSM about it instead of waiting. Returns the claim at its
 * new version, or the same claim when the write did not go through (its record still says in progress
 * until the bound written before the send, which is never earlier).
 */
export const recordCommand = async (
  ctx: ClaimContext,
  claimed: Claimed,
  commandId: string | undefined,
  until: Date,
): Promise<Claimed> => {
  const next = commandSent(claimed.write.next, commandId, until);
  const written = await ctx.store?.compareAndSet(next, claimed.version).catch(() => false);
  return written ? { write: { ...claimed.write, next }, version: claimed.version + 1 } : claimed;
};

/**
 * Marks this run's restart of a target as over (no longer in progress; the cooldown and the flap
 * history stay), or, when nothing reached it (`undo`), puts its record back as it was before the claim.
 * Best effort: a record another run wrote since is theirs, and a record left in progress frees itself
 * when this run's time is up.
 */
export const finishClaim = async (
  ctx: ClaimContext,
  claimed: Claimed,
  at: Date,
  undo = false,
): Promise<void> => {
  const { next, previous } = claimed.write;
  // Undone with no record before it: a record that holds nothing (no cooldown, no history, not in progress).
  const after = !undo ? finished(next, at) : (previous ?? finished({ ...next, expiresAt: at, data: {} }, at));
  await ctx.store?.compareAndSet(after, claimed.version).catch(() => false);
};
