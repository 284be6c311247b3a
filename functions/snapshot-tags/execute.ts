import { AddTagsToResourceCommand } from '@aws-sdk/client-rds';
import { executeWork, resultOf, type ExecuteOptions, type PlannedWork } from '#shared/execute.ts';
import { errorMessage } from '#shared/errors.ts';
import {
  buildReport,
  compactReport,
  MAX_REPORT_BYTES,
  type Outcome,
  type Report,
  type ResourceResult,
} from '#shared/report.ts';
import { chunk } from '#shared/concurrency.ts';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type * as EbsModule from './ebs.ts';
import { ec2Of, type Clients } from './inventory.ts';
import type { Plan, SnapshotTagging, TagBatch } from './plan.ts';

/** Tagging calls in flight at once: RDS and EC2 throttle tagging per account. */
export const MUTATION_CONCURRENCY = 5;

/**
 * CreateTags calls for one batch at most. The first InvalidSnapshot.NotFound drops the ids AWS names
 * (or, when it names none of them, those DescribeSnapshots no longer finds); a second drops every id
 * DescribeSnapshots no longer finds; a third ends the batch as failed. Throttling is not resent here:
 * the SDK's own adaptive retries have already been spent on it.
 */
export const CREATE_TAGS_ATTEMPTS = 3;

/**
 * The error codes that say a snapshot was deleted since it was read. EC2: `InvalidSnapshot.NotFound`,
 * "The snapshot 'snap-…' does not exist." (not `InvalidSnapshotID.Malformed` or `InvalidID`, which say
 * an id is wrong, never that a snapshot is gone). RDS: `DBSnapshotNotFound` / `DBClusterSnapshotNotFoundFault`,
 * surfaced by the SDK as these exception names.
 */
const EBS_GONE = 'InvalidSnapshot.NotFound';
const RDS_GONE = new Set(['DBSnapshotNotFoundFault', 'DBClusterSnapshotNotFoundFault']);

const nameOf = (error: unknown) => (error as { name?: unknown } | null)?.name;

/** A unit of work for the shared executor: one tagging call, or one snapshot with nothing to do. */
interface Unit extends PlannedWork {
  rows: SnapshotTagging[];
  batch?: TagBatch;
}

/** What became of each snapshot of a call that was sent. */
type RowResults = Map<SnapshotTagging, ResourceResult>;

const toTags = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

const callName = (service: TagBatch['service'], count: number) =>
  service === 'rds'
    ? 'AddTagsToResource'
    : `CreateTags (one call for ${count} snapshot(s) receiving the same tags)`;

const gone = (row: SnapshotTagging, code: string): ResourceResult =>
  resultOf(row, 'skipped', {
    detail: `no longer exists: ${code} when its tags were sent (deleted since it was read); nothing to tag`,
  });

/** The ids of `rows` that an InvalidSnapshot.NotFound message names: one (`'snap-…'`) or several. */
const namedIn = (error: unknown, rows: readonly SnapshotTagging[]): Set<string> => {
  const message = (error as { message?: unknown } | null)?.message;
  const named = new Set(typeof message === 'string' ? (message.match(/snap-[0-9a-f]+/g) ?? []) : []);
  return new Set(rows.map((r) => r.id).filter((id) => named.has(id)));
};

const tagRds = async (clients: Clients, batch: TagBatch): Promise<RowResults> => {
  const [row] = batch.snapshots as [SnapshotTagging];
  try {
    await clients.rds.send(new AddTagsToResourceCommand({ ResourceName: row.arn, Tags: toTags(batch.tags) }));
    return new Map([[row, resultOf(row, 'changed', { detail: row.doneDetail })]]);
  } catch (error) {
    const name = nameOf(error);
    if (typeof name === 'string' && RDS_GONE.has(name)) return new Map([[row, gone(row, name)]]);
    return new Map([
      [row, resultOf(row, 'failed', { error: `AddTagsToResource failed: ${errorMessage(error)}` })],
    ]);
  }
};

/** ebs.ts and the EC2 client, loaded before the first call of a plan that tags EBS snapshots. */
type Ebs = typeof EbsModule & { ec2: EC2Client };

/**
 * One CreateTags for up to 1000 snapshots. A snapshot deleted since the read fails the whole call
 * (InvalidSnapshot.NotFound): the deleted ones are dropped, reported as gone, and the rest resent, at
 * most CREATE_TAGS_ATTEMPTS calls in all. Any other error fails every snapshot still in the call.
 */
