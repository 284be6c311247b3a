import {
  AddTagsToResourceCommand,
  ListTagsForResourceCommand,
  RemoveTagsFromResourceCommand,
  StartDBClusterCommand,
  StartDBInstanceCommand,
  StopDBClusterCommand,
  StopDBInstanceCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { errorMessage } from '#shared/errors.ts';
import { executeWork, resultOf, runStepsWithin, type ExecuteOptions } from '#shared/execute.ts';
import { OVERRIDE_TAG } from '#shared/override.ts';
import type { ResourceResult } from '#shared/report.ts';
import { tagMapUpper } from '#shared/tags.ts';
import { STOPPED_TAG, type PlannedDb, type Step } from './plan.ts';

/** Stops and starts run a few at a time: each is one call, RDS's API limits are per account. */
export const CONCURRENCY = 5;

const NAMES: Record<Step['op'], string> = {
  'tag-stopped': `AddTagsToResource ${STOPPED_TAG}`,
  stop: 'the stop',
  start: 'the start',
  'untag-stopped': `RemoveTagsFromResource ${STOPPED_TAG}`,
  'set-override': `AddTagsToResource ${OVERRIDE_TAG} (the override)`,
  'clear-override': `RemoveTagsFromResource ${OVERRIDE_TAG}`,
};

/**
 * RDS refuses a stop or start while the database is in another state than `available` / `stopped`,
 * which includes a backup or maintenance that started between our read and our call:
 * `InvalidDBInstanceState` ("Instance <id> is not in available state.", seen in cloud-custodian#1687)
 * and `InvalidDBClusterStateFault` for clusters (Amazon RDS API Reference, StopDBInstance /
 * StopDBCluster / StartDBInstance / StartDBCluster, Errors). The SDK names the first by its modelled
 * exception, InvalidDBInstanceStateFault.
 */
const REFUSED_BY_STATE = new Set([
  'InvalidDBInstanceState',
  'InvalidDBInstanceStateFault',
  'InvalidDBClusterStateFault',
  'InvalidDBClusterState',
]);

const runStep = async (rds: RDSClient, row: PlannedDb, step: Step): Promise<void> => {
  switch (step.op) {
    case 'tag-stopped':
      await rds.send(
        new AddTagsToResourceCommand({
          ResourceName: row.arn,
          Tags: [{ Key: STOPPED_TAG, Value: step.value }],
        }),
      );
      return;
    case 'stop':
      if (row.kind === 'instance')
        await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: row.id }));
      else await rds.send(new StopDBClusterCommand({ DBClusterIdentifier: row.id }));
      return;
    case 'start':
      if (row.kind === 'instance')
        await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: row.id }));
      else await rds.send(new StartDBClusterCommand({ DBClusterIdentifier: row.id }));
      return;
    case 'untag-stopped':
      await rds.send(new RemoveTagsFromResourceCommand({ ResourceName: row.arn, TagKeys: [STOPPED_TAG] }));
      return;
    case 'set-override':
      // The override first, then the reconcile's stop or start (the same row): a run cut short between
      // the two leaves the override recorded, and the next reconcile obeys it.
      await rds.send(
        new AddTagsToResourceCommand({
          ResourceName: row.arn,
          Tags: [{ Key: OVERRIDE_TAG, Value: step.value }],
        }),
      );
      return;
    case 'clear-override': {
      // RDS has no conditional untag: read again and keep an override someone set meanwhile.
      const out = await rds.send(new ListTagsForResourceCommand({ ResourceName: row.arn }));
      if (tagMapUpper(out.TagList)[OVERRIDE_TAG] !== step.expected) return;
      await rds.send(new RemoveTagsFromResourceCommand({ ResourceName: row.arn, TagKeys: [OVERRIDE_TAG] }));
      return;
    }
  }
};

/**
 * A stop that did not happen leaves no `nightshift:stopped` behind: the tag written before it goes back
 * to what it was (removed, or the previous value of a re-stop). Otherwise a running database would carry
 * a fresh tag, and the next reconcile would take it for one someone started since nightshift stopped it
 * (left alone under `enforced: false`) instead of one still to stop. Only when AWS refused the stop (a
 * client error) or the run stopped before calling it: after a timeout or a server error the stop may
 * have happened, and a stopped database without the tag would never be started by nightshift.
 * Returns what to add to the row's detail.
 */
const rollBack = async (
  rds: RDSClient,
  row: PlannedDb,
  failedOp: Step['op'] | undefined,
  error: unknown,
): Promise<string> => {
  const tag = row.steps[0];
  if (tag?.op !== 'tag-stopped' || row.steps[1]?.op !== 'stop') return '';
  if (failedOp === 'tag-stopped') return '';
  if (failedOp === 'stop' && (error as { $fault?: string } | undefined)?.$fault !== 'client')
    return `; ${STOPPED_TAG} kept: the stop may have happened (the next run reads the state again)`;
  try {
    if (tag.previous !== undefined)
      await rds.send(
        new AddTagsToResourceCommand({
          ResourceName: row.arn,
          Tags: [{ Key: STOPPED_TAG, Value: tag.previous }],
        }),
      );
    else await rds.send(new RemoveTagsFromResourceCommand({ ResourceName: row.arn, TagKeys: [STOPPED_TAG] }));
    return tag.previous !== undefined
      ? `; ${STOPPED_TAG} set back to "${tag.previous}"`
      : `; ${STOPPED_TAG} removed again (not stopped)`;
  } catch (rollback) {
    return `; ${STOPPED_TAG} could not be set back (${errorMessage(rollback)}): it is on a database that runs`;
  }
};

/**
 * Runs the planned rows: tag, then stop (so a run cut short between the two is recognised by the next:
 * the database is tagged and still available, and is stopped again); start, then untag (so a failed
 * start keeps what says nightshift stopped it). A stop or start RDS refuses for the database's state
 * (a backup or maintenance running) is `undone` with AWS's error: carried over, the next run tries it
 * first. Anything else is `failed`.
 */
export const executeRows = async (
  rows: readonly PlannedDb[],
  rds: RDSClient,
  options: Omit<ExecuteOptions, 'concurrency'>,
): Promise<ResourceResult[]> => {
  const results = await executeWork(rows, { ...options, concurrency: CONCURRENCY }, async (row) => {
    let lastError: unknown;
    let failedOp: Step['op'] | undefined;
    const ended = await runStepsWithin(
      row.steps,
      NAMES,
      async (step) => {
        try {
          await runStep(rds, row, step);
        } catch (error) {
          lastError = error;
          failedOp = step.op;
          throw error;
        }
      },
      options.hasTime,
    );
    if (ended.outcome === 'done') return resultOf(row, 'changed');
    const back = await rollBack(rds, row, ended.outcome === 'undone' ? undefined : failedOp, lastError);
    if (ended.outcome === 'undone')
      return resultOf(row, 'undone', { detail: `${row.detail}; ${ended.message}${back}` });
    const name = (lastError as Error | undefined)?.name ?? '';
    if (REFUSED_BY_STATE.has(name))
      return resultOf(row, 'undone', {
        detail:
          `${row.detail}; AWS refused it for the database's state (${name}: ${errorMessage(lastError)}), ` +
          `e.g. a backup or maintenance running: the next run tries again${back}`,
        error: ended.message,
      });
    return resultOf(row, 'failed', { detail: `${row.detail}${back}`, error: ended.message });
  });
  return results.map((r, i) => {
    const later = rows[i]?.later;
    return later && r.outcome === 'unchanged' ? { ...r, outcome: later } : r;
  });
};
