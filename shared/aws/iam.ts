import { IAMClient } from '@aws-sdk/client-iam';
import { clientFactory } from './config.ts';

/** Reads a target account's alias for the allowlist. IAM is global: the scope's region only signs. */
export const iamClient = clientFactory((config) => new IAMClient(config));
