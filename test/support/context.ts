import type { Context } from 'aws-lambda';
import type { RunContext } from '#shared/handler.ts';
import { RunLeases } from '#shared/lease.ts';

/** A Lambda context with a clock: `remainingMs` is what getRemainingTimeInMillis answers. */
export const lambdaContext = (name: string, remainingMs: () => number = () => 900_000): Context => ({
  callbackWaitsForEmptyEventLoop: false,
  functionName: name,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:eu-central-1:123456789012:function:nightshift-dev-${name}`,
  memoryLimitInMB: '256',
  awsRequestId: '2f8e6c1a-4a3b-4c8e-9d3f-0b1c2d3e4f50',
  logGroupName: `/aws/lambda/nightshift-dev-${name}`,
  logStreamName: '2026/11/23/[$LATEST]abcdef',
  getRemainingTimeInMillis: remainingMs,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
});

/**
 * The RunContext withOps gives a run, for tests that call `run` directly: all the time in the world,
 * no lease table (so every claim fails, as for a run that cannot reach it) unless `leases` is given,
 * and nothing carried over from a previous run unless `carried` says so.
 */
export const runContext = (
  overrides: {
    hasTime?: () => boolean;
    remainingMs?: () => number;
    leases?: RunLeases;
    carried?: Record<string, string[]>;
  } = {},
): RunContext => ({
  logger: undefined as never,
  hasTime: overrides.hasTime ?? (() => true),
  remainingMs: overrides.remainingMs ?? (() => 900_000),
  leases:
    overrides.leases ??
    new RunLeases(
      undefined,
      { holder: 'test run', token: 'test' },
      () => new Date(),
      () => 900_000,
    ),
  carriedOver: async (action) => new Set(overrides.carried?.[action] ?? []),
});
