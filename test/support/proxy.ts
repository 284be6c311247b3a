/**
 * A small HTTP proxy in front of moto that records every AWS request and can inject faults:
 * throttling errors in each protocol's own shape, and 503s. Faults use a seeded generator so a
 * failing run can be replayed.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { freePort } from './moto.ts';

export interface RecordedRequest {
  /** e.g. `ecs`, `application-autoscaling`, `autoscaling`. */
  service: string;
  operation: string;
  body: string;
  /** Whether the proxy answered with an injected fault instead of forwarding. */
  fault?: 'throttle' | 'unavailable';
  /** The signing access key id and region: whose credentials sent it, and where (fleet tests). */
  accessKey?: string;
  /** The HTTP method of a REST call (named by its path): GET reads, PUT/POST/DELETE change. */
  method?: string;
  region?: string;
}

export interface FaultRates {
  throttle: number;
  unavailable: number;
  seed?: number;
}

export interface StubResponse {
  status?: number;
  contentType: string;
  body: string;
}

export interface Proxy {
  url: string;
  requests: RecordedRequest[];
  /** Requests that reached moto, i.e. without an injected fault. */
  delivered: () => RecordedRequest[];
  setFaults: (rates: FaultRates | undefined) => void;
  /**
   * Answers `operation` itself instead of moto, for calls moto cannot answer (a known gap), with what
   * AWS would send. The request is still recorded.
   */
  stub: (
    operation: string,
    response: StubResponse | ((request: RecordedRequest) => StubResponse | undefined) | undefined,
  ) => void;
  /**
   * Passes `operation` to moto and rewrites moto's answer body before the client sees it: for a field
   * moto leaves out (say so in the test), or a state AWS would report. The request is still recorded.
   */
  rewrite: (operation: string, transform: ((body: string) => string) | undefined) => void;
  /**
   * Reports these timestamp fields of every moto answer (XML elements, JSON keys) at the given time, before
   * any `rewrite`. moto stamps creation times (RDS InstanceCreateTime, ClusterCreateTime, Auto Scaling
   * CreatedTime, …) with the real clock, so a test on a fixed clock would otherwise see a resource created
   * in its grace period or in its future depending on the hour the suite runs. Stays until unset.
   */
  pinTimes: (times: Record<string, string> | undefined) => void;
  /**
   * Runs `hook` when `operation` arrives, before it is forwarded: a test can hold a call there (await a
   * promise it resolves later) to interleave two runs step by step.
   */
  before: (operation: string, hook: ((request: RecordedRequest) => Promise<void>) | undefined) => void;
  /**
   * Models AWS's pace for benchmarks: `latencyMs` added to every call, and a token bucket per key
   * (`keyOf`: account, region and API, as AWS throttles) that answers ThrottlingException when empty.
   */
  setPace: (pace: Pace | undefined) => void;
  close: () => Promise<void>;
}

export interface Pace {
  latencyMs: number;
  /** The bucket a request draws from, and its size and refill per second; undefined: not throttled. */
  bucketOf?: (
    request: RecordedRequest,
  ) => { key: string; capacity: number; refillPerSecond: number } | undefined;
}

/** Token buckets (AWS's throttling model): full at first, refilled continuously, one token per call. */
const tokenBuckets = () => {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (key: string, capacity: number, refillPerSecond: number): boolean => {
    const now = performance.now();
    const b = buckets.get(key) ?? { tokens: capacity, at: now };
    b.tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * refillPerSecond);
    b.at = now;
    buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
};

const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const JSON_TARGET_SERVICES: Record<string, string> = {
  AmazonEC2ContainerServiceV20141113: 'ecs',
  AnyScaleFrontendService: 'application-autoscaling',
  AmazonSSM: 'ssm',
  GraniteServiceVersion20100801: 'cloudwatch',
};

const identify = (
  req: IncomingMessage,
  body: string,
): { service: string; operation: string; json: boolean } => {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    const [prefix, operation] = target.split('.');
    return {
      service: JSON_TARGET_SERVICES[prefix ?? ''] ?? prefix ?? 'unknown',
      operation: operation ?? '',
      json: true,
    };
  }
  const params = new URLSearchParams(body);
  const credential = String(req.headers.authorization ?? '').match(
    /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//,
  );
  return {
    service: credential?.[1] ?? 'unknown',
    operation: params.get('Action') ?? req.url ?? '',
    json: false,
  };
};

/** AWS's throttling error in the request's protocol: JSON services and query (XML) services. */
const throttled = (res: ServerResponse, json: boolean) => {
  if (json) {
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'injected' });
    res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
  } else {
    res.writeHead(400, { 'content-type': 'text/xml', 'x-amzn-requestid': 'injected' });
    res.end(
      '<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>injected</RequestId></ErrorResponse>',
    );
  }
};

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

