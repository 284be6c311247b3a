/**
 * What program.ts (the command definitions) and run-function.ts (loaded when a function command runs)
 * share: the options every command takes, and two small helpers.
 */
import type { Io } from './program.ts';

/** The program's options, overridden by the same options given after the command name. */
export interface Globals {
  stage: string;
  region?: string;
  serviceName: string;
  local?: boolean;
  json?: boolean;
  dryRun?: boolean;
  yes?: boolean;
}

/** Points in-process handlers and reads at a region: they read it from the environment, as in Lambda. */
export const useRegion = (io: Io, region: string) => {
  io.env.AWS_REGION = region;
  io.env.AWS_DEFAULT_REGION = region;
};

export const compact = <T extends Record<string, unknown>>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
