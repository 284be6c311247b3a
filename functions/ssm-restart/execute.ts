import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import {
  GetCommandInvocationCommand,
  SendCommandCommand,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { TagResourceCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { chunk, mapLimit } from '#shared/concurrency.ts';
import { errorMessage } from '#shared/errors.ts';
import { carriedFirst, executeWork, NOT_STARTED, resultOf } from '#shared/execute.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { planDigest } from '#shared/plan-digest.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import {
  claimTarget,
  finishClaim,
  recordCommand,
  writeLatch,
  type ClaimContext,
  type Claimed,
} from './claim.ts';
import { LAST_RESTART_TAG } from './cooldown.ts';
import { COMMAND_ENDED } from './guard.ts';
import { invocationStatus, type TargetClients } from './inventory.ts';
import { pollDelayMs } from './poll.ts';
import {
  RESTARTABLE_TAG,
  SEND_BATCH,
  type InstanceWork,
  type RestartPlan,
  type SendCommandPlan,
  type ServiceWork,
} from './plan.ts';

/** Tags and polls a few instances at a time; ECS services are redeployed a few at a time. */
const CALL_CONCURRENCY = 5;
/** Restart records marked over at once, at the end of a run (PutItem each). */
const FINISH_CONCURRENCY = 10;
/**
 * The delivery timeout of the first instances of a send: SendCommand's TimeoutSeconds is how long an
 * invocation may wait to start ("if this time is reached and the command hasn't already started
 * running, it won't run"), and SSM expires the whole command, Delivery Timed Out, once TimeoutSeconds
 * plus the execution timeout have passed since the send. Short, so a restart that could not be
 * delivered promptly does not run long after the alarm (SSM minimum: 30). Sends larger than one wave of
 * MaxConcurrency get more: see deliveryTimeoutSeconds.
 */
export const DELIVERY_TIMEOUT_SECONDS = 120;
/** SendCommand's TimeoutSeconds is at most 30 days. */
const MAX_TIMEOUT_SECONDS = 2_592_000;
/**
 * Seconds the command may run on an instance (AWS-RunShellScript's executionTimeout parameter): the
 * agent stops a restart that hangs longer.
 */
export const EXECUTION_TIMEOUT_SECONDS = 300;
/**
 * A restart stays in progress this long after its command can no longer start or run (its
 * TimeoutSeconds plus the execution timeout, from the send): the send's answer reaches the Lambda after
 * SSM's clock started, and the agent reports the end of a command a little after it stopped it.
 */
export const IN_PROGRESS_MARGIN_SECONDS = 60;
/** Stdout and stderr are cut to this many characters in the report. */
export const EXCERPT_LENGTH = 200;

export { pollDelayMs };

const TERMINAL = COMMAND_ENDED;
/** Invocation statuses of a command the instance's agent has not received yet. */
const NOT_DELIVERED = new Set(['Pending', 'Delayed']);

/** A wait is cut into slices this long, so a long one ends soon after the Lambda runs short of time. */
const SLEEP_SLICE_MS = 1_000;

export interface RestartOptions {
  dryRun: boolean;
  /** False once the Lambda is close to its timeout: send nothing new, stop polling. */
  hasTime: () => boolean;
  maxConcurrency: string;
  maxErrors: string;
  /** How long to wait before poll round `round` (0, 1, …). */
  pollDelayMs: (round: number) => number;
  sleep: (ms: number) => Promise<void>;
  /** The lease table every target is claimed in before it is tagged or sent to (undefined: none). */
  store: LeaseStore | undefined;
  /** Its name, for messages. */
  table: string;
  /** Targets the previous run left undone (RunContext.carriedOver): they go first. */
  first?: ReadonlySet<string>;
  /** The clock, for when a restart is over. */
  now: () => Date;
}

/** Whitespace collapsed, cut to 200 characters: readable in a report row. */
export const excerpt = (text: string | undefined): string => {
  const flat = (text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_LENGTH ? `${flat.slice(0, EXCERPT_LENGTH)}…` : flat;
};

const isAccessDenied = (error: unknown) =>
  /AccessDenied|UnauthorizedOperation/.test((error as Error)?.name ?? '');
const isNotYet = (error: unknown) => /InvocationDoesNotExist/.test((error as Error)?.name ?? '');

/** The error, and for a refusal by IAM the tag the role requires (the planner checked it at read time). */
const why = (error: unknown, kind: 'instance' | 'service' = 'instance') =>
  errorMessage(error) +
  (!isAccessDenied(error)
    ? ''
    : kind === 'instance'
      ? ` (the role tags and sends commands only to instances tagged ${RESTARTABLE_TAG}=true: tag the instance, or check the role)`
      : ` (the role tags and redeploys only services tagged ${RESTARTABLE_TAG}=true: tag the service, or check the role)`);

/** SSM refused the call for its rate (so it did not take it): the only failure a send is retried on. */
const isThrottled = (error: unknown): boolean => {
  const e = error as {
    name?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: { throttling?: boolean };
  };
  return (
    e?.$metadata?.httpStatusCode === 429 ||
    e?.$retryable?.throttling === true ||
    /^(ThrottlingException|Throttling|TooManyRequestsException|RequestLimitExceeded)$/.test(e?.name ?? '')
  );
};

/**
 * SSM answered, and refused the request as the caller's fault (a 4xx: InvalidInstanceId,
 * AccessDeniedException, ValidationException…): it did not take the command, and the error says why.
 * An answer is what tells it apart from a timeout or a lost connection, which have no status code.
 */
const isRefused = (error: unknown): boolean => {
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
};

/** The SDK's finalizeRequest handler, as far as sendOnce uses it (it only passes args on). */
type Next = (args: unknown) => Promise<unknown>;

/** A send that failed in a way that does not say whether SSM took it: it is not sent again. */
export const SEND_NOT_RETRIED = 'SendCommandNotRetried';

/**
 * SendCommand takes no client token, so a retry is a second command: after a 5xx, a timeout or a lost
 * connection, SSM may already have taken the first, and the SDK's retries (shared/aws/config.ts: up to
 * 10 attempts) would restart the instances again. Those failures end the send at once, as an error the
 * SDK does not retry (no status code, no `cause`), that keeps the first error's message (errorMessage
 * names its kind) and says SSM may have taken it. A refusal, a 4xx (throttling, InvalidInstanceId,
 * AccessDeniedException…), says SSM did not take it: it goes on as the SDK threw it, so the row names
 * the real error and the restart is over at once. The SDK retries a refusal only when a retry can fix
 * it (@smithy/core retry: throttling, a signature its corrected clock skew had made invalid, a request
 * SSM timed out reading), and those SSM refused before taking anything either.
 */
export const sendOnce = (command: SendCommandCommand): SendCommandCommand => {
  const once = (next: Next) => async (args: unknown) => {
    try {
      return await next(args);
    } catch (error) {
      if (isThrottled(error) || isRefused(error)) throw error;
      throw Object.assign(new Error(`${errorMessage(error)} (not sent again: SSM may have taken it)`), {
        name: SEND_NOT_RETRIED,
      });
    }
  };
  // After the retry middleware: inside its loop, so this sees every attempt.
  command.middlewareStack.addRelativeTo(once as never, {
    relation: 'after',
    toMiddleware: 'retryMiddleware',
    name: 'nightshiftSendOnce',
    override: true,
  });
  return command;
};

const recordRestart = async (clients: TargetClients, id: string, value: string) =>
  clients.ec2.send(
    new CreateTagsCommand({ Resources: [id], Tags: [{ Key: LAST_RESTART_TAG, Value: value }] }),
  );

/** One instance's invocation of a command that was sent. */
interface Invocation {
  work: InstanceWork;
  commandId: string;
  status: string;
  /** The send's TimeoutSeconds. */
  timeoutSeconds: number;
  claimed: Claimed;
  lastError?: string;
}

/** Waits `ms`, in slices, giving up as soon as the Lambda runs short of time. */
const pause = async (ms: number, options: RestartOptions) => {
  for (let left = ms; left > 0 && options.hasTime(); left -= SLEEP_SLICE_MS) {
    await options.sleep(Math.min(SLEEP_SLICE_MS, left));
  }
};

/** The row of an invocation that has ended, or undefined while it has not. */
const endedRow = (p: Invocation, out: GetCommandInvocationCommandOutput): ResourceResult | undefined => {
  if (!TERMINAL.has(p.status)) return undefined;
  const stdout = excerpt(out.StandardOutputContent);
  const stderr = excerpt(out.StandardErrorContent);
  const code = out.ResponseCode !== undefined && out.ResponseCode >= 0 ? `exit code ${out.ResponseCode}` : '';
  if (p.status === 'Success') {
    return resultOf(p.work, 'changed', {
      detail: `${p.work.detail}; Success${code ? `, ${code}` : ''}${stdout ? `; stdout: ${JSON.stringify(stdout)}` : ''}`,
    });
  }
  const details = [
    `command ${p.commandId} ${p.status}${out.StatusDetails && out.StatusDetails !== p.status ? ` (${out.StatusDetails})` : ''}`,
    code,
    stderr && `stderr: ${JSON.stringify(stderr)}`,
    stdout && `stdout: ${JSON.stringify(stdout)}`,
  ].filter(Boolean);
  return resultOf(p.work, 'failed', { error: details.join('; ') });
};

/**
 * The row of an invocation that had not ended when the Lambda had to stop: not failed, since SSM goes
 * on without the Lambda. One the agent never received is told apart from one that is running.
 */
const unfinishedRow = (p: Invocation): ResourceResult => {
  const id = p.work.instanceId;
  const lastPoll = p.lastError ? `; last poll failed: ${p.lastError}` : '';
  const follow = `follow it with aws ssm get-command-invocation --command-id ${p.commandId} --instance-id ${id}`;
  if (NOT_DELIVERED.has(p.status)) {
    return resultOf(p.work, 'changed', {
      detail:
        `not yet delivered to the instance when the Lambda had to stop: command ${p.commandId} is ${p.status} ` +
        `on ${id} (${p.work.detail})${lastPoll}; it runs only if it starts in time (delivery timeout ` +
        `${p.timeoutSeconds} s after the send), else SSM ends it Delivery Timed Out; ${follow}`,
    });
  }
  return resultOf(p.work, 'changed', {
    detail: `still running when the Lambda had to stop: command ${p.commandId} is ${p.status} on ${id} (${p.work.detail})${lastPoll}; ${follow}`,
  });
};

/**
 * Polls every invocation of every command sent, together, until each has ended or the Lambda must
 * stop. The wait between rounds grows (pollDelayMs), and only invocations that have not ended are
 * asked about again. ListCommandInvocations would take fewer calls, but moto 5.2.1 answers it with a
 * 500, so no integration test could cover it.
 */
const waitFor = async (
  clients: TargetClients,
  invocations: Invocation[],
  options: RestartOptions,
): Promise<Map<string, ResourceResult>> => {
  const results = new Map<string, ResourceResult>();
  let open = invocations;
  for (let round = 0; open.length > 0 && options.hasTime(); round++) {
    await pause(options.pollDelayMs(round), options);
    if (!options.hasTime()) break;
    await mapLimit(
      open,
      CALL_CONCURRENCY,
      async (p) => {
        try {
          const out = await clients.ssm.send(
            new GetCommandInvocationCommand({ CommandId: p.commandId, InstanceId: p.work.instanceId }),
          );
          p.status = out.Status ?? 'Pending';
          const row = endedRow(p, out);
          if (row) results.set(p.work.instanceId, row);
        } catch (error) {
          // Right after SendCommand, SSM may not know the invocation yet.
          if (!isNotYet(error)) p.lastError = errorMessage(error);
        }
      },
      { shouldStart: options.hasTime, notStarted: () => undefined },
    );
    open = open.filter((p) => !results.has(p.work.instanceId));
  }
  for (const p of open) results.set(p.work.instanceId, unfinishedRow(p));
  return results;
};

/** Instances SSM runs the command on at once in a send of `size`: a percentage rounded down, at least 1. */
export const concurrentSlots = (maxConcurrency: string, size: number): number =>
  maxConcurrency.endsWith('%')
    ? Math.max(1, Math.floor((size * Number(maxConcurrency.slice(0, -1))) / 100))
    : Math.max(1, Math.min(size, Number(maxConcurrency)));

/** The waves SSM starts a send of `size` instances in, at most `concurrentSlots` at a time. */
const wavesOf = (size: number, maxConcurrency: string): number =>
  Math.ceil(size / concurrentSlots(maxConcurrency, size));

/**
 * The most waves a send of up to `size` instances can take. A percentage is not monotonic in the size
 * (25% of 8 is 2 at a time, 4 waves; 25% of 7 is 1 at a time, 7 waves): when some of the instances
 * planned for a send drop out before it (their claim or tag failed), the send can take more waves than
 * the planned one would, so a bound made before the send takes the worst size up to the planned one.
 */
export const wavesUpTo = (size: number, maxConcurrency: string): number => {
  let most = 0;
  for (let n = 1; n <= size; n++) most = Math.max(most, wavesOf(n, maxConcurrency));
  return most;
};

const timeoutFor = (waves: number) =>
  Math.min(
    MAX_TIMEOUT_SECONDS,
    DELIVERY_TIMEOUT_SECONDS + Math.max(0, waves - 1) * EXECUTION_TIMEOUT_SECONDS,
  );

/**
 * SendCommand's TimeoutSeconds for a send of `size` instances at `maxConcurrency`. SSM starts the
 * invocations in waves of its MaxConcurrency, each waiting for a place, and every one of them counts
 * its delivery timeout from the send: with a fixed 120 s, the invocations of the fourth wave of a 50
 * instance send at 25% (12 at a time) would expire before their turn whenever the waves before them run
 * long. So each wave after the first adds the execution timeout (how long the one before may run):
 * 120 s + (waves − 1) × 300 s, for the waves of this very send.
 */
export const deliveryTimeoutSeconds = (size: number, maxConcurrency: string): number =>
  timeoutFor(wavesOf(size, maxConcurrency));

/**
 * Seconds from a send until none of its invocations can still run: the TimeoutSeconds sent (the last
 * moment one may start), the execution timeout (how long it may then run), and a margin.
 */
export const inProgressSeconds = (timeoutSeconds: number): number =>
  timeoutSeconds + EXECUTION_TIMEOUT_SECONDS + IN_PROGRESS_MARGIN_SECONDS;

/**
 * The same bound before the send, when only the planned size is known: no send of up to `size` of the
 * planned instances gets a longer TimeoutSeconds (wavesUpTo).
 */
export const plannedInProgressSeconds = (size: number, maxConcurrency: string): number =>
  inProgressSeconds(timeoutFor(wavesUpTo(size, maxConcurrency)));

const NOTHING_SENT = 'nothing tagged or sent';

/**
 * One send of up to 50 instances. Each is claimed first in the lease table (an instance another run
 * claimed first, or whose claim fails, gets nothing), then its restart time is tagged on it (an instance
 * whose tag cannot be written gets nothing, and its claim is put back), then one SendCommand goes to the
 * rest. It does not wait: the caller sends every batch, then waits for all of them together.
 */
const sendBatch = async (
  clients: TargetClients,
  work: InstanceWork[],
  send: SendCommandPlan,
  tagValue: string,
  limits: { maxConcurrency: string; maxErrors: string },
  claims: ClaimContext,
  now: () => Date,
): Promise<{ rows: Map<string, ResourceResult>; sent: Invocation[]; kept: Claimed[] }> => {
  const rows = new Map<string, ResourceResult>();
  const ready: { w: InstanceWork; claimed: Claimed }[] = [];
  // SSM may start the last wave of this send up to its delivery timeout after the send, and run it for
  // the execution timeout: until then, whatever becomes of this run, the restart is in progress. Before
  // the send, the bound covers any send of these instances; after it, the one sent replaces it.
  const expires = new Date(
    now().getTime() + plannedInProgressSeconds(work.length, limits.maxConcurrency) * 1000,
  );
  await mapLimit(work, CALL_CONCURRENCY, async (w) => {
    const claim = await claimTarget(claims, w.scope, w.claim, NOTHING_SENT, expires);
    if (!('claimed' in claim)) {
      rows.set(w.instanceId, resultOf(w, claim.outcome, { detail: claim.detail }));
      return;
    }
    try {
      await recordRestart(clients, w.instanceId, tagValue);
      ready.push({ w, claimed: claim.claimed });
    } catch (error) {
      await finishClaim(claims, claim.claimed, now(), true);
      rows.set(
        w.instanceId,
        resultOf(w, 'failed', {
          error: `recording the restart time (CreateTags ${LAST_RESTART_TAG}) failed: ${why(error)}; nothing sent`,
        }),
      );
    }
  });
  if (ready.length === 0) return { rows, sent: [], kept: [] };
  // In the order of the work, as planned.
  ready.sort((a, b) => work.indexOf(a.w) - work.indexOf(b.w));
  const timeoutSeconds = deliveryTimeoutSeconds(ready.length, limits.maxConcurrency);
  try {
    const out = await clients.ssm.send(
      sendOnce(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: ready.map((r) => r.w.instanceId),
          Parameters: { commands: send.commands, executionTimeout: [String(EXECUTION_TIMEOUT_SECONDS)] },
          MaxConcurrency: limits.maxConcurrency,
          MaxErrors: limits.maxErrors,
          Comment: send.comment,
          TimeoutSeconds: timeoutSeconds,
        }),
      ),
    );
    const commandId = out.Command?.CommandId;
    const status = out.Command?.Status ?? 'Pending';
    // In progress until this send's own invocations can no longer start or run, and naming its command,
    // so a later run can ask SSM whether it ended.
    const until = new Date(now().getTime() + inProgressSeconds(timeoutSeconds) * 1000);
    const sent = await mapLimit(ready, FINISH_CONCURRENCY, async (r) => ({
      work: r.w,
      commandId: commandId ?? 'unknown',
      status,
      timeoutSeconds,
      claimed: await recordCommand(claims, r.claimed, commandId, until),
    }));
    return { rows, sent, kept: [] };
  } catch (error) {
    // A send whose failure does not say whether SSM took it may be running: say how to find out.
    const maybeSent = (error as Error)?.name === SEND_NOT_RETRIED;
    for (const { w, claimed } of ready) {
      const ran = maybeSent
        ? `SSM may have taken it and be running it: check aws ssm list-commands --instance-id ${w.instanceId} ` +
          `(comment "${send.comment}"); its restart stays in progress until ${claimed.write.next.data.runUntil ?? 'its claim ends'} (by then ` +
          'such a command can no longer run), and the restart time was recorded'
        : 'nothing ran, but the restart time was recorded';
      rows.set(
        w.instanceId,
        resultOf(w, 'failed', {
          error:
            `SendCommand failed: ${why(error)}; ${ran} in tag ${LAST_RESTART_TAG}, so alarm restarts of this ` +
            `instance wait for the cooldown${maybeSent ? '' : ' (restart on demand to retry now)'}`,
        }),
      );
    }
    // One SSM may be running stays in progress (its claim's bound); one that surely did not run is over.
    return { rows, sent: [], kept: maybeSent ? [] : ready.map((r) => r.claimed) };
  }
};

