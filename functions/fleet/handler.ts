/**
 * The hub's `fleet` function: the two steps of every fleet state machine around its Distributed Map
 * (shared/fleet/definition.ts). `targets` lists the run's (account, region) items and writes the run's
 * header; `finish` marks it finished, sends its one summary and its metrics (shared/fleet/finish.ts).
 * Not a fleet target itself: it acts only on the hub's lease table, the ops topic and Organizations.
 *
 * A thin middy chain of its own rather than withOps: its answers are not resource reports but the item
 * list the Map reads and the run's counts; withOps would send a second summary per run and count runs
 * under the outcome metrics the per-function alarms read. A bad event throws InputError before any AWS
 * call; any error fails the step (the fleet function's Errors alarm sees it).
 */
import middy from '@middy/core';
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { Context } from 'aws-lambda';
import { dynamoDbClient } from '#shared/aws/dynamodb.ts';
import { organizationsClient } from '#shared/aws/organizations.ts';
import { parseEnv } from '#shared/env.ts';
import { ConfigError, InputError } from '#shared/errors.ts';
import { injectLambdaContext, Logger } from '#shared/log.ts';
import { fleetCounts, finishFleetRun, type FleetCounts } from '#shared/fleet/finish.ts';
import { KEEP_DAYS, readRun, startRun } from '#shared/fleet/results.ts';
import type { Target } from '#shared/fleet/target.ts';
import { fleetTargets, parseFleetScope } from '#shared/fleet/targets.ts';
import { parseFleetEvent, type FleetEvent } from '#events/fleet/schema.ts';
import { FleetConfig } from './config.ts';

export interface Deps {
  config: FleetConfig;
  dynamo: DynamoDBClient;
  organizations: () => OrganizationsClient;
  now: () => Date;
  logger?: Logger;
}

let deps: Deps | undefined;
const defaultDeps = (): Deps =>
  (deps ??= {
    config: parseEnv(FleetConfig),
    dynamo: dynamoDbClient(),
    organizations: () => organizationsClient(),
    now: () => new Date(),
  });

/** What the Map reads: the items, and the expiry (epoch seconds) of the rows its Catch writes. */
export interface TargetsAnswer {
  run: string;
  targets: Target[];
  ttl: string;
}

export interface FinishAnswer {
  run: string;
  function: string;
  dryRun: boolean;
  wallSeconds: number | null;
  counts: FleetCounts;
}

const tableOf = (config: FleetConfig): string => {
  if (!config.LEASE_TABLE)
    throw new ConfigError('invalid configuration: LEASE_TABLE: the fleet needs its table', ['LEASE_TABLE']);
  return config.LEASE_TABLE;
};

const key = (t: Target) => `${t.account}#${t.region}`;

const planTargets = async (event: Extract<FleetEvent, { action: 'targets' }>, d: Deps): Promise<Target[]> => {
  const { execution } = event;
  if (execution.targets) {
    const seen = new Set<string>();
    for (const t of execution.targets) {
      if (seen.has(key(t)))
        throw new InputError(`targets: ${t.account} ${t.region} is listed twice`, 'execution.targets');
      seen.add(key(t));
    }
    return execution.targets;
  }
  // --accounts replaces the stage's accounts and units; --regions its regions (the allowlist still applies).
  const scope = parseFleetScope(
    {
      accounts: execution.accounts ? execution.accounts.join(',') : d.config.FLEET_ACCOUNTS,
      regions: execution.regions ? execution.regions.join(',') : d.config.FLEET_REGIONS,
      organizationUnits: execution.accounts ? '' : d.config.FLEET_ORGANIZATION_UNITS,
    },
    {
      accounts: execution.accounts ? 'execution.accounts' : 'fleetAccounts',
      regions: execution.regions ? 'execution.regions' : 'fleetRegions',
      organizationUnits: 'fleetOrganizationUnits',
    },
  );
  return fleetTargets(scope, d.organizations);
};

/** At most this many (account, region) targets per run: ~45 bytes each in the 256 KiB state (and in the header). */
export const MAX_FLEET_TARGETS = 2000;

export const targets = async (
  event: Extract<FleetEvent, { action: 'targets' }>,
  d: Deps,
): Promise<TargetsAnswer> => {
  const table = tableOf(d.config);
  const startedAt = event.startedAt ? new Date(event.startedAt) : d.now();
  // Rows written by the Map's Catch expire with the run's own (KEEP_DAYS), a day later for the run's length.
  const ttl = String(Math.ceil(startedAt.getTime() / 1000) + (KEEP_DAYS + 1) * 86_400);
  const { execution } = event;
  // The run's label must say what its targets do: they read dryRun from the event alone.
  if (execution.dryRun !== undefined && execution.dryRun !== (execution.event.dryRun === true))
    throw new InputError(
      `execution.dryRun: ${execution.dryRun} but the event's dryRun is ${String(execution.event.dryRun ?? false)}: set both or only the event's`,
      'execution.dryRun',
    );
  const list = await planTargets(event, d);
  if (list.length > MAX_FLEET_TARGETS)
    throw new InputError(
      `the run has ${list.length} targets, more than ${MAX_FLEET_TARGETS}: a Step Functions state holds at most 256 KiB (the targets list passes through it, and so does the run's header, a DynamoDB item of at most 400 KB); split the accounts or regions into several runs`,
      'fleetAccounts',
    );
  try {
    await startRun(d.dynamo, table, {
      run: event.run,
      function: event.function,
      dryRun: execution.dryRun ?? execution.event.dryRun === true,
      event: execution.event,
      targets: list,
      startedAt: startedAt.toISOString(),
      runner: 'state-machine',
      ...(execution.redriveOf !== undefined && { redriveOf: execution.redriveOf }),
    });
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // This step retried after its header was written: the run keeps the targets it started with.
    const existing = await readRun(d.dynamo, table, event.run);
    if (existing?.function !== event.function) throw error;
    return { run: event.run, targets: existing.targets, ttl };
  }
  d.logger?.info('fleet run started', { run: event.run, function: event.function, targets: list.length });
  return { run: event.run, targets: list, ttl };
};

export const finish = async (
  event: Extract<FleetEvent, { action: 'finish' }>,
  d: Deps,
): Promise<FinishAnswer> => {
  const doc = await finishFleetRun({
    dynamo: d.dynamo,
    table: tableOf(d.config),
    run: event.run,
    topicArn: d.config.SUMMARY_TOPIC_ARN,
    metrics: true,
    now: d.now,
    onSummaryError: (error) => d.logger?.error('fleet summary not published', { error: error as Error }),
  });
  const counts = fleetCounts(doc);
  d.logger?.info('fleet run finished', { run: doc.run, function: doc.function, counts });
  return { run: doc.run, function: doc.function, dryRun: doc.dryRun, wallSeconds: doc.wallSeconds, counts };
};

export const run = async (
  event: FleetEvent,
  d: Deps = defaultDeps(),
): Promise<TargetsAnswer | FinishAnswer> =>
  event.action === 'targets' ? targets(event, d) : finish(event, d);

const logger = new Logger({ serviceName: 'fleet' });

const base = async (event: unknown, _context: Context): Promise<TargetsAnswer | FinishAnswer> => {
  let parsed: FleetEvent;
  try {
    parsed = parseFleetEvent(event);
  } catch (error) {
    logger.warn('event refused', { error: error as Error });
    throw error;
  }
  return run(parsed, { ...defaultDeps(), logger });
};

export const handler = middy(base).use(injectLambdaContext(logger));