/** Replaces the value of each named timestamp field, as XML (`<Field>…</Field>`) or JSON (`"field": …`). */
export const pinTimesIn =
  (times: Record<string, string>) =>
  (body: string): string =>
    Object.entries(times).reduce(
      (text, [field, iso]) =>
        text
          .replace(new RegExp(`<${field}>[^<]*</${field}>`, 'g'), `<${field}>${iso}</${field}>`)
          .replace(
            new RegExp(`"${field}"(\\s*):(\\s*)("[^"]*"|[0-9.eE+-]+)`, 'g'),
            (_m, a: string, b: string, value: string) =>
              `"${field}"${a}:${b}${value.startsWith('"') ? JSON.stringify(iso) : Date.parse(iso) / 1000}`,
          ),
      body,
    );

/**
 * moto's real-clock creation stamps, pinned long before any test's fixed clock (Monday 5 January 2026,
 * 09:00 UTC): the databases and groups of a stage estate are old, outside any grace period.
 */
export const CREATED_LONG_AGO = '2026-01-05T09:00:00Z';
export const CREATION_TIMES_LONG_AGO: Record<string, string> = {
  InstanceCreateTime: CREATED_LONG_AGO,
  ClusterCreateTime: CREATED_LONG_AGO,
  CreatedTime: CREATED_LONG_AGO,
};

export const startProxy = async (targetUrl: string): Promise<Proxy> => {
  const target = new URL(targetUrl);
  const requests: RecordedRequest[] = [];
  let faults: FaultRates | undefined;
  const stubs = new Map<string, StubResponse | ((request: RecordedRequest) => StubResponse | undefined)>();
  const rewrites = new Map<string, (body: string) => string>();
  let pinned: ((body: string) => string) | undefined;
  const hooks = new Map<string, (request: RecordedRequest) => Promise<void>>();
  let random = mulberry32(1);
  let pace: Pace | undefined;
  let take = tokenBuckets();
  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const body = raw.toString();
    const { service, operation, json } = identify(req, body);
    const signed = String(req.headers.authorization ?? '').match(/Credential=([^/]+)\/[^/]+\/([^/]+)\//);
    const entry: RecordedRequest = {
      service,
      operation,
      body,
      ...(signed && { accessKey: signed[1], region: signed[2] }),
      ...(operation.startsWith('/') && { method: req.method }),
    };
    requests.push(entry);
    const hook = hooks.get(operation);
    if (hook) await hook(entry);
    if (pace) {
      await new Promise((resolve) => setTimeout(resolve, pace!.latencyMs));
      const bucket = pace.bucketOf?.(entry);
      if (bucket && !take(bucket.key, bucket.capacity, bucket.refillPerSecond)) {
        entry.fault = 'throttle';
        throttled(res, json);
        return;
      }
    }
    const stub = stubs.get(operation);
    // A function answers only the requests it returns a response for (one cluster of several, say).
    const stubbed = typeof stub === 'function' ? stub(entry) : stub;
    if (stubbed) {
      res.writeHead(stubbed.status ?? 200, {
        'content-type': stubbed.contentType,
        'x-amzn-requestid': 'stubbed',
      });
      res.end(stubbed.body);
      return;
    }
    const roll = faults ? random() : 1;
    if (faults && roll < faults.throttle) {
      entry.fault = 'throttle';
      throttled(res, json);
      return;
    }
    if (faults && roll < faults.throttle + faults.unavailable) {
      entry.fault = 'unavailable';
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('Service Unavailable');
      return;
    }
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const own = rewrites.get(operation);
        const pin = pinned;
        const transform = pin && own ? (b: string) => own(pin(b)) : (pin ?? own);
        if (!transform) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = transform(Buffer.concat(chunks).toString());
          const headers = { ...up.headers, 'content-length': String(Buffer.byteLength(body)) };
          delete headers['transfer-encoding'];
          res.writeHead(up.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    upstream.on('error', (error) => {
      res.writeHead(502);
      res.end(String(error));
    });
    upstream.end(raw);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    delivered: () => requests.filter((r) => !r.fault),
    stub: (operation, response) => {
      if (response) stubs.set(operation, response);
      else stubs.delete(operation);
    },
    rewrite: (operation, transform) => {
      if (transform) rewrites.set(operation, transform);
      else rewrites.delete(operation);
    },
    pinTimes: (times) => {
      pinned = times && pinTimesIn(times);
    },
    before: (operation, hook) => {
      if (hook) hooks.set(operation, hook);
      else hooks.delete(operation);
    },
    setFaults: (rates) => {
      faults = rates;
      random = mulberry32(rates?.seed ?? 1);
    },
    setPace: (p) => {
      pace = p;
      take = tokenBuckets();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
