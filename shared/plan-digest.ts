import { createHash } from 'node:crypto';
import type { PlannedWork } from './execute.ts';
import { resultOf } from './execute.ts';
import type { ResourceResult } from './report.ts';

/**
 * The plan a person confirmed, as a digest. The CLI shows a dry run, asks, then runs the apply; the
 * apply plans afresh, and if anything changed in between (another run, a person, a scaling event) it
 * must not apply a plan nobody saw. A dry run returns `planDigest` in its report; the apply sends it
 * back in its input and each function refuses, before any mutating call, when its own plan differs.
 */
export const PLAN_DIGEST = /^[0-9a-f]{64}$/;

/** sha256 over every resource with work and what it would change (`digestKey`, else `detail`), sorted. */
export const planDigest = (works: readonly PlannedWork[]): string =>
  createHash('sha256')
    .update(
      works
        .filter((w) => w.hasWork)
        .map((w) => `${w.arn}\n${w.digestKey ?? w.detail}`)
        .sort()
        .join('\n\n'),
    )
    .digest('hex');

/**
 * Undefined when the apply may go ahead: no digest was sent, or the plan is the one confirmed.
 * Otherwise one `skipped` row per resource of the new plan, saying why nothing was changed.
 */
export const refuseChangedPlan = (
  expected: string | undefined,
  works: readonly PlannedWork[],
): ResourceResult[] | undefined => {
  if (expected === undefined || planDigest(works) === expected) return undefined;
  const reason =
    'the plan changed since it was confirmed (another run, a person or AWS changed something in between); ' +
    'nothing changed — look at the new plan and confirm again';
  const rows = works.map((w) =>
    resultOf(w, 'skipped', { detail: `${reason}${w.hasWork ? ` (the new plan: ${w.detail})` : ''}` }),
  );
  return rows.length > 0
    ? rows
    : [{ arn: '', type: 'plan', outcome: 'skipped', detail: `${reason} (the new plan has nothing to do)` }];
};