/**
 * Shares a limit out among sends that run at the same time, so that together they hold it as one send
 * would. A percentage holds in every send as it is. A count is shared in proportion to the sends' sizes
 * (largest remainder, so the shares add up to the count); `min` is SSM's own minimum (1 for
 * MaxConcurrency, 0 for MaxErrors), so a count smaller than the number of sends may be exceeded by up to
 * one per send. With one send, the limit is passed as configured.
 */
export const shareLimit = (limit: string, sizes: readonly number[], min: number): string[] => {
  if (limit.endsWith('%') || sizes.length <= 1) return sizes.map(() => limit);
  const count = Number(limit);
  const total = sizes.reduce((sum, n) => sum + n, 0);
  const exact = sizes.map((n) => (count * n) / total);
  const shares = exact.map(Math.floor);
  let left = count - shares.reduce((sum, n) => sum + n, 0);
  const byRemainder = exact
    .map((x, i) => ({ i, remainder: x - Math.floor(x) }))
    .sort((a, b) => b.remainder - a.remainder || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left <= 0) break;
    shares[i] = (shares[i] ?? 0) + 1;
    left -= 1;
  }
  return shares.map((n) => String(Math.max(min, n)));
};

/** A target the deadline left unstarted: `undone`, and the next run starts with it. */
const notStarted = (w: InstanceWork) =>
  resultOf(w, 'undone', { detail: `${NOT_STARTED} (would have: ${w.detail})` });

