import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ClientScope } from './config.ts';

/** A DynamoDB client made (and its code imported) by the first call that needs one. */
export type DynamoDbOnDemand = () => Promise<DynamoDBClient>;

/**
 * The lease table's client for withOps (shared/handler.ts): shared/aws/dynamodb.ts's, one per cold start
 * or scope, imported by the first read or write of the table. Most runs of the schedulers never make one.
 */
export const dynamoDbOnDemand =
  (scope?: ClientScope): DynamoDbOnDemand =>
  async () =>
    (await import('./dynamodb.ts')).dynamoDbClient(scope);
