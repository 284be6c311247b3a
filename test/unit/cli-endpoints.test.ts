/**
 * Where a `--local` run's calls go: all to a local emulator, all to AWS, or mixed (refused). And the
 * list of services each function calls, which that decision rests on, checked against the clients
 * each function folder imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { endpointPlace, endpointVariable } from '#scripts/cli/endpoints.ts';
import { FUNCTION_SERVICES, type FunctionName } from '#scripts/cli/functions.ts';

const MOTO = 'http://127.0.0.1:5000';

describe('where a --local run’s calls go', () => {
  it('names each service’s variable as the SDK does', () => {
    expect(endpointVariable('Application Auto Scaling')).toBe('AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING');
    expect(endpointVariable('DynamoDB')).toBe('AWS_ENDPOINT_URL_DYNAMODB');
  });

  it('is local when AWS_ENDPOINT_URL is local and no service-specific endpoint points elsewhere', () => {
    expect(endpointPlace('ecs-scheduler', { AWS_ENDPOINT_URL: MOTO })).toEqual({ kind: 'local' });
    expect(
      endpointPlace('ecs-scheduler', {
        AWS_ENDPOINT_URL: MOTO,
        AWS_ENDPOINT_URL_ECS: 'http://localhost:4566',
      }),
    ).toEqual({ kind: 'local' });
  });

  it('is local when every service the function and the run use has a local endpoint of its own', () => {
    const env = Object.fromEntries(
      [...FUNCTION_SERVICES['rds-snapshot-copy'], 'DynamoDB', 'SNS', 'Lambda'].map((id) => [
        endpointVariable(id),
        MOTO,
      ]),
    );

    expect(endpointPlace('rds-snapshot-copy', env)).toEqual({ kind: 'local' });
  });

  it('is AWS when no endpoint is set, or when the SDK is told to ignore them', () => {
    expect(endpointPlace('ssm-restart', {})).toEqual({ kind: 'aws' });
    expect(
      endpointPlace('ssm-restart', { AWS_ENDPOINT_URL: MOTO, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }),
    ).toEqual({ kind: 'aws' });
  });

  it('is mixed when only the lease table is local, or a service-specific endpoint points away from the emulator', () => {
    const tableOnly = endpointPlace('ecs-scheduler', { AWS_ENDPOINT_URL_DYNAMODB: MOTO });
    const ecsAway = endpointPlace('ecs-scheduler', {
      AWS_ENDPOINT_URL: MOTO,
      AWS_ENDPOINT_URL_ECS: 'https://ecs.eu-central-1.amazonaws.com',
    });
    const unrelated = endpointPlace('ecs-scheduler', {
      AWS_ENDPOINT_URL: MOTO,
      AWS_ENDPOINT_URL_S3: 'https://s3.example.com',
    });

    expect(tableOnly).toMatchObject({
      kind: 'mixed',
      local: [`DynamoDB (AWS_ENDPOINT_URL_DYNAMODB=${MOTO})`],
    });
    expect(tableOnly.kind === 'mixed' && tableOnly.remote).toContain('ECS (no endpoint set: AWS)');
    expect(ecsAway).toMatchObject({
      kind: 'mixed',
      remote: ['ECS (AWS_ENDPOINT_URL_ECS=https://ecs.eu-central-1.amazonaws.com)'],
    });
    expect(unrelated).toMatchObject({
      kind: 'mixed',
      remote: ['AWS_ENDPOINT_URL_S3 (AWS_ENDPOINT_URL_S3=https://s3.example.com)'],
    });
  });
});

/** The SDK serviceId of a client package, from the client itself. */
const serviceIdOf = async (pkg: string): Promise<string> => {
  const mod = (await import(pkg)) as Record<string, unknown>;
  const Client = Object.entries(mod).find(
    ([name, value]) => typeof value === 'function' && /^[A-Z][A-Za-z0-9]*Client$/.test(name),
  )?.[1] as new (config: object) => { config: { serviceId: string }; destroy: () => void };
  const client = new Client({ region: 'eu-central-1' });
  client.destroy();
  return client.config.serviceId;
};

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

describe('the services each function calls', () => {
  it('lists every AWS client its folder imports, directly or through shared/aws', async () => {
    for (const fn of Object.keys(FUNCTION_SERVICES) as FunctionName[]) {
      const text = sources(join('functions', fn))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
      const viaShared = [...text.matchAll(/#shared\/aws\/([a-z0-9-]+)\.ts/g)].map((m) =>
        readFileSync(join('shared', 'aws', `${m[1]}.ts`), 'utf8'),
      );
      const packages = new Set(
        [text, ...viaShared].flatMap((t) =>
          [...t.matchAll(/'(@aws-sdk\/client-[a-z0-9-]+)'/g)].map((m) => m[1] ?? ''),
        ),
      );
      const used = new Set(await Promise.all([...packages].map(serviceIdOf)));

      expect(
        [...used].filter((id) => !FUNCTION_SERVICES[fn].includes(id)),
        fn,
      ).toEqual([]);
    }
  });
});
