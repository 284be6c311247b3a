/**
 * The parts of serverless.yml that say how each function is configured in a stage: the stage params
 * and the `environment:` blocks. Read from the project's serverless.yml when the CLI runs from source
 * (`npm run cli`); `npm run build` replaces this module in dist/cli/nightshift.mjs with the same data,
 * read at build time (scripts/build.ts), so the built bin carries the params of the template that was
 * built and packaged with it and needs no project checkout beside it.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export interface ServerlessFile {
  /** `service:`, the prefix of every deployed name. */
  service: string;
  /** `params:`: `default` and one block per stage, values as strings. */
  params: Record<string, Record<string, string>>;
  /** `provider.environment`, values as written (strings, or CloudFormation references). */
  providerEnvironment: Record<string, unknown>;
  /** Each function's own `environment:` block, as written. */
  functions: Record<string, Record<string, unknown>>;
  /**
   * Each function's Lambda timeout in seconds, as deployed: its own `timeout:`, else `provider.timeout`,
   * else the framework's default of 6 s. Undefined when it is not a plain number (a variable).
   */
  timeouts: Record<string, number | undefined>;
}

export interface ServerlessSource {
  file: ServerlessFile;
  /** Where it came from, for the line `--local` prints. */
  origin: string;
}

const record = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

const scalar = (value: unknown): string =>
  value === null || value === undefined ? '' : typeof value === 'object' ? '' : String(value);

/** The framework's default Lambda timeout (Serverless Framework v3: 6 seconds). */
const DEFAULT_TIMEOUT_SECONDS = 6;

const seconds = (value: unknown): number | undefined => {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
};

/** The configuration parts of a serverless.yml text. */
export const parseServerless = (text: string): ServerlessFile => {
  const doc = record(parse(text));
  const params = Object.fromEntries(
    Object.entries(record(doc.params)).map(([stage, block]) => [
      stage,
      Object.fromEntries(Object.entries(record(block)).map(([k, v]) => [k, scalar(v)])),
    ]),
  );
  const functions = Object.fromEntries(
    Object.entries(record(doc.functions)).map(([name, fn]) => [name, record(record(fn).environment)]),
  );
  const provider = record(doc.provider);
  const timeouts = Object.fromEntries(
    Object.entries(record(doc.functions)).map(([name, fn]) => {
      const own = record(fn).timeout ?? provider.timeout;
      return [name, own === undefined ? DEFAULT_TIMEOUT_SECONDS : seconds(own)];
    }),
  );
  return {
    service: scalar(doc.service) || 'nightshift',
    params,
    providerEnvironment: record(provider.environment),
    functions,
    timeouts,
  };
};

/** The project's serverless.yml, two folders up from this file. */
export const SERVERLESS_YML = fileURLToPath(new URL('../../serverless.yml', import.meta.url));

export const readServerless = async (): Promise<ServerlessSource> => ({
  file: parseServerless(await readFile(SERVERLESS_YML, 'utf8')),
  origin: 'serverless.yml',
});
