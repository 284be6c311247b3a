import { RDSClient } from '@aws-sdk/client-rds';
import { sdkConfig, type ClientScope } from './config.ts';

const own = new Map<string, RDSClient>();
const scoped = new WeakMap<ClientScope, Map<string, RDSClient>>();

/**
 * One client per region per cold start. Cross-region copies are sent from a client in the destination
 * region; without a region this is the function's own (AWS_REGION), or the fleet target's region with
 * its credentials when there is a scope (shared/aws/config.ts).
 */
export const rdsClient = (region?: string, scope?: ClientScope): RDSClient => {
  const clients = scope ? (scoped.get(scope) ?? new Map<string, RDSClient>()) : own;
  if (scope) scoped.set(scope, clients);
  const key = region ?? '';
  let client = clients.get(key);
  if (!client) {
    client = new RDSClient({ ...sdkConfig(scope), ...(region && { region }) });
    clients.set(key, client);
  }
  return client;
};
