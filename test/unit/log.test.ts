/**
 * The structured logger (shared/log.ts): the lines a log reader relies on, exactly as AWS Lambda
 * Powertools Logger wrote them before (keys, their order, levels, errors), which levels the
 * environment turns on, and that no value makes a log call throw.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { injectLambdaContext, Logger } from '#shared/log.ts';
import { lambdaContext } from '#test/support/context.ts';

type Line = Record<string, unknown>;

/** Every line written, with the stream it went to. */
const capture = () => {
  const written: { stream: 'stdout' | 'stderr'; text: string }[] = [];
  const tap = (stream: 'stdout' | 'stderr') =>
    ((chunk: unknown) => written.push({ stream, text: String(chunk) }) > 0) as typeof process.stdout.write;
  vi.spyOn(process.stdout, 'write').mockImplementation(tap('stdout'));
  vi.spyOn(process.stderr, 'write').mockImplementation(tap('stderr'));
  return {
    raw: () => written,
    lines: () => written.map((w) => JSON.parse(w.text) as Line),
  };
};

/** One invocation as middy runs it: the context injected before, the keys reset after. */
const invocation = (logger: Logger, body: () => void, context = lambdaContext('ecs-scheduler')) => {
  const middleware = injectLambdaContext(logger);
  middleware.before({ context });
  body();
  middleware.after();
};

/** An error made in a named function, so its first stack frame names this file: `at named (file:line:col)`. */
function named(message: string, options?: ErrorOptions): Error {
  return new Error(message, options);
}

const TRACE = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';

beforeEach(() => {
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
  vi.stubEnv('AWS_LAMBDA_LOG_LEVEL', undefined);
  vi.stubEnv('LOG_LEVEL', undefined);
  vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
  vi.stubEnv('_X_AMZN_TRACE_ID', TRACE);
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('a log line', () => {
  it('is one JSON object on one line, with the keys Powertools wrote, in its order, then the call’s keys', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 'ecs-scheduler' });

    // Act
    invocation(logger, () => {
      logger.setCorrelationId('eb-event-1');
      logger.info('run finished', { action: 'stop', dryRun: false, summary: { changed: 2 } });
    });

    // Assess
    const [written] = out.raw();
    expect(written?.stream).toBe('stdout');
    expect(written?.text).toMatch(/^\{.*\}\n$/);
    expect(written?.text.split('\n')).toHaveLength(2);
    const line = out.lines()[0] as Line;
    expect(Object.keys(line)).toEqual([
      'level',
      'message',
      'timestamp',
      'service',
      'cold_start',
      'function_arn',
      'function_memory_size',
      'function_name',
      'function_request_id',
      'sampling_rate',
      'xray_trace_id',
      'correlation_id',
      'action',
      'dryRun',
      'summary',
    ]);
    const context = lambdaContext('ecs-scheduler');
    expect(line).toEqual({
      level: 'INFO',
      message: 'run finished',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      service: 'ecs-scheduler',
      cold_start: true,
      function_arn: context.invokedFunctionArn,
      function_memory_size: '256',
      function_name: 'ecs-scheduler',
      function_request_id: context.awsRequestId,
      sampling_rate: 0,
      xray_trace_id: '1-5759e988-bd862e3fe1be46a994272793',
      correlation_id: 'eb-event-1',
      action: 'stop',
      dryRun: false,
      summary: { changed: 2 },
    });
  });

  it('writes INFO and DEBUG to stdout, WARN and ERROR to stderr', () => {
    // Prepare
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'DEBUG');
    const out = capture();
    const logger = new Logger({ serviceName: 's' });

    // Act
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');

    // Assess
    expect(out.raw().map((w) => [w.stream, (JSON.parse(w.text) as Line).level])).toEqual([
      ['stdout', 'DEBUG'],
      ['stdout', 'INFO'],
      ['stderr', 'WARN'],
      ['stderr', 'ERROR'],
    ]);
  });

  it('says cold_start true on the first invocation of an on-demand start only', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'provisioned-concurrency');
    const provisioned = new Logger({ serviceName: 's' });

    // Act
    invocation(logger, () => logger.info('first'));
    invocation(logger, () => logger.info('second'));
    invocation(provisioned, () => provisioned.info('provisioned'));

    // Assess
    expect(out.lines().map((l) => [l.message, l.cold_start])).toEqual([
      ['first', true],
      ['second', false],
      ['provisioned', false],
    ]);
  });

  it('carries the correlation id on every line of an invocation and not into the next one', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });

    // Act
    invocation(logger, () => {
      logger.setCorrelationId('run-1');
      logger.info('a');
      logger.warn('b');
    });
    invocation(logger, () => logger.info('c'));
    const middleware = injectLambdaContext(logger);
    middleware.before({ context: lambdaContext('s') });
    logger.setCorrelationId('run-3');
    middleware.onError();
    logger.info('d');

    // Assess
    expect(out.lines().map((l) => [l.message, l.correlation_id])).toEqual([
      ['a', 'run-1'],
      ['b', 'run-1'],
      ['c', undefined],
      ['d', undefined],
    ]);
  });

  it('takes the service from POWERTOOLS_SERVICE_NAME when the code names none', () => {
    // Prepare
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'from-env');
    const out = capture();

    // Act
    new Logger().info('a');
    new Logger({ serviceName: 'from-code' }).info('b');

    // Assess
    expect(out.lines().map((l) => l.service)).toEqual(['from-env', 'from-code']);
  });

  it('has no Lambda keys outside an invocation and no trace id without one', () => {
    // Prepare
    vi.stubEnv('_X_AMZN_TRACE_ID', undefined);
    const out = capture();

    // Act
    new Logger({ serviceName: 's' }).info('outside');

    // Assess
    expect(Object.keys(out.lines()[0] as Line)).toEqual([
      'level',
      'message',
      'timestamp',
      'service',
      'sampling_rate',
    ]);
  });
});

