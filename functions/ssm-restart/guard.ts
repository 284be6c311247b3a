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
 * - `data.command` is the SSM command of an instance's restart, written right after the send with the
 *   `runUntil` that send's own TimeoutSeconds gives: a later run asks SSM (GetCommandInvocation) and
 *   goes ahead once that invocation has ended, rather than wait for `runUntil`;
 * - `data.restarts` keeps the times of the alarm restarts in the last hour (since the last on-demand
 *   restart), for the flap guard; `data.flapped` latches the guard until a restart on demand, and the
 *   record then expires LATCH_HOLD_MS after the last alarm it refused (DynamoDB's TTL never removes it
 *   while alarms keep coming: in practice, never on its own);
 * - `data.alarms` keeps the alarm state changes (alarm ARN and `detail.state.timestamp`) that restarted
 *   the target in the last hour: a second delivery of one of them (the alarm's Lambda action and the
 *   EventBridge rule both deliver it, or a retry) restarts nothing, whatever the cooldown.
 * Two runs that read the same version cannot both write it: the loser reads again and decides again,
 * and so meets the winner's cooldown. `acquire` is not used: it would reset the version and drop
 * `data`, so a stale reader could overwrite a newer claim and the flap history would be lost.
 */

/** The lease-table scope of a restart target. */
export const restartScope = (arn: string): string => `restart#${arn}`;

/**
 * A latched flap guard keeps its item this long after the last alarm it refused: the latch must not
 * expire on its own ("until a person restarts it on demand"), and the lease table's TTL removes items a
 * day after their `expiresAt`. Renewed by every alarm the latch refuses.
 */
export const LATCH_HOLD_MS = 10 * 365 * 86_400_000;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** How long a record remembers the alarm state changes that restarted its target. */
const STATE_CHANGE_MEMORY_MS = HOUR_MS;
/** At most this many remembered state changes (an alarm storm with RESTART_COOLDOWN_MINUTES=0). */
const STATE_CHANGES_KEPT = 20;

/**
 * The statuses of an SSM command invocation that has ended (GetCommandInvocation Status): Success,
 * Failed, TimedOut (delivery or execution timed out), Cancelled. Pending, InProgress, Delayed and
 * Cancelling have not.
 */
export const COMMAND_ENDED: ReadonlySet<string> = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/** One alarm state change: the alarm's ARN and when it changed into ALARM (ISO, to the millisecond). */
export interface StateChange {
  alarm: string;
  at: string;
}

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
  /** The alarm state change that asks for this restart; none on demand, or without a readable time. */
  stateChange?: StateChange;
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

/** The state changes a record remembers, those of the last hour only; an unreadable list is none. */
export const recordedStateChanges = (
  lease: Lease | undefined,
  now: Date,
): (StateChange & { restarted: string })[] => {
  let list: unknown;
  try {
    list = JSON.parse(lease?.data.alarms ?? '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.filter(
    (c): c is StateChange & { restarted: string } =>
      typeof c?.alarm === 'string' &&
      typeof c?.at === 'string' &&
      typeof c?.restarted === 'string' &&
      (parseTime(c.restarted)?.getTime() ?? 0) > now.getTime() - STATE_CHANGE_MEMORY_MS,
  );
};

/**
 * The SSM invocation a later run asks about: another run's restart of an instance still in progress
 * by its record, with the command it sent. Undefined when there is nothing to ask.
 */
export const awaitedCommand = (
  lease: Lease | undefined,
  now: Date,
  owner: LeaseOwner,
): { commandId: string; instanceId: string } | undefined => {
  const commandId = lease?.data.command;
  const instanceId = lease?.scope.match(/:instance\/(i-[0-9a-f]+)$/)?.[1];
  const runUntil = parseTime(lease?.data.runUntil);
  if (!lease || !commandId || !instanceId || !runUntil || lease.token === owner.token) return undefined;
  return runUntil.getTime() > now.getTime() ? { commandId, instanceId } : undefined;
};

/**
 * What the plan digest says of a target's restart record: its version, which every write to it moves
 * (a restart, the command it sent, its end, a latched flap guard), and its last restart. An apply
 * confirmed before any of those refuses: the plan the person saw is not the one it would carry out.
 */
export const lastRestartKey = (lease: Lease | undefined): string =>
  lease
    ? `restart record version ${lease.version}, last restart ${lease.acquiredAt.toISOString()} by ${lease.token}`
    : 'never restarted';

const who = (lease: Lease) =>
  `${lease.data.what ?? 'a restart'} via ${lease.data.via ?? 'unknown'}, by ${lease.holder || 'unknown holder'}`;

/** The item after a restart now by this run; it remembers the state changes of the last hour. */
const claimed = (
  scope: string,
  o: GuardOptions,
  restarts: Date[],
  lease: Lease | undefined,
): Omit<Lease, 'version'> => {
  const changes = [
    ...recordedStateChanges(lease, o.now),
    ...(o.stateChange ? [{ ...o.stateChange, restarted: stamp(o.now) }] : []),
  ].slice(-STATE_CHANGES_KEPT);
  return {
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
      ...(changes.length > 0 && { alarms: JSON.stringify(changes) }),
    },
  };
};

