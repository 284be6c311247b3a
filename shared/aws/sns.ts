import { SNSClient } from '@aws-sdk/client-sns';
import { sdkConfig } from './config.ts';

let client: SNSClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const snsClient = (): SNSClient => (client ??= new SNSClient(sdkConfig()));
