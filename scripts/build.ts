/**
 * Bundles every function in functions/<name>/handler.ts to dist/<name>/index.mjs: one minified,
 * tree-shaken ESM file exporting `handler`, for the nodejs22.x runtime on arm64.
 */
import { build } from 'esbuild';
import { chmodSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const functionNames = (): string[] =>
  readdirSync('functions')
    .filter((name) => existsSync(join('functions', name, 'handler.ts')))
    .sort();

const main = async () => {
  rmSync('dist', { recursive: true, force: true });
  for (const name of functionNames()) {
    const outfile = join('dist', name, 'index.mjs');
    await build({
      entryPoints: [join('functions', name, 'handler.ts')],
      outfile,
      bundle: true,
      minify: true,
      treeShaking: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      // ESM-first resolution lets esbuild tree-shake the SDK's ES modules: half the size and import time.
      mainFields: ['module', 'main'],
      legalComments: 'none',
      // CommonJS dependencies inside an ES module bundle call require() for node built-ins.
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
      logLevel: 'warning',
    });
    console.log(`${outfile}  ${(statSync(outfile).size / 1024).toFixed(1)} KiB`);
  }
  // The nightshift CLI (package.json bin): every function's handler, for --local.
  const cli = join('dist', 'cli', 'nightshift.mjs');
  await build({
    entryPoints: [join('scripts', 'cli', 'main.ts')],
    outfile: cli,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node20.19',
    format: 'esm',
    mainFields: ['module', 'main'],
    legalComments: 'none',
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: 'warning',
  });
  chmodSync(cli, 0o755);
  console.log(`${cli}  ${(statSync(cli).size / 1024).toFixed(1)} KiB`);
};

await main();
