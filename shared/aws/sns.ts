import { SNSClient } from '@aws-sdk/client-sns';
// shared/summary.ts imports this module on demand: the command travels with the client.
export { PublishCommand } from '@aws-sdk/client-sns';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const snsClient = clientFactory((config) => new SNSClient(config));
