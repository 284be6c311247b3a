import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { clientFactory } from './config.ts';

/**
 * The hub's Organizations client: account names for the allowlist and the accounts of organizational
 * units. Organizations answers in one region per partition (us-east-1 for aws): set unless
 * AWS_ENDPOINT_URL points elsewhere.
 */
export const organizationsClient = clientFactory(
  (config) => new OrganizationsClient({ region: 'us-east-1', ...config }),
);
