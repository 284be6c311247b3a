import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { sdkConfig } from './config.ts';

let client: AutoScalingClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const autoScalingClient = (): AutoScalingClient => (client ??= new AutoScalingClient(sdkConfig()));
