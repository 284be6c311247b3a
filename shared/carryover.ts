import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDbOnDemand } from './aws/dynamodb-on-demand.ts';
import { onDemand } from './on-demand.ts';

/**
 * What a run left undone at its deadline, kept in the lease table under `carryover#<function>#<action>`
 * until the next run of that action, which starts with it. Without it a run cut short every day would
 * cut the same tail every day. Best effort: losing the list costs only the order, never work.
 */
export interface CarryOver {
  load(service: string, action: string): Promise<Set<string>>;
  save(service: string, action: string, arns: readonly string[]): Promise<void>;
  clear(service: string, action: string): Promise<void>;
}

/** DynamoDB items are at most 400 KB: the first this many ARNs are kept, which is plenty to reorder by. */
export const MAX_CARRIED = 2000;
/** A list nobody read for a week is no guide to anything. */
export const KEEP_SECONDS = 7 * 86_400;

export const carryOverKey = (service: string, action: string) => `carryover#${service}#${action}`;

/**
 * What runs left undone, in the lease table. The DynamoDB code (shared/lease-dynamo.ts) is imported by the
 * first load, save or clear: `client`, a client or a function that gives one.
 */
export const dynamoCarryOver = (
  client: DynamoDBClient | DynamoDbOnDemand,
  table: string,
  now: () => Date,
): CarryOver => {
  const store = onDemand(async () =>
    (await import('./lease-dynamo.ts')).dynamoCarryOverOf(
      typeof client === 'function' ? await client() : client,
      table,
      now,
    ),
  );
  return {
    load: async (service, action) => (await store()).load(service, action),
    save: async (service, action, arns) => (await store()).save(service, action, arns),
    clear: async (service, action) => (await store()).clear(service, action),
  };
};
