import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const cloudWatchClient = clientFactory((config) => new CloudWatchClient(config));
