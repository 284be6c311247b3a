import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const applicationAutoScalingClient = clientFactory(
  (config) => new ApplicationAutoScalingClient(config),
);
