/**
 * scripts/direct-sdk-imports.ts points the SDK's imports past its barrels. Each name it points elsewhere
 * must be the very binding the barrel exports. Every SDK client the project depends on is bundled through
 * the rewrite (as the functions' build does), each rewrite is recorded, and a second bundle, built without
 * it, imports every barrel and every declaring module and compares the two bindings by identity.
 */
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectImports, esbuildResolver, SDK_ES_MODULE } from '#scripts/direct-sdk-imports.ts';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
const CLIENTS = Object.keys(pkg.dependencies).filter(
  (name) => name.startsWith('@aws-sdk/client-') || name === '@aws-sdk/credential-providers',
);

const dir = mkdtempSync(join(tmpdir(), 'nightshift-direct-imports-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the SDK imports pointed past the barrels (scripts/direct-sdk-imports.ts)', () => {
  it('import, for every name it rewrites, the binding the barrel exports', async () => {
    // Prepare: every client, bundled through the rewrite; each rewrite recorded
    let direct: DirectImports | undefined;
    await build({
      stdin: {
        contents: CLIENTS.map((c, i) => `export * as c${i} from '${c}';`).join('\n'),
        resolveDir: process.cwd(),
      },
      outfile: join(dir, 'rewritten.mjs'),
      bundle: true,
      format: 'esm',
      platform: 'node',
      mainFields: ['module', 'main'],
      plugins: [
        {
          name: 'record',
          setup(b) {
            const d = (direct = new DirectImports(esbuildResolver(b)));
            b.onLoad({ filter: SDK_ES_MODULE }, async (args) => ({
              contents: await d.rewrite(await readFile(args.path, 'utf8'), args.path),
              loader: 'js',
              resolveDir: dirname(args.path),
            }));
          },
        },
      ],
      logLevel: 'error',
    });
    const pairs = [
      ...new Map(direct!.rewritten.map((r) => [`${r.from} ${r.imported}`, r] as const)).values(),
    ];
    expect(pairs.length, 'names rewritten').toBeGreaterThan(100);
    expect(pairs.some((p) => p.imported === 'AwsQueryProtocol')).toBe(true);

    // Act: a bundle without the rewrite that compares each barrel's binding with its declaring module's
    const files = [...new Set(pairs.flatMap((p) => [p.from, p.file]))];
    const check = join(dir, 'check.mjs');
    await build({
      stdin: {
        contents: [
          ...files.map((f, i) => `import * as m${i} from ${JSON.stringify(f)};`),
          `const m = [${files.map((_, i) => `m${i}`).join(', ')}];`,
          `const pairs = ${JSON.stringify(pairs.map((p) => [files.indexOf(p.from), p.imported, files.indexOf(p.file), p.name]))};`,
          'export const differing = pairs.filter(([a, x, b, y]) => !(x in m[a]) || m[a][x] !== m[b][y] || m[b][y] === undefined)',
          '  .map(([a, x, b, y]) => `${x} of ${a} vs ${y} of ${b}`);',
        ].join('\n'),
        resolveDir: process.cwd(),
      },
      outfile: check,
      bundle: true,
      format: 'esm',
      platform: 'node',
      mainFields: ['module', 'main'],
      logLevel: 'error',
    });
    const { differing } = (await import(pathToFileURL(check).href)) as { differing: string[] };

    // Assess
    expect(differing).toEqual([]);
  });
});