describe('the keys of a call', () => {
  it('adds an object’s keys, an Error as error and a string as extra; drops reserved keys with a warning', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });

    // Act
    logger.info('one', { a: 1 }, new Error('boom'), 'more text');
    logger.info({ message: 'two', b: 2 });
    logger.info('three', { level: 'DEBUG', keep: true });

    // Assess
    const [one, two, warning, three] = out.lines();
    expect(one).toMatchObject({
      message: 'one',
      a: 1,
      error: { name: 'Error', message: 'boom' },
      extra: 'more text',
    });
    expect(two).toMatchObject({ message: 'two', b: 2 });
    expect(warning).toMatchObject({
      level: 'WARN',
      message: 'The key "level" is a reserved key and will be dropped.',
    });
    expect(three).toMatchObject({ level: 'INFO', message: 'three', keep: true });
  });

  it('leaves out undefined, null and empty values at the top level, keeps them nested, and replaces a key in place', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });

    // Act
    invocation(logger, () =>
      logger.error('resource failed', {
        arn: 'arn:x',
        detail: '',
        error: undefined,
        none: null,
        zero: 0,
        no: false,
        nested: { a: null, b: '', c: [1, null] },
        function_name: 'renamed',
        function_arn: undefined,
      }),
    );

    // Assess
    const line = out.lines()[0] as Line;
    expect(line).not.toHaveProperty('detail');
    expect(line).not.toHaveProperty('error');
    expect(line).not.toHaveProperty('none');
    expect(line).toMatchObject({
      arn: 'arn:x',
      zero: 0,
      no: false,
      nested: { a: null, b: '', c: [1, null] },
    });
    expect(Object.keys(line).indexOf('function_name')).toBe(7);
    expect(line.function_name).toBe('renamed');
    expect(line.function_arn).toBe(lambdaContext('ecs-scheduler').invokedFunctionArn);
  });
});

describe('an error', () => {
  it('is written as name, location, message, stack, cause (itself serialised) and its own fields', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });
    const cause = Object.assign(named('socket hang up'), { code: 'ECONNRESET' });
    const error = Object.assign(named('not authorized', { cause }), {
      name: 'AccessDeniedException',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
    });

    // Act
    logger.error('run failed without a report', { error });
    logger.warn('odd causes', {
      error: new Error('with a string cause', { cause: 'just text' }),
      nested: { e: new TypeError('t') },
    });

    // Assess
    const [first, second] = out.lines();
    expect(Object.keys(first?.error as Line)).toEqual([
      'name',
      'location',
      'message',
      'stack',
      'cause',
      '$fault',
      '$metadata',
    ]);
    expect(first?.error).toEqual({
      name: 'AccessDeniedException',
      location: expect.stringMatching(/test\/unit\/log\.test\.ts:\d+$/),
      message: 'not authorized',
      stack: error.stack,
      cause: {
        name: 'Error',
        location: expect.stringMatching(/test\/unit\/log\.test\.ts:\d+$/),
        message: 'socket hang up',
        stack: cause.stack,
        code: 'ECONNRESET',
      },
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
    });
    expect(second?.error).toMatchObject({ message: 'with a string cause', cause: 'just text' });
    expect(second?.nested).toMatchObject({ e: { name: 'TypeError', message: 't' } });
  });
});