const tagEbs = async ({ createTags, goneEbsSnapshots, ec2 }: Ebs, batch: TagBatch): Promise<RowResults> => {
  const results: RowResults = new Map();
  let left = batch.snapshots;
  const fail = (error: string) => {
    for (const row of left) results.set(row, resultOf(row, 'failed', { error }));
  };
  for (let attempt = 1; left.length > 0; attempt += 1) {
    const call = callName('ec2', left.length);
    try {
      await createTags(
        ec2,
        left.map((s) => s.id),
        toTags(batch.tags),
      );
      for (const row of left) results.set(row, resultOf(row, 'changed', { detail: row.doneDetail }));
      break;
    } catch (error) {
      if (nameOf(error) !== EBS_GONE) {
        fail(`${call} failed: ${errorMessage(error)}`);
        break;
      }
      if (attempt === CREATE_TAGS_ATTEMPTS) {
        fail(
          `${call} failed: ${errorMessage(error)} (attempt ${attempt} of ${attempt}, after dropping deleted snapshots)`,
        );
        break;
      }
      let missing = attempt === 1 ? namedIn(error, left) : new Set<string>();
      if (missing.size === 0) {
        try {
          missing = await goneEbsSnapshots(
            ec2,
            left.map((s) => s.id),
          );
        } catch (readError) {
          fail(
            `${call} failed: ${errorMessage(error)}; which snapshot is gone could not be read: ${errorMessage(readError)}`,
          );
          break;
        }
      }
      for (const row of left.filter((r) => missing.has(r.id))) results.set(row, gone(row, EBS_GONE));
      left = left.filter((r) => !missing.has(r.id));
    }
  }
  return results;
};

const unitOf = (batch: TagBatch): Unit => {
  const [first] = batch.snapshots;
  const one = batch.snapshots.length === 1 && first;
  return {
    arn: one ? first.arn : `${batch.snapshots.length} EBS snapshots`,
    type: one ? first.type : 'ebs-snapshot',
    detail: one
      ? first.detail
      : `${callName(batch.service, batch.snapshots.length)}: ${Object.keys(batch.tags).join(', ')}`,
    hasWork: true,
    rows: batch.snapshots,
    batch,
  };
};

/** One report row per snapshot, from the outcome of the unit that carried it. */
const rowResult = (row: SnapshotTagging, unit: Unit, result: ResourceResult): ResourceResult => {
  switch (result.outcome) {
    case 'undone':
      // Left unstarted at the deadline: the shared executor's reason, told with this snapshot's own plan.
      return resultOf(row, 'undone', { detail: result.detail.replace(unit.detail, row.detail) });
    case 'planned':
    case 'unchanged':
    case 'skipped':
      return resultOf(row, result.outcome);
    default:
      return resultOf(row, 'failed', { error: result.error ?? `${unit.detail}: no result` });
  }
};

const bytes = (report: Report) => Buffer.byteLength(JSON.stringify(report), 'utf8');

/** Snapshots named in one folded row: a CreateTags call's worth, about 23 KB, so a row stays readable. */
const FOLDED_IDS = 1000;

/** `rds-snapshot` → `RDS snapshots`, for a row that stands for many. */
const TYPE_PLURAL: Record<SnapshotTagging['type'], string> = {
  'rds-snapshot': 'RDS DB snapshots',
  'rds-cluster-snapshot': 'RDS DB cluster snapshots',
  'ebs-snapshot': 'EBS snapshots',
};

/** Which rows a report too large for a response folds, and how a folded row reads. */
interface Fold {
  outcomes: readonly Outcome[];
  detail: (row: ResourceResult, keys: string, ids: string) => string;
}

const CHANGES: Fold = {
  outcomes: ['planned', 'changed'],
  detail: (row, keys, ids) =>
    `${row.outcome === 'changed' ? 'added' : 'add'} ${keys}, each from its own source, to: ${ids}`,
};

/** The rows of an apply refused because the plan changed (refuseChangedPlan): its reason, then the new plan. */
const REFUSALS: Fold = {
  outcomes: ['skipped'],
  detail: (row, keys, ids) =>
    `${row.detail.split(' (the new plan: ')[0] ?? ''} (the new plan: add ${keys}, each from its own source, to: ${ids})`,
};

/**
 * A report that fits a synchronous Lambda response (6 MB). withOps lists every change and counts the
 * unchanged rows (compactReport); a first sweep over tens of thousands of snapshots still has tens of
 * thousands of changes, about 200 bytes each. Only then, or when compactReport would drop them, are the
 * rows of `fold.outcomes` that add the same keys to the same kind of snapshot folded into rows naming up
 * to 1000 snapshots each by id: every change is still shown, in a tenth of the bytes. Undone and failed
 * rows stay one per snapshot (the next run starts with the undone ARNs). `plan[i]` is the snapshot of
 * row i; the summary counts snapshots either way.
 */