/**
 * Sends every batch first, then waits for all their invocations together, so an instance that is slow
 * to take its command holds up no other batch. SSM applies MaxConcurrency and MaxErrors within one send
 * of up to 50 instances, and the sends now run at the same time, so MAX_CONCURRENCY and MAX_ERRORS are
 * shared out among them (shareLimit): a percentage holds in each send and so across the fleet; a count
 * is split by batch size, so it holds across the fleet too, except that each send restarts at least one
 * instance at a time and goes on until its own first failure at least: a count smaller than the number
 * of sends may be exceeded by up to one per send. Only the outcomes of commands SSM ran count: targets
 * the planner skipped never reach SSM. Instances the previous run left undone go first. A batch the
 * deadline leaves unstarted is `undone`; commands that were sent and are still running when the Lambda
 * must stop are not: SSM goes on without the Lambda (see unfinishedRow).
 */
const restartInstances = async (
  clients: TargetClients,
  plan: RestartPlan,
  options: RestartOptions,
  claims: ClaimContext,
): Promise<ResourceResult[]> => {
  const byId = new Map<string, ResourceResult>();
  const batches = chunk(
    carriedFirst(
      plan.instances.filter((w) => w.hasWork),
      options.first,
    ),
    SEND_BATCH,
  );
  const sizes = batches.map((b) => b.length);
  const concurrency = shareLimit(options.maxConcurrency, sizes, 1);
  const errors = shareLimit(options.maxErrors, sizes, 0);
  const sent: Invocation[] = [];
  const kept: Claimed[] = [];
  for (const [index, batch] of batches.entries()) {
    if (options.dryRun) {
      for (const w of batch) byId.set(w.instanceId, resultOf(w, 'planned'));
      continue;
    }
    if (!options.hasTime()) {
      for (const w of batch) byId.set(w.instanceId, notStarted(w));
      continue;
    }
    const out = await sendBatch(
      clients,
      batch,
      plan.send as SendCommandPlan,
      plan.tagValue,
      {
        maxConcurrency: concurrency[index] ?? options.maxConcurrency,
        maxErrors: errors[index] ?? options.maxErrors,
      },
      claims,
      options.now,
    );
    for (const [id, r] of out.rows) byId.set(id, r);
    sent.push(...out.sent);
    kept.push(...out.kept);
  }
  const results = await waitFor(clients, sent, options);
  for (const [id, r] of results) byId.set(id, r);
  // Restarts that ended (or never ran) are no longer in progress, even at the deadline: a few writes,
  // without which a person could not restart them on demand until their claim runs out. One that SSM may
  // still run stays in progress until its command expires (set when it was claimed).
  const over = [...kept, ...sent.filter((p) => TERMINAL.has(p.status)).map((p) => p.claimed)];
  await mapLimit(over, FINISH_CONCURRENCY, (c) => finishClaim(claims, c, options.now()));
  return plan.instances.map((w) => byId.get(w.instanceId) ?? resultOf(w, w.outcome ?? 'unchanged'));
};

