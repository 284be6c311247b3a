/**
 * What a built function loads: dist/<fn>/index.mjs, the chunks it imports statically (parsed and run by
 * every cold start), and the chunks it imports on demand (import(), parsed only on the path that calls
 * it). Read from esbuild's output, whose imports name their chunk by a relative path in a string literal.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

/** The functions (functions/<fn>/handler.ts), as scripts/build.ts builds them to dist/<fn>/. */
export const functionNames = (): string[] =>
  readdirSync('functions')
    .filter((name) => existsSync(join('functions', name, 'handler.ts')))
    .sort();

/**
 * `import{a as b}from"./chunks/x.mjs"`, `import"./chunks/x.mjs"`, `import*as m from"..."`,
 * `export{a}from"..."`, `export*from"..."` (esbuild's minified ESM).
 */
const STATIC_IMPORT =
  /(?:^|[;\s}])(?:import\s*(?:[\w$]+\s*,?\s*)?(?:\{[^}]*\}|\*\s*as\s*[\w$]+)?|export\s*(?:\{[^}]*\}|\*(?:\s*as\s*[\w$]+)?))\s*(?:from\s*)?"(\.\.?\/[^"]+\.mjs)"/g;
/** `import("./chunks/x.mjs")` */
const DYNAMIC_IMPORT = /\bimport\(\s*"(\.\.?\/[^"]+\.mjs)"\s*\)/g;

const targets = (file: string, source: string, pattern: RegExp) =>
  [...source.matchAll(pattern)].map((m) => resolve(dirname(file), m[1]!));

const closure = (roots: string[], into = new Set<string>()): Set<string> => {
  const todo = [...roots];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (into.has(file)) continue;
    if (!existsSync(file)) throw new Error(`${file}: imported but not built`);
    into.add(file);
    todo.push(...targets(file, readFileSync(file, 'utf8'), STATIC_IMPORT));
  }
  return into;
};

export interface Sized {
  bytes: number;
  gzipped: number;
}

/** One chunk imported on demand, with what it adds beyond the cold start's files. */
export interface OnDemand extends Sized {
  /** The chunk's name without its hash: esbuild names it after the module imported (sts, access, dist-es...). */
  name: string;
}

export interface BundleGraph {
  entry: Sized;
  /** The entry and every chunk it imports statically, transitively: what a cold start loads. */
  coldStart: Sized & { files: string[] };
  /** Every other built chunk, loaded only when code calls import(): grouped by the import() that reaches it first. */
  onDemand: OnDemand[];
  /** Chunks under dist/<fn>/chunks that nothing imports: a sign this parser missed an import form. */
  unreached: string[];
}

const sized = (files: Iterable<string>): Sized => {
  let bytes = 0;
  let gzipped = 0;
  for (const file of files) {
    const content = readFileSync(file);
    bytes += content.length;
    gzipped += gzipSync(content).length;
  }
  return { bytes, gzipped };
};

export const bundleGraph = (dist: string, fn: string): BundleGraph => {
  const entry = resolve(join(dist, fn, 'index.mjs'));
  const cold = closure([entry]);
  const seen = new Set(cold);
  const onDemand: OnDemand[] = [];
  // Breadth-first over import() sites, so each chunk counts once, under the first on-demand import reaching it.
  const queue = [...cold];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const root of targets(file, readFileSync(file, 'utf8'), DYNAMIC_IMPORT)) {
      if (seen.has(root)) continue;
      const added = [...closure([root], new Set())].filter((f) => !seen.has(f));
      for (const f of added) seen.add(f);
      queue.push(...added);
      onDemand.push({ name: basename(root).replace(/-[A-Z0-9]{8}\.mjs$/, ''), ...sized(added) });
    }
  }
  const chunkDir = join(dist, fn, 'chunks');
  const built = existsSync(chunkDir) ? readdirSync(chunkDir).map((f) => resolve(chunkDir, f)) : [];
  return {
    entry: sized([entry]),
    coldStart: { ...sized(cold), files: [...cold].map((f) => relative(resolve(dist), f)).sort() },
    onDemand,
    unreached: built
      .filter((f) => !seen.has(f) && statSync(f).isFile())
      .map((f) => relative(resolve(dist), f)),
  };
};
