import { EC2Client } from '@aws-sdk/client-ec2';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const ec2Client = clientFactory((config) => new EC2Client(config));
