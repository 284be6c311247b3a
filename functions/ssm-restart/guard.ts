import type { Lease, LeaseOwner } from '#shared/lease.ts';
import { stamp, type Trigger } from './cooldown.ts';

/**
 * The restart guard: which restarts of one target may go ahead, decided from the target's item in the
 * stage's lease table. Pure: the item, the time and the options in, a decision with a reason out.
 *
 * One item per restart target, `restart#<target ARN>` (the prefix keeps it apart from the run leases
 * other functions take on the same ARNs). It is written with a conditional write on its version
 * (LeaseStore.compareAndSet) before anything is tagged or sent, and is not released when the run ends:
 * - its `expiresAt` is the end of the cooldown (`RESTART_COOLDOWN_MINUTES` after the restart);
 * - `data.runUntil` is when the run that restarted it ends at the latest: until then another restart
 *   of it is in progress, whatever the cooldown (on demand too);
 * - `data.restarts` keeps the times of the alarm restarts in the last hour (since the last on-demand
 *   restart), for the flap guard; `data.flapped` latches the guard until a restart on demand.
 * Two runs that read the same version cannot both write it: the loser reads again and decides again,
 * and so meets the winner's cooldown. `acquire` is not used: it would reset the version and drop
 * `data`, so a stale reader could overwrite a newer claim and the flap history would be lost.
 */

/** The lease-table scope of a restart target. */
export const restartScope = (arn: string): string => `restart#${arn}`;

/** A latched flap guard keeps its item this long after the last alarm it refused. */
export const FLAP_HOLD_MS = 30 * 86_400_000;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

export interface GuardOptions {
  trigger: Trigger;
  /** `alarm web-1-unhealthy` or `on-demand`, for the reasons. */
  reason: string;
  /** `container:web`, `unit:nginx.service` or `ecs-service`. */
  what: string;
  cooldownMinutes: number;
  /** RESTART_MAX_PER_HOUR: more alarm restarts than this in an hour latch the flap guard. */
  maxPerHour: number;
  now: Date;
  /** This run: a claim it holds already is not "another restart in progress". */
  owner: LeaseOwner;
  /** When this run ends at the latest (its timeout plus a margin). */
  runUntil: Date;
}

/** A write to make with compareAndSet over `expected` (undefined: there is no item yet). */
export interface GuardWrite {
  next: Omit<Lease, 'version'>;
  expected: number | undefined;
  /** The record it replaces, to put back if nothing reached the target after all. */
  previous?: Omit<Lease, 'version'>;
}

export type GuardDecision =
  /** Claim the target with `write`, then restart it; `note` adds to the row's detail. */
  | { kind: 'go'; write: GuardWrite; note: string }
  /** Leave it alone: cooldown, or another restart in progress. */
  | { kind: 'skip'; reason: string }
  /** The flap guard refuses it (failed); `write` latches the guard. */
  | { kind: 'flap'; reason: string; write: GuardWrite };

const parseTime = (text: string | undefined): Date | undefined => {
  if (!text) return undefined;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? undefined : at;
};

/** The alarm restarts an item records, oldest first. */
export const recordedRestarts = (lease: Lease | undefined): Date[] =>
  (lease?.data.restarts ?? '')
    .split(' ')
    .flatMap((t) => parseTime(t) ?? [])
    .sort((a, b) => a.getTime() - b.getTime());

const inLastHour = (times: Date[], now: Date) =>
  times.filter((t) => t.getTime() > now.getTime() - HOUR_MS && t.getTime() <= now.getTime());

const who = (lease: Lease) =>
  `${lease.data.what ?? 'a restart'} via ${lease.data.via ?? 'unknown'}, by ${lease.holder || 'unknown holder'}`;

/** The item after a restart now by this run. */
const claimed = (scope: string, o: GuardOptions, restarts: Date[]): Omit<Lease, 'version'> => ({
  scope,
  holder: o.owner.holder,
  token: o.owner.token,
  acquiredAt: o.now,
  expiresAt: new Date(o.now.getTime() + o.cooldownMinutes * MINUTE_MS),
  data: {
    what: o.what,
    via: o.trigger,
    runUntil: stamp(o.runUntil),
    ...(restarts.length > 0 && { restarts: restarts.map(stamp).join(' ') }),
  },
});

