/** The lease table in moto, as serverless.yml creates it, for tests of runs that take leases. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoLeaseStore, RunLeases, type LeaseStore } from '#shared/lease.ts';
import { ensureLocalLeaseTable } from '#shared/lease-table.ts';

export const TEST_LEASE_TABLE = 'nightshift-test-leases';

export const dynamoClient = (url: string): DynamoDBClient =>
  new DynamoDBClient({
    endpoint: url,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

/** Creates the table (after a moto reset) and returns a store on it. */
export const leaseTable = async (url: string, table = TEST_LEASE_TABLE): Promise<LeaseStore> => {
  const client = dynamoClient(url);
  await ensureLocalLeaseTable(client, table);
  return dynamoLeaseStore(client, table);
};

/** A run's leases on `store`, held by `holder`, with a clock a test can move. */
export const runLeases = (
  store: LeaseStore,
  holder: string,
  now: () => Date = () => new Date(),
  ttlMs = 900_000,
): RunLeases => new RunLeases(store, { holder, token: `${holder}-token` }, now, () => ttlMs);
