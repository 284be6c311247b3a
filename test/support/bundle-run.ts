/**
 * Helpers for the tests that run a built function bundle (dist/<fn>/index.mjs) against moto through the
 * recording proxy: a run at a given time, what it sent to the lease table, and where the DynamoDB client
 * sits in the bundle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { vi } from 'vitest';
import type { Report } from '#shared/report.ts';
import { bundleGraph } from '#scripts/bundle-graph.ts';
import { lambdaContext } from './context.ts';
import type { Proxy } from './proxy.ts';

export type Handler = (event: unknown, context: unknown) => Promise<Report>;

/** A run of the bundle at `iso`: the deployed function reads the clock (new Date()); only Date is faked. */
export const runAt = async (handler: Handler, fn: string, event: unknown, iso: string): Promise<Report> => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date(iso));
  try {
    return await handler(event, lambdaContext(fn));
  } finally {
    vi.useRealTimers();
  }
};

/** The operations sent to DynamoDB (the proxy names a JSON service by its target prefix when it has no shorter name). */
export const dynamoCalls = (proxy: Proxy): string[] =>
  proxy.requests.filter((r) => r.service === 'DynamoDB_20120810').map((r) => r.operation);

const holdsDynamo = (file: string) => readFileSync(file, 'utf8').includes('"DynamoDB_20120810"');

/** The built files of `fn` holding the DynamoDB client: in its cold start, and anywhere among its chunks. */
export const dynamoInBundle = (fn: string): { coldStart: string[]; chunks: string[] } => ({
  coldStart: bundleGraph('dist', fn)
    .coldStart.files.map((f) => resolve('dist', f))
    .filter(holdsDynamo),
  chunks: readdirSync(resolve('dist', fn, 'chunks'))
    .map((c) => resolve('dist', fn, 'chunks', c))
    .filter(holdsDynamo),
});
