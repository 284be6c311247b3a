import { rdsClient } from '#shared/aws/rds.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { parseEnv } from '#shared/env.ts';
import type { ClientScope } from '#shared/aws/config.ts';
import { withOps, type RunContext } from '#shared/handler.ts';
import { planDigest, refuseChangedPlan } from '#shared/plan-digest.ts';
import { buildReport, type Report } from '#shared/report.ts';
import { SNAPSHOT_CREATED_EVENTS } from '#events/aws.rds/schema.ts';
import { parseCopyInput, type CopyInput } from '#events/rds-snapshot-copy/schema.ts';
import { CopyConfig } from './config.ts';
import { executeCopyPlan, type ClientFor } from './execute.ts';
import {
  findSnapshot,
  listDatabases,
  listSnapshots,
  parseSnapshotArn,
  type Database,
  type Snapshot,
} from './inventory.ts';
import { recordLag, SERVICE } from './metrics.ts';
import { planCopies, type CopyPlan, type CopyPlanInput } from './plan.ts';

export interface Deps {
  /** A client in the given region; the source region is the function's own. */
  clientFor: ClientFor;
  config: CopyConfig;
  now: () => Date;
  /** Writes a sweep's copy lags as metrics (metrics.ts); tests capture them. */
  recordLag?: (lag: CopyPlan['lag']) => void;
}

let deps: Deps | undefined;
const defaultDeps = (): Deps =>
  (deps ??= {
    clientFor: (region) => rdsClient(region),
    config: parseEnv(CopyConfig),
    now: () => new Date(),
    recordLag,
  });

/**
 * Reads the sources the input asks for (a sweep: with every DB instance and cluster of the region), and
 * every snapshot in each destination region, every page of each. A read the deadline cuts throws
 * OutOfTimeError (withOps reports it as undone): nothing is ever copied, unmarked or pruned from half a
 * picture.
 */
const observe = async (
  input: Exclude<CopyInput, { action: 'event' }> | { action: 'event'; arn: string },
  d: Deps,
  hasTime: () => boolean,
) => {
  const { config } = d;
  const source = d.clientFor(config.AWS_REGION);
  const where = config.AWS_REGION;
  let sources: Snapshot[] = [];
  let siblings: Snapshot[] = [];
  const missing: string[] = [];
  let databases: Record<string, Database> = {};
  if (input.action === 'sweep') {
    sources = await listSnapshots(source, { hasTime, where });
    // Every database: SOURCE_TAGS, whether a copy's database still exists, and when each was created.
    databases = await listDatabases(source, undefined, hasTime);
  } else {
    const arn = input.action === 'copy' ? input.snapshot : input.arn;
    // Described by identifier in this account and region: a snapshot of another region or account that
    // happens to share the identifier is not the one asked for.
    const found = await findSnapshot(source, arn);
    if (!found || found.arn.toLowerCase() !== arn.toLowerCase()) missing.push(arn);
    else {
      sources = [found];
      siblings = await listSnapshots(source, { dbId: found.dbId, kind: found.kind, hasTime, where });
      if (config.SOURCE_TAGS.length > 0) databases = await listDatabases(source, found, hasTime);
    }
  }
  const regions = input.action === 'copy' && input.regions ? input.regions : config.TARGET_REGIONS;
  const listed = await mapLimit(regions, 4, async (region) =>
    region === config.AWS_REGION ? [] : listSnapshots(d.clientFor(region), { hasTime, where: region }),
  );
  const destinations = Object.fromEntries(regions.map((r, i) => [r, listed[i] ?? []]));
  return { sources, siblings, missing, regions, destinations, databases } satisfies Omit<
    CopyPlanInput,
    'mode'
  >;
};

export const run = async (input: CopyInput, ctx: RunContext, d: Deps = defaultDeps()): Promise<Report> => {
  const dryRun = ('dryRun' in input && input.dryRun === true) || d.config.DRY_RUN;
  const action = input.action === 'sweep' ? 'sweep' : 'copy';
  let target: Parameters<typeof observe>[0];
  if (input.action === 'event') {
    const { EventID, SourceArn } = input.event.detail;
    // Only "snapshot created" events copy anything; every other RDS event is a quiet no-op.
    if (!(EventID in SNAPSHOT_CREATED_EVENTS) || !SourceArn) return buildReport(action, dryRun, []);
    if (parseSnapshotArn(SourceArn).region !== d.config.AWS_REGION) return buildReport(action, dryRun, []);
    target = { action: 'event', arn: SourceArn };
  } else {
    target = input;
  }
  const observed = await observe(target, d, ctx.hasTime);
  // Work the previous sweep left undone at its deadline goes first, and gets the in-flight budget first.
  const first = input.action === 'sweep' ? await ctx.carriedOver('sweep') : undefined;
  const plan = planCopies(
    { mode: input.action, ...observed },
    {
      sourceRegion: d.config.AWS_REGION,
      retentionDays: d.config.RETENTION_DAYS,
      kmsKeys: d.config.TARGET_KMS_KEYS,
      optionGroups: d.config.TARGET_OPTION_GROUPS,
      sourceTags: d.config.SOURCE_TAGS,
      now: d.now(),
      ...(first && { first }),
    },
  );
  // Only a sweep sees every source and copy: only a sweep can say how far each region is behind.
  if (input.action === 'sweep') d.recordLag?.(plan.lag);
  const works = [...plan.copies, ...plan.unmarks, ...plan.prunes];
  if (!dryRun && 'planDigest' in input) {
    const refused = refuseChangedPlan(input.planDigest, works);
    if (refused) return buildReport(action, false, refused);
  }
  const report = await executeCopyPlan(action, plan, d.clientFor, {
    dryRun,
    hasTime: ctx.hasTime,
    sourceRegion: d.config.AWS_REGION,
    ...(first && { first }),
  });
  return dryRun ? { ...report, planDigest: planDigest(works) } : report;
};

/**
 * A fleet target's run copies from the target's region (its source region), with the spoke role's
 * credentials in every region (shared/handler.ts).
 */
const depsFor = (ctx: RunContext): Deps => {
  if (!ctx.target) return defaultDeps();
  const scope: ClientScope = ctx.target.scope;
  return {
    ...defaultDeps(),
    clientFor: (region) => rdsClient(region, scope),
    config: { ...defaultDeps().config, AWS_REGION: ctx.target.region },
  };
};

export const handler = withOps(SERVICE, parseCopyInput, (input, ctx) => run(input, ctx, depsFor(ctx)));
