import { SSMClient } from '@aws-sdk/client-ssm';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const ssmClient = clientFactory((config) => new SSMClient(config));
