import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { sdkConfig } from './config.ts';

let client: CloudWatchClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const cloudWatchClient = (): CloudWatchClient => (client ??= new CloudWatchClient(sdkConfig()));
