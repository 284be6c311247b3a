import { AddTagsToResourceCommand } from '@aws-sdk/client-rds';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { executeWork, resultOf, type ExecuteOptions, type PlannedWork } from '#shared/execute.ts';
import { errorMessage } from '#shared/errors.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import type { Clients } from './inventory.ts';
import type { Plan, SnapshotTagging, TagBatch } from './plan.ts';

/** Tagging calls in flight at once: RDS and EC2 throttle tagging per account. */
export const MUTATION_CONCURRENCY = 5;

/** A unit of work for the shared executor: one tagging call, or one snapshot with nothing to do. */
interface Unit extends PlannedWork {
  rows: SnapshotTagging[];
  batch?: TagBatch;
}

const toTags = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

const send = async (clients: Clients, batch: TagBatch): Promise<void> => {
  if (batch.service === 'rds') {
    const [snapshot] = batch.snapshots;
    await clients.rds.send(
      new AddTagsToResourceCommand({ ResourceName: snapshot?.arn, Tags: toTags(batch.tags) }),
    );
    return;
  }
  await clients.ec2.send(
    new CreateTagsCommand({ Resources: batch.snapshots.map((s) => s.id), Tags: toTags(batch.tags) }),
  );
};

const callName = (batch: TagBatch) =>
  batch.service === 'rds'
    ? 'AddTagsToResource'
    : `CreateTags (one call for ${batch.snapshots.length} snapshot(s) receiving the same tags)`;

const unitOf = (batch: TagBatch): Unit => {
  const [first] = batch.snapshots;
  const one = batch.snapshots.length === 1 && first;
  return {
    arn: one ? first.arn : `${batch.snapshots.length} EBS snapshots`,
    type: one ? first.type : 'ebs-snapshot',
    detail: one ? first.detail : `${callName(batch)}: ${Object.keys(batch.tags).join(', ')}`,
    hasWork: true,
    rows: batch.snapshots,
    batch,
  };
};

const apply = async (clients: Clients, unit: Unit): Promise<ResourceResult> => {
  if (!unit.batch) return resultOf(unit, 'unchanged');
  try {
    await send(clients, unit.batch);
    return resultOf(unit, 'changed');
  } catch (error) {
    return resultOf(unit, 'failed', { error: `${callName(unit.batch)} failed: ${errorMessage(error)}` });
  }
};

/** One report row per snapshot, from the outcome of the call that carried its tags. */
const rowResult = (row: SnapshotTagging, unit: Unit, result: ResourceResult): ResourceResult => {
  switch (result.outcome) {
    case 'changed':
      return resultOf(row, 'changed', { detail: row.doneDetail });
    case 'failed':
      return resultOf(row, 'failed', result.error ? { error: result.error } : {});
    case 'undone':
      // Left unstarted at the deadline: the shared executor's reason, told with this snapshot's own plan.
      return resultOf(row, 'undone', { detail: result.detail.replace(unit.detail, row.detail) });
    default:
      return resultOf(row, result.outcome);
  }
};

/**
 * Adds the planned tags with bounded concurrency, or only reports them in a dry run. A failed call
 * fails every snapshot it carried and no other: one snapshot failing never stops the rest.
 */
export const executePlan = async (
  plan: Plan,
  clients: Clients,
  options: Omit<ExecuteOptions, 'concurrency'>,
): Promise<Report> => {
  const idle: Unit[] = plan.snapshots
    .filter((s) => !s.hasWork)
    .map((s) => ({ ...s, rows: [s] }) satisfies Unit);
  const units = [...plan.batches.map(unitOf), ...idle];
  const outcomes = await executeWork(units, { ...options, concurrency: MUTATION_CONCURRENCY }, (unit) =>
    apply(clients, unit),
  );
  const byRow = new Map<SnapshotTagging, ResourceResult>();
  units.forEach((unit, i) => {
    const result = outcomes[i] as ResourceResult;
    for (const row of unit.rows) byRow.set(row, rowResult(row, unit, result));
  });
  return buildReport(
    plan.action,
    options.dryRun,
    plan.snapshots.map((s) => byRow.get(s) as ResourceResult),
  );
};
