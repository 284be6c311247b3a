import { SSMClient } from '@aws-sdk/client-ssm';
import { sdkConfig } from './config.ts';

let client: SSMClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const ssmClient = (): SSMClient => (client ??= new SSMClient(sdkConfig()));
