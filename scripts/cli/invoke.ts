import { GetFunctionConcurrencyCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { randomUUID } from 'node:crypto';
import type { Report } from '#shared/report.ts';
import { errorMessage, RunFailedError } from '#shared/errors.ts';
import { localHandler, type FunctionName } from './functions.ts';
import { localFunctionName } from './local.ts';

export interface Target {
  service: string;
  stage: string;
  region?: string;
  local: boolean;
}

/** The error a deployed function threw (FunctionError), with its type and message. */
export class FunctionFailedError extends Error {
  override name = 'FunctionFailedError';
  constructor(
    public readonly functionName: string,
    public readonly errorType: string,
    message: string,
  ) {
    super(`${functionName} failed: ${errorType}: ${message}`);
  }
}

export const deployedName = (t: Target, fn: FunctionName) => `${t.service}-${t.stage}-${fn}`;

const lambdas = new Map<string, LambdaClient>();
const lambdaClient = (region?: string) => {
  let client = lambdas.get(region ?? '');
  if (!client) {
    client = new LambdaClient({
      ...(region && { region }),
      maxAttempts: 5,
      // A run may take minutes (ssm-restart waits for its commands): no client-side timeout below Lambda's.
      requestHandler: { requestTimeout: 15 * 60_000 },
    });
    lambdas.set(region ?? '', client);
  }
  return client;
};

/** Runs a function: by Lambda Invoke (request-response), or its handler in-process with `--local`. */
export const invoke = async (t: Target, fn: FunctionName, payload: unknown): Promise<Report> => {
  if (t.local) {
    const handler = await localHandler(fn);
    const started = Date.now();
    const context = {
      // Who holds the leases this run takes: `ecs-scheduler run … (local:ops@laptop)`.
      functionName: localFunctionName(),
      awsRequestId: randomUUID(),
      invokedFunctionArn: `local:${fn}`,
      // As much time as the deployed function gets at most.
      getRemainingTimeInMillis: () => 900_000 - (Date.now() - started),
    };
    try {
      return await handler(payload, context);
    } catch (error) {
      // Every resource failed: the function throws so retries and queues see it, but the report it
      // carries is what a person needs here.
      if (error instanceof RunFailedError) return error.report;
      throw error;
    }
  }
  const name = deployedName(t, fn);
  const out = await lambdaClient(t.region).send(
    new InvokeCommand({
      FunctionName: name,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
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

/**
 * Whether the deployed function is switched off: reserved concurrency 0 is the kill switch, whether
 * flipped by the README's one-line loop or made to stick with the killSwitch param. A function that is
 * not deployed in the region has no switch; any other answer is unknown, with the reason.
 */
export const deployedSwitchedOff = async (
  t: Target,
  fn: FunctionName,
): Promise<{ off: boolean } | { unknown: string }> => {
  try {
    const out = await lambdaClient(t.region).send(
      new GetFunctionConcurrencyCommand({ FunctionName: deployedName(t, fn) }),
    );
    return { off: out.ReservedConcurrentExecutions === 0 };
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return { off: false };
    return { unknown: errorMessage(error) };
  }
};
