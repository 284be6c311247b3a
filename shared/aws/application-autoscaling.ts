import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { sdkConfig } from './config.ts';

let client: ApplicationAutoScalingClient | undefined;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const applicationAutoScalingClient = (): ApplicationAutoScalingClient =>
  (client ??= new ApplicationAutoScalingClient(sdkConfig()));
