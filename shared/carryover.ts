import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TTL_ATTRIBUTE } from './lease.ts';

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
const KEEP_SECONDS = 7 * 86_400;

export const carryOverKey = (service: string, action: string) => `carryover#${service}#${action}`;

export const dynamoCarryOver = (client: DynamoDBClient, table: string, now: () => Date): CarryOver => ({
  load: async (service, action) => {
    const out = await client.send(
      new GetItemCommand({
        TableName: table,
        Key: { scope: { S: carryOverKey(service, action) } },
        ConsistentRead: true,
      }),
    );
    return new Set((out.Item?.arns?.L ?? []).map((v) => v.S ?? '').filter(Boolean));
  },
  save: async (service, action, arns) => {
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          scope: { S: carryOverKey(service, action) },
          arns: { L: arns.slice(0, MAX_CARRIED).map((arn) => ({ S: arn })) },
          savedAt: { N: String(now().getTime()) },
          [TTL_ATTRIBUTE]: { N: String(Math.ceil(now().getTime() / 1000) + KEEP_SECONDS) },
        },
      }),
    );
  },
  clear: async (service, action) => {
    await client.send(
      new DeleteItemCommand({ TableName: table, Key: { scope: { S: carryOverKey(service, action) } } }),
    );
  },
});
