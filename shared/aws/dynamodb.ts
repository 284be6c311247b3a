import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { sdkConfig } from './config.ts';

let client: DynamoDBClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const dynamoDbClient = (): DynamoDBClient => (client ??= new DynamoDBClient(sdkConfig()));