/**
 * Whether this restart of the target may go ahead now, given its item (undefined: never restarted, or
 * so long ago that the item expired). In this order:
 * 1. another run's restart of it is still in progress (`runUntil` ahead): skipped, alarm or on demand;
 * 2. on demand: go, resetting the flap guard and the alarm-restart history;
 * 3. the flap guard is latched: failed, until a restart on demand (the latch is renewed);
 * 4. within the cooldown: skipped;
 * 5. RESTART_MAX_PER_HOUR alarm restarts already in the last hour: failed, and the guard latches;
 * 6. go, recording this restart.
 */
export const decideRestart = (scope: string, lease: Lease | undefined, o: GuardOptions): GuardDecision => {
  const now = o.now.getTime();
  const expected = lease?.version;
  const previous = lease && (({ version: _, ...rest }) => rest)(lease);
  const over = (next: Omit<Lease, 'version'>): GuardWrite => ({
    next,
    expected,
    ...(previous && { previous }),
  });
  if (lease) {
    const runUntil = parseTime(lease.data.runUntil);
    if (runUntil && runUntil.getTime() > now && lease.token !== o.owner.token) {
      return {
        kind: 'skip',
        reason:
          `another restart of it is in progress: ${who(lease)}, since ${stamp(lease.acquiredAt)} (that run ends ` +
          `by ${stamp(runUntil)}); not restarted for ${o.reason} — run again once it is done`,
      };
    }
  }
  if (o.trigger === 'on-demand') {
    const flapped = parseTime(lease?.data.flapped);
    const note = flapped
      ? `; this on-demand restart resets the flap guard (automatic restarts of it had stopped at ${stamp(flapped)})`
      : '';
    return { kind: 'go', write: over(claimed(scope, o, [])), note };
  }
  const recent = inLastHour(recordedRestarts(lease), o.now);
  const latch = (reason: string, since: Date): GuardDecision => ({
    kind: 'flap',
    reason,
    // The last restart's holder, time and run stay as they were: only the latch is added.
    write: over({
      scope,
      holder: lease?.holder ?? o.owner.holder,
      token: lease?.token ?? o.owner.token,
      acquiredAt: lease?.acquiredAt ?? o.now,
      expiresAt: new Date(now + FLAP_HOLD_MS),
      data: { ...lease?.data, flapped: stamp(since) },
    }),
  });
  const stopped = `no automatic restarts of it until a person restarts it on demand; not restarted for ${o.reason}`;
  const flapped = parseTime(lease?.data.flapped);
  if (flapped) {
    return latch(
      `flap guard: automatic restarts of it stopped at ${stamp(flapped)}, after more than ${o.maxPerHour} ` +
        `restarts in an hour (RESTART_MAX_PER_HOUR); ${stopped}`,
      flapped,
    );
  }
  if (lease && lease.expiresAt.getTime() > now) {
    const ago = Math.max(0, Math.floor((now - lease.acquiredAt.getTime()) / MINUTE_MS));
    return {
      kind: 'skip',
      reason:
        `last restarted ${ago} min ago at ${stamp(lease.acquiredAt)} (${who(lease)}); alarm restarts wait for the ` +
        `${o.cooldownMinutes}-min cooldown, which ends at ${stamp(lease.expiresAt)}: not restarted for ${o.reason}`,
    };
  }
  if (recent.length >= o.maxPerHour) {
    return latch(
      `flap guard: restarted ${recent.length} times by alarms in the last hour (${recent.map(stamp).join(', ')}); ` +
        `one more would be more than RESTART_MAX_PER_HOUR (${o.maxPerHour}): ${stopped}`,
      o.now,
    );
  }
  return { kind: 'go', write: over(claimed(scope, o, [...recent, o.now])), note: '' };
};

/** The item once this run's restart of it is over: no longer in progress, the cooldown unchanged. */
export const finished = (next: Omit<Lease, 'version'>, at: Date): Omit<Lease, 'version'> => ({
  ...next,
  data: { ...next.data, runUntil: stamp(at) },
});
