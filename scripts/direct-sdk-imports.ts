/**
 * Points the AWS SDK's imports past its barrel modules, so a function's cold start carries only the SDK
 * code its own paths use, and the code of its on-demand paths stays in their chunks.
 *
 * The SDK's packages import each other through barrels: `import { AwsQueryProtocol } from
 * "@aws-sdk/core/protocols"` names a module that only re-exports ("facade": `export { X } from "./X"`
 * for every protocol). With code splitting, esbuild assigns code to chunks by whole files, and a file
 * belongs to every entry point that reaches it through any import, used or not. So when one on-demand
 * path (the fleet's Lambda client, say) needs AwsRestJsonProtocol, esbuild puts it in a chunk the cold
 * start imports, because the cold start reaches the same barrel for AwsQueryProtocol: about 20 KiB of
 * every function's cold start was such code, parsed and run by every invocation and used by none of
 * its usual ones.
 *
 * The rewrite resolves each named import of an SDK module that points at a facade to the module that
 * declares the name, and imports it from there: the same binding, so the same code runs. An import is
 * left as it is when a name cannot be traced to exactly one declaring module (a namespace re-export, an
 * `export *` of a module that itself has one, or two `export *` that both provide it). Skipping a facade
 * skips evaluating the modules it re-exports; the SDK packages declare `"sideEffects": false` except
 * @aws-sdk/core, which names its files with side effects, and those are still imported when the facade
 * reaches them. Only the SDK's own files are rewritten (@aws-sdk, @smithy), never ours.
 */
import type { Plugin, PluginBuild } from 'esbuild';
import { init, parse } from 'es-module-lexer';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { compactErrorClasses, SDK_ERRORS_MODULE } from './compact-sdk-errors.ts';
import { SDK_SCHEMA_MODULE, shakeableSchemas } from './shake-sdk-schemas.ts';

/** An SDK package's ES build, where it imports through barrels. */
export const SDK_ES_MODULE = /[/\\]node_modules[/\\]@(aws-sdk|smithy)[/\\][^/\\]+[/\\]dist-es[/\\].+\.js$/;

