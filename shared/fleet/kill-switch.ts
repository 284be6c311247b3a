/**
 * The kill switch seen from inside a fleet run: reserved concurrency 0 on the function (`nightshift fleet
 * halt`, the README's loop, or the killSwitch param) stops new invocations, but not one already running
 * (Lambda's reserved concurrency limits new invocations only, and StopExecution does not cancel a Lambda
 * a state machine already invoked). So each fleet iteration checks its function's reserved concurrency
 * before its first call in the target, and again every KILL_SWITCH_POLL_MS while it runs (shared/handler.ts
 * then stops starting new work: what is left is `undone`).
 */
import { GetFunctionConcurrencyCommand } from '@aws-sdk/client-lambda';
import { lambdaClient } from '../aws/lambda.ts';
import { errorMessage } from '../errors.ts';

/**
 * How often a running iteration looks again. Lambda's control-plane API allows about 15 requests a
 * second per account and region: 50 iterations at once every 10 s stay well under it.
 */
export const killSwitchPollMs = (): number => Number(process.env.NIGHTSHIFT_KILL_SWITCH_POLL_MS) || 10_000;

/** True: engaged (reserved concurrency 0); false: not; an Error: it could not be read. */
export const killSwitchOn = async (functionName: string): Promise<boolean | Error> => {
  try {
    const out = await lambdaClient().send(new GetFunctionConcurrencyCommand({ FunctionName: functionName }));
    return out.ReservedConcurrentExecutions === 0;
  } catch (error) {
    return error as Error;
  }
};

/**
 * Why this run must not start acting: the switch is engaged, or could not be read (unknown counts as
 * engaged, as in the CLI). Undefined: it may go on.
 */
export const killSwitchEngaged = async (functionName: string): Promise<string | undefined> => {
  const on = await killSwitchOn(functionName);
  if (on === true)
    return `the kill switch is engaged (reserved concurrency of ${functionName} is 0): nothing was changed in this target`;
  if (on instanceof Error)
    return `the kill switch of ${functionName} could not be checked (${errorMessage(on)}): nothing was changed in this target`;
  return undefined;
};
