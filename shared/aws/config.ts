import type { AwsCredentialIdentityProvider } from '@smithy/types';

/**
 * Where a client acts: a fleet target's region, with the spoke role's credentials (undefined: the
 * function's own role, for a target in the hub's own account). Without a scope a client acts where the
 * function runs, with its own role, as before fleets.
 */
export interface ClientScope {
  region: string;
  credentials?: AwsCredentialIdentityProvider;
}

/**
 * Settings every SDK client shares. Adaptive retry backs off and rate-limits the client when AWS
 * throttles; ten attempts carry a run through sustained throttling (20% of calls) and 503s (5%),
 * where the SDK default of three would fail about one call in sixty. The endpoint is not set here:
 * the SDK honours AWS_ENDPOINT_URL, which the tests and the demo point at moto.
 */
export const sdkConfig = (scope?: ClientScope) => ({
  maxAttempts: 10,
  retryMode: 'adaptive' as const,
  customUserAgent: 'nightshift',
  ...(scope && { region: scope.region }),
  ...(scope?.credentials && { credentials: scope.credentials }),
});

export type SdkConfig = ReturnType<typeof sdkConfig>;

/**
 * A client factory: without a scope, one client per cold start, built on first use so tests can set
 * AWS_ENDPOINT_URL beforehand; with a scope, one client per scope object (a fleet target's run), so a
 * target's credentials never serve another target.
 */
export const clientFactory = <C>(make: (config: SdkConfig) => C): ((scope?: ClientScope) => C) => {
  let own: C | undefined;
  const scoped = new WeakMap<ClientScope, C>();
  return (scope) => {
    if (!scope) return (own ??= make(sdkConfig()));
    let client = scoped.get(scope);
    if (!client) {
      client = make(sdkConfig(scope));
      scoped.set(scope, client);
    }
    return client;
  };
};
