import Table from 'cli-table3';
import type { Report } from '#shared/report.ts';
import { omittedLine, shortName, summaryCounts } from '#shared/report-text.ts';
import { EXIT } from './exit-codes.ts';

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

export { EXIT };

// The words the functions use for these rows (shared/plan-digest.ts, shared/lease.ts,
// functions/ssm-restart/execute.ts).
const PLAN_CHANGED = 'the plan changed since it was confirmed';
const HELD = 'another run holds the lease on it';
const NO_LEASE = 'could not take a lease in';
// functions/ecs-scheduler/plan.ts and execute.ts: a start that must wait for a stop, or for its capacity.
const LEFT_FOR_LATER = ['a stop may still be running on it', 'not started: its capacity group'];
const OUT_OF_TIME = ['the Lambda was about to time out', 'the run was about to time out'];
const STILL_RUNNING = ['still running when the Lambda had to stop', 'not yet delivered to the instance'];

/** What to say when a change was asked of a function that only plans (its DRY_RUN is true). */
export const onlyPlans = (where: string, stage: string): string =>
  `${where} only plans: DRY_RUN is true for it in stage ${stage}, so nothing was changed and nothing will be ` +
  '(the plan above is what it would do). Nothing was asked; this is a refusal (exit 2). Change DRY_RUN for the ' +
  'stage (a deploy) to let it act, or use --dry-run to only look.';

export interface Verdict {
  code: number;
  /** What the person should know and do, for stderr. */
  lines: string[];
}

export interface Asked {
  /** The person asked for a dry run (`--dry-run`). */
  dryRun: boolean;
  /**
   * The report is the plan shown before a change the person asked for, which had nothing to change:
   * judged as the change would be (a restart that restarts nothing is not done).
   */
  planOfChange?: boolean;
}

const rows = (report: Report, outcomes: readonly string[], words: string) =>
  report.resources.filter((r) => outcomes.includes(r.outcome) && r.detail.includes(words));

/** Why targets of a restart were skipped, counted by the reasons ssm-restart gives. */
const skippedReasons = (skipped: Report['resources']): string => {
  const kinds: [string, string][] = [
    ['another restart of it is in progress', 'another restart of it is in progress'],
    ['not opted in', 'not opted in (no nightshift:restartable=true)'],
    ['agent is offline', 'not online in SSM'],
    ['cooldown', 'in its cooldown'],
    ['not running', 'not running'],
  ];
  const counts = new Map<string, number>();
  for (const r of skipped) {
    const kind = kinds.find(([words]) => r.detail.includes(words))?.[1] ?? 'other reasons';
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].map(([kind, n]) => `${n} ${kind}`).join(', ');
};

