/**
 * The kill switch seen from inside a fleet run: reserved concurrency 0 on the function (the README's
 * one-liner, `nightshift fleet halt`, or the killSwitch param) stops new invocations, but a run already
 * going, or an iteration the state machine already started, would carry on. Each fleet iteration checks
 * its own function's reserved concurrency before its first mutating call.
 */
import { GetFunctionConcurrencyCommand } from '@aws-sdk/client-lambda';
import { lambdaClient } from '../aws/lambda.ts';
import { errorMessage } from '../errors.ts';

/**
 * Why this run must not act: the switch is engaged, or could not be read (unknown counts as engaged, as
 * in the CLI). Undefined: it may go on.
 */
export const killSwitchEngaged = async (functionName: string): Promise<string | undefined> => {
  try {
    const out = await lambdaClient().send(new GetFunctionConcurrencyCommand({ FunctionName: functionName }));
    if (out.ReservedConcurrentExecutions === 0)
      return `the kill switch is engaged (reserved concurrency of ${functionName} is 0): nothing was changed in this target`;
    return undefined;
  } catch (error) {
    return `the kill switch of ${functionName} could not be checked (${errorMessage(error)}): nothing was changed in this target`;
  }
};
