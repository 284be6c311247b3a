/**
 * scripts/compact-sdk-errors.ts rebuilds the AWS SDK's modelled error classes with one factory at build
 * time. A caller (ours, or the SDK's own retry and error handling) must not be able to tell: for every
 * client the project depends on, each error module is bundled as shipped and rewritten, both are
 * imported, and every class is compared with its counterpart: its own keys and their descriptors, its
 * prototype chain, and an instance built the way the SDK builds one (every own property, in order,
 * with its descriptor and value, its prototype, `instanceof`, its message).
 */
import { build } from 'esbuild';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type * as DynamoDB from '@aws-sdk/client-dynamodb';
import { compactErrorClasses, compactSdkErrors } from '#scripts/compact-sdk-errors.ts';
import { leanFunctionSdk } from '#scripts/direct-sdk-imports.ts';
import { sdkPackageVersions } from '#scripts/shake-sdk-schemas.ts';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const ERRORS_MODULE = (client: string) => join('node_modules', client, 'dist-es', 'models', 'errors.js');
const ALL_CLIENTS = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })
  .filter((name) => name.startsWith('@aws-sdk/client-'))
  .sort();
// EC2 models no error shapes (its errors are all codes in one generic shape): it has no errors.js.
const CLIENTS = ALL_CLIENTS.filter((name) => existsSync(ERRORS_MODULE(name)));

