/**
 * Where a `--local` run's calls go: to a local emulator (moto), to AWS, or — the case to refuse — some
 * to each. The SDK picks each client's endpoint from `AWS_ENDPOINT_URL_<SERVICE>` (the serviceId in
 * upper case, spaces as `_`: `AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING`), else `AWS_ENDPOINT_URL`,
 * else the shared config file, else AWS; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` makes it ignore all
 * of them (AWS SDKs and Tools reference guide, "Service-specific endpoints"; @smithy/core
 * getEndpointUrlConfig). A lease table in a local emulator says nothing about where the ECS or RDS
 * calls go: a run counts as local only when every endpoint its function uses is local.
 * `resolvedEndpointPlace` is what `--local` decides by: it asks the SDK, so the shared config file
 * counts too; `endpointPlace` reads the environment alone.
 */
import { errorMessage } from '#shared/errors.ts';
import { isLocalEndpoint } from '#shared/lease-table.ts';
import { FUNCTION_SERVICES, RUN_SERVICES, type FunctionName } from './functions.ts';

const GENERAL = 'AWS_ENDPOINT_URL';

/** `Application Auto Scaling` → `AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING`, as the SDK names it. */
export const endpointVariable = (serviceId: string): string =>
  [GENERAL, ...serviceId.split(' ').map((w) => w.toUpperCase())].join('_');

export type Place =
  /** Every endpoint the run uses is on this machine. */
  | { kind: 'local' }
  /** None is: the calls go to AWS (or to endpoints that are not on this machine). */
  | { kind: 'aws' }
  /** Some are local and some are not: which services go where, and by which variable. */
  | { kind: 'mixed'; local: string[]; remote: string[] };

/**
 * Where the calls of a `--local` run of `fn` go, from the environment the SDK reads. Every service the
 * function and the run use counts, and so does any other service-specific variable that is set: a
 * variable pointing elsewhere is a sign the emulator is not the whole picture.
 */
export const endpointPlace = (
  fn: FunctionName,
  env: NodeJS.ProcessEnv,
  extra: readonly string[] = [],
): Place => {
  // The SDK then ignores every configured endpoint: the calls go to AWS whatever the variables say.
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.trim().toLowerCase() === 'true') return { kind: 'aws' };
  const services = new Map(
    [...FUNCTION_SERVICES[fn], ...RUN_SERVICES, ...extra].map((id) => [endpointVariable(id), id]),
  );
  for (const name of Object.keys(env)) {
    if (name.startsWith(`${GENERAL}_`) && env[name] && !services.has(name)) services.set(name, name);
  }
  const local: string[] = [];
  const remote: string[] = [];
  for (const [name, service] of [...services].sort(([a], [b]) => a.localeCompare(b))) {
    const own = env[name];
    const url = own || env[GENERAL];
    const where = own ? `${name}=${own}` : url ? `${GENERAL}=${url}` : 'no endpoint set: AWS';
    (isLocalEndpoint(url) ? local : remote).push(`${service} (${where})`);
  }
  if (remote.length === 0) return { kind: 'local' };
  if (local.length === 0) return { kind: 'aws' };
  return { kind: 'mixed', local, remote };
};

interface SdkClient {
  config: { serviceConfiguredEndpoint?: () => Promise<string | undefined> };
  destroy: () => void;
}

/** A client of each service a run may use, only to ask the SDK where it would send its calls. */
const CLIENTS: Record<string, () => Promise<new (config: object) => SdkClient>> = {
  ECS: async () => (await import('@aws-sdk/client-ecs')).ECSClient,
  'Application Auto Scaling': async () =>
    (await import('@aws-sdk/client-application-auto-scaling')).ApplicationAutoScalingClient,
  'Auto Scaling': async () => (await import('@aws-sdk/client-auto-scaling')).AutoScalingClient,
  RDS: async () => (await import('@aws-sdk/client-rds')).RDSClient,
  EC2: async () => (await import('@aws-sdk/client-ec2')).EC2Client,
  CloudWatch: async () => (await import('@aws-sdk/client-cloudwatch')).CloudWatchClient,
  EventBridge: async () => (await import('@aws-sdk/client-eventbridge')).EventBridgeClient,
  Scheduler: async () => (await import('@aws-sdk/client-scheduler')).SchedulerClient,
  SSM: async () => (await import('@aws-sdk/client-ssm')).SSMClient,
  DynamoDB: async () => (await import('@aws-sdk/client-dynamodb')).DynamoDBClient,
  SNS: async () => (await import('@aws-sdk/client-sns')).SNSClient,
  Lambda: async () => (await import('@aws-sdk/client-lambda')).LambdaClient,
  STS: async () => (await import('@aws-sdk/client-sts')).STSClient,
  IAM: async () => (await import('@aws-sdk/client-iam')).IAMClient,
  Organizations: async () => (await import('@aws-sdk/client-organizations')).OrganizationsClient,
  SFN: async () => (await import('@aws-sdk/client-sfn')).SFNClient,
};

/**
 * Where the calls of a `--local` run of `fn` go, as the SDK itself resolves each client's configured
 * endpoint (`serviceConfiguredEndpoint`): the environment variables, and also what endpointPlace cannot
 * see, the shared config file (`endpoint_url` in the profile or in its `services` section) and
 * `ignore_configured_endpoint_urls` there. A service whose endpoint cannot be resolved (a `services`
 * section the profile names but the file lacks) counts as not local. A service-specific variable of a
 * service the run does not use, pointing away from the emulator, still makes it mixed (endpointPlace).
 */
export const resolvedEndpointPlace = async (
  fn: FunctionName,
  env: NodeJS.ProcessEnv = process.env,
  extra: readonly string[] = [],
): Promise<Place> => {
  const local: string[] = [];
  const remote: string[] = [];
  const ids = [...new Set([...FUNCTION_SERVICES[fn], ...RUN_SERVICES, ...extra])].sort((a, b) =>
    a.localeCompare(b),
  );
  for (const id of ids) {
    const Client = CLIENTS[id];
    if (!Client) {
      remote.push(`${id} (no client known to the CLI)`);
      continue;
    }
    const client = new (await Client())({ region: env.AWS_REGION || 'us-east-1' });
    try {
      const url = await client.config.serviceConfiguredEndpoint?.();
      const own = endpointVariable(id);
      const where = !url
        ? 'no endpoint set: AWS'
        : env[own] === url
          ? `${own}=${url}`
          : env[GENERAL] === url
            ? `${GENERAL}=${url}`
            : `endpoint_url=${url} in the shared config file`;
      (isLocalEndpoint(url) ? local : remote).push(`${id} (${where})`);
    } catch (error) {
      remote.push(`${id} (its endpoint could not be resolved: ${errorMessage(error)})`);
    } finally {
      client.destroy();
    }
  }
  const fromEnv = endpointPlace(fn, env, extra);
  if (fromEnv.kind === 'mixed') {
    const named = new Set(ids);
    for (const r of fromEnv.remote) if (!named.has(r.split(' (')[0] ?? '')) remote.push(r);
  }
  if (remote.length === 0) return { kind: 'local' };
  if (local.length === 0) return { kind: 'aws' };
  return { kind: 'mixed', local, remote };
};
