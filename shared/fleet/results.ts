/**
 * A fleet run's results in the hub's table (the lease table, hash key `scope`), for deployed and local
 * runs alike, so `nightshift fleet status` and `redrive` read one place:
 *
 * - `fleet#<run>`: the run: function, the event (without target), dry run, its targets, start and end.
 * - `fleet#<run>#<account>#<region>`: one target's outcome, written by the function itself at the end of
 *   its run (shared/handler.ts), by the state machine's Catch when the invocation itself failed, or by the
 *   local fan-out when the worker threw.
 * - `fleet#latest#<function>` and `fleet#latest`: the newest run, for `fleet status` without a run id.
 *
 * Rows expire after KEEP_DAYS through the table's TTL.
 */
import {
  BatchGetItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TTL_ATTRIBUTE } from '../lease.ts';
import type { Summary } from '../report.ts';
import { KEEP_DAYS, targetKey, type TargetResult, type TargetStatus } from './record.ts';
import type { Target } from './target.ts';

export {
  KEEP_DAYS,
  recordTarget,
  targetKey,
  targetOutcome,
  type TargetResult,
  type TargetStatus,
} from './record.ts';

export interface FleetRun {
  run: string;
  function: string;
  dryRun: boolean;
  /** The single-account event every target ran, without `target` and `fleet`. */
  event: Record<string, unknown>;
  targets: Target[];
  startedAt: string;
  finishedAt?: string;
  /** `local` (nightshift fleet run --local) or `state-machine`. */
  runner: 'local' | 'state-machine';
  /** The run this one re-ran the failed targets of. */
  redriveOf?: string;
}

/** The `--json` document of `fleet run` and `fleet status` (public contract). */
export interface FleetDocument {
  run: string;
  function: string;
  dryRun: boolean;
  wallSeconds: number | null;
  targets: Array<Target & { status: TargetStatus | 'pending'; reason: string; summary: Summary | null }>;
}

export const runKey = (run: string) => `fleet#${run}`;
export const latestKey = (fn?: string) => (fn ? `fleet#latest#${fn}` : 'fleet#latest');

const ttl = (now: Date) => ({ N: String(Math.ceil(now.getTime() / 1000) + KEEP_DAYS * 86_400) });

export const startRun = async (client: DynamoDBClient, table: string, run: FleetRun): Promise<void> => {
  const now = new Date(run.startedAt);
  await client.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        scope: { S: runKey(run.run) },
        run: { S: JSON.stringify(run) },
        [TTL_ATTRIBUTE]: ttl(now),
      },
      // A run id names one run: a second start under the same id (a retried CLI) must not replace it.
      ConditionExpression: 'attribute_not_exists(#s)',
      ExpressionAttributeNames: { '#s': 'scope' },
    }),
  );
  for (const key of [latestKey(run.function), latestKey()])
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: { scope: { S: key }, latest: { S: run.run }, [TTL_ATTRIBUTE]: ttl(now) },
      }),
    );
};

export const finishRun = async (
  client: DynamoDBClient,
  table: string,
  run: string,
  at: Date,
): Promise<void> => {
  await client.send(
    new UpdateItemCommand({
      TableName: table,
      Key: { scope: { S: runKey(run) } },
      UpdateExpression: 'SET finishedAt = :at',
      ConditionExpression: 'attribute_exists(#s)',
      ExpressionAttributeNames: { '#s': 'scope' },
      ExpressionAttributeValues: { ':at': { S: at.toISOString() } },
    }),
  );
};

export const latestRun = async (
  client: DynamoDBClient,
  table: string,
  fn?: string,
): Promise<string | undefined> => {
  const out = await client.send(
    new GetItemCommand({ TableName: table, Key: { scope: { S: latestKey(fn) } }, ConsistentRead: true }),
  );
  return out.Item?.latest?.S;
};

export const readRun = async (
  client: DynamoDBClient,
  table: string,
  run: string,
): Promise<FleetRun | undefined> => {
  const out = await client.send(
    new GetItemCommand({ TableName: table, Key: { scope: { S: runKey(run) } }, ConsistentRead: true }),
  );
  const text = out.Item?.run?.S;
  if (!text) return undefined;
  const parsed = JSON.parse(text) as FleetRun;
  const finishedAt = out.Item?.finishedAt?.S;
  return finishedAt ? { ...parsed, finishedAt } : parsed;
};

/** BatchGetItem reads at most 100 keys per call (DynamoDB API reference); unprocessed keys are asked again. */
const BATCH = 100;
const MAX_ROUNDS = 10;

/** The recorded result of each of the run's targets, by `<account>#<region>`; missing ones have none yet. */
export const readTargets = async (
  client: DynamoDBClient,
  table: string,
  run: string,
  targets: readonly Target[],
): Promise<Map<string, TargetResult>> => {
  const results = new Map<string, TargetResult>();
  for (let i = 0; i < targets.length; i += BATCH) {
    let keys: Array<Record<string, AttributeValue>> = targets
      .slice(i, i + BATCH)
      .map((t) => ({ scope: { S: targetKey(run, t) } }));
    for (let round = 0; keys.length > 0; round += 1) {
      if (round === MAX_ROUNDS)
        throw new Error(`DynamoDB left ${keys.length} result rows unread after ${MAX_ROUNDS} tries`);
      const out = await client.send(
        new BatchGetItemCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }),
      );
      for (const item of out.Responses?.[table] ?? []) {
        const text = item.result?.S;
        if (!text) continue;
        const result = JSON.parse(text) as TargetResult;
        results.set(`${result.account}#${result.region}`, result);
      }
      keys = out.UnprocessedKeys?.[table]?.Keys ?? [];
    }
  }
  return results;
};

const ORDER: Record<TargetStatus | 'pending', number> = { failed: 0, pending: 1, refused: 2, succeeded: 3 };

/** The `--json` document; targets in the run's order. `wallSeconds` is null while the run is going on. */
export const fleetDocument = (run: FleetRun, results: ReadonlyMap<string, TargetResult>): FleetDocument => ({
  run: run.run,
  function: run.function,
  dryRun: run.dryRun,
  wallSeconds: run.finishedAt
    ? Math.round((Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 100) / 10
    : null,
  targets: run.targets.map((t) => {
    const result = results.get(`${t.account}#${t.region}`);
    return {
      account: t.account,
      region: t.region,
      status: result?.status ?? (run.finishedAt ? 'failed' : 'pending'),
      reason: result?.reason ?? (run.finishedAt ? 'no result was recorded for this target' : 'running'),
      summary: result?.summary ?? null,
    };
  }),
});

/** For the table: failures first, then what is still going on, refused, succeeded. Stable within each. */
export const failuresFirst = <T extends { status: TargetStatus | 'pending' }>(targets: readonly T[]): T[] =>
  [...targets].sort((a, b) => ORDER[a.status] - ORDER[b.status]);
