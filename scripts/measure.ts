/**
 * Prints each built bundle's size (raw and gzipped) and its cold import time: the median of fresh
 * Node processes that each import the bundle once, as a Lambda cold start does. Run after a build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const RUNS = 15;

const importMs = (file: string): number => {
  const code = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); console.log(performance.now() - t);`;
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: {
      ...process.env,
      AWS_REGION: 'eu-central-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  if (out.status !== 0) throw new Error(out.stderr);
  return Number(out.stdout.trim());
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

for (const name of readdirSync('functions')
  .filter((f) => existsSync(join('functions', f, 'handler.ts')))
  .sort()) {
  const file = resolve(join('dist', name, 'index.mjs'));
  const size = statSync(file).size;
  const gz = gzipSync(readFileSync(file)).length;
  const times = Array.from({ length: RUNS }, () => importMs(file));
  console.log(
    `${name}: ${(size / 1024).toFixed(1)} KiB (${(gz / 1024).toFixed(1)} KiB gzipped), ` +
      `cold import ${median(times).toFixed(1)} ms median of ${RUNS} (node ${process.version})`,
  );
}