export const fitReport = (report: Report, plan: readonly SnapshotTagging[], fold: Fold = CHANGES): Report => {
  const compact = compactReport(report, { fold: false });
  const dropped = fold.outcomes.some((outcome) => (compact.omitted?.[outcome] ?? 0) > 0);
  if (!dropped && bytes(compact) <= MAX_REPORT_BYTES) return report;
  const groups = new Map<string, { rows: SnapshotTagging[]; results: ResourceResult[] }>();
  const slots: (ResourceResult | string)[] = [];
  report.resources.forEach((result, i) => {
    const row = plan[i];
    if (!row || !fold.outcomes.includes(result.outcome)) {
      slots.push(result);
      return;
    }
    const key = `${row.type} ${result.outcome} ${Object.keys(row.add).join(',')}`;
    const group = groups.get(key);
    if (group) {
      group.rows.push(row);
      group.results.push(result);
    } else {
      groups.set(key, { rows: [row], results: [result] });
      slots.push(key);
    }
  });
  const folded = (key: string): ResourceResult[] => {
    const { rows, results } = groups.get(key) as { rows: SnapshotTagging[]; results: ResourceResult[] };
    return chunk(
      rows.map((row, i) => ({ row, result: results[i] as ResourceResult })),
      FOLDED_IDS,
    ).map((part) => {
      const [first] = part as [{ row: SnapshotTagging; result: ResourceResult }];
      if (part.length === 1) return first.result;
      const ids = part.map(({ row }) => row.id).join(', ');
      return {
        ...first.result,
        arn: `${part.length} ${TYPE_PLURAL[first.row.type]}`,
        detail: fold.detail(first.result, Object.keys(first.row.add).join(', '), ids),
      };
    });
  };
  return {
    ...report,
    resources: slots.flatMap((slot) => (typeof slot === 'string' ? folded(slot) : [slot])),
  };
};

/** The report of an apply refused because its plan changed, each refused change a row (folded at scale). */
export const refusalReport = (
  action: Plan['action'],
  refused: ResourceResult[],
  changes: readonly SnapshotTagging[],
): Report => fitReport(buildReport(action, false, refused), changes, REFUSALS);

/**
 * Adds the planned tags with bounded concurrency, or only reports them in a dry run. A failed call
 * fails every snapshot it carried and no other: one snapshot failing never stops the rest. Calls that
 * carry a snapshot the previous run left undone (`options.first`) go first.
 */
export const executePlan = async (
  plan: Plan,
  clients: Clients,
  options: Omit<ExecuteOptions, 'concurrency'>,
): Promise<Report> => {
  const idle: Unit[] = plan.snapshots
    .filter((s) => !s.hasWork && !s.unread)
    .map((s) => ({ ...s, rows: [s] }) satisfies Unit);
  const carried = (unit: Unit) => unit.rows.some((r) => options.first?.has(r.arn));
  const planned = [...plan.batches.map(unitOf), ...idle];
  // executeWork orders by `arn`, and a batch's arn is not its snapshots': order the units here.
  const units = [...planned.filter(carried), ...planned.filter((u) => !carried(u))];
  const sent = new Map<Unit, RowResults>();
  // Loaded before any call is sent, so that the calls go out in the order executeWork starts them.
  const ebs: Ebs | undefined = plan.batches.some((b) => b.service !== 'rds')
    ? { ...(await import('./ebs.ts')), ec2: await ec2Of(clients) }
    : undefined;
  const outcomes = await executeWork(
    units,
    { dryRun: options.dryRun, hasTime: options.hasTime, concurrency: MUTATION_CONCURRENCY },
    async (unit) => {
      const batch = unit.batch as TagBatch;
      sent.set(unit, batch.service === 'rds' ? await tagRds(clients, batch) : await tagEbs(ebs!, batch));
      return resultOf(unit, 'changed');
    },
  );
  const byRow = new Map<SnapshotTagging, ResourceResult>();
  units.forEach((unit, i) => {
    const rows = sent.get(unit);
    for (const row of unit.rows) {
      byRow.set(row, rows?.get(row) ?? rowResult(row, unit, outcomes[i] as ResourceResult));
    }
  });
  const rows = plan.snapshots.map((s) =>
    s.unread ? resultOf(s, 'undone') : (byRow.get(s) as ResourceResult),
  );
  const unread = plan.unread.map(({ type, what }): ResourceResult => ({
    arn: '',
    type,
    outcome: 'undone',
    detail: `not read: the Lambda was about to time out while listing ${what}; the next sweep reads them again`,
  }));
  return fitReport(buildReport(plan.action, options.dryRun, [...rows, ...unread]), plan.snapshots);
};
