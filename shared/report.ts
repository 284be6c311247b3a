/** The report every nightshift function returns: one row per resource it looked at. */
export const OUTCOMES = ['changed', 'planned', 'unchanged', 'skipped', 'undone', 'failed'] as const;
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
  /**
   * Rows counted in `summary` but not listed in `resources`, by outcome: a report with more than
   * UNCHANGED_LISTED unchanged rows counts them only (compactReport), so it fits a synchronous invoke.
   */
  omitted?: Partial<Record<Outcome, number>>;
  /**
   * Set on dry runs: a digest of the planned changes (shared/plan-digest.ts). Sent back with the apply
   * as the input's `planDigest`, it makes the apply refuse when the plan changed since it was confirmed.
   */
  planDigest?: string;
}

export const summarize = (resources: readonly ResourceResult[]): Summary => {
  const summary: Summary = { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, failed: 0 };
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
export const everythingFailed = (report: Report): boolean => {
  const rows = Object.values(report.summary).reduce((sum, n) => sum + n, 0);
  return rows > 0 && report.summary.failed === rows;
};

/** Above this many unchanged rows, a report counts them instead of listing them. */
export const UNCHANGED_LISTED = 1000;
/**
 * A synchronous Lambda response is at most 6 MB. Past this many bytes of JSON, skipped rows are counted
 * instead of listed too; changed, planned, undone and failed rows are always listed.
 */
export const MAX_REPORT_BYTES = 5_000_000;

const reportBytes = (report: Report) => Buffer.byteLength(JSON.stringify(report), 'utf8');

/**
 * The report as returned to the caller: every change, plan, undone item and failure listed; unchanged
 * rows counted, not listed, when there are more than UNCHANGED_LISTED of them (a sweep over tens of
 * thousands of snapshots), and skipped rows too when the report would still not fit a response.
 */
export const compactReport = (report: Report): Report => {
  let out = report;
  const omit = (outcome: Outcome) => {
    const kept = out.resources.filter((r) => r.outcome !== outcome);
    const dropped = out.resources.length - kept.length;
    if (dropped === 0) return;
    out = { ...out, resources: kept, omitted: { ...out.omitted, [outcome]: dropped } };
  };
  if (report.summary.unchanged > UNCHANGED_LISTED) omit('unchanged');
  if (reportBytes(out) > MAX_REPORT_BYTES) omit('skipped');
  return out;
};
