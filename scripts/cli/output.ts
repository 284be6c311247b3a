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
  if (report.resources.length === 0) return `nothing to do\n${summaryLine(fn, report)}`;
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
