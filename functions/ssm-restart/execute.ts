import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { GetCommandInvocationCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { TagResourceCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { mapLimit } from '#shared/concurrency.ts';
import { errorMessage } from '#shared/errors.ts';
import { executeWork, resultOf, type PlannedWork } from '#shared/execute.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { LAST_RESTART_TAG } from './cooldown.ts';
import type { Clients } from './inventory.ts';
import type { InstanceWork, RestartPlan, SendCommandPlan, ServiceWork } from './plan.ts';

/** Tags and polls a few instances at a time; ECS services are redeployed a few at a time. */
const CALL_CONCURRENCY = 5;
/** Seconds SSM waits for an instance to start the command before giving up on it (SSM minimum: 30). */
export const DELIVERY_TIMEOUT_SECONDS = 600;
/** Seconds the command may run on an instance: a restart that hangs longer is stopped by the agent. */
export const EXECUTION_TIMEOUT_SECONDS = 300;
/**
 * The tag instances must carry, with value `true`, for the role to send them commands or tag them
 * (infra/ssm-restart.yml). Public contract; fixed because IAM condition keys cannot be parameters.
 */
export const RESTARTABLE_TAG = 'nightshift:restartable';
/** Stdout and stderr are cut to this many characters in the report. */
export const EXCERPT_LENGTH = 200;

const TERMINAL = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

export interface RestartOptions {
  dryRun: boolean;
  /** False once the Lambda is close to its timeout: send nothing new, stop polling. */
  hasTime: () => boolean;
  maxConcurrency: string;
  maxErrors: string;
  pollIntervalMs: number;
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

const why = (error: unknown) =>
  errorMessage(error) +
  (isAccessDenied(error)
    ? ` (the role tags and sends commands only to instances tagged ${RESTARTABLE_TAG}=true: tag the instance, or check the role)`
    : '');

const recordRestart = async (clients: Clients, id: string, value: string) =>
  clients.ec2.send(
    new CreateTagsCommand({ Resources: [id], Tags: [{ Key: LAST_RESTART_TAG, Value: value }] }),
  );

/** Whether SSM's MaxErrors allows another send after `errors` failures among `total` instances. */
export const withinMaxErrors = (maxErrors: string, errors: number, total: number): boolean =>
  maxErrors.endsWith('%')
    ? errors <= (Number(maxErrors.slice(0, -1)) / 100) * total
    : errors <= Number(maxErrors);

interface Pending {
  work: InstanceWork;
  commandId: string;
  status: string;
  lastError?: string;
}

/** Polls every pending invocation until each has ended or the Lambda must stop; returns the results. */
const waitFor = async (
  clients: Clients,
  pending: Pending[],
  options: RestartOptions,
): Promise<Map<string, ResourceResult>> => {
  const results = new Map<string, ResourceResult>();
  let open = pending;
  while (open.length > 0 && options.hasTime()) {
    await options.sleep(options.pollIntervalMs);
    if (!options.hasTime()) break;
    await mapLimit(open, CALL_CONCURRENCY, async (p) => {
      try {
        const out = await clients.ssm.send(
          new GetCommandInvocationCommand({ CommandId: p.commandId, InstanceId: p.work.instanceId }),
        );
        p.status = out.Status ?? 'Pending';
        if (!TERMINAL.has(p.status)) return;
        const stdout = excerpt(out.StandardOutputContent);
        const stderr = excerpt(out.StandardErrorContent);
        const code =
          out.ResponseCode !== undefined && out.ResponseCode >= 0 ? `exit code ${out.ResponseCode}` : '';
        if (p.status === 'Success') {
          results.set(
            p.work.instanceId,
            resultOf(p.work, 'changed', {
              detail: `${p.work.detail}; Success${code ? `, ${code}` : ''}${stdout ? `; stdout: ${JSON.stringify(stdout)}` : ''}`,
            }),
          );
          return;
        }
        const details = [
          `command ${p.commandId} ${p.status}${out.StatusDetails && out.StatusDetails !== p.status ? ` (${out.StatusDetails})` : ''}`,
          code,
          stderr && `stderr: ${JSON.stringify(stderr)}`,
          stdout && `stdout: ${JSON.stringify(stdout)}`,
        ].filter(Boolean);
        results.set(p.work.instanceId, resultOf(p.work, 'failed', { error: details.join('; ') }));
      } catch (error) {
        // Right after SendCommand, SSM may not know the invocation yet.
        if (!isNotYet(error)) p.lastError = errorMessage(error);
      }
    });
    open = open.filter((p) => !results.has(p.work.instanceId));
  }
  for (const p of open) {
    results.set(
      p.work.instanceId,
      resultOf(p.work, 'changed', {
        detail:
          `still running when the Lambda had to stop: command ${p.commandId} is ${p.status} on ${p.work.instanceId} ` +
          `(${p.work.detail})${p.lastError ? `; last poll failed: ${p.lastError}` : ''}; follow it with ` +
          `aws ssm get-command-invocation --command-id ${p.commandId} --instance-id ${p.work.instanceId}`,
      }),
    );
  }
  return results;
};

/**
 * One send: the restart time is tagged on each instance first (an instance whose tag cannot be written
 * gets nothing), then one SendCommand for the rest, then the outcome is awaited within the time left.
 */
const sendBatch = async (
  clients: Clients,
  work: InstanceWork[],
  send: SendCommandPlan,
  tagValue: string,
  options: RestartOptions,
): Promise<ResourceResult[]> => {
  const results = new Map<string, ResourceResult>();
  const tagged: InstanceWork[] = [];
  await mapLimit(work, CALL_CONCURRENCY, async (w) => {
    try {
      await recordRestart(clients, w.instanceId, tagValue);
      tagged.push(w);
    } catch (error) {
      results.set(
        w.instanceId,
        resultOf(w, 'failed', {
          error: `recording the restart time (CreateTags ${LAST_RESTART_TAG}) failed: ${why(error)}; nothing sent`,
        }),
      );
    }
  });
  if (tagged.length > 0) {
    const ids = work.filter((w) => tagged.includes(w)).map((w) => w.instanceId);
    try {
      const out = await clients.ssm.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: ids,
          Parameters: { commands: send.commands, executionTimeout: [String(EXECUTION_TIMEOUT_SECONDS)] },
          MaxConcurrency: options.maxConcurrency,
          MaxErrors: options.maxErrors,
          Comment: send.comment,
          TimeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
        }),
      );
      const commandId = out.Command?.CommandId ?? 'unknown';
      const pending = work
        .filter((w) => tagged.includes(w))
        .map((w) => ({ work: w, commandId, status: out.Command?.Status ?? 'Pending' }));
      for (const [id, r] of await waitFor(clients, pending, options)) results.set(id, r);
    } catch (error) {
      for (const w of tagged) {
        results.set(
          w.instanceId,
          resultOf(w, 'failed', {
            error:
              `SendCommand failed: ${why(error)}; nothing ran, but the restart time was recorded in tag ` +
              `${LAST_RESTART_TAG}, so alarm restarts of this instance wait for the cooldown (restart on demand to retry now)`,
          }),
        );
      }
    }
  }
  return work.map((w) => results.get(w.instanceId) as ResourceResult);
};

