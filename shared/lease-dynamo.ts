/**
 * The DynamoDB side of the lease table: leases (shared/lease.ts), what runs left undone
 * (shared/carryover.ts) and fleet results (shared/fleet/record.ts). Imported on demand by the first call
 * that reads or writes the table, so a run with nothing to claim or record (a reconcile that finds every
 * resource as its schedule wants it) never parses the DynamoDB client.
 */
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type PutItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { carryOverKey, KEEP_SECONDS, MAX_CARRIED, type CarryOver } from './carryover.ts';
import { errorMessage } from './errors.ts';
import { CLOCK_SKEW_MS, LINGER_SECONDS, TTL_ATTRIBUTE, type Lease, type LeaseStore } from './lease.ts';

const isConditionFailed = (error: unknown) =>
  (error as Error | undefined)?.name === 'ConditionalCheckFailedException';

const num = (v: AttributeValue | undefined) => Number(v?.N ?? '0');
const str = (v: AttributeValue | undefined) => v?.S ?? '';

const fromItem = (item: Record<string, AttributeValue>): Lease => ({
  scope: str(item.scope),
  holder: str(item.holder),
  token: str(item.token),
  acquiredAt: new Date(num(item.acquiredAt)),
  expiresAt: new Date(num(item.expiresAt)),
  version: num(item.version),
  data: Object.fromEntries(Object.entries(item.data?.M ?? {}).map(([k, v]) => [k, v.S ?? ''])),
});

const toItem = (lease: Lease): Record<string, AttributeValue> => ({
  scope: { S: lease.scope },
  holder: { S: lease.holder },
  token: { S: lease.token },
  acquiredAt: { N: String(lease.acquiredAt.getTime()) },
  expiresAt: { N: String(lease.expiresAt.getTime()) },
  [TTL_ATTRIBUTE]: { N: String(Math.ceil(lease.expiresAt.getTime() / 1000) + LINGER_SECONDS) },
  version: { N: String(lease.version) },
  ...(Object.keys(lease.data).length > 0 && {
    data: { M: Object.fromEntries(Object.entries(lease.data).map(([k, v]) => [k, { S: v }])) },
  }),
});

/** The lease table in DynamoDB (shared/lease.ts dynamoLeaseStore imports this on its first call). */
export const dynamoLeaseStoreOf = (client: DynamoDBClient, table: string): LeaseStore => ({
  table,
  read: async (scope) => {
    const out = await client.send(
      new GetItemCommand({ TableName: table, Key: { scope: { S: scope } }, ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  },
  acquire: async (scope, owner, now, ttlMs) => {
    const lease: Lease = {
      scope,
      holder: owner.holder,
      token: owner.token,
      acquiredAt: now,
      expiresAt: new Date(now.getTime() + ttlMs),
      version: 1,
      data: {},
    };
    try {
      await client.send(
        new PutItemCommand({
          TableName: table,
          Item: toItem(lease),
          // Free, expired (allowing for clock skew), or ours already: a second take in one run, or the
          // SDK's retry of a write that landed but whose answer was lost.
          ConditionExpression: 'attribute_not_exists(#scope) OR #expiresAt <= :expired OR #token = :token',
          ExpressionAttributeNames: { '#scope': 'scope', '#expiresAt': 'expiresAt', '#token': 'token' },
          ExpressionAttributeValues: {
            ':expired': { N: String(now.getTime() - CLOCK_SKEW_MS) },
            ':token': { S: owner.token },
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { ok: true };
    } catch (error) {
      if (!isConditionFailed(error)) return { ok: false, error: errorMessage(error) };
      const item = (error as { Item?: Record<string, AttributeValue> }).Item;
      const heldBy = item
        ? fromItem(item)
        : await client
            .send(
              new GetItemCommand({ TableName: table, Key: { scope: { S: scope } }, ConsistentRead: true }),
            )
            .then((out) => (out.Item ? fromItem(out.Item) : undefined));
      // Released between the write and the read: try once more rather than report a holder that is gone.
      if (!heldBy) return dynamoLeaseStoreOf(client, table).acquire(scope, owner, now, ttlMs);
      return { ok: false, heldBy };
    }
  },
  release: async (scope, owner) => {
    try {
      await client.send(
        new DeleteItemCommand({
          TableName: table,
          Key: { scope: { S: scope } },
          ConditionExpression: '#token = :token',
          ExpressionAttributeNames: { '#token': 'token' },
          ExpressionAttributeValues: { ':token': { S: owner.token } },
        }),
      );
    } catch (error) {
      // Taken over after it expired: it is someone else's now.
      if (!isConditionFailed(error)) throw error;
    }
  },
  compareAndSet: async (next, expectedVersion) => {
    const written = { ...next, version: (expectedVersion ?? 0) + 1 };
    try {
      await client.send(
        new PutItemCommand({
          TableName: table,
          Item: toItem(written),
          ...(expectedVersion === undefined
            ? {
                ConditionExpression: 'attribute_not_exists(#scope)',
                ExpressionAttributeNames: { '#scope': 'scope' },
              }
            : {
                ConditionExpression: '#version = :version',
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':version': { N: String(expectedVersion) } },
              }),
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
      // The SDK retries a write whose answer was lost (a reset connection, a timeout); if the first
      // attempt landed, the retry fails its condition against our own write. That is a success.
      const now = await client.send(
        new GetItemCommand({ TableName: table, Key: { scope: { S: next.scope } }, ConsistentRead: true }),
      );
      const item = now.Item ? fromItem(now.Item) : undefined;
      // Only our very write: the same version, owner, times and data.
      return (
        item !== undefined &&
        item.version === written.version &&
        item.token === written.token &&
        item.holder === written.holder &&
        item.acquiredAt.getTime() === written.acquiredAt.getTime() &&
        item.expiresAt.getTime() === written.expiresAt.getTime() &&
        JSON.stringify(Object.entries(item.data).sort()) ===
          JSON.stringify(Object.entries(written.data).sort())
      );
    }
  },
  remove: async (scope) => {
    await client.send(new DeleteItemCommand({ TableName: table, Key: { scope: { S: scope } } }));
  },
});

/** What a run left undone, in the lease table (shared/carryover.ts dynamoCarryOver imports this on its first call). */
export const dynamoCarryOverOf = (client: DynamoDBClient, table: string, now: () => Date): CarryOver => ({
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

/** One unconditional PutItem (a fleet target's result). */
export const putItem = async (client: DynamoDBClient, input: PutItemCommandInput): Promise<void> => {
  await client.send(new PutItemCommand(input));
};