const dir = mkdtempSync(join(tmpdir(), 'nightshift-sdk-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type ErrorClass = (new (opts: Record<string, unknown>) => Error) & Record<string, unknown>;

/** The error module bundled with everything it imports, every export kept; imported from a file. */
const bundled = async (client: string, rewrite: boolean): Promise<Record<string, ErrorClass>> => {
  const out = join(dir, `${client.replace(/\W/g, '_')}-${rewrite ? 'rewritten' : 'shipped'}.mjs`);
  await build({
    stdin: { contents: `export * from '${client}/dist-es/models/errors.js';`, resolveDir: process.cwd() },
    outfile: out,
    bundle: true,
    format: 'esm',
    platform: 'node',
    mainFields: ['module', 'main'],
    // esbuild renames a class that refers to itself (`class _X`), and minified bundles name it `t`;
    // the SDK as published names it X, and so does the rewrite (the DynamoDB test below: minified).
    keepNames: true,
    plugins: rewrite ? [compactSdkErrors()] : [],
    logLevel: 'error',
  });
  return (await import(pathToFileURL(out).href)) as Record<string, ErrorClass>;
};

/** A property's descriptor, its value compared by content (a fresh `$retryable` object per instance). */
const described = (target: object, key: PropertyKey) => {
  const d = Object.getOwnPropertyDescriptor(target, key)!;
  return {
    ...d,
    ...('value' in d && typeof d.value === 'function' && { value: `function ${d.value.name}` }),
  };
};

/** Own keys (in definition order) and descriptors; `prototype` and a function value by name only. */
const shape = (target: object) =>
  Reflect.ownKeys(target).map((key) =>
    key === 'prototype' ? [key, 'prototype'] : [String(key), described(target, key)],
  );

/** The chain of constructors above a class: their names and own shapeIds, up to Error. */
const chain = (c: object) => {
  const names: string[] = [];
  for (
    let p = Object.getPrototypeOf(c) as { name?: string; shapeId?: unknown };
    p;
    p = Object.getPrototypeOf(p)
  ) {
    names.push(`${p.name}${Object.hasOwn(p, 'shapeId') ? ` ${String(p.shapeId)}` : ''}`);
    if (p.name === 'Error') break;
  }
  return names;
};

/** Options as the SDK passes them: the message, metadata, and a value for every member any class copies. */
const options = (source: string) => ({
  message: 'the message',
  $metadata: { httpStatusCode: 400, requestId: 'req-1' },
  $response: undefined,
  ...Object.fromEntries(
    [...source.matchAll(/this\.(\w+) = opts\.\w+;/g)].map(([, m], i) => [m, `value ${i}`]),
  ),
  unmodelled: 'passed through to the base, as the SDK does',
});

/** An instance's own properties in order, each descriptor with its value (the stack by its first line). */
const instanceShape = (e: object) =>
  Reflect.ownKeys(e).map((key) => {
    const d = described(e, key);
    return key === 'stack' ? [key, { ...d, value: String(d.value).split('\n')[0] }] : [String(key), d];
  });

describe('the SDK error classes rewrite (scripts/compact-sdk-errors.ts)', () => {
  it('covers every client the project depends on but EC2, which models no errors', () => {
    expect(ALL_CLIENTS.filter((c) => !CLIENTS.includes(c))).toEqual(['@aws-sdk/client-ec2']);
    expect(CLIENTS).toEqual(expect.arrayContaining(['@aws-sdk/client-rds', '@aws-sdk/client-dynamodb']));
  });

  it.each(CLIENTS)('%s: builds every error class as shipped, and its instances', async (client) => {
    // Prepare
    const source = readFileSync(ERRORS_MODULE(client), 'utf8');
    const { compacted, kept } = compactErrorClasses(source);
    expect(kept, 'classes left as generated (not the template)').toEqual([]);
    expect(compacted).toBe([...source.matchAll(/^export class /gm)].length);
    const opts = options(source);

    // Act
    const shipped = await bundled(client, false);
    const rewritten = await bundled(client, true);

    // Assess
    expect(Object.keys(rewritten).sort()).toEqual(Object.keys(shipped).sort());
    expect(Object.keys(shipped).length).toBe(compacted);
    for (const [name, Shipped] of Object.entries(shipped)) {
      const Rewritten = rewritten[name]!;
      expect(shape(Rewritten), `${name}: the class's own keys`).toEqual(shape(Shipped));
      expect(shape(Rewritten.prototype as object), `${name}.prototype`).toEqual(
        shape(Shipped.prototype as object),
      );
      expect(chain(Rewritten), `${name}: its base classes`).toEqual(chain(Shipped));

      const a = new Shipped(opts) as Error & { $retryable?: object };
      const b = new Rewritten(opts) as Error & { $retryable?: object };
      expect(instanceShape(b), `${name}: an instance's own properties, in order`).toEqual(instanceShape(a));
      expect(Object.getPrototypeOf(b)).toBe(Rewritten.prototype);
      expect(b).toBeInstanceOf(Rewritten);
      expect(b).toBeInstanceOf(Error);
      expect([b.name, b.message, String(b)]).toEqual([a.name, a.message, String(a)]);
      // a fresh `$retryable` object per instance, as the class field makes one
      if (a.$retryable !== undefined)
        expect(b.$retryable).not.toBe((new Rewritten(opts) as Error & { $retryable?: object }).$retryable);
    }
  });

  it('leaves a class that differs from the template as it is', () => {
    const source = [
      'import { XServiceException as __BaseException } from "./XServiceException";',
      'export class Plain extends __BaseException {',
      '    static shapeId = "com.amazonaws.x#Plain";',
      '    name = "Plain";',
      '    $fault = "client";',
      '    Message;',
      '    constructor(opts) {',
      '        super({',
      '            name: "Plain",',
      '            $fault: "client",',
      '            ...opts,',
      '        });',
      '        Object.setPrototypeOf(this, Plain.prototype);',
      '        this.Message = opts.Message;',
      '    }',
      '}',
      '',
    ].join('\n');
    const odd = source
      .replaceAll('Plain', 'Odd')
      .replace('this.Message = opts.Message;', 'this.Message = opts.Message ?? "none";');

    // Act
    const result = compactErrorClasses(source + odd);

    // Assess
    expect(result.compacted).toBe(1);
    expect(result.kept).toEqual(['Odd']);
    expect(result.source).toContain(odd);
    expect(result.source).toContain(
      'export const Plain = /* @__PURE__ */ __nightshiftError("Plain", "client", "com.amazonaws.x#Plain", ["Message"]);',
    );
  });

  it('gives a client, bundled as the functions are, the rewritten class when AWS answers an error: DynamoDB ConditionalCheckFailedException with its Item', async () => {
    // Prepare: what DynamoDB answers a PutItem whose condition fails (ReturnValuesOnConditionCheckFailure ALL_OLD)
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(400, {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-requestid': 'R0QP1ERLDC9T4J2RDB2VA7V8DBVV4KQNSO5AEMVJF66Q9ASUAAJG',
        });
        res.end(
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
            Item: { scope: { S: 'service/shop/web' }, owner: { S: 'schedule' } },
            message: 'The conditional request failed',
          }),
        );
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const out = join(dir, 'dynamodb-client.mjs');
    await build({
      stdin: {
        contents:
          "export { DynamoDBClient, PutItemCommand, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';",
        resolveDir: process.cwd(),
      },
      outfile: out,
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      mainFields: ['module', 'main'],
      plugins: [leanFunctionSdk(), sdkPackageVersions()], // the functions' build
      logLevel: 'error',
    });
    const sdk = (await import(pathToFileURL(out).href)) as typeof DynamoDB;
    const client = new sdk.DynamoDBClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 1,
    });

    // Act
    const error = await client
      .send(
        new sdk.PutItemCommand({
          TableName: 'leases',
          Item: { scope: { S: 'service/shop/web' } },
          ConditionExpression: 'attribute_not_exists(#s)',
          ExpressionAttributeNames: { '#s': 'scope' },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof sdk.ConditionalCheckFailedException>,
      );
    server.close();

    // Assess
    expect(error).toBeInstanceOf(sdk.ConditionalCheckFailedException);
    expect(Object.getPrototypeOf(error)).toBe(sdk.ConditionalCheckFailedException.prototype);
    expect(sdk.ConditionalCheckFailedException.name).toBe('ConditionalCheckFailedException');
    expect(error).toMatchObject({
      name: 'ConditionalCheckFailedException',
      $fault: 'client',
      message: 'The conditional request failed',
      Item: { scope: { S: 'service/shop/web' }, owner: { S: 'schedule' } },
      $metadata: { httpStatusCode: 400, requestId: 'R0QP1ERLDC9T4J2RDB2VA7V8DBVV4KQNSO5AEMVJF66Q9ASUAAJG' },
    });
  });
});