/** `import { a, b as c, } from "x"` (the SDK's tsc output; other forms are left as they are). */
const NAMED_IMPORT = /^import\s*\{([^}]*)\}\s*from\s*(["'])([^"']+)\2\s*;?$/;
/** `export { a, b as c, } from "x"` in a facade. */
const NAMED_REEXPORT = /^export\s*\{([^}]*)\}\s*from\s*(["'])([^"']+)\2\s*;?$/;
/** `export * from "x"` in a facade (`export * as ns` is not this). */
const STAR_REEXPORT = /^export\s*\*\s*from\s*(["'])([^"']+)\1\s*;?$/;

/** `a`, `a as b` from a specifier list; undefined when one is not a plain identifier pair. */
const specifiers = (list: string): { imported: string; local: string }[] | undefined => {
  const out: { imported: string; local: string }[] = [];
  for (const raw of list.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(item);
    if (!m) return undefined;
    out.push({ imported: m[1]!, local: m[2] ?? m[1]! });
  }
  return out;
};

interface Facade {
  /** exported name -> [specifier, name in that module] */
  named: Map<string, [string, string]>;
  stars: string[];
}

interface Parsed {
  /** Set when the module only re-exports. */
  facade?: Facade;
  /** The names it declares or re-exports by name; undefined when it also has an `export *`. */
  exports?: Set<string>;
}

type Resolve = (specifier: string, importer: string) => Promise<string | undefined>;

/** What `target` says when a module certainly does not export a name. */
const ABSENT = 'absent' as const;

/** The module that declares a name, and the name there. */
interface Target {
  file: string;
  name: string;
}

/** Whether a package declares `file` free of side effects (package.json "sideEffects"). */
const sideEffectFree = (file: string): boolean => {
  const pkg = nearestPackage(file);
  if (!pkg) return false;
  const { root, sideEffects } = pkg;
  if (sideEffects === false) return true;
  if (!Array.isArray(sideEffects)) return false;
  // Bundlers also read globs and bare file names there; this reads exact `./` paths only, and takes a
  // package whose list holds anything else as having side effects in every file (no rewrite gain, no risk).
  if (sideEffects.some((p) => typeof p !== 'string' || !p.startsWith('./') || /[*?[\]{}!]/.test(p)))
    return false;
  const path = `./${relative(root, file).split(sep).join('/')}`;
  return !sideEffects.includes(path);
};

const packages = new Map<string, { root: string; sideEffects: unknown } | undefined>();
const nearestPackage = (file: string): { root: string; sideEffects: unknown } | undefined => {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (packages.has(dir)) return packages.get(dir);
    const json = join(dir, 'package.json');
    if (existsSync(json)) {
      const { name, sideEffects } = JSON.parse(readFileSync(json, 'utf8')) as {
        name?: string;
        sideEffects?: unknown;
      };
      // dist-es/ folders carry a package.json of their own ({"type": "module"}): the package's is the named one
      if (name === undefined) continue;
      const pkg = { root: dir, sideEffects };
      packages.set(dir, pkg);
      return pkg;
    }
  }
  return undefined;
};

export class DirectImports {
  private readonly parsed = new Map<string, Promise<Parsed>>();
  /** Every name this instance pointed elsewhere: the facade imported, the name, where it now comes from. */
  readonly rewritten: { from: string; imported: string; file: string; name: string }[] = [];

  constructor(
    private readonly resolve: Resolve,
    private readonly read: (file: string) => string = (file) => readFileSync(file, 'utf8'),
  ) {}

  private parse(file: string): Promise<Parsed> {
    let p = this.parsed.get(file);
    if (!p) {
      p = (async () => {
        await init;
        let source: string;
        try {
          source = this.read(file);
        } catch {
          return {}; // not traced: the import stays, and esbuild reports what it reports
        }
        const [imports, exports, facade] = parse(source, file);
        const statements = imports.filter((i) => i.d === -1).map((i) => source.slice(i.ss, i.se));
        const hasStar = statements.some((s) => /^export\s*\*/.test(s));
        if (!facade) return hasStar ? {} : { exports: new Set(exports.map((e) => e.n)) };
        const named = new Map<string, [string, string]>();
        const stars: string[] = [];
        for (const statement of statements) {
          const star = STAR_REEXPORT.exec(statement);
          if (star) {
            stars.push(star[2]!);
            continue;
          }
          const re = NAMED_REEXPORT.exec(statement);
          const specs = re && specifiers(re[1]!);
          if (!re || !specs) return {}; // `export * as ns`, an import: not traced
          for (const { imported, local } of specs) named.set(local, [re[3]!, imported]);
        }
        return { facade: { named, stars } };
      })();
      this.parsed.set(file, p);
    }
    return p;
  }

  /**
   * Where `name`, imported from `file`, is declared: the module and its name there; ABSENT when `file`
   * certainly does not export it; undefined when that cannot be told (a module with an `export *` of its
   * own, a namespace re-export), or when two `export *` provide it (ambiguous).
   */
  async target(file: string, name: string, depth = 0): Promise<Target | typeof ABSENT | undefined> {
    if (depth > 20) return undefined;
    const { facade, exports } = await this.parse(file);
    if (!facade) return exports === undefined ? undefined : exports.has(name) ? { file, name } : ABSENT;
    const through = async (specifier: string, inner: string) => {
      const next = await this.resolve(specifier, file);
      return next === undefined ? undefined : this.target(next, inner, depth + 1);
    };
    const direct = facade.named.get(name);
    // An indirect export shadows whatever an `export *` provides under the same name.
    if (direct) return through(direct[0], direct[1]);
    // `export *` never re-exports a default export.
    if (name === 'default') return ABSENT;
    const found = await Promise.all(facade.stars.map((s) => through(s, name)));
    // One branch that cannot be told may provide it too: then so can't the facade's.
    if (found.includes(undefined)) return undefined;
    const targets = found.filter((t): t is Target => t !== ABSENT && t !== undefined);
    return targets.length === 0 ? ABSENT : targets.length === 1 ? targets[0] : undefined;
  }

  /** The modules with side effects a facade re-exports, through nested facades: still imported when it is skipped. */
  private readonly effectsOf = new Map<string, Promise<string[]>>();
  private effects(file: string): Promise<string[]> {
    let p = this.effectsOf.get(file);
    if (!p) {
      p = (async () => {
        const { facade } = await this.parse(file);
        if (!facade) return [];
        const specs = [...new Set([...[...facade.named.values()].map(([s]) => s), ...facade.stars])];
        const files = (await Promise.all(specs.map((s) => this.resolve(s, file)))).filter(
          (f): f is string => f !== undefined,
        );
        const nested = await Promise.all(files.map((f) => this.effects(f)));
        return [...files.filter((f) => !sideEffectFree(f)), ...nested.flat()];
      })();
      this.effectsOf.set(file, p);
    }
    return p;
  }

  /** `source` (the module at `file`) with each named import from a facade taken from its declaring modules. */
  async rewrite(source: string, file: string): Promise<string> {
    await init;
    const [imports] = parse(source, file);
    let out = '';
    let at = 0;
    for (const i of imports) {
      if (i.d !== -1) continue;
      const statement = source.slice(i.ss, i.se);
      const m = NAMED_IMPORT.exec(statement);
      const specs = m && specifiers(m[1]!);
      if (!m || !specs || specs.length === 0) continue;
      const from = await this.resolve(m[3]!, file);
      if (from === undefined || !(await this.parse(from)).facade) continue;
      const found = await Promise.all(specs.map((s) => this.target(from, s.imported)));
      const targets = found.filter((t): t is Target => t !== undefined && t !== ABSENT);
      if (targets.length !== specs.length) continue;
      const byFile = new Map<string, string[]>();
      specs.forEach((s, n) => {
        const t = targets[n]!;
        this.rewritten.push({ from, imported: s.imported, file: t.file, name: t.name });
        byFile.set(t.file, [
          ...(byFile.get(t.file) ?? []),
          t.name === s.local ? s.local : `${t.name} as ${s.local}`,
        ]);
      });
      const effects = (await this.effects(from)).filter((f) => !byFile.has(f));
      // The statement ends before its own `;`, which stays.
      const replacement = [
        ...effects.map((f) => `import ${JSON.stringify(f)}`),
        ...[...byFile].map(([f, names]) => `import { ${names.join(', ')} } from ${JSON.stringify(f)}`),
      ].join('; ');
      out += source.slice(at, i.ss) + replacement;
      at = i.se;
    }
    return at === 0 ? source : out + source.slice(at);
  }
}

/** The resolver of an esbuild build: the path esbuild itself would bundle for an import. */
export const esbuildResolver =
  (b: PluginBuild): Resolve =>
  async (specifier, importer) => {
    const r = await b.resolve(specifier, {
      kind: 'import-statement',
      resolveDir: dirname(importer),
      importer,
    });
    return r.errors.length > 0 || r.external || !r.path ? undefined : r.path;
  };

/** A rewrite of some SDK modules' source (scripts/shake-sdk-schemas.ts, scripts/compact-sdk-errors.ts). */
export type SdkTransform = [filter: RegExp, transform: (source: string, file: string) => string];

/**
 * The one loader of the SDK's ES modules in a build: each module's own rewrites (`transforms`, by path),
 * then its imports pointed past the facades.
 */
export const leanSdk = (transforms: SdkTransform[] = []): Plugin => ({
  name: 'lean-sdk',
  setup(b) {
    const direct = new DirectImports(esbuildResolver(b));
    b.onLoad({ filter: SDK_ES_MODULE }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      for (const [filter, transform] of transforms)
        if (filter.test(args.path)) source = transform(source, args.path);
      return {
        contents: await direct.rewrite(source, args.path),
        loader: 'js',
        resolveDir: dirname(args.path),
      };
    });
  },
});

/**
 * What the functions' build does to the SDK: only the schemas of the operations a function sends
 * (scripts/shake-sdk-schemas.ts), the modelled error classes built by one factory
 * (scripts/compact-sdk-errors.ts), and its imports pointed past its barrels.
 */
export const leanFunctionSdk = (): Plugin =>
  leanSdk([
    [SDK_SCHEMA_MODULE, shakeableSchemas],
    [SDK_ERRORS_MODULE, (source) => compactErrorClasses(source).source],
  ]);
