/** The report every nightshift function returns: one row per resource it looked at. */
export const OUTCOMES = ['changed', 'planned', 'unchanged', 'skipped', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface ResourceResult {
  arn: string;
  type: string;
  outcome: Outcome;
  /** Readable at 3 a.m.: what changed, or would change, or why nothing did. */
  detail: string;
  error?: string;
}

export type Summary = Record<Outcome, number>;

export interface Report {
  action: string;
  dryRun: boolean;
  summary: Summary;
  resources: ResourceResult[];
}

export const summarize = (resources: readonly ResourceResult[]): Summary => {
  const summary: Summary = { changed: 0, planned: 0, unchanged: 0, skipped: 0, failed: 0 };
  for (const r of resources) summary[r.outcome] += 1;
  return summary;
};

export const buildReport = (action: string, dryRun: boolean, resources: ResourceResult[]): Report => ({
  action,
  dryRun,
  summary: summarize(resources),
  resources,
});

/** True when there was work and none of it succeeded: the only case a handler throws. */
export const everythingFailed = (report: Report): boolean =>
  report.resources.length > 0 && report.summary.failed === report.resources.length;