describe('the level', () => {
  it.each([
    { env: { POWERTOOLS_LOG_LEVEL: 'INFO' }, written: ['INFO', 'WARN', 'ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: 'DEBUG' }, written: ['DEBUG', 'INFO', 'WARN', 'ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: 'debug' }, written: ['DEBUG', 'INFO', 'WARN', 'ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: 'ERROR' }, written: ['ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: 'SILENT' }, written: [] },
    { env: { POWERTOOLS_LOG_LEVEL: 'bogus' }, written: ['INFO', 'WARN', 'ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: undefined }, written: ['INFO', 'WARN', 'ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: undefined, LOG_LEVEL: 'WARN' }, written: ['WARN', 'ERROR'] },
    { env: { POWERTOOLS_LOG_LEVEL: 'DEBUG', AWS_LAMBDA_LOG_LEVEL: 'ERROR' }, written: ['ERROR'] },
    {
      env: { POWERTOOLS_LOG_LEVEL: 'ERROR', AWS_LAMBDA_LOG_LEVEL: 'DEBUG' },
      written: ['DEBUG', 'INFO', 'WARN', 'ERROR'],
    },
    { env: { POWERTOOLS_LOG_LEVEL: 'INFO', AWS_LAMBDA_LOG_LEVEL: 'FATAL' }, written: [] },
  ])('with $env writes $written', ({ env, written }) => {
    // Prepare
    for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
    const out = capture();
    const logger = new Logger({ serviceName: 's' });

    // Act
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');

    // Assess
    expect(out.lines().map((l) => l.level)).toEqual(written);
  });
});

describe('a value that cannot be serialised', () => {
  it('never makes a log call throw: a circular reference is left out, a BigInt written as digits', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;

    // Act
    const call = () => logger.info('odd', { loop, big: 12345678901234567890n, shared: { a: loop, b: loop } });

    // Assess
    expect(call).not.toThrow();
    expect(out.lines()[0]).toMatchObject({
      loop: { name: 'loop' },
      big: '12345678901234567890',
      shared: { a: { name: 'loop' }, b: { name: 'loop' } },
    });
  });

  it('writes an error that refers to itself, and a cause chain that loops, each error once', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });
    const first = Object.assign(new Error('first'), { self: undefined as unknown });
    const second = new Error('second', { cause: first });
    first.self = first;
    first.cause = second;

    // Act
    const call = () => logger.error('loop', { error: first });

    // Assess
    expect(call).not.toThrow();
    const error = out.lines()[0]?.error as Line;
    expect(error).toMatchObject({ message: 'first', cause: { message: 'second' } });
    expect(error).not.toHaveProperty('self');
    expect(error.cause).not.toHaveProperty('cause');
  });

  it('writes the message and why the rest is missing when a value throws while it is serialised', () => {
    // Prepare
    const out = capture();
    const logger = new Logger({ serviceName: 's' });
    const hostile = {
      toJSON: () => {
        throw new Error('no JSON for you');
      },
    };

    // Act
    logger.setCorrelationId('run-1');
    const call = () => logger.error('resource failed', { arn: 'arn:x', hostile });

    // Assess
    expect(call).not.toThrow();
    expect(out.lines()).toEqual([
      {
        level: 'ERROR',
        message: 'resource failed',
        timestamp: expect.any(String),
        service: 's',
        correlation_id: 'run-1',
        log_error: 'this line could not be serialised: no JSON for you',
      },
    ]);
  });

  it('keeps the process alive when its output is a pipe closed early (EPIPE), as `nightshift … | head -1`', () => {
    // Prepare: thousands of log lines and EMF records into `head -1`, which exits after the first line
    const script = [
      "import { Logger } from './shared/log.ts';",
      "import { EmfMetrics } from './shared/emf.ts';",
      "const logger = new Logger({ serviceName: 'pipe' });",
      "const metrics = new EmfMetrics({ namespace: 'nightshift', serviceName: 'pipe', defaultDimensions: {} });",
      "for (let i = 0; i < 20000; i++) { logger.info('line ' + i, { i }); metrics.addMetric('runs', 'Count', 1); metrics.flush(); }",
      // after the streams have met the closed pipe (tsx --eval runs CommonJS: no top-level await)
      'setTimeout(() => { process.exitCode = 7; }, 200);',
    ].join('\n');

    // Act
    const run = spawnSync(
      'bash',
      ['-c', 'npx tsx --eval "$SCRIPT" | head -1 > /dev/null; echo "${PIPESTATUS[0]}"'],
      {
        env: { ...process.env, SCRIPT: script, POWERTOOLS_METRICS_DISABLED: '' },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );

    // Assess: it ran to its end (exit code 7, set last), not killed by an unhandled 'error' event (1)
    expect(run.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
    expect(run.stdout.trim()).toBe('7');
  });
});