/**
 * Whether this restart of the target may go ahead now, given its item (undefined: never restarted, or
 * so long ago that the item expired) and, when another run's restart of it is in progress with an SSM
 * command, that command's invocation status (`commandStatus`, from GetCommandInvocation). In this order:
 * 1. another run's restart of it is still in progress (`runUntil` ahead, and its command, if it names
 *    one, has not ended): skipped, alarm or on demand;
 * 2. an alarm state change that already restarted it (a second delivery of the same one): skipped;
 * 3. on demand: go, resetting the flap guard and the alarm-restart history;
 * 4. the flap guard is latched: failed, until a restart on demand (the latch is renewed);
 * 5. within the cooldown: skipped;
 * 6. RESTART_MAX_PER_HOUR alarm restarts already in the last hour: failed, and the guard latches;
 * 7. go, recording this restart.
 */
export const decideRestart = (
  scope: string,
  lease: Lease | undefined,
  o: GuardOptions,
  commandStatus?: string,
): GuardDecision => {
  const now = o.now.getTime();
  const expected = lease?.version;
  const previous = lease && (({ version: _, ...rest }) => rest)(lease);
  const over = (next: Omit<Lease, 'version'>): GuardWrite => ({
    next,
    expected,
    ...(previous && { previous }),
  });
  let ended = '';
  if (lease) {
    const runUntil = parseTime(lease.data.runUntil);
    if (runUntil && runUntil.getTime() > now && lease.token !== o.owner.token) {
      const command = lease.data.command;
      if (command && commandStatus && COMMAND_ENDED.has(commandStatus)) {
        ended = `; the restart before it (${who(lease)}, since ${stamp(lease.acquiredAt)}) is over: SSM command ${command} ended ${commandStatus}`;
      } else {
        const status = command
          ? `; its SSM command ${command} is ${commandStatus ?? 'not known to SSM yet'}`
          : '';
        return {
          kind: 'skip',
          reason:
            `another restart of it is in progress: ${who(lease)}, since ${stamp(lease.acquiredAt)} (that run ends ` +
            `by ${stamp(runUntil)}${status}); not restarted for ${o.reason} — run again once it is done`,
        };
      }
    }
  }
  const change = o.stateChange;
  const seen =
    change && recordedStateChanges(lease, o.now).find((c) => c.alarm === change.alarm && c.at === change.at);
  if (lease && seen) {
    return {
      kind: 'skip',
      reason:
        `this state change of the alarm (ALARM at ${seen.at}) already restarted it at ${seen.restarted}: a second ` +
        `delivery of it (the alarm's Lambda action and the EventBridge rule both deliver it, or a retry) restarts ` +
        `nothing; not restarted for ${o.reason}`,
    };
  }
  if (o.trigger === 'on-demand') {
    const flapped = parseTime(lease?.data.flapped);
    const note = flapped
      ? `; this on-demand restart resets the flap guard (automatic restarts of it had stopped at ${stamp(flapped)})`
      : '';
    return { kind: 'go', write: over(claimed(scope, o, [], lease)), note: `${ended}${note}` };
  }
  const recent = inLastHour(recordedRestarts(lease), o.now);
  const latch = (reason: string, since: Date): GuardDecision => ({
    kind: 'flap',
    reason,
    // The last restart's holder, time and run stay as they were: only the latch is added, and renewed.
    write: over({
      scope,
      holder: lease?.holder ?? o.owner.holder,
      token: lease?.token ?? o.owner.token,
      acquiredAt: lease?.acquiredAt ?? o.now,
      expiresAt: new Date(now + LATCH_HOLD_MS),
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
  return { kind: 'go', write: over(claimed(scope, o, [...recent, o.now], lease)), note: ended };
};

/** The item once this run's restart of it is over: no longer in progress, the cooldown unchanged. */
export const finished = (next: Omit<Lease, 'version'>, at: Date): Omit<Lease, 'version'> => ({
  ...next,
  data: { ...next.data, runUntil: stamp(at) },
});

/** The item once its SSM command was sent: the command, and in progress until that command expires. */
export const commandSent = (
  next: Omit<Lease, 'version'>,
  commandId: string | undefined,
  until: Date,
): Omit<Lease, 'version'> => ({
  ...next,
  data: { ...next.data, ...(commandId && { command: commandId }), runUntil: stamp(until) },
});
