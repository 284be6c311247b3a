/**
 * Settings every SDK client shares. Adaptive retry backs off and rate-limits the client when AWS
 * throttles; ten attempts carry a run through sustained throttling (20% of calls) and 503s (5%),
 * where the SDK default of three would fail about one call in sixty. The endpoint is not set here:
 * the SDK honours AWS_ENDPOINT_URL, which the tests and the demo point at moto.
 */
export const sdkConfig = () => ({
  maxAttempts: 10,
  retryMode: 'adaptive' as const,
  customUserAgent: 'nightshift',
});
