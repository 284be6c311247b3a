/**
 * Writes the AWS SDK's modelled error classes once instead of once each, so a function that sends RDS
 * calls does not parse 150 copies of the same fifteen lines (39 of rds-scheduler's KiB).
 *
 * Each @aws-sdk/client-<service>/dist-es/models/errors.js declares every modelled error of the service as
 * a class generated from one template: a static `shapeId`, the instance fields `name`, `$fault`, an
 * optional `$retryable` literal and the error's own members (`Message`, `resourceIds`...), and a
 * constructor that calls the service's base exception and copies those members from its options. The
 * SDK's protocols build these classes (TypeRegistry.registerError in schemas_0.js), so every one stays
 * in a bundle: they are how a caller sees `DBSnapshotNotFoundFault` rather than an unnamed error.
 *
 * The rewrite replaces each class that matches the template exactly by a call to one factory that builds
 * the same class: the same name, static `shapeId`, base class, prototype chain, and instances with the
 * same own properties, defined in the same order with the same values and descriptors. A class that
 * differs from the template in any way stays as it is. test/meta/sdk-errors.test.ts compares every
 * error class of every client we ship, as shipped and rewritten.
 *
 * One difference from a minified bundle of the shipped classes: esbuild renames those (`class t`), and
 * these keep their names, as the SDK published does. ServiceException's `instanceof` falls back to
 * comparing names of six characters or more when prototypes and shapeIds do not decide; in a minified
 * bundle that fallback was dead, and now works as it does unbundled. Nothing of ours uses `instanceof`
 * on SDK errors (we read `name`).
 */
import type { Plugin } from 'esbuild';
import { readFile } from 'node:fs/promises';

/** The SDK clients' generated error modules (ES build), on any platform's path separator. */
export const SDK_ERRORS_MODULE = /[/\\]@aws-sdk[/\\]client-[^/\\]+[/\\]dist-es[/\\]models[/\\]errors\.js$/;

/** One generated class, its body captured for the template below. */
const ERROR_CLASS = /^export class (\w+) extends __BaseException \{\n([\s\S]*?)^\}\n/gm;

/** The generator's template, exactly (the SDK's own whitespace); a class that differs is left alone. */
const TEMPLATE = new RegExp(
  [
    '^(?:    static shapeId = "([\\w.]+#\\w+)";\\n)?',
    '    name = "(\\w+)";\\n',
    '    \\$fault = "(client|server)";\\n',
    '(?:    \\$retryable = (\\{[^\\n]*\\});\\n)?',
    '((?:    \\w+;\\n)*)',
    '    constructor\\(opts\\) \\{\\n',
    '        super\\(\\{\\n',
    '            name: "(\\w+)",\\n',
    '            \\$fault: "(client|server)",\\n',
    '            \\.\\.\\.opts,\\n',
    '        \\}\\);\\n',
    '        Object\\.setPrototypeOf\\(this, (\\w+)\\.prototype\\);\\n',
    '((?:        this\\.\\w+ = opts\\.\\w+;\\n)*)',
    '    \\}\\n$',
  ].join(''),
);

/** `$retryable`'s literal as the generator writes it: `{}` or flags such as `{ throttling: true, }`. */
const RETRYABLE = /^\{(?:\s*\w+: (?:true|false),?)*\s*\}$/;

const FACTORY = '__nightshiftError';

/**
 * The factory: the generated class, with its fields defined right after super() in the class's order
 * (a class field is CreateDataPropertyOrThrow, i.e. a writable, enumerable, configurable own property),
 * then the prototype set and the members copied from the options, as the generated constructor does.
 */
const factory = `
const ${FACTORY} = (name, $fault, shapeId, members, retryable) => {
    const field = (target, key, value) => Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
    const ModelledError = class extends __BaseException {
        constructor(opts) {
            super({ name, $fault, ...opts });
            field(this, "name", name);
            field(this, "$fault", $fault);
            if (retryable) field(this, "$retryable", retryable());
            for (const member of members) field(this, member, undefined);
            Object.setPrototypeOf(this, ModelledError.prototype);
            for (const member of members) this[member] = opts[member];
        }
    };
    Object.defineProperty(ModelledError, "name", { value: name, configurable: true });
    if (shapeId) field(ModelledError, "shapeId", shapeId);
    return ModelledError;
};
`;

/** The call that builds one class, or undefined when the class is not the template's. */
const compactClass = (className: string, body: string): string | undefined => {
  const m = TEMPLATE.exec(body);
  if (!m) return undefined;
  const [, shapeId, name, fault, retryable, declared, superName, superFault, protoName, copied] = m;
  if (name !== className || superName !== className || protoName !== className || superFault !== fault)
    return undefined;
  if (shapeId !== undefined && !shapeId.endsWith(`#${className}`)) return undefined;
  if (retryable !== undefined && !RETRYABLE.test(retryable)) return undefined;
  const members = [...declared!.matchAll(/^ {4}(\w+);$/gm)].map((d) => d[1]!);
  const copies = [...copied!.matchAll(/this\.(\w+) = opts\.(\w+);/g)];
  // The generator copies each declared member, in order, from the option of the same name.
  if (copies.length !== members.length || copies.some(([, to, from], i) => to !== members[i] || from !== to))
    return undefined;
  if (members.some((member) => ['name', '$fault', '$retryable', '__proto__', 'constructor'].includes(member)))
    return undefined;
  const args = [
    JSON.stringify(className),
    JSON.stringify(fault),
    shapeId === undefined ? 'undefined' : JSON.stringify(shapeId),
    JSON.stringify(members),
    ...(retryable === undefined ? [] : [`() => (${retryable})`]),
  ];
  return `export const ${className} = /* @__PURE__ */ ${FACTORY}(${args.join(', ')});\n`;
};

/** The module with every template class built by one factory; the other classes as they were. */
export const compactErrorClasses = (
  source: string,
): { source: string; compacted: number; kept: string[] } => {
  let compacted = 0;
  const kept: string[] = [];
  const rewritten = source.replace(ERROR_CLASS, (whole, className: string, body: string) => {
    const call = compactClass(className, body);
    if (call === undefined) {
      kept.push(className);
      return whole;
    }
    compacted += 1;
    return call;
  });
  if (compacted === 0) return { source, compacted, kept };
  // Ahead of the classes; the module's import of the base class the factory extends is hoisted.
  return { source: `${factory}${rewritten}`, compacted, kept };
};

export const compactSdkErrors = (): Plugin => ({
  name: 'compact-sdk-errors',
  setup(b) {
    b.onLoad({ filter: SDK_ERRORS_MODULE }, async (args) => ({
      contents: compactErrorClasses(await readFile(args.path, 'utf8')).source,
      loader: 'js',
    }));
  },
});
