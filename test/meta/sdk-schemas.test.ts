/**
 * scripts/shake-sdk-schemas.ts rewrites the AWS SDK's schema modules at build time. The rewrite must
 * build exactly the schemas the SDK ships, for every client the project depends on: the same members,
 * traits, error registrations (what tells InvalidSnapshot.NotFound from DBSnapshotNotFoundFault) and
 * operations. Each module is bundled whole twice (as shipped, and rewritten), both are imported, and
 * every export is compared value by value, following the schemas' `() => X$` thunks.
 */
import { build } from 'esbuild';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { shakeableSchemas, shakeSdkSchemas } from '#scripts/shake-sdk-schemas.ts';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const SCHEMA_MODULE = (client: string) => join('node_modules', client, 'dist-es', 'schemas', 'schemas_0.js');
const CLIENTS = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })
  .filter((name) => name.startsWith('@aws-sdk/client-'))
  .filter((name) => existsSync(SCHEMA_MODULE(name)))
  .sort();

describe('the SDK clients the project depends on', () => {
  it('each ship their schemas in one module, schemas_0.js, the one this test compares', () => {
    // A client without it, or with a schemas_1.js (a future SDK splitting big models), would go unchecked
    // here while the build still rewrites it: extend this test first.
    const all = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((name) =>
      name.startsWith('@aws-sdk/client-'),
    );
    expect(CLIENTS).toEqual([...all].sort());
    for (const client of all)
      expect(readdirSync(join('node_modules', client, 'dist-es', 'schemas')), client).toEqual([
        'schemas_0.js',
      ]);
  });
});

/** Every .js file under dist-es of the @aws-sdk and @smithy packages installed. */
const sdkSources = (): string[] =>
  ['@aws-sdk', '@smithy'].flatMap((scope) =>
    readdirSync(join('node_modules', scope))
      .map((name) => join('node_modules', scope, name, 'dist-es'))
      .filter((d) => existsSync(d))
      .flatMap((d) =>
        (readdirSync(d, { recursive: true }) as string[])
          .filter((f) => f.endsWith('.js'))
          .map((f) => join(d, f)),
      ),
  );

describe('the SDK packages a bundle carries', () => {
  it('read nothing of their package.json but its version (all scripts/shake-sdk-schemas.ts sdkPackageVersions keeps)', () => {
    // Act
    const uses = sdkSources().flatMap((file) => {
      const source = readFileSync(file, 'utf8');
      const imports = [...source.matchAll(/import\s+(\w+)\s+from\s+"[./]*package\.json"/g)];
      const other =
        /from\s+"[./]*package\.json"/.test(source) && imports.length === 0
          ? [`${file}: another import form`]
          : [];
      return [
        ...other,
        ...imports.flatMap(([, name]) =>
          [...source.matchAll(new RegExp(`\\b${name}\\b(\\.\\w+)?`, 'g'))]
            .filter(
              (m) =>
                m.index !== undefined && !source.slice(Math.max(0, m.index - 7), m.index).includes('import'),
            )
            .map((m) => `${file}: ${m[0]}`),
        ),
      ];
    });

    // Assess: the SDK imports its package.json in many places, and only ever reads `.version` of it
    expect(uses.length, uses.join('\n')).toBeGreaterThan(40);
    expect(uses.filter((u) => !u.endsWith('.version'))).toEqual([]);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'nightshift-sdk-schemas-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The schema module bundled with everything it imports, every export kept; imported from a file. */
const bundled = async (client: string, rewrite: boolean): Promise<Record<string, unknown>> => {
  const out = join(dir, `${client.replace(/\W/g, '_')}-${rewrite ? 'rewritten' : 'shipped'}.mjs`);
  await build({
    stdin: { contents: `export * from '${client}/dist-es/schemas/schemas_0.js';`, resolveDir: process.cwd() },
    outfile: out,
    bundle: true,
    format: 'esm',
    platform: 'node',
    mainFields: ['module', 'main'],
    plugins: rewrite ? [shakeSdkSchemas()] : [],
    logLevel: 'error',
  });
  return (await import(pathToFileURL(out).href)) as Record<string, unknown>;
};

const isClass = (f: (...args: unknown[]) => unknown) => /^class\b/.test(Function.prototype.toString.call(f));

/** The first path at which `a` and `b` differ, or undefined. Thunks are followed; classes compared by name. */
const difference = (
  a: unknown,
  b: unknown,
  path: string,
  seen = new Map<object, unknown>(),
): string | undefined => {
  if (typeof a === 'function' && typeof b === 'function') {
    if (isClass(a as never) || isClass(b as never) || a.length > 0 || b.length > 0)
      return a.name === b.name && isClass(a as never) === isClass(b as never)
        ? undefined
        : `${path}: ${a.name} vs ${b.name}`;
    return difference((a as () => unknown)(), (b as () => unknown)(), `${path}()`, seen);
  }
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null)
    return Object.is(a, b) ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
  if (seen.get(a) === b) return undefined;
  seen.set(a, b);
  if (Object.getPrototypeOf(a)?.constructor?.name !== Object.getPrototypeOf(b)?.constructor?.name)
    return `${path}: a ${Object.getPrototypeOf(a)?.constructor?.name} vs a ${Object.getPrototypeOf(b)?.constructor?.name}`;
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return `${path}: ${a.size} vs ${b.size} entries`;
    // Keyed by schemas (objects): compared entry by entry, in registration order.
    const other = [...b];
    for (const [i, [key, value]] of [...a].entries()) {
      const found =
        difference(key, other[i]![0], `${path} key ${i}`, seen) ??
        difference(value, other[i]![1], `${path} value ${i}`, seen);
      if (found) return found;
    }
    return undefined;
  }
  const keys = Reflect.ownKeys(a).map(String).sort();
  const other = Reflect.ownKeys(b).map(String).sort();
  if (keys.join('\n') !== other.join('\n'))
    return `${path}: keys [${keys.join(', ')}] vs [${other.join(', ')}]`;
  for (const key of keys) {
    const found = difference(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      `${path}.${key}`,
      seen,
    );
    if (found) return found;
  }
  return undefined;
};

describe('the SDK schema rewrite (scripts/shake-sdk-schemas.ts)', () => {
  it('covers the clients the functions use', () => {
    expect(CLIENTS).toEqual(expect.arrayContaining(['@aws-sdk/client-ec2', '@aws-sdk/client-rds']));
  });

  it.each(CLIENTS)(
    '%s: builds the same schemas, traits and error registrations as shipped',
    async (client) => {
      // Prepare
      const source = readFileSync(SCHEMA_MODULE(client), 'utf8');
      expect(shakeableSchemas(source, client)).not.toMatch(/\[\w+\]:/); // no computed key left

      // Act
      const shipped = await bundled(client, false);
      const rewritten = await bundled(client, true);

      // Assess
      expect(Object.keys(rewritten).sort()).toEqual(Object.keys(shipped).sort());
      expect(Object.keys(shipped).length).toBeGreaterThan(1);
      expect(difference(shipped, rewritten, client)).toBeUndefined();
    },
  );

  it('refuses a computed key that is not a string constant of the module, naming it', () => {
    const source =
      'const _xN = "xmlName";\nexport var A$ = [3, n0, _A, 0, [_m], [[0, { [_xN]: _m, [other]: 1 }]]];\n';
    expect(() => shakeableSchemas(source, 'schemas_0.js')).toThrow(
      'schemas_0.js: computed key [other] is not a string constant of the module; cannot rewrite it',
    );
    expect(shakeableSchemas(source.replace(', [other]: 1', ''), 'x')).toContain('{ "xmlName": _m }');
  });
});
