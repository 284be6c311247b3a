/** The report every nightshift function returns: one row per resource it looked at. */
/**
 * `waiting`: nothing done yet because the resource waits for another (a service for its environment's
 * database to be available, a database for its services to be at 0); a later run does it. `planned`
 * stays what a dry run would do.
 */
export const OUTCOMES = [
  'changed',
  'planned',
  'unchanged',
  'skipped',
  'undone',
  'waiting',
  'failed',
] as const;
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
  const summary: Summary = {
    changed: 0,
    planned: 0,
    unchanged: 0,
    skipped: 0,
    undone: 0,
    waiting: 0,
    failed: 0,
  };
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

/** Row text with resource names taken out, so rows that failed the same way fold together. */
const shape = (text: string): string =>
  text
    .replace(/arn:aws[a-z-]*:[^\s,;)"']+/g, '<arn>')
    .replace(/\b(i|snap|vol|ami|sg|subnet|eni|vpc)-[0-9a-f]{8,17}\b/g, '<id>')
    .replace(
      /Encoded authorization failure message: \S+/g,
      'Encoded authorization failure message: <in the log>',
    )
    .slice(0, 500);

/** At most this many names in one folded row. */
export const FOLDED_PER_ROW = 1000;

/** How many resources a folded row stands for. */
const folded = new WeakMap<ResourceResult, number>();

/** Rows folded by what happened to them: one row per kind, naming the resources. */
const fold = (rows: readonly ResourceResult[]): ResourceResult[] => {
  const groups = new Map<string, ResourceResult[]>();
  for (const r of rows) {
    const key = `${r.type}\n${r.outcome}\n${shape(r.error ?? r.detail)}`;
    const group = groups.get(key) ?? [];
    group.push(r);
    groups.set(key, group);
  }
  const out: ResourceResult[] = [];
  for (const group of groups.values()) {
    const first = group[0] as ResourceResult;
    if (group.length === 1) {
      out.push(first);
      continue;
    }
    for (let i = 0; i < group.length; i += FOLDED_PER_ROW) {
      const part = group.slice(i, i + FOLDED_PER_ROW);
      const row: ResourceResult = {
        arn: `${part.length} resources`,
        type: first.type,
        outcome: first.outcome,
        detail: `${shape(first.detail)}: ${part.map((r) => r.arn).join(', ')}`,
        ...(first.error !== undefined && { error: shape(first.error) }),
      };
      folded.set(row, part.length);
      out.push(row);
    }
  }
  return out;
};

/**
 * The report as returned to the caller: every change, plan, undone item and failure listed; unchanged
 * rows counted, not listed, when there are more than UNCHANGED_LISTED of them (a sweep over tens of
 * thousands of snapshots), and skipped rows too when the report would still not fit a response. As a
 * last resort (tens of thousands of failures, say every call refused by IAM), rows that ended the same
 * way are folded into rows that name up to FOLDED_PER_ROW resources each; whatever still does not fit
 * is counted in `omitted` (the full report is in the function's log).
 */
export const compactReport = (report: Report, options: { fold?: boolean } = {}): Report => {
  let out = report;
  const omit = (outcome: Outcome) => {
    const kept = out.resources.filter((r) => r.outcome !== outcome);
    const dropped = out.resources.length - kept.length;
    if (dropped === 0) return;
    out = { ...out, resources: kept, omitted: { ...out.omitted, [outcome]: dropped } };
  };
  if (report.summary.unchanged > UNCHANGED_LISTED) omit('unchanged');
  if (reportBytes(out) > MAX_REPORT_BYTES) omit('skipped');
  // A caller that folds its own rows better (snapshot-tags names snapshots by id) asks first without.
  if (options.fold === false) return out;
  if (reportBytes(out) > MAX_REPORT_BYTES) out = { ...out, resources: fold(out.resources) };
  if (reportBytes(out) > MAX_REPORT_BYTES) {
    // Failed first, then undone, then the rest: what a person acts on.
    const order: Outcome[] = ['failed', 'undone', 'waiting', 'changed', 'planned', 'skipped', 'unchanged'];
    const sorted = [...out.resources].sort((a, b) => order.indexOf(a.outcome) - order.indexOf(b.outcome));
    const kept: ResourceResult[] = [];
    const omitted = { ...out.omitted };
    let bytes = reportBytes({ ...out, resources: [] }) + 200;
    for (const r of sorted) {
      const size = Buffer.byteLength(JSON.stringify(r), 'utf8') + 1;
      if (bytes + size <= MAX_REPORT_BYTES) {
        kept.push(r);
        bytes += size;
      } else omitted[r.outcome] = (omitted[r.outcome] ?? 0) + (folded.get(r) ?? 1);
    }
    out = { ...out, resources: kept, omitted };
  }
  return out;
};
