import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import {
  GetCommandInvocationCommand,
  SendCommandCommand,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { TagResourceCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { mapLimit } from '#shared/concurrency.ts';
import { errorMessage } from '#shared/errors.ts';
import { executeWork, resultOf, type PlannedWork } from '#shared/execute.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { LAST_RESTART_TAG } from './cooldown.ts';
import type { Clients } from './inventory.ts';
import {
  RESTARTABLE_TAG,
  type InstanceWork,
  type RestartPlan,
  type SendCommandPlan,
  type ServiceWork,
} from './plan.ts';

/** Tags and polls a few instances at a time; ECS services are redeployed a few at a time. */
const CALL_CONCURRENCY = 5;
/**
 * SendCommand's TimeoutSeconds, which SSM uses as the delivery timeout: an invocation the agent has not
 * picked up by then is not run (Delivery Timed Out). Short, so a restart that could not be delivered
 * promptly does not run long after the alarm (SSM minimum: 30).
 */
export const DELIVERY_TIMEOUT_SECONDS = 120;
/**
 * Seconds the command may run on an instance (AWS-RunShellScript's executionTimeout parameter): the
 * agent stops a restart that hangs longer.
 */
export const EXECUTION_TIMEOUT_SECONDS = 300;
/** Stdout and stderr are cut to this many characters in the report. */
export const EXCERPT_LENGTH = 200;

const TERMINAL = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);
/** Invocation statuses of a command the instance's agent has not received yet. */
const NOT_DELIVERED = new Set(['Pending', 'Delayed']);

/** Polls wait 2 s, 4 s, 8 s, then 10 s between rounds: restarts usually end in seconds, some take minutes. */
export const pollDelayMs = (round: number): number => Math.min(2_000 * 2 ** round, 10_000);
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

const recordRestart = async (clients: Clients, id: string, value: string) =>
  clients.ec2.send(
    new CreateTagsCommand({ Resources: [id], Tags: [{ Key: LAST_RESTART_TAG, Value: value }] }),
  );

/** One instance's invocation of a command that was sent. */
interface Invocation {
  work: InstanceWork;
  commandId: string;
  status: string;
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
        `on ${id} (${p.work.detail})${lastPoll}; it runs only if the agent picks it up in time (delivery ` +
        `timeout ${DELIVERY_TIMEOUT_SECONDS} s), else SSM ends it Delivery Timed Out; ${follow}`,
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
  clients: Clients,
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

/**
 * One send of up to 50 instances: the restart time is tagged on each first (an instance whose tag
 * cannot be written gets nothing), then one SendCommand for the rest. It does not wait: the caller
 * sends every batch, then waits for all of them together.
 */
const sendBatch = async (
  clients: Clients,
  work: InstanceWork[],
  send: SendCommandPlan,
  tagValue: string,
  limits: { maxConcurrency: string; maxErrors: string },
): Promise<{ failed: Map<string, ResourceResult>; sent: Invocation[] }> => {
  const failed = new Map<string, ResourceResult>();
  const tagged = new Set<InstanceWork>();
  await mapLimit(work, CALL_CONCURRENCY, async (w) => {
    try {
      await recordRestart(clients, w.instanceId, tagValue);
      tagged.add(w);
    } catch (error) {
      failed.set(
        w.instanceId,
        resultOf(w, 'failed', {
          error: `recording the restart time (CreateTags ${LAST_RESTART_TAG}) failed: ${why(error)}; nothing sent`,
        }),
      );
    }
  });
  const ready = work.filter((w) => tagged.has(w));
  if (ready.length === 0) return { failed, sent: [] };
  try {
    const out = await clients.ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: ready.map((w) => w.instanceId),
        Parameters: { commands: send.commands, executionTimeout: [String(EXECUTION_TIMEOUT_SECONDS)] },
        MaxConcurrency: limits.maxConcurrency,
        MaxErrors: limits.maxErrors,
        Comment: send.comment,
        TimeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
      }),
    );
    const commandId = out.Command?.CommandId ?? 'unknown';
    const status = out.Command?.Status ?? 'Pending';
    return { failed, sent: ready.map((w) => ({ work: w, commandId, status })) };
  } catch (error) {
    for (const w of ready) {
      failed.set(
        w.instanceId,
        resultOf(w, 'failed', {
          error:
            `SendCommand failed: ${why(error)}; nothing ran, but the restart time was recorded in tag ` +
            `${LAST_RESTART_TAG}, so alarm restarts of this instance wait for the cooldown (restart on demand to retry now)`,
        }),
      );
    }
    return { failed, sent: [] };
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

const notStarted = (w: PlannedWork, reason: string) =>
  resultOf(w, 'skipped', { detail: `not sent: ${reason}; run again to finish (would have: ${w.detail})` });

/**
 * Sends every batch first, then waits for all their invocations together, so an instance that is slow
 * to take its command holds up no other batch. SSM applies MaxConcurrency and MaxErrors within one send
 * of up to 50 instances, and the sends now run at the same time, so MAX_CONCURRENCY and MAX_ERRORS are
 * shared out among them (shareLimit): a percentage holds in each send and so across the fleet; a count
 * is split by batch size, so it holds across the fleet too, except that each send restarts at least one
 * instance at a time and goes on until its own first failure at least: a count smaller than the number
 * of sends may be exceeded by up to one per send. Only the outcomes of commands SSM ran count: targets
 * the planner skipped never reach SSM.
 */
const restartInstances = async (
  clients: Clients,
  plan: RestartPlan,
  options: RestartOptions,
): Promise<ResourceResult[]> => {
  const byId = new Map<string, ResourceResult>();
  const workById = new Map(plan.instances.filter((w) => w.hasWork).map((w) => [w.instanceId, w]));
  const sent: Invocation[] = [];
  const batches = plan.send?.batches ?? [];
  const sizes = batches.map((b) => b.length);
  const concurrency = shareLimit(options.maxConcurrency, sizes, 1);
  const errors = shareLimit(options.maxErrors, sizes, 0);
  for (const [index, batch] of batches.entries()) {
    const work = batch.flatMap((id) => workById.get(id) ?? []);
    if (options.dryRun) {
      for (const w of work) byId.set(w.instanceId, resultOf(w, 'planned'));
      continue;
    }
    if (!options.hasTime()) {
      for (const w of work) byId.set(w.instanceId, notStarted(w, 'the Lambda was about to time out'));
      continue;
    }
    const out = await sendBatch(clients, work, plan.send as SendCommandPlan, plan.tagValue, {
      maxConcurrency: concurrency[index] ?? options.maxConcurrency,
      maxErrors: errors[index] ?? options.maxErrors,
    });
    for (const [id, r] of out.failed) byId.set(id, r);
    sent.push(...out.sent);
  }
  for (const [id, r] of await waitFor(clients, sent, options)) byId.set(id, r);
  return plan.instances.map((w) => byId.get(w.instanceId) ?? resultOf(w, w.outcome ?? 'unchanged'));
};

/** Records the restart time on the service, then starts a new deployment of it. */
const redeploy = async (clients: Clients, w: ServiceWork, tagValue: string): Promise<ResourceResult> => {
  try {
    await clients.ecs.send(
      new TagResourceCommand({ resourceArn: w.arn, tags: [{ key: LAST_RESTART_TAG, value: tagValue }] }),
    );
  } catch (error) {
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
  }
};

/** Carries out a restart plan, or only reports it in a dry run. */
export const executeRestart = async (
  plan: RestartPlan,
  clients: Clients,
  options: RestartOptions,
): Promise<Report> => {
  const selection = plan.selection.map((w) => resultOf(w, w.outcome ?? 'unchanged'));
  const instances = await restartInstances(clients, plan, options);
  const services = await executeWork(
    plan.services,
    { dryRun: options.dryRun, hasTime: options.hasTime, concurrency: CALL_CONCURRENCY },
    (w) => redeploy(clients, w, plan.tagValue),
  );
  return buildReport('restart', options.dryRun, [...selection, ...instances, ...services]);
};
