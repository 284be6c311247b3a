import { ECSClient } from '@aws-sdk/client-ecs';
import { clientFactory } from './config.ts';

/** This account and region with the function's own role, or a fleet target's (shared/aws/config.ts). */
export const ecsClient = clientFactory((config) => new ECSClient(config));
