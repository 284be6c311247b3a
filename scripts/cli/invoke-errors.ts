/**
 * The ways a function run ends without a report, apart from invoke.ts (the Lambda client) so the program
 * definition can tell them apart (runCommand) without loading it.
 */

/** The error a deployed function threw (FunctionError), with its type and message. */
export class FunctionFailedError extends Error {
  override name = 'FunctionFailedError';
  constructor(
    public readonly functionName: string,
    public readonly errorType: string,
    public readonly reason: string,
  ) {
    super(`${functionName} failed: ${errorType}: ${reason}`);
  }
}

/**
 * A changing invoke whose answer never came (a reset connection, a timeout, a 5xx from Lambda): the
 * function may have run, may still be running, or may never have started. It is not sent again: a
 * second stop or restart is worse than a person looking first.
 */
export class OutcomeUnknownError extends Error {
  override name = 'OutcomeUnknownError';
  constructor(
    public readonly functionName: string,
    reason: string,
  ) {
    super(
      `the outcome of ${functionName} is unknown: ${reason}. The request may have reached Lambda, so the ` +
        'function may have run, or may still be running; it was not sent again. Look before you run it ' +
        'again: `nightshift status` shows what nightshift holds now, and the same command with --dry-run ' +
        'shows what is still to do.',
    );
  }
}

/**
 * Lambda refused the invoke because the function's reserved concurrency is used up
 * (TooManyRequestsException, 429, Reason ReservedFunctionConcurrentInvocationLimitExceeded): nothing
 * ran. Reserved concurrency 0 is the kill switch (exit 2); otherwise another run holds the only slot
 * serverless.yml reserves (exit 3: run again when it ends).
 */
export class InvokeRefusedError extends Error {
  override name = 'InvokeRefusedError';
  constructor(
    public readonly functionName: string,
    message: string,
    public readonly exitCode: 2 | 3,
  ) {
    super(message);
  }
}