const notStarted = (w: PlannedWork, reason: string) =>
  resultOf(w, 'skipped', { detail: `not sent: ${reason}; run again to finish (would have: ${w.detail})` });

/** Sends the batches one after another, so MaxConcurrency and MaxErrors hold across the whole fleet. */
const restartInstances = async (
  clients: Clients,
  plan: RestartPlan,
  options: RestartOptions,
): Promise<ResourceResult[]> => {
  const byId = new Map<string, ResourceResult>();
  const total = plan.send?.batches.flat().length ?? 0;
  let errors = 0;
  for (const batch of plan.send?.batches ?? []) {
    const work = plan.instances.filter((w) => w.hasWork && batch.includes(w.instanceId));
    if (options.dryRun) {
      for (const w of work) byId.set(w.instanceId, resultOf(w, 'planned'));
      continue;
    }
    if (!options.hasTime()) {
      for (const w of work) byId.set(w.instanceId, notStarted(w, 'the Lambda was about to time out'));
      continue;
    }
    if (!withinMaxErrors(options.maxErrors, errors, total)) {
      for (const w of work) {
        byId.set(
          w.instanceId,
          notStarted(w, `${errors} instance(s) already failed, over MAX_ERRORS ${options.maxErrors}`),
        );
      }
      continue;
    }
    const results = await sendBatch(clients, work, plan.send as SendCommandPlan, plan.tagValue, options);
    errors += results.filter((r) => r.outcome === 'failed').length;
    results.forEach((r, i) => byId.set((work[i] as InstanceWork).instanceId, r));
  }
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
      error: `recording the restart time (TagResource ${LAST_RESTART_TAG}) failed: ${errorMessage(error)}; nothing redeployed`,
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
        `UpdateService failed: ${errorMessage(error)}; the restart time was recorded in tag ${LAST_RESTART_TAG}, ` +
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