/**
 * Claims the service in the lease table, records the restart time on it, then starts a new deployment
 * of it. A claim lost to another run, or refused, changes nothing.
 */
const redeploy = async (
  clients: TargetClients,
  w: ServiceWork,
  tagValue: string,
  claims: ClaimContext,
  now: () => Date,
): Promise<ResourceResult> => {
  const claim = await claimTarget(claims, w.scope, w.claim, 'nothing tagged or redeployed');
  if (!('claimed' in claim)) return resultOf(w, claim.outcome, { detail: claim.detail });
  try {
    await clients.ecs.send(
      new TagResourceCommand({ resourceArn: w.arn, tags: [{ key: LAST_RESTART_TAG, value: tagValue }] }),
    );
  } catch (error) {
    await finishClaim(claims, claim.claimed, now(), true);
    return resultOf(w, 'failed', {
      error: `recording the restart time (TagResource ${LAST_RESTART_TAG}) failed: ${why(error, 'service')}; nothing redeployed`,
    });
  }
  try {
    const out = await clients.ecs.send(
      new UpdateServiceCommand({ cluster: w.cluster, service: w.service, forceNewDeployment: true }),
    );
    const primary = out.service?.deployments?.find((d) => d.status === 'PRIMARY')?.id;
    return resultOf(w, 'changed', {
      detail: `${w.detail}${primary ? `; deployment ${primary} started` : ''}`,
    });
  } catch (error) {
    return resultOf(w, 'failed', {
      error:
        `UpdateService failed: ${why(error, 'service')}; the restart time was recorded in tag ${LAST_RESTART_TAG}, ` +
        'so alarm restarts of this service wait for the cooldown (restart on demand to retry now)',
    });
  } finally {
    await finishClaim(claims, claim.claimed, now());
  }
};

