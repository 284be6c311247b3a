import { STSClient } from '@aws-sdk/client-sts';
import { clientFactory } from './config.ts';

/** Assumes spoke roles with the function's own role (shared/fleet/assume.ts). */
export const stsClient = clientFactory((config) => new STSClient(config));
