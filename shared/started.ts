import { mapLimit } from '#shared/concurrency.ts';
import { assertTime } from '#shared/deadline.ts';
import type { LeaseOwner, LeaseStore } from '#shared/lease.ts';

/**
 * A small record per resource in the lease table: when a nightshift start (explicit or reconcile) last
 * brought it back (ecs-scheduler: a service or group; rds-scheduler: a DB instance or cluster). A start
 * removes the saved-state tag, so without this a reconcile could not tell a resource a person started
 * with `nightshift start` after the evening stop (leave it alone until the next transition) from one
 * whose stop was missed (stop it). Kept for 60 days (the table's TTL). Scope:
 * `started#<function>#<ARN>`.
 */
const KEPT_MS = 60 * 24 * 3_600_000;
const CONCURRENCY = 10;

/**
 * A start nightshift made: when, and, for a start an override (`nightshift wake`) asked for, when that
 * override ends — from then on the start no longer counts as "acted on since the transition", even if
 * the override's tag was removed by hand or by IaC in the meantime.
 */
export interface StartRecord {
  at: Date;
  until?: Date;
}

const time = (text: string | undefined) => {
  const ms = text === undefined ? NaN : Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
};

/**
 * One function's start records: its scope, and reading and writing them. `kind` names another record
 * of the same shape (rds-scheduler's `autostart`: when RDS said it started a database by itself).
 */
export const startRecords = (fn: string, kind = 'started') => {
  const startedScope = (arn: string) => `${kind}#${fn}#${arn}`;

  /** The recorded start of each resource, for the ARNs given; none without a lease table. */
  const readStarted = async (
    store: LeaseStore | undefined,
    arns: readonly string[],
    hasTime: () => boolean,
  ): Promise<Map<string, StartRecord>> => {
    const out = new Map<string, StartRecord>();
    if (!store) return out;
    await mapLimit([...new Set(arns)], CONCURRENCY, async (arn) => {
      assertTime(hasTime, 'the start records in the lease table');
      const item = await store.read(startedScope(arn));
      const at = time(item?.data.at);
      const until = time(item?.data.until);
      if (at) out.set(arn, { at, ...(until && { until }) });
    });
    return out;
  };

  /**
   * Records that these resources are being started at `now` (`until`: the end of the override that asked
   * for it). Written before the start: a record for a start that then fails is harmless (the saved state,
   * still there, is what a reconcile reads first). Returns, by ARN, the records that could not be written:
   * a reconcile might stop those resources again before the next transition, and their rows say so.
   */
  const recordStarted = async (
    store: LeaseStore | undefined,
    starts: ReadonlyArray<{ arn: string; until?: Date }>,
    owner: LeaseOwner,
    now: Date,
  ): Promise<Map<string, string>> => {
    const problems = new Map<string, string>();
    if (!store || starts.length === 0) return problems;
    const unique = [...new Map(starts.map((s) => [s.arn, s])).values()];
    await mapLimit(unique, CONCURRENCY, async ({ arn, until }) => {
      const scope = startedScope(arn);
      const next = {
        scope,
        holder: owner.holder,
        token: owner.token,
        acquiredAt: now,
        expiresAt: new Date(now.getTime() + KEPT_MS),
        data: { at: now.toISOString(), ...(until && { until: until.toISOString() }) },
      };
      try {
        const current = await store.read(scope);
        // Lost to another start writing the same record meanwhile: its time is as good as ours.
        await store.compareAndSet(next, current?.version);
      } catch (error) {
        problems.set(arn, (error as Error).message);
      }
    });
    return problems;
  };

  return { startedScope, readStarted, recordStarted };
};
