/**
 * The structured JSON logger of every nightshift function: one JSON object per line, with the keys and
 * the shape the AWS Lambda Powertools Logger (2.x, its default formatter) wrote before it, so log
 * searches (`"level":"ERROR"`, a `correlation_id`) and saved queries keep working:
 *
 *   level, message, timestamp (ISO, UTC), service, cold_start, function_arn, function_memory_size,
 *   function_name, function_request_id, sampling_rate, xray_trace_id, tenant_id, correlation_id,
 *   then the keys of the call in their order.
 *
 * Keys whose value is undefined, null or '' are left out of the line (nested ones are kept). An Error,
 * wherever it is, becomes { name, location, message, stack, cause, ...its own fields }; a BigInt its
 * digits; a circular reference is left out. A value that cannot be serialised never throws out of a log
 * call. INFO and DEBUG go to stdout, WARN and ERROR to stderr, through a Console of our own (not the Lambda
 * runtime's console, which would prefix the line).
 *
 * Level: AWS_LAMBDA_LOG_LEVEL (Lambda's advanced logging controls) wins when set, then
 * POWERTOOLS_LOG_LEVEL, then LOG_LEVEL; INFO by default. SILENT writes nothing. Read when the logger is
 * built (at cold start).
 */
import type { Context } from 'aws-lambda';
import { Console } from 'node:console';

/**
 * Lines go to process.stdout and process.stderr through a Console of their own, as Powertools wrote them
 * (a Console ignores errors a write reports at once).
 */
export const out = new Console({ stdout: process.stdout, stderr: process.stderr });

// A pipe closed by its reader (`nightshift … | head -1`) reports EPIPE as an 'error' event after the
// write, which nothing would handle: the process would die mid-run, maybe between two changes. The lines
// have nowhere to go; the run goes on. Any other stream error stays fatal.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });

const LEVELS = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 } as const;
type LevelName = keyof typeof LEVELS;

/** Keys the logger owns: dropped (with a warning) when a call passes them. */
const RESERVED = new Set(['level', 'message', 'sampling_rate', 'service', 'timestamp']);

const levelOf = (value: string | undefined): number | undefined => {
  const name = value?.trim().toUpperCase();
  if (!name) return undefined;
  // Lambda's FATAL is the Logger's CRITICAL.
  const key = (name === 'FATAL' ? 'CRITICAL' : name) as LevelName;
  return Object.hasOwn(LEVELS, key) ? LEVELS[key] : undefined;
};

/** The threshold the environment asks for. */
export const logLevel = (env: NodeJS.ProcessEnv = process.env): number =>
  levelOf(env.AWS_LAMBDA_LOG_LEVEL) ?? levelOf(env.POWERTOOLS_LOG_LEVEL || env.LOG_LEVEL) ?? LEVELS.INFO;

/** `Root` of the X-Ray trace header: the runtime's per-invocation store when there is one, else the env. */
const traceId = (): string | undefined => {
  const store = (globalThis as { awslambda?: { InvokeStore?: { getXRayTraceId?: () => unknown } } }).awslambda
    ?.InvokeStore;
  const header = store?.getXRayTraceId?.() ?? process.env._X_AMZN_TRACE_ID ?? '';
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  if (!header.includes('=')) return header.trim();
  for (const field of header.trim().split(';')) {
    const [key, value] = field.split('=');
    if (key === 'Root') return value;
  }
  return undefined;
};

/** `file:line` of the first stack frame that names one, as Powertools reports an error's location. */
const locationOf = (stack: string | undefined): string => {
  for (const line of stack?.split('\n') ?? []) {
    const match = /\(([^()]*?):(\d+?):(\d+?)\)\\?$/.exec(line);
    if (match) return `${match[1]}:${Number(match[2])}`;
  }
  return '';
};

/** An error as a log reader sees it: name, location, message, stack, cause, then its own fields. */
export const serializeError = (error: Error, seen = new Set<Error>()): Record<string, unknown> => {
  seen.add(error);
  const { name, message, stack, cause } = error;
  const out: Record<string, unknown> = {
    name,
    location: locationOf(stack),
    message,
    stack,
    // A cause that loops back to an error of the chain is left out.
    cause: cause instanceof Error ? (seen.has(cause) ? undefined : serializeError(cause, seen)) : cause,
  };
  for (const key in error)
    if (!['name', 'message', 'stack', 'cause'].includes(key))
      out[key] = (error as unknown as Record<string, unknown>)[key];
  return out;
};

/** JSON.stringify with errors, BigInts and circular references handled; throws only on a throwing getter. */
const stringify = (value: unknown): string => {
  const ancestors: unknown[] = [];
  // An error is serialised once: an error that refers to itself is then a circular reference like any other.
  const errors = new WeakMap<Error, unknown>();
  return JSON.stringify(value, function (this: unknown, _key, item: unknown) {
    let v = item;
    if (item instanceof Error) {
      v = errors.get(item) ?? serializeError(item);
      errors.set(item, v);
    }
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'object' && v !== null) {
      while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
      if (ancestors.includes(v)) return undefined;
      ancestors.push(v);
    }
    return v;
  });
};

export type LogAttributes = Record<string, unknown>;
/** A message, or an object with `message` and more keys. */
export type LogInput = string | ({ message: string } & LogAttributes);
/** More keys: an object, an Error (as `error`) or a string (as `extra`). */
export type LogExtra = LogAttributes | Error | string | null | undefined;

