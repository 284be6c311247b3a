import type { Report, ResourceResult } from './report.ts';

/** A short, readable name for a resource row: `stage/web` for a service ARN, the name for a group. */
export const shortName = (r: Pick<ResourceResult, 'arn' | 'type'>): string => {
  if (!r.arn.startsWith('arn:')) return r.arn;
  const resource = r.arn.split(':').slice(5).join(':');
  const named = resource.match(/autoScalingGroupName\/(.+)$/);
  if (named?.[1]) return named[1];
  const slash = resource.indexOf('/');
  return slash >= 0 ? resource.slice(slash + 1) : resource;
};

/** `3 changed, 0 planned, …, 0 failed`; `undone` and `waiting` only when there are some, as in older reports. */
export const summaryCounts = (report: Report): string => {
  const s = report.summary;
  return (
    `${s.changed} changed, ${s.planned} planned, ${s.unchanged} unchanged, ${s.skipped} skipped, ` +
    `${s.undone ? `${s.undone} undone, ` : ''}${s.waiting ? `${s.waiting} waiting, ` : ''}${s.failed} failed`
  );
};

/** Rows the report counts but does not list (compactReport), or undefined when it lists them all. */
export const omittedLine = (report: Report): string | undefined => {
  const parts = Object.entries(report.omitted ?? {})
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([outcome, n]) => `${n} ${outcome}`);
  return parts.length > 0 ? `not listed: ${parts.join(', ')} (counted in the summary)` : undefined;
};

const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - text.length));

/** The report as a table (resource, type, outcome, detail) and a one-line summary, for a terminal. */
export const formatReport = (report: Report): string => {
  const rows = report.resources.map((r) => [
    shortName(r),
    r.type,
    r.outcome,
    r.error ? `${r.detail} — ERROR: ${r.error}` : r.detail,
  ]);
  const header = ['RESOURCE', 'TYPE', 'OUTCOME', 'DETAIL'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const summary = `${report.action}${report.dryRun ? ' (dry run)' : ''}: ${summaryCounts(report)}`;
  const omitted = omittedLine(report);
  return [line(header), ...rows.map(line), '', ...(omitted ? [omitted] : []), summary].join('\n');
};
