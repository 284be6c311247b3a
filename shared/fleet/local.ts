/**
 * TEMPORARY (branch fleet-cli only): a minimal stand-in for the fleet-engine branch's
 * `shared/fleet/local.ts`, with its agreed signature, so the CLI can be written and tested before it
 * lands. The lead drops this file at merge and keeps fleet-engine's.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Report } from '../report.ts';
import { fleetDocument, finishRun, readRun, readTargets, recordTarget, startRun } from './results.ts';
import type { FleetDocument } from './results.ts';
import type { FleetFunction, Target } from './target.ts';

export interface LocalFleetOptions {
  fn: FleetFunction;
  run: string;
  event: Record<string, unknown>;
  targets: Target[];
  maxConcurrency: number;
  dryRun: boolean;
  redriveOf?: string;
  worker: (event: Record<string, unknown>) => Promise<Report>;
  dynamo: DynamoDBClient;
  table: string;
  topicArn?: string;
  onProgress?: (done: number, total: number) => void;
  now?: () => Date;
}

export const newRunId = (fn: string, now: Date): string =>
  `${fn}-${now
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)}-${Math.random().toString(36).slice(2, 8)}`;

export const runFleetLocal = async (options: LocalFleetOptions): Promise<FleetDocument> => {
  const now = options.now ?? (() => new Date());
  await startRun(options.dynamo, options.table, {
    run: options.run,
    function: options.fn,
    dryRun: options.dryRun,
    event: options.event,
    targets: options.targets,
    startedAt: now().toISOString(),
    runner: 'local',
    ...(options.redriveOf && { redriveOf: options.redriveOf }),
  });
  let next = 0;
  let done = 0;
  const one = async (target: Target) => {
    try {
      await options.worker({ ...options.event, target, fleet: { run: options.run } });
    } catch (error) {
      await recordTarget(options.dynamo, options.table, options.run, {
        ...target,
        status: 'failed',
        reason: (error as Error).message,
        finishedAt: now().toISOString(),
      });
    }
    done += 1;
    options.onProgress?.(done, options.targets.length);
  };
  await Promise.all(
    Array.from({ length: Math.min(options.maxConcurrency, options.targets.length) }, async () => {
      while (next < options.targets.length) await one(options.targets[next++]!);
    }),
  );
  await finishRun(options.dynamo, options.table, options.run, now());
  const run = (await readRun(options.dynamo, options.table, options.run))!;
  return fleetDocument(run, await readTargets(options.dynamo, options.table, options.run, run.targets));
};
