import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { randomUUID } from 'node:crypto';
import type { Report } from '#shared/report.ts';
import { errorMessage, RunFailedError } from '#shared/errors.ts';
import { localHandler, type FunctionName } from './functions.ts';
import { invokesInFlight, isInterrupted, localRunsInFlight, noteLocalRun } from './in-flight.ts';
import { FunctionFailedError, InvokeRefusedError, OutcomeUnknownError } from './invoke-errors.ts';
import { localFunctionName } from './local.ts';

export interface Target {
  service: string;
  stage: string;
  region?: string;
  local: boolean;
}

const CONCURRENCY_LIMIT = 'ReservedFunctionConcurrentInvocationLimitExceeded';

/** The reason Lambda gives with a 429, or undefined for any other error. */
const throttleReason = (error: unknown): string | undefined => {
  const e = error as { name?: string; Reason?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'TooManyRequestsException' || e.$metadata?.httpStatusCode === 429
    ? (e.Reason ?? 'unknown')
    : undefined;
};

export const deployedName = (t: Target, fn: FunctionName) => `${t.service}-${t.stage}-${fn}`;

const lambdas = new Map<string, LambdaClient>();
/**
 * Lambda clients per region. Reads and dry runs retry (5 attempts). A changing invoke is sent once
 * (`once`): the SDK retries a request whose connection reset or timed out, and Lambda would then run
 * the stop or the restart twice.
 */
const lambdaClient = (region: string | undefined, once = false) => {
  const key = `${region ?? ''}${once ? '#once' : ''}`;
  let client = lambdas.get(key);
  if (!client) {
    client = new LambdaClient({
      ...(region && { region }),
      maxAttempts: once ? 1 : 5,
      // A run may take minutes (ssm-restart waits for its commands): no client-side timeout below Lambda's
      // own 15-minute limit. Past it, with a minute's margin, an answer will never come (a connection a NAT
      // or proxy dropped silently): the request is aborted (its socket destroyed) and fails with a
      // TimeoutError. Without throwOnRequestTimeout smithy only logs a warning and waits on forever.
      // A changing invoke is then not resent (maxAttempts 1): its outcome is unknown (OutcomeUnknownError).
      requestHandler: { requestTimeout: 16 * 60_000, throwOnRequestTimeout: true },
    });
    lambdas.set(key, client);
  }
  return client;
};

export interface InvokeOptions {
  /** The invoke may change something: send it once (see lambdaClient). */
  mutates: boolean;
  /** `--local`: the deployed function's timeout, which the in-process Lambda context gives the run. */
  timeoutMs: number;
}

/** Whether an error from Invoke proves Lambda did not run the function (it refused the request). */
const refusedByLambda = (error: unknown): boolean => {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
};

/** Runs a function: by Lambda Invoke (request-response), or its handler in-process with `--local`. */
export const invoke = async (
  t: Target,
  fn: FunctionName,
  payload: unknown,
  options: InvokeOptions,
): Promise<Report> => {
  if (t.local) {
    const handler = await localHandler(fn);
    const started = Date.now();
    const context = {
      // Who holds the leases this run takes: `ecs-scheduler run … (local:ops@laptop)`.
      functionName: localFunctionName(),
      awsRequestId: randomUUID(),
      invokedFunctionArn: `local:${fn}`,
      // The deployed function's own timeout: the run stops starting work when a deployed run would,
      // and its leases last as long as a deployed run's. Once interrupted, no time is left.
      getRemainingTimeInMillis: () =>
        isInterrupted() ? 0 : Math.max(0, options.timeoutMs - (Date.now() - started)),
    };
    const running = handler(payload, context);
    noteLocalRun(running);
    try {
      return await running;
    } catch (error) {
      // Every resource failed: the function throws so retries and queues see it, but the report it
      // carries is what a person needs here.
      if (error instanceof RunFailedError) return error.report;
      throw error;
    } finally {
      localRunsInFlight.delete(running);
    }
  }
  const name = deployedName(t, fn);
  invokesInFlight.add(name);
  let out;
  try {
    out = await lambdaClient(t.region, options.mutates).send(
      new InvokeCommand({
        FunctionName: name,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
    );
  } catch (error) {
    if (throttleReason(error) === CONCURRENCY_LIMIT) throw await concurrencyRefusal(t, fn, error);
    if (options.mutates && !refusedByLambda(error)) throw new OutcomeUnknownError(name, errorMessage(error));
    throw error;
  } finally {
    invokesInFlight.delete(name);
  }
  const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
  if (out.FunctionError) {
    let body: { errorType?: string; errorMessage?: string } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = { errorMessage: text };
    }
    throw new FunctionFailedError(
      name,
      body.errorType ?? out.FunctionError,
      body.errorMessage ?? 'no message',
    );
  }
  return JSON.parse(text) as Report;
};

/** Why Lambda refused an invoke for its reserved concurrency: the kill switch, or another run. */
const concurrencyRefusal = async (t: Target, fn: FunctionName, error: unknown) => {
  const name = deployedName(t, fn);
  const said = `Lambda refused to run ${name} (${errorMessage(error)}, ${CONCURRENCY_LIMIT}); nothing ran`;
  const switched = await deployedSwitchedOff(t, fn);
  if ('unknown' in switched)
    return new InvokeRefusedError(
      name,
      `${said}. Either it is switched off (reserved concurrency 0: the kill switch) or another run of it is in ` +
        `progress; which could not be checked (${switched.unknown}). Look with \`aws lambda get-function-concurrency ` +
        `--function-name ${name}\` before you run it again.`,
      2,
    );
  if (switched.off)
    return new InvokeRefusedError(
      name,
      `${said}: it is switched off (reserved concurrency 0: the kill switch). Nothing nightshift does runs until ` +
        'the switch is turned back on (see Deploy safety in the README).',
      2,
    );
  return new InvokeRefusedError(
    name,
    `${said}: another run of the function is in progress (reserved concurrency ${switched.reserved ?? 'reached'}); ` +
      'run the same command again when it ends (`nightshift status` lists the leases held now).',
    3,
  );
};

/**
 * Whether the deployed function is switched off: reserved concurrency 0 is the kill switch, whether
 * flipped by the README's one-line loop or made to stick with the killSwitch param. Any error is
 * unknown, with the reason: the caller must then not change anything.
 */
export const deployedSwitchedOff = async (
  t: Target,
  fn: FunctionName,
): Promise<{ off: boolean; reserved?: number } | { unknown: string }> => {
  try {
    const out = await lambdaClient(t.region).send(
      new GetFunctionConcurrencyCommand({ FunctionName: deployedName(t, fn) }),
    );
    return { off: out.ReservedConcurrentExecutions === 0, reserved: out.ReservedConcurrentExecutions };
  } catch (error) {
    return { unknown: errorMessage(error) };
  }
};

export interface DeployedFunction {
  /** Its environment variables, as Lambda runs it. */
  env: Record<string, string>;
  /** Its timeout in seconds. */
  timeoutSeconds: number | undefined;
}

/**
 * The deployed function's configuration (GetFunctionConfiguration on $LATEST, which is what runs:
 * serverless.yml sets versionFunctions false). Variables Lambda could not decrypt (a customer managed
 * KMS key the caller may not use) come back as `Environment.Error`: unknown, like any other error.
 */
export const deployedFunction = async (
  t: Target,
  fn: FunctionName,
): Promise<DeployedFunction | { unknown: string }> => {
  try {
    const out = await lambdaClient(t.region).send(
      new GetFunctionConfigurationCommand({ FunctionName: deployedName(t, fn) }),
    );
    const problem = out.Environment?.Error;
    if (problem) {
      return {
        unknown: `its environment could not be read: ${problem.ErrorCode ?? 'error'}: ${problem.Message ?? 'no message'}`,
      };
    }
    return { env: { ...out.Environment?.Variables }, timeoutSeconds: out.Timeout };
  } catch (error) {
    const name = (error as Error).name;
    const hint =
      name === 'ResourceNotFoundException'
        ? ' — is the stage deployed in this region? (--stage, --region, --service-name)'
        : name === 'AccessDeniedException'
          ? ' — your credentials need lambda:GetFunctionConfiguration on it'
          : '';
    return { unknown: `${errorMessage(error)}${hint}` };
  }
};
