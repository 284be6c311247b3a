import { rdsClient } from '#shared/aws/rds.ts';
import { parseEnv } from '#shared/env.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { SNAPSHOT_CREATED_EVENTS } from '#events/aws.rds/schema.ts';
import { parseCopyInput, type CopyInput } from '#events/rds-snapshot-copy/schema.ts';
import { CopyConfig } from './config.ts';
import { executeCopyPlan, type ClientFor } from './execute.ts';
import {
  findSnapshot,
  listDatabaseTags,
  listSnapshots,
  parseSnapshotArn,
  type Snapshot,
} from './inventory.ts';
import { planCopies, type CopyPlanInput } from './plan.ts';
import { mapLimit } from '#shared/concurrency.ts';

export interface Deps {
  /** A client in the given region; the source region is the function's own. */
  clientFor: ClientFor;
  config: CopyConfig;
  now: () => Date;
}

let deps: Deps | undefined;
const defaultDeps = (): Deps =>
  (deps ??= {
    clientFor: (region) => rdsClient(region),
    config: parseEnv(CopyConfig),
    now: () => new Date(),
  });

/** Reads the sources the input asks for, and every snapshot in each destination region. */
const observe = async (
  input: Exclude<CopyInput, { action: 'event' }> | { action: 'event'; arn: string },
  d: Deps,
) => {
  const { config } = d;
  const source = d.clientFor(config.AWS_REGION);
  let sources: Snapshot[] = [];
  let siblings: Snapshot[] = [];
  const missing: string[] = [];
  let databaseTags = {};
  if (input.action === 'sweep') {
    sources = await listSnapshots(source);
    if (config.SOURCE_TAGS.length > 0) databaseTags = await listDatabaseTags(source);
  } else {
    const arn = input.action === 'copy' ? input.snapshot : input.arn;
    const found = await findSnapshot(source, arn);
    if (!found) missing.push(arn);
    else {
      sources = [found];
      siblings = await listSnapshots(source, { dbId: found.dbId, kind: found.kind });
      if (config.SOURCE_TAGS.length > 0) databaseTags = await listDatabaseTags(source, found);
    }
  }
  const regions = input.action === 'copy' && input.regions ? input.regions : config.TARGET_REGIONS;
  const listed = await mapLimit(regions, 4, async (region) =>
    region === config.AWS_REGION ? [] : listSnapshots(d.clientFor(region)),
  );
  const destinations = Object.fromEntries(regions.map((r, i) => [r, listed[i] ?? []]));
  return { sources, siblings, missing, regions, destinations, databaseTags } satisfies Omit<
    CopyPlanInput,
    'mode'
  >;
};

export const run = async (input: CopyInput, ctx: RunContext, d: Deps = defaultDeps()): Promise<Report> => {
  const dryRun = ('dryRun' in input && input.dryRun === true) || d.config.DRY_RUN;
  let target: Parameters<typeof observe>[0];
  if (input.action === 'event') {
    const { EventID, SourceArn } = input.event.detail;
    // Only "snapshot created" events copy anything; every other RDS event is a quiet no-op.
    if (!(EventID in SNAPSHOT_CREATED_EVENTS) || !SourceArn) return buildReport('copy', dryRun, []);
    if (parseSnapshotArn(SourceArn).region !== d.config.AWS_REGION) return buildReport('copy', dryRun, []);
    target = { action: 'event', arn: SourceArn };
  } else {
    target = input;
  }
  const observed = await observe(target, d);
  const mode = input.action === 'event' ? 'event' : input.action;
  const plan = planCopies(
    { mode, ...observed },
    {
      sourceRegion: d.config.AWS_REGION,
      retentionDays: d.config.RETENTION_DAYS,
      kmsKeys: d.config.TARGET_KMS_KEYS,
      sourceTags: d.config.SOURCE_TAGS,
      now: d.now(),
    },
  );
  return executeCopyPlan(input.action === 'sweep' ? 'sweep' : 'copy', plan, d.clientFor, {
    dryRun,
    hasTime: ctx.hasTime,
  });
};

export const handler = withOps('rds-snapshot-copy', parseCopyInput, (input, ctx) => run(input, ctx));
