import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const dynamoDbClient = clientFactory((config) => new DynamoDBClient(config));
