/**
 * Where a `--local` run's calls go: all to a local emulator, all to AWS, or mixed (refused). And the
 * list of services each function calls, which that decision rests on, checked against the clients
 * each function folder imports.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { endpointPlace, endpointVariable, resolvedEndpointPlace } from '#scripts/cli/endpoints.ts';
import { FLEET_SERVICES, FUNCTION_SERVICES, type FunctionName } from '#scripts/cli/functions.ts';

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

describe('where a --local fleet run’s calls go', () => {
  it('counts STS, IAM and Organizations too: a fleet run whose spoke roles would be assumed in AWS is not local', () => {
    // Prepare: every service a single-account run uses is local, each by its own variable
    const env = Object.fromEntries(
      [...FUNCTION_SERVICES['ecs-scheduler'], 'DynamoDB', 'SNS', 'Lambda'].map((id) => [
        endpointVariable(id),
        MOTO,
      ]),
    );

    // Act
    const single = endpointPlace('ecs-scheduler', env);
    const fleet = endpointPlace('ecs-scheduler', env, FLEET_SERVICES);
    const fleetLocal = endpointPlace('ecs-scheduler', { ...env, AWS_ENDPOINT_URL: MOTO }, FLEET_SERVICES);

    // Assess
    expect(single).toEqual({ kind: 'local' });
    expect(fleet).toMatchObject({
      kind: 'mixed',
      remote: [
        'IAM (no endpoint set: AWS)',
        'Organizations (no endpoint set: AWS)',
        'STS (no endpoint set: AWS)',
      ],
    });
    expect(fleetLocal).toEqual({ kind: 'local' });
  });

  it('asks the SDK for the endpoints of STS, IAM, Organizations and Step Functions as for the others', async () => {
    const saved = { ...process.env };
    try {
      for (const name of Object.keys(process.env))
        if (name.startsWith('AWS_ENDPOINT_URL')) delete process.env[name];
      process.env.AWS_ENDPOINT_URL = MOTO;
      process.env.AWS_ENDPOINT_URL_ORGANIZATIONS = 'https://organizations.us-east-1.amazonaws.com';

      const where = await resolvedEndpointPlace('ecs-scheduler', process.env, [...FLEET_SERVICES, 'SFN']);

      expect(where).toMatchObject({
        kind: 'mixed',
        remote: [
          'Organizations (AWS_ENDPOINT_URL_ORGANIZATIONS=https://organizations.us-east-1.amazonaws.com)',
        ],
      });
      expect(where.kind === 'mixed' && where.local).toEqual(
        expect.arrayContaining([
          `STS (AWS_ENDPOINT_URL=${MOTO})`,
          `IAM (AWS_ENDPOINT_URL=${MOTO})`,
          `SFN (AWS_ENDPOINT_URL=${MOTO})`,
        ]),
      );
    } finally {
      process.env = saved;
    }
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

describe('where a --local run’s calls go, as the SDK resolves them (environment and shared config file)', () => {
  const saved = { ...process.env };
  let dir: string;
  /** A shared config file of its own per test: the SDK caches what it read from each path. */
  const withConfig = (name: string, text: string): NodeJS.ProcessEnv => {
    const file = join(dir, `${name}.ini`);
    writeFileSync(file, text);
    return { AWS_CONFIG_FILE: file, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_PROFILE: 'ops' };
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nightshift-endpoints-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    process.env = { ...saved };
  });
  /** The SDK reads process.env: the test's variables replace every endpoint setting there. */
  const place = async (fn: FunctionName, env: NodeJS.ProcessEnv) => {
    for (const name of Object.keys(process.env))
      if (/^AWS_(ENDPOINT_URL|IGNORE_CONFIGURED|CONFIG_FILE|PROFILE|SHARED_CREDENTIALS)/.test(name))
        delete process.env[name];
    Object.assign(process.env, env);
    return resolvedEndpointPlace(fn, process.env);
  };

  it('is mixed when the profile sends only DynamoDB to the emulator and the rest to AWS', async () => {
    // Prepare: no endpoint variable at all; the profile's services section points DynamoDB at moto
    const env = withConfig(
      'table-only',
      `[profile ops]\nregion = eu-central-1\nservices = local-table\n\n[services local-table]\ndynamodb =\n  endpoint_url = ${MOTO}\n`,
    );

    // Act
    const where = await place('ecs-scheduler', env);

    // Assess
    expect(where).toMatchObject({
      kind: 'mixed',
      local: [`DynamoDB (endpoint_url=${MOTO} in the shared config file)`],
    });
    expect(where.kind === 'mixed' && where.remote).toContain('ECS (no endpoint set: AWS)');
  });

  it('is local when the profile’s endpoint_url is the emulator for every service', async () => {
    const env = withConfig('all-local', `[profile ops]\nregion = eu-central-1\nendpoint_url = ${MOTO}\n`);

    expect(await place('ssm-restart', env)).toEqual({ kind: 'local' });
  });

  it('is AWS, not local, when the profile says to ignore configured endpoints and AWS_ENDPOINT_URL is the emulator', async () => {
    // Prepare: the SDK then sends every call to AWS: the lease table must not be "created in the emulator"
    const env = {
      ...withConfig(
        'ignore',
        '[profile ops]\nregion = eu-central-1\nignore_configured_endpoint_urls = true\n',
      ),
      AWS_ENDPOINT_URL: MOTO,
    };

    expect(await place('ecs-scheduler', env)).toEqual({ kind: 'aws' });
  });

  it('agrees with the environment alone where only variables are set', async () => {
    const env = {
      ...withConfig('plain', '[profile ops]\nregion = eu-central-1\n'),
      AWS_ENDPOINT_URL: MOTO,
      AWS_ENDPOINT_URL_ECS: 'https://ecs.eu-central-1.amazonaws.com',
    };

    expect(await place('ecs-scheduler', env)).toMatchObject({
      kind: 'mixed',
      remote: ['ECS (AWS_ENDPOINT_URL_ECS=https://ecs.eu-central-1.amazonaws.com)'],
    });
    expect(
      await place('ecs-scheduler', {
        ...withConfig('s3', '[profile ops]\n'),
        AWS_ENDPOINT_URL: MOTO,
        AWS_ENDPOINT_URL_S3: 'https://s3.example.com',
      }),
    ).toMatchObject({
      kind: 'mixed',
      remote: ['AWS_ENDPOINT_URL_S3 (AWS_ENDPOINT_URL_S3=https://s3.example.com)'],
    });
  });
});
