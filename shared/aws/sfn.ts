import { SFNClient } from '@aws-sdk/client-sfn';
import { clientFactory } from './config.ts';

/** Fleet runs' state machines in the hub. */
export const sfnClient = clientFactory((config) => new SFNClient(config));
