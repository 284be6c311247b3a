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
  outcome?: Extract<Outcome, 'unchanged' | 'skipped' | 'waiting' | 'failed'>;
  /**
   * What the work changes, in words that stay the same between a dry run and the apply minutes later
   * (no ages, no clock): the plan digest is made of it. Defaults to `detail`.
   */
  digestKey?: string;
}

export interface ExecuteOptions {
  dryRun: boolean;
  /** False once the Lambda is near its timeout: start nothing new. */
  hasTime: () => boolean;
  concurrency: number;
  /**
   * ARNs the previous run left undone at its deadline (RunContext.carriedOver): they go first, so a
   * run that is cut short every day does not cut the same tail every day.
   */
  first?: ReadonlySet<string>;
}

/** The text of a row the deadline left unstarted. Public wording: the runbook quotes it. */
export const NOT_STARTED = 'not started: the Lambda was about to time out; the next run starts with it';

/** `items` with those named in `first` moved to the front, each part in its own order. */
export const carriedFirst = <T extends { arn: string }>(
  items: readonly T[],
  first: ReadonlySet<string> | undefined,
): T[] =>
  !first || first.size === 0
    ? [...items]
    : [...items.filter((w) => first.has(w.arn)), ...items.filter((w) => !first.has(w.arn))];

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
 * outcome where there is no work, and `undone` for what the deadline left unstarted. `apply` must
 * turn its own errors into a `failed` result: one resource failing never stops the others. Work the
 * previous run left undone (`options.first`) starts first; the results keep the order of `items`.
 */
export const executeWork = async <W extends PlannedWork>(
  items: readonly W[],
  options: ExecuteOptions,
  apply: (work: W) => Promise<ResourceResult>,
): Promise<ResourceResult[]> => {
  const order = carriedFirst(
    items.map((work, index) => ({ arn: work.arn, work, index })),
    options.first,
  );
  const done = await mapLimit(
    order,
    options.concurrency,
    async ({ work }) => {
      if (!work.hasWork) return resultOf(work, work.outcome ?? 'unchanged');
      if (options.dryRun) return resultOf(work, 'planned');
      return apply(work);
    },
    {
      shouldStart: options.hasTime,
      notStarted: ({ work }) =>
        !work.hasWork
          ? resultOf(work, work.outcome ?? 'unchanged')
          : options.dryRun
            ? resultOf(work, 'planned')
            : resultOf(work, 'undone', { detail: `${NOT_STARTED} (would have: ${work.detail})` }),
    },
  );
  const results = new Array<ResourceResult>(items.length);
  order.forEach(({ index }, i) => (results[index] = done[i] as ResourceResult));
  return results;
};

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

/** How a resource's steps ended when they may stop at the deadline. */
export type StepsOutcome = { outcome: 'done' } | { outcome: 'failed' | 'undone'; message: string };

/**
 * runSteps that also stops between two steps once the run has no time left, and says so: a Lambda
 * is stopped by its timeout, but a `--local` run is not (a laptop that slept, an SDK retrying for
 * minutes), and its leases expire meanwhile. Only for steps a later run can finish where these left
 * off; the first step always runs, since the caller checked the time before it.
 */
export const runStepsWithin = async <S extends { op: string }>(
  steps: readonly S[],
  names: Record<S['op'], string>,
  run: (step: S) => Promise<void>,
  hasTime: () => boolean,
): Promise<StepsOutcome> => {
  const done: string[] = [];
  for (const [index, step] of steps.entries()) {
    const name = names[step.op as S['op']];
    if (index > 0 && !hasTime()) {
      return {
        outcome: 'undone',
        message:
          `stopped before ${name}: the run was about to time out; done before it: ${done.join(', ')}; ` +
          'the next run finishes it',
      };
    }
    try {
      await run(step);
      done.push(name);
    } catch (error) {
      const progress = done.length > 0 ? `; done before it: ${done.join(', ')}` : '; nothing was changed';
      return { outcome: 'failed', message: `${name} failed: ${errorMessage(error)}${progress}` };
    }
  }
  return { outcome: 'done' };
};
