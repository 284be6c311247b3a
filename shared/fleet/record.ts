/**
 * One fleet target's result row in the hub's table, `fleet#<run>#<account>#<region>` (shared/fleet/results.ts
 * has the rest of a run's rows). Apart, so a function's run imports only the write it makes (PutItem).
 */
import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TTL_ATTRIBUTE } from '../lease.ts';
import type { Report, Summary } from '../report.ts';
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
  client: DynamoDBClient,
  table: string,
  run: string,
  result: TargetResult,
): Promise<void> => {
  await client.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        scope: { S: targetKey(run, result) },
        result: { S: JSON.stringify(result) },
        [TTL_ATTRIBUTE]: { N: String(Math.ceil(Date.parse(result.finishedAt) / 1000) + KEEP_DAYS * 86_400) },
      },
    }),
  );
};
