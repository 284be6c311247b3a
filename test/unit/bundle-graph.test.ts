import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleGraph } from '#scripts/bundle-graph.ts';

const dist = mkdtempSync(join(tmpdir(), 'nightshift-bundle-graph-'));
afterAll(() => rmSync(dist, { recursive: true, force: true }));

const write = (path: string, text: string) => {
  mkdirSync(join(dist, 'fn', 'chunks'), { recursive: true });
  writeFileSync(join(dist, 'fn', path), text);
};

describe('bundleGraph: what a cold start of dist/<fn>/ loads', () => {
  it('counts the entry and the chunks it imports statically, transitively; import() targets apart', () => {
    // Prepare: esbuild's minified forms
    write(
      'index.mjs',
      "import { createRequire as __cr } from 'node:module';" +
        'import{a as b}from"./chunks/chunk-AAAAAAAA.mjs";import"./chunks/chunk-BBBBBBBB.mjs";' +
        'export{c}from"./chunks/chunk-CCCCCCCC.mjs";const s=()=>import("./chunks/sts-DDDDDDDD.mjs");' +
        'var text="import(\'./chunks/never.mjs\')";',
    );
    write('chunks/chunk-AAAAAAAA.mjs', 'import*as m from"./chunk-EEEEEEEE.mjs";export const a=1;');
    write('chunks/chunk-BBBBBBBB.mjs', 'x'.repeat(100));
    write('chunks/chunk-CCCCCCCC.mjs', 'export const c=1;');
    write('chunks/chunk-EEEEEEEE.mjs', 'export const e=1;');
    // On demand: the sts chunk and what only it imports (FFFFFFFF); AAAAAAAA is already loaded
    write('chunks/sts-DDDDDDDD.mjs', 'import"./chunk-AAAAAAAA.mjs";import"./chunk-FFFFFFFF.mjs";');
    write('chunks/chunk-FFFFFFFF.mjs', 'y'.repeat(50));
    write('chunks/bowser-GGGGGGGG.mjs', 'nothing imports this');

    // Act
    const graph = bundleGraph(dist, 'fn');

    // Assess
    expect(graph.coldStart.files).toEqual([
      'fn/chunks/chunk-AAAAAAAA.mjs',
      'fn/chunks/chunk-BBBBBBBB.mjs',
      'fn/chunks/chunk-CCCCCCCC.mjs',
      'fn/chunks/chunk-EEEEEEEE.mjs',
      'fn/index.mjs',
    ]);
    expect(graph.onDemand).toEqual([{ name: 'sts', bytes: 108, gzipped: expect.any(Number) }]);
    expect(graph.unreached).toEqual(['fn/chunks/bowser-GGGGGGGG.mjs']);
    expect(graph.coldStart.bytes).toBeGreaterThan(graph.entry.bytes + 100);
  });
});
