import { mapLimit } from '#shared/concurrency.ts';
import { assertTime } from '#shared/deadline.ts';
import type { LeaseOwner, LeaseStore } from '#shared/lease.ts';

/**
 * A small record per service in the lease table: when a nightshift start (explicit or reconcile) last
 * restored it. A start removes the saved-state tag, so without this a reconcile could not tell a service
 * a person started with `nightshift start` after the evening stop (leave it alone until the next
 * transition) from one whose stop was missed (stop it). Kept for 60 days (the table's TTL).
 */
export const startedScope = (serviceArn: string) => `started#ecs-scheduler#${serviceArn}`;

const KEPT_MS = 60 * 24 * 3_600_000;
const CONCURRENCY = 10;

/** The recorded start of each service, for the ARNs given; none without a lease table. */
export const readStarted = async (
  store: LeaseStore | undefined,
  arns: readonly string[],
  hasTime: () => boolean,
): Promise<Map<string, Date>> => {
  const out = new Map<string, Date>();
  if (!store) return out;
  await mapLimit([...new Set(arns)], CONCURRENCY, async (arn) => {
    assertTime(hasTime, 'the start records in the lease table');
    const item = await store.read(startedScope(arn));
    const at = item?.data.at === undefined ? NaN : Date.parse(item.data.at);
    if (!Number.isNaN(at)) out.set(arn, new Date(at));
  });
  return out;
};

/**
 * Records that these services were started at `now`. Best effort: a record that cannot be written is
 * returned as a problem (a reconcile might then stop that service again before the next transition).
 */
export const recordStarted = async (
  store: LeaseStore | undefined,
  arns: readonly string[],
  owner: LeaseOwner,
  now: Date,
): Promise<string[]> => {
  if (!store || arns.length === 0) return [];
  const problems: string[] = [];
  await mapLimit([...new Set(arns)], CONCURRENCY, async (arn) => {
    const scope = startedScope(arn);
    const next = {
      scope,
      holder: owner.holder,
      token: owner.token,
      acquiredAt: now,
      expiresAt: new Date(now.getTime() + KEPT_MS),
      data: { at: now.toISOString() },
    };
    try {
      const current = await store.read(scope);
      // Lost to another start writing the same record meanwhile: its time is as good as ours.
      await store.compareAndSet(next, current?.version);
    } catch (error) {
      problems.push(`${arn}: ${(error as Error).message}`);
    }
  });
  return problems;
};
