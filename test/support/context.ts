import type { Context } from 'aws-lambda';

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
