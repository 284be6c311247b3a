import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TTL_ATTRIBUTE } from './lease.ts';

/**
 * The lease table for local runs (the CLI with --local, the demo, tests) against an emulator. Kept
 * apart from shared/lease.ts: no deployed function creates tables, and none may (serverless.yml owns it).
 */

/** True when AWS_ENDPOINT_URL points at an emulator on this machine (moto), not at AWS. */
export const isLocalEndpoint = (url: string | undefined): boolean => {
  if (!url) return false;
  try {
    return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
};

/**
 * Creates the lease table as serverless.yml does (on-demand, TTL on `ttl`) when it is missing. Only
 * for a local emulator: against AWS the stack owns the table, and no nightshift role may create one.
 */
export const ensureLocalLeaseTable = async (client: DynamoDBClient, table: string): Promise<boolean> => {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
    return false;
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
  }
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'scope', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'scope', KeyType: 'HASH' }],
    }),
  );
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: table,
      TimeToLiveSpecification: { Enabled: true, AttributeName: TTL_ATTRIBUTE },
    }),
  );
  return true;
};
