import { errorMessage } from './errors.ts';
import { mapLimit } from './concurrency.ts';
import type { Outcome, ResourceResult } from './report.ts';

/** What every planner hands its executor: a resource, whether there is work, and why (not). */
export interface PlannedWork {
  arn: string;
  type: string;
  /** What the work does, or why there is none, for a person at 3 a.m. */
  detail: string;
  /** False: nothing to do, and `outcome` says why. */
  hasWork: boolean;
  outcome?: Extract<Outcome, 'unchanged' | 'skipped' | 'failed'>;
}

export interface ExecuteOptions {
  dryRun: boolean;
  /** False once the Lambda is near its timeout: start nothing new. */
  hasTime: () => boolean;
  concurrency: number;
}

export const resultOf = (
  work: PlannedWork,
  outcome: Outcome,
  extra: Partial<ResourceResult> = {},
): ResourceResult => ({
  arn: work.arn,
  type: work.type,
  outcome,
  detail: work.detail,
  ...extra,
});

/**
 * Runs planned work with bounded concurrency: nothing in a dry run (`planned`), the planner's own
 * outcome where there is no work, and `skipped` for what the deadline left unstarted. `apply` must
 * turn its own errors into a `failed` result: one resource failing never stops the others.
 */
export const executeWork = <W extends PlannedWork>(
  items: readonly W[],
  options: ExecuteOptions,
  apply: (work: W) => Promise<ResourceResult>,
): Promise<ResourceResult[]> =>
  mapLimit(
    items,
    options.concurrency,
    async (work) => {
      if (!work.hasWork) return resultOf(work, work.outcome ?? 'unchanged');
      if (options.dryRun) return resultOf(work, 'planned');
      return apply(work);
    },
    {
      shouldStart: options.hasTime,
      notStarted: (work) =>
        !work.hasWork
          ? resultOf(work, work.outcome ?? 'unchanged')
          : options.dryRun
            ? resultOf(work, 'planned')
            : resultOf(work, 'skipped', {
                detail: `not started: the Lambda was about to time out; run again to finish (would have: ${work.detail})`,
              }),
    },
  );

/**
 * Runs one resource's steps in order. On the first failure it stops and returns an error that names
 * the failed call and what was done before it, so the report says exactly where the resource stands.
 */
export const runSteps = async <S extends { op: string }>(
  steps: readonly S[],
  names: Record<S['op'], string>,
  run: (step: S) => Promise<void>,
): Promise<string | undefined> => {
  const done: string[] = [];
  for (const step of steps) {
    const name = names[step.op as S['op']];
    try {
      await run(step);
      done.push(name);
    } catch (error) {
      const progress = done.length > 0 ? `; done before it: ${done.join(', ')}` : '; nothing was changed';
      return `${name} failed: ${errorMessage(error)}${progress}`;
    }
  }
  return undefined;
};
