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

/** Every resource in the run failed; the report is attached so nothing is lost from the logs. */
export class RunFailedError extends Error {
  override name = 'RunFailedError';
  constructor(public readonly report: Report) {
    const first = report.resources.find((r) => r.error)?.error ?? 'unknown error';
    super(`all ${report.resources.length} resource(s) failed; first error: ${first}`);
  }
}

export const errorMessage = (error: unknown): string => {
  if (error instanceof Error)
    return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  return String(error);
};