/** The exit code of a run's report, and what to say about it beyond the table. */
export const verdict = (report: Report, asked: Asked): Verdict => {
  const lines: string[] = [];
  const wantedChange = !asked.dryRun;
  const changedPlan = report.resources.some(
    (r) => r.outcome === 'skipped' && r.detail.startsWith(PLAN_CHANGED),
  );
  // A scope another run holds is `undone` (skipped from functions deployed before that policy).
  const held = rows(report, ['undone', 'skipped'], HELD).length;
  // The lease table could not be used: `failed` (skipped from functions deployed before that policy).
  const noLease = rows(report, ['failed', 'skipped'], NO_LEASE).length;
  const stillRunning = report.resources.filter(
    (r) => r.outcome === 'changed' && STILL_RUNNING.some((words) => r.detail.startsWith(words)),
  );
  // Undone rows other than held scopes: the deadline's (shared/execute.ts, or a whole run that ran out of
  // time while reading) and work a function left for a later run, for the reason its row gives (an
  // ecs-scheduler start while a stop may still be parking the service, or behind capacity not back).
  const undoneRows = report.resources.filter((r) => r.outcome === 'undone' && !r.detail.includes(HELD));
  const reasonedUndone = undoneRows.filter(
    (r) => !OUT_OF_TIME.some((words) => r.detail.includes(words)),
  ).length;
  // The same rows are `skipped` from an ecs-scheduler deployed before they became `undone`.
  const reasonedSkipped = report.resources.filter(
    (r) =>
      r.outcome === 'skipped' &&
      !r.detail.includes(HELD) &&
      LEFT_FOR_LATER.some((words) => r.detail.includes(words)),
  ).length;
  // The rest (the deadline's, and any counted but not listed) get the deadline's words.
  const undone =
    report.summary.undone -
    report.resources.filter((r) => r.outcome === 'undone' && r.detail.includes(HELD)).length -
    reasonedUndone;
  // In a dry run they say what a change would leave; the dry run itself is done.
  const leftForLater = wantedChange ? reasonedUndone + reasonedSkipped : 0;
  const { failed } = report.summary;
  // An on-demand restart that restarted nothing because its targets were skipped is not done.
  const restart = report.action === 'restart' && wantedChange;
  const skipped = report.resources.filter(
    (r) => r.outcome === 'skipped' && !r.detail.startsWith(PLAN_CHANGED),
  );
  const restarted = report.summary.changed + report.summary.planned - stillRunning.length;
  const nothingRestarted = restart && skipped.length > 0 && restarted === 0 && stillRunning.length === 0;
  if (changedPlan) {
    lines.push(
      'the plan changed since you confirmed it (another run, a person or AWS changed something in between): ' +
        'nothing was changed. Run the command again to see the new plan, and confirm that one.',
    );
  }
  if (held > 0) {
    lines.push(
      `${held} not done: another run holds their lease (the row says who, since when, and when it expires); ` +
        'nothing changed there. Run the same command again once that run is done.',
    );
  }
  if (noLease > 0) {
    lines.push(
      `${noLease} not done: the lease table could not be used (the row says why); nothing changed there. ` +
        'Fix access to the table, then run the same command again.',
    );
  }
  if (undone > 0) {
    lines.push(
      `${undone} undone: the run reached its time limit before starting them; nothing was lost. ` +
        'Run the same command again: the next run starts with them.',
    );
  }
  if (leftForLater > 0) {
    lines.push(
      `${leftForLater} not done yet, for the reason each row gives (e.g. a stop may still be running on it, ` +
        'or its capacity is not back); nothing changed there and nothing was lost. Run the same command again ' +
        '(after the time the row names, if it names one); scheduled runs start with them.',
    );
  }
  // Rows waiting for another resource (an environment started in order): a later run does them.
  const waiting = wantedChange ? report.summary.waiting : 0;
  if (waiting > 0) {
    lines.push(
      `${waiting} waiting for the resources their rows name (started or stopped in order); nothing changed there. ` +
        'Scheduled runs do them once those are ready, or run the same command again later.',
    );
  }
  if (stillRunning.length > 0) {
    lines.push(
      `${stillRunning.length} still running when the function had to stop: SSM goes on without it, so whether ` +
        'they worked is not known yet. Follow each with the aws ssm get-command-invocation its row gives, ' +
        'and do not restart them again before that says they ended.',
    );
  }
  if (nothingRestarted) {
    lines.push(
      `nothing restarted: ${skipped.length} target(s) skipped (${skippedReasons(skipped)}); the rows say why. ` +
        'Fix what they say (or wait for the restart in progress, until the time its row names), then run the same command again.',
    );
  } else if (restart && skipped.length > 0) {
    lines.push(`${skipped.length} target(s) not restarted (${skippedReasons(skipped)}); the rows say why.`);
  }
  // The function's own DRY_RUN made a change that was asked for a dry run: refused, not done.
  // (With nothing planned, a real run would have changed nothing either: that is done.)
  const onlyPlanned = report.dryRun && wantedChange && !asked.planOfChange && report.summary.planned > 0;
  if (onlyPlanned) {
    lines.push(
      'the function ran as a dry run although a change was asked for: DRY_RUN is true for it in this stage, so nothing changed. ' +
        'This is a refusal (exit 2): change DRY_RUN for the stage to let it act, or use --dry-run to only look.',
    );
  }
  const code =
    failed > 0 || noLease > 0
      ? EXIT.failed
      : onlyPlanned
        ? EXIT.usage
        : changedPlan ||
            held > 0 ||
            undone > 0 ||
            leftForLater > 0 ||
            waiting > 0 ||
            stillRunning.length > 0 ||
            nothingRestarted
          ? EXIT.notFinished
          : EXIT.ok;
  return { code, lines };
};
