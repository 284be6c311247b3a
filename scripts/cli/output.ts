import Table from 'cli-table3';
import type { Report } from '#shared/report.ts';
import { omittedLine, shortName, summaryCounts } from '#shared/report-text.ts';

export const summaryLine = (fn: string, report: Report) => {
  const omitted = omittedLine(report);
  return (
    (omitted ? `${omitted}\n` : '') +
    `${fn} ${report.action}${report.dryRun ? ' (dry run)' : ''}: ${summaryCounts(report)}`
  );
};

/** The report as a table sized to the terminal, and a one-line summary. */
export const renderReport = (fn: string, report: Report, width = 120): string => {
  if (report.resources.length === 0) {
    // Everything counted but not listed (compactReport) is not "nothing to do": the summary says what.
    return `${report.omitted ? '' : 'nothing to do\n'}${summaryLine(fn, report)}`;
  }
  const nameWidth = Math.min(40, Math.max(12, ...report.resources.map((r) => shortName(r).length + 2)));
  const detailWidth = Math.max(30, width - nameWidth - 20 - 11 - 5);
  const table = new Table({
    head: ['RESOURCE', 'TYPE', 'OUTCOME', 'DETAIL'],
    colWidths: [nameWidth, 20, 11, detailWidth],
    wordWrap: true,
    wrapOnWordBoundary: false,
    style: { head: [], border: [] },
  });
  for (const r of report.resources) {
    table.push([shortName(r), r.type, r.outcome, r.error ? `${r.detail}\nERROR: ${r.error}` : r.detail]);
  }
  return `${table.toString()}\n${summaryLine(fn, report)}`;
};

export const EXIT = {
  ok: 0,
  /** Something failed: a failed row, the function threw, the lease table could not be used. */
  failed: 1,
  /** Refused before running: bad input, no --yes without a terminal, a stage's kill switch. */
  usage: 2,
  /** Not finished, nothing lost: work left undone, scopes held by another run, a plan that changed. */
  notFinished: 3,
} as const;

// The words the functions use for these rows (shared/plan-digest.ts, shared/lease.ts).
const PLAN_CHANGED = 'the plan changed since it was confirmed';
const HELD = 'another run holds the lease on it';
const NO_LEASE = 'could not take a lease in';

export interface Verdict {
  code: number;
  /** What the person should know and do, for stderr. */
  lines: string[];
}

const count = (report: Report, words: string) =>
  report.resources.filter((r) => r.outcome === 'skipped' && r.detail.includes(words)).length;

/** The exit code of a run's report, and what to say about it beyond the table. */
export const verdict = (report: Report, asked: { dryRun: boolean }): Verdict => {
  const lines: string[] = [];
  const changedPlan = report.resources.some(
    (r) => r.outcome === 'skipped' && r.detail.startsWith(PLAN_CHANGED),
  );
  const held = count(report, HELD);
  const noLease = count(report, NO_LEASE);
  const { undone, failed } = report.summary;
  if (changedPlan) {
    lines.push(
      'the plan changed since you confirmed it (another run, a person or AWS changed something in between): ' +
        'nothing was changed. Run the command again to see the new plan, and confirm that one.',
    );
  }
  if (held > 0) {
    lines.push(
      `${held} skipped: another run holds their lease (the row says who, since when, and when it expires); ` +
        'nothing changed there. Run the same command again once that run is done.',
    );
  }
  if (noLease > 0) {
    lines.push(
      `${noLease} skipped: the lease table could not be used (the row says why); nothing changed there. ` +
        'Fix access to the table, then run the same command again.',
    );
  }
  if (undone > 0) {
    lines.push(
      `${undone} undone: the run reached its time limit before starting them; nothing was lost. ` +
        'Run the same command again: the next run starts with them.',
    );
  }
  if (report.dryRun && !asked.dryRun) {
    lines.push(
      'the function ran as a dry run although a change was asked for: DRY_RUN is true for it in this stage, so nothing changed.',
    );
  }
  const code =
    failed > 0 || noLease > 0
      ? EXIT.failed
      : changedPlan || held > 0 || undone > 0
        ? EXIT.notFinished
        : EXIT.ok;
  return { code, lines };
};
