import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const autoScalingClient = clientFactory((config) => new AutoScalingClient(config));