export interface LoggerOptions {
  /** The `service` key; else POWERTOOLS_SERVICE_NAME, else `service_undefined`. */
  serviceName?: string;
  /** The threshold; else the environment's (logLevel()). */
  level?: number;
}

export class Logger {
  readonly serviceName: string;
  readonly level: number;
  /** Cold only on an on-demand start, and only for the first invocation, as Powertools counts it. */
  #cold = process.env.AWS_LAMBDA_INITIALIZATION_TYPE?.trim() === 'on-demand';
  #context: LogAttributes | undefined;
  #tenant: unknown;
  #keys: LogAttributes = {};

  constructor(options: LoggerOptions = {}) {
    this.serviceName =
      options.serviceName || process.env.POWERTOOLS_SERVICE_NAME?.trim() || 'service_undefined';
    this.level = options.level ?? logLevel();
  }

  /** The Lambda context's keys for the lines of this invocation (the first invocation is the cold start). */
  addContext(context: Context | undefined): void {
    const cold = this.#cold;
    this.#cold = false;
    this.#context = {
      cold_start: cold,
      function_arn: context?.invokedFunctionArn,
      function_memory_size: context?.memoryLimitInMB,
      function_name: context?.functionName,
      function_request_id: context?.awsRequestId,
    };
    this.#tenant = (context as { tenantId?: unknown } | undefined)?.tenantId;
  }

  /** Keys on every line until resetKeys (the end of the invocation). */
  appendKeys(keys: LogAttributes): void {
    for (const [key, value] of Object.entries(keys)) {
      if (this.#reserved(key)) continue;
      this.#keys[key] = value;
    }
  }

  setCorrelationId(id: string): void {
    this.appendKeys({ correlation_id: id });
  }

  resetKeys(): void {
    this.#keys = {};
  }

  debug(input: LogInput, ...extra: LogExtra[]): void {
    this.#log(LEVELS.DEBUG, 'DEBUG', input, extra);
  }
  info(input: LogInput, ...extra: LogExtra[]): void {
    this.#log(LEVELS.INFO, 'INFO', input, extra);
  }
  warn(input: LogInput, ...extra: LogExtra[]): void {
    this.#log(LEVELS.WARN, 'WARN', input, extra);
  }
  error(input: LogInput, ...extra: LogExtra[]): void {
    this.#log(LEVELS.ERROR, 'ERROR', input, extra);
  }

  #reserved(key: string): boolean {
    if (!RESERVED.has(key)) return false;
    this.warn(`The key "${key}" is a reserved key and will be dropped.`);
    return true;
  }

  #log(level: number, name: string, input: LogInput, extra: LogExtra[]): void {
    if (level < this.level) return;
    try {
      const attributes: LogAttributes = { ...this.#keys };
      let message: unknown = input;
      if (typeof input !== 'string') {
        const { message: text, ...rest } = input;
        message = text;
        for (const [key, value] of Object.entries(rest)) if (!this.#reserved(key)) attributes[key] = value;
      }
      for (const item of extra) {
        if (item === null || item === undefined) continue;
        if (item instanceof Error) attributes.error = item;
        else if (typeof item === 'string') attributes.extra = item;
        else
          for (const [key, value] of Object.entries(item)) if (!this.#reserved(key)) attributes[key] = value;
      }
      const line: LogAttributes = {
        level: name,
        message,
        timestamp: new Date().toISOString(),
        service: this.serviceName,
        // cold_start, function_arn, function_memory_size, function_name, function_request_id
        ...this.#context,
        // We never sample: Powertools wrote its sample rate, 0 unless POWERTOOLS_LOGGER_SAMPLE_RATE was set.
        sampling_rate: 0,
        xray_trace_id: traceId(),
        tenant_id: this.#tenant,
      };
      // A key of the call replaces a key of the line in place; an undefined one replaces nothing.
      for (const [key, value] of Object.entries(attributes)) if (value !== undefined) line[key] = value;
      for (const key of Object.keys(line))
        if (line[key] === undefined || line[key] === null || line[key] === '') delete line[key];
      this.#write(level, stringify(line));
    } catch (error) {
      // A value that cannot be serialised (a throwing getter or toJSON): the line says so, the run goes on.
      this.#write(
        level,
        JSON.stringify({
          level: name,
          message: typeof input === 'string' ? input : String(input.message),
          timestamp: new Date().toISOString(),
          service: this.serviceName,
          correlation_id:
            typeof this.#keys.correlation_id === 'string' ? this.#keys.correlation_id : undefined,
          log_error: `this line could not be serialised: ${error instanceof Error ? error.message : String(error)}`,
        }),
      );
    }
  }

  #write(level: number, line: string): void {
    try {
      (level >= LEVELS.WARN ? out.error : out.log)(line);
    } catch {
      // A closed stream must not fail the run.
    }
  }
}

/**
 * Middy middleware: the Lambda context on every line of the invocation, and the keys it appended
 * (its correlation id) gone when it ends, whether it returned or threw.
 */
export const injectLambdaContext = (logger: Logger) => ({
  before: (request: { context: Context }) => logger.addContext(request.context),
  after: () => logger.resetKeys(),
  onError: () => logger.resetKeys(),
});
