import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { errorMessage } from '#shared/errors.ts';
import { executeWork, resultOf, type ExecuteOptions } from '#shared/execute.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import { findSnapshot } from './inventory.ts';
import type { CopyPlan, CopyWork, PruneWork } from './plan.ts';

/** Copies are started, not awaited: a few at a time keeps RDS's API rate limits comfortable. */
export const COPY_CONCURRENCY = 4;

export type ClientFor = (region: string) => RDSClient;

const errorName = (error: unknown) => (error as Error)?.name ?? '';

const startCopy = async (client: RDSClient, w: CopyWork) => {
  const common = { SourceRegion: w.sourceRegion, Tags: w.tags, ...(w.kmsKeyId && { KmsKeyId: w.kmsKeyId }) };
  // Passing Tags makes RDS ignore CopyTags, so the merged list (source tags + nightshift's) is sent.
  if (w.kind === 'cluster') {
    await client.send(
      new CopyDBClusterSnapshotCommand({
        SourceDBClusterSnapshotIdentifier: w.sourceArn,
        TargetDBClusterSnapshotIdentifier: w.targetId,
        ...common,
      }),
    );
  } else {
    await client.send(
      new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: w.sourceArn,
        TargetDBSnapshotIdentifier: w.targetId,
        ...common,
      }),
    );
  }
};

const applyCopy = async (clientFor: ClientFor, w: CopyWork): Promise<ResourceResult> => {
  const client = clientFor(w.region);
  try {
    await startCopy(client, w);
    return resultOf(w, 'changed', { detail: `${w.detail} (copy started)` });
  } catch (error) {
    if (/AlreadyExists/.test(errorName(error))) {
      // A re-delivered event, or a concurrent run, started this copy already: done, if it is ours.
      const existing = await findSnapshot(client, w.arn).catch(() => undefined);
      if (existing?.sourceArn === w.sourceArn) {
        return resultOf(w, 'unchanged', {
          detail: `already copied to ${w.region} as ${w.targetId} (${existing.status})`,
        });
      }
      return resultOf(w, 'failed', {
        error: `${w.targetId} already exists in ${w.region} and is not a nightshift copy of ${w.sourceArn}: ${errorMessage(error)}`,
      });
    }
    if (/SnapshotQuotaExceeded/.test(errorName(error))) {
      return resultOf(w, 'skipped', {
        detail: `AWS refused the copy for now (snapshot quota or in-flight copy limit in ${w.region}); left for the next sweep`,
        error: errorMessage(error),
      });
    }
    return resultOf(w, 'failed', { error: `copy to ${w.region} failed: ${errorMessage(error)}` });
  }
};

const applyPrune = async (clientFor: ClientFor, w: PruneWork): Promise<ResourceResult> => {
  const client = clientFor(w.region);
  try {
    if (w.kind === 'cluster')
      await client.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: w.id }));
    else await client.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: w.id }));
    return resultOf(w, 'changed');
  } catch (error) {
    if (/NotFound/.test(errorName(error)))
      return resultOf(w, 'unchanged', { detail: `${w.id} in ${w.region} is already gone` });
    return resultOf(w, 'failed', { error: `delete failed: ${errorMessage(error)}` });
  }
};

/** Starts the planned copies, then the prunes, or only reports them in a dry run. */
export const executeCopyPlan = async (
  action: string,
  plan: CopyPlan,
  clientFor: ClientFor,
  options: Omit<ExecuteOptions, 'concurrency'>,
): Promise<Report> => {
  const opts = { ...options, concurrency: COPY_CONCURRENCY };
  const copies = await executeWork(plan.copies, opts, (w) => applyCopy(clientFor, w));
  const prunes = await executeWork(plan.prunes, opts, (w) => applyPrune(clientFor, w));
  return buildReport(action, options.dryRun, [...copies, ...prunes]);
};
