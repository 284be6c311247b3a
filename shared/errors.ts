import type { Report } from './report.ts';

/** The event was refused before any AWS call. `field` is the path of the offending field. */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    public readonly field: string,
  ) {
    super(message);
  }
}

/** One or more environment variables are invalid; `variables` lists every one of them. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    public readonly variables: string[],
  ) {
    super(message);
  }
}

/**
 * Every resource in the run failed; the report is attached so nothing is lost from the logs. The
 * message carries the first failure's reason (its error, or its detail when the planner refused it
 * before any call), because the message is what an on-failure queue and an operator see.
 */
export class RunFailedError extends Error {
  override name = 'RunFailedError';
  constructor(public readonly report: Report) {
    const first = report.resources.find((r) => r.outcome === 'failed');
    const reason = first?.error || first?.detail || 'no reason was recorded';
    super(`all ${report.summary.failed} resource(s) failed; first error: ${reason}`);
  }
}

export const errorMessage = (error: unknown): string => {
  if (error instanceof Error)
    return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  return String(error);
};
