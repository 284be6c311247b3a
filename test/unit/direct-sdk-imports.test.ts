/**
 * scripts/direct-sdk-imports.ts: a named import from a facade (a module that only re-exports) is taken
 * from the module that declares each name, and anything it cannot trace to exactly one module is left
 * as it was. Modules are files in a temp folder; the resolver maps bare names and relative paths.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectImports } from '#scripts/direct-sdk-imports.ts';

const root = mkdtempSync(join(tmpdir(), 'nightshift-direct-imports-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes `files` (path -> source) under a fresh package folder; returns the folder. */
const modules = (name: string, files: Record<string, string>, sideEffects: unknown = false) => {
  const dir = join(root, name);
  for (const [path, source] of Object.entries({
    'package.json': JSON.stringify({ name, sideEffects }),
    ...files,
  })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), source);
  }
  return dir;
};

/** Relative specifiers as the SDK writes them (no extension), and `pkg/<sub>` for a package's barrel. */
const resolver = (dir: string) => async (specifier: string, importer: string) =>
  specifier.startsWith('.')
    ? `${resolve(dirname(importer), specifier)}.js`
    : specifier.startsWith('pkg/')
      ? join(dir, 'src', specifier.slice(4), 'index.js')
      : undefined;

describe('direct SDK imports (scripts/direct-sdk-imports.ts)', () => {
  it('takes each name from the module that declares it, through nested facades and export *', async () => {
    // Prepare
    const dir = modules('nested', {
      'src/protocols/index.js': [
        'export { Query } from "./Query";',
        'export { RestJson as Rest } from "./RestJson";',
        'export * from "./json/index";',
      ].join('\n'),
      'src/protocols/Query.js': 'export class Query {}',
      'src/protocols/RestJson.js': 'export class RestJson {}',
      'src/protocols/json/index.js': 'export * from "./codec";',
      'src/protocols/json/codec.js': 'export const codec = 1; export function parse() {}',
      'src/client.js':
        'import { Query, Rest as R, codec, } from "pkg/protocols";\nexport const q = [Query, R, codec];',
    });
    const direct = new DirectImports(resolver(dir));
    const client = join(dir, 'src', 'client.js');

    // Act
    const out = await direct.rewrite(
      'import { Query, Rest as R, codec, } from "pkg/protocols";\nexport const q = [Query, R, codec];',
      client,
    );

    // Assess
    const p = (f: string) => JSON.stringify(join(dir, 'src', 'protocols', f));
    expect(out).toBe(
      `import { Query } from ${p('Query.js')}; import { RestJson as R } from ${p('RestJson.js')}; ` +
        `import { codec } from ${p('json/codec.js')};\nexport const q = [Query, R, codec];`,
    );
    expect(await direct.rewrite('import { parse } from "pkg/protocols"', client)).toBe(
      `import { parse } from ${p('json/codec.js')}`,
    );
  });

  it('leaves an import alone when a name is not traced to exactly one module', async () => {
    // Prepare: two export * both providing `shared`, a namespace re-export, a leaf with an export * of its own
    const dir = modules('untraced', {
      'src/a/index.js': 'export * from "./one";\nexport * from "./two";',
      'src/a/one.js': 'export const shared = 1; export const one = 1;',
      'src/a/two.js': 'export const shared = 2;',
      'src/b/index.js': 'export * as ns from "./x";\nexport { y } from "./x";',
      'src/b/x.js': 'export const y = 1;',
      'src/c/index.js': 'export * from "./mixed";',
      'src/c/mixed.js': 'export const own = 1;\nexport * from "./more";',
      'src/c/more.js': 'export const deep = 1;',
      // `shared` is traced through ./one, but ./mixed may provide it too through its own export *
      'src/d/index.js': 'export * from "../a/one";\nexport * from "../c/mixed";',
      'src/e/index.js': 'export * from "./withDefault";',
      'src/e/withDefault.js': 'export default 1; export const named = 1;',
    });
    const direct = new DirectImports(resolver(dir));
    const file = join(dir, 'src', 'client.js');
    const sources = [
      'import { shared } from "pkg/a";',
      'import { y } from "pkg/b";',
      'import { deep } from "pkg/c";',
      'import * as all from "pkg/a";',
      'import { nope } from "pkg/a";',
      'import { shared } from "pkg/d";', // esbuild: "Ambiguous import" if ./mixed's export * has one too
      'import { default as d } from "pkg/e";', // export * never re-exports a default
      'import { local } from "./local";', // a module that is not there: not traced
    ];

    // Act / Assess: unchanged, each
    for (const source of sources) expect(await direct.rewrite(source, file), source).toBe(source);
    // the unambiguous name of the same facade is rewritten
    expect(await direct.rewrite('import { one } from "pkg/a";', file)).toBe(
      `import { one } from ${JSON.stringify(join(dir, 'src', 'a', 'one.js'))};`,
    );
  });

  it('still imports a re-exported module its package says has side effects', async () => {
    // Prepare: like @aws-sdk/core, whose util-endpoints/aws.js registers the partition functions
    const dir = modules(
      'effects',
      {
        'src/client/index.js': 'export { resolve } from "./resolve";\nexport { aws } from "./aws";',
        'src/client/resolve.js': 'export const resolve = () => 1;',
        'src/client/aws.js': 'globalThis.registered = true; export const aws = 1;',
      },
      ['./src/client/aws.js'],
    );
    const direct = new DirectImports(resolver(dir));

    // Act
    const out = await direct.rewrite('import { resolve } from "pkg/client";', join(dir, 'src', 'x.js'));

    // Assess
    const p = (f: string) => JSON.stringify(join(dir, 'src', 'client', f));
    expect(out).toBe(`import ${p('aws.js')}; import { resolve } from ${p('resolve.js')};`);
  });

  it('takes a package whose sideEffects list holds a glob as having side effects in every file', async () => {
    // Prepare
    const dir = modules(
      'globbed',
      {
        'src/client/index.js': 'export { resolve } from "./resolve";\nexport { aws } from "./aws";',
        'src/client/resolve.js': 'export const resolve = () => 1;',
        'src/client/aws.js': 'globalThis.registered = true; export const aws = 1;',
      },
      ['./src/**/aws.js'],
    );
    const direct = new DirectImports(resolver(dir));

    // Act
    const out = await direct.rewrite('import { resolve } from "pkg/client";', join(dir, 'src', 'x.js'));

    // Assess: aws.js still imported (resolve.js is imported by name anyway)
    const p = (f: string) => JSON.stringify(join(dir, 'src', 'client', f));
    expect(out).toBe(`import ${p('aws.js')}; import { resolve } from ${p('resolve.js')};`);
  });
});