/**
 * Latches the flap guard of the rows it refused (a real run only). A row whose latch could not be
 * written says so: it stays `failed`, but automatic restarts of it are not stopped by a record that
 * does not exist.
 */
const latchFlapGuards = async (plan: RestartPlan, claims: ClaimContext): Promise<RestartPlan> => {
  const latched = [...plan.instances, ...plan.services].filter((w) => w.latch !== undefined);
  const unwritten = new Map<string, string>();
  await mapLimit(latched, CALL_CONCURRENCY, async (w) => {
    const note = w.latch && (await writeLatch(claims, w.latch));
    if (note) unwritten.set(w.scope, note);
  });
  if (unwritten.size === 0) return plan;
  const amend = <W extends InstanceWork | ServiceWork>(w: W): W => {
    const note = unwritten.get(w.scope);
    return note ? { ...w, detail: `${w.detail ?? ''}${note}` } : w;
  };
  return { ...plan, instances: plan.instances.map(amend), services: plan.services.map(amend) };
};

/**
 * Carries out a restart plan, or only reports it in a dry run (with the digest of the plan, which the
 * apply sends back). Rows the flap guard refused latch the guard (a real run only).
 */
export const executeRestart = async (
  plan: RestartPlan,
  clients: TargetClients,
  options: RestartOptions,
): Promise<Report> => {
  const claims: ClaimContext = {
    store: options.store,
    table: options.table,
    options: plan.guard,
    commandStatus: (commandId, instanceId) => invocationStatus(clients.ssm, commandId, instanceId),
  };
  const selection = plan.selection.map((w) => resultOf(w, w.outcome ?? 'unchanged'));
  const work = options.dryRun ? plan : await latchFlapGuards(plan, claims);
  const instances = await restartInstances(clients, work, options, claims);
  const services = await executeWork(
    work.services,
    {
      dryRun: options.dryRun,
      hasTime: options.hasTime,
      concurrency: CALL_CONCURRENCY,
      ...(options.first && { first: options.first }),
    },
    (w) => redeploy(clients, w, work.tagValue, claims, options.now),
  );
  const report = buildReport('restart', options.dryRun, [...selection, ...instances, ...services]);
  return options.dryRun
    ? { ...report, planDigest: planDigest([...plan.selection, ...plan.instances, ...plan.services]) }
    : report;
};
