/**
 * What is running in this process, for main.ts's signal handlers: apart from invoke.ts (the Lambda
 * client, the handlers) so the bin registers its handlers without loading either.
 */

/** Set once the CLI was interrupted (Ctrl-C): an in-process run then starts nothing new. */
let interrupted = false;
export const interruptLocalRuns = (): void => {
  interrupted = true;
};
export const isInterrupted = (): boolean => interrupted;

/**
 * In-process (`--local`) runs not returned yet. On a signal the CLI waits for them: a run stops
 * starting work once interrupted, but a call it already sent (an UpdateService) may still land, and
 * its leases must be held until then; its handler releases them when it returns.
 */
export const localRunsInFlight = new Set<Promise<unknown>>();

/** Deployed functions invoked and not answered yet: they go on in Lambda whatever happens here. */
export const invokesInFlight = new Set<string>();

/**
 * Whether a handler ever ran in this process. Only such a run takes leases (withOps, shared/lease.ts),
 * so without one a signal has none to release and need not load the lease code to find that out.
 */
let ranLocally = false;
export const noteLocalRun = (running: Promise<unknown>): void => {
  ranLocally = true;
  localRunsInFlight.add(running);
};
export const anyLocalRun = (): boolean => ranLocally;
