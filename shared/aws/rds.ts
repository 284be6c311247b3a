import { RDSClient } from '@aws-sdk/client-rds';
import { sdkConfig } from './config.ts';

const clients = new Map<string, RDSClient>();

/**
 * One client per region per cold start. Cross-region copies are sent from a client in the destination
 * region; without a region this is the function's own (AWS_REGION).
 */
export const rdsClient = (region?: string): RDSClient => {
  const key = region ?? '';
  let client = clients.get(key);
  if (!client) {
    client = new RDSClient({ ...sdkConfig(), ...(region && { region }) });
    clients.set(key, client);
  }
  return client;
};
