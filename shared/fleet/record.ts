/**
 * One fleet target's result row in the hub's table, `fleet#<run>#<account>#<region>` (shared/fleet/results.ts
 * has the rest of a run's rows). Apart, so a function's run imports only the write it makes (PutItem), and
 * that only when it writes (shared/lease-dynamo.ts).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDbOnDemand } from '../aws/dynamodb-on-demand.ts';
import { TTL_ATTRIBUTE } from '../lease.ts';
import type { Outcome, Report, ResourceResult, Summary } from '../report.ts';
import type { Target } from './target.ts';

/** A fleet run's rows expire after this many days through the table's TTL. */
export const KEEP_DAYS = 35;

/** Public contract (`--json`): how one target of a fleet run ended. `pending`: no result yet. */
export type TargetStatus = 'succeeded' | 'failed' | 'refused';

export interface TargetResult extends Target {
  status: TargetStatus;
  /** Why it failed or was refused; what it did otherwise. */
  reason: string;
  summary?: Summary;
  finishedAt: string;
}

export const targetKey = (run: string, target: Target) => `fleet#${run}#${target.account}#${target.region}`;

/**
 * How a target's run ended, from its report: `refused` when the allowlist refused the account, `failed`
 * when any resource failed or was left undone (the fleet is not done with it: redrive re-runs it),
 * `succeeded` otherwise.
 */
export const targetOutcome = (report: Report): { status: TargetStatus; reason: string } => {
  const refused = report.resources.find((r) => r.type === 'account' && r.detail.startsWith('refused:'));
  if (refused) return { status: 'refused', reason: refused.detail };
  const { failed, undone } = report.summary;
  if (failed > 0 || undone > 0) {
    const first = report.resources.find((r) => r.outcome === 'failed' || r.outcome === 'undone');
    const parts = [failed > 0 ? `${failed} failed` : '', undone > 0 ? `${undone} left undone` : ''];
    const what = parts.filter(Boolean).join(', ');
    return {
      status: 'failed',
      reason: first ? `${what}; first: ${first.arn || first.type}: ${first.error ?? first.detail}` : what,
    };
  }
  const done = Object.entries(report.summary)
    .filter(([, n]) => n > 0)
    .map(([outcome, n]) => `${n} ${outcome}`);
  return { status: 'succeeded', reason: done.join(', ') || 'nothing to do' };
};

export const recordTarget = async (
  client: DynamoDBClient | DynamoDbOnDemand,
  table: string,
  run: string,
  result: TargetResult,
): Promise<void> => {
  const { putItem } = await import('../lease-dynamo.ts');
  await putItem(typeof client === 'function' ? await client() : client, {
    TableName: table,
    Item: {
      scope: { S: targetKey(run, result) },
      result: { S: JSON.stringify(result) },
      [TTL_ATTRIBUTE]: { N: String(Math.ceil(Date.parse(result.finishedAt) / 1000) + KEEP_DAYS * 86_400) },
    },
  });
};

/** Rows a fleet iteration returns at most, each detail cut to DETAIL_CHARS: far below 256 KiB. */
export const FLEET_ROWS = 100;
const DETAIL_CHARS = 1000;
const RANK: Record<Outcome, number> = {
  failed: 0,
  undone: 1,
  waiting: 2,
  skipped: 3,
  changed: 4,
  planned: 5,
  unchanged: 6,
};

/**
 * The answer of a fleet iteration: at most FLEET_ROWS rows, failures and work left first, the rest
 * counted in `omitted` (the summary still counts every row).
 */
export const compactForFleet = (report: Report): Report => {
  const cut = (r: ResourceResult): ResourceResult =>
    r.detail.length > DETAIL_CHARS ? { ...r, detail: `${r.detail.slice(0, DETAIL_CHARS)}…` } : r;
  if (report.resources.length <= FLEET_ROWS) return { ...report, resources: report.resources.map(cut) };
  const kept = new Set(
    [...report.resources].sort((a, b) => RANK[a.outcome] - RANK[b.outcome]).slice(0, FLEET_ROWS),
  );
  const omitted: Partial<Record<Outcome, number>> = { ...report.omitted };
  for (const r of report.resources) if (!kept.has(r)) omitted[r.outcome] = (omitted[r.outcome] ?? 0) + 1;
  return { ...report, resources: report.resources.filter((r) => kept.has(r)).map(cut), omitted };
};
