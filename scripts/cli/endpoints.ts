/**
 * Where a `--local` run's calls go: to a local emulator (moto), to AWS, or — the case to refuse — some
 * to each. The SDK picks each client's endpoint from `AWS_ENDPOINT_URL_<SERVICE>` (the serviceId in
 * upper case, spaces as `_`: `AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING`), else `AWS_ENDPOINT_URL`,
 * else the shared config file, else AWS; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` makes it ignore all
 * of them (AWS SDKs and Tools reference guide, "Service-specific endpoints"; @smithy/core
 * getEndpointUrlConfig). A lease table in a local emulator says nothing about where the ECS or RDS
 * calls go: a run counts as local only when every endpoint its function uses is local.
 */
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
export const endpointPlace = (fn: FunctionName, env: NodeJS.ProcessEnv): Place => {
  // The SDK then ignores every configured endpoint: the calls go to AWS whatever the variables say.
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.trim().toLowerCase() === 'true') return { kind: 'aws' };
  const services = new Map(
    [...FUNCTION_SERVICES[fn], ...RUN_SERVICES].map((id) => [endpointVariable(id), id]),
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
