/**
 * Makes the AWS SDK's schema modules tree-shakeable, so a bundle carries the schemas of the operations
 * it sends, not the whole service model.
 *
 * Each @aws-sdk/client-<service>/dist-es/schemas/schemas_<n>.js declares its names as string constants
 * (`const _xN = "xmlName";`) and its member traits as object literals keyed by them:
 * `[1, { [_xN]: _m }]`. esbuild treats a computed key whose value it does not know as a possible side
 * effect (a key is converted with ToPropertyKey, which may call user code), so it keeps every schema
 * with such a trait, and through their `() => X$` thunks every schema those reach: 540 KiB of
 * @aws-sdk/client-ec2's 1.3 MB module stay in a bundle that sends DescribeSnapshots only (3.5 KiB with
 * this rewrite). Replacing each computed key by the string literal of its constant builds the same
 * object, and esbuild can then drop every schema nothing reaches. Statements with an effect (the
 * TypeRegistry and its registerError calls for the service's modelled errors) stay as they are: the
 * client still tells every modelled error apart.
 *
 * The rewrite is strict: a computed key whose constant is not a plain string literal of that module
 * fails the build rather than shipping a guess.
 */
import type { Plugin } from 'esbuild';
import { readFile } from 'node:fs/promises';

/** The SDK clients' generated schema modules (ES build), on any platform's path separator. */
export const SDK_SCHEMA_MODULE =
  /[/\\]@aws-sdk[/\\]client-[^/\\]+[/\\]dist-es[/\\]schemas[/\\]schemas_\d+\.js$/;

/** `const _xN = "xmlName";`: a top-level string constant without escapes, as the SDK generates them. */
const STRING_CONST = /^const (\w+) = ("[^"\\\n]*");$/gm;

/** `[_xN]:` a computed key naming a constant (the generator's only form of computed key). */
const COMPUTED_KEY = /\[(\w+)\]:/g;

/** The module's source with every computed key replaced by its constant's literal; throws on any other key. */
export const shakeableSchemas = (source: string, file: string): string => {
  const literals = new Map<string, string>();
  for (const [, name, literal] of source.matchAll(STRING_CONST)) literals.set(name!, literal!);
  return source.replace(COMPUTED_KEY, (_, name: string) => {
    const literal = literals.get(name);
    // `{ "__proto__": v }` sets the prototype where `{ [k]: v }` makes a property: never rewrite it.
    if (literal === undefined || literal === '"__proto__"')
      throw new Error(
        `${file}: computed key [${name}] is not a string constant of the module; cannot rewrite it`,
      );
    return `${literal}:`;
  });
};

export const shakeSdkSchemas = (): Plugin => ({
  name: 'shake-sdk-schemas',
  setup(b) {
    b.onLoad({ filter: SDK_SCHEMA_MODULE }, async (args) => ({
      contents: shakeableSchemas(await readFile(args.path, 'utf8'), args.path),
      loader: 'js',
    }));
  },
});

/** An SDK package's package.json, which its runtime config imports whole to read one field. */
export const SDK_PACKAGE_JSON = /[/\\]node_modules[/\\]@(aws-sdk|smithy)[/\\][^/\\]+[/\\]package\.json$/;

/**
 * Each SDK client's runtimeConfig imports its whole package.json (scripts, dependency lists: about 3.5
 * KiB a client) to read `packageInfo.version`, for the user agent, and nothing else (the meta test
 * test/meta/sdk-schemas.test.ts checks that every use in the SDK reads `.version`). The bundle gets a
 * package.json holding its name and version only.
 */
export const sdkPackageVersions = (): Plugin => ({
  name: 'sdk-package-versions',
  setup(b) {
    b.onLoad({ filter: SDK_PACKAGE_JSON }, async (args) => {
      const { name, version } = JSON.parse(await readFile(args.path, 'utf8')) as {
        name: string;
        version: string;
      };
      return { contents: JSON.stringify({ name, version }), loader: 'json' };
    });
  },
});
