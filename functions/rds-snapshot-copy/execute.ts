import {
  AddTagsToResourceCommand,
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  RemoveTagsFromResourceCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { errorMessage } from '#shared/errors.ts';
import { executeWork, resultOf, type ExecuteOptions } from '#shared/execute.ts';
import { buildReport, type Report, type ResourceResult } from '#shared/report.ts';
import {
  accountQuotas,
  COPY_SOURCE_TAG,
  findSnapshot,
  SOURCE_TIME_TAG,
  type Quota,
  type SnapshotKind,
} from './inventory.ts';
import {
  nightshiftCopy,
  sameArn,
  type CopyPlan,
  type CopyWork,
  type PruneWork,
  type UnmarkWork,
} from './plan.ts';

/** Copies are started, not awaited: a few at a time keeps RDS's API rate limits comfortable. */
export const COPY_CONCURRENCY = 4;

/** The account quota a copy counts toward, as DescribeAccountAttributes names it. */
export const QUOTA_NAME: Record<SnapshotKind, string> = {
  instance: 'ManualSnapshots',
  cluster: 'ManualClusterSnapshots',
};

export type ClientFor = (region: string) => RDSClient;

const errorName = (error: unknown) => (error as Error)?.name ?? '';
const messageOf = (error: unknown) => (error as Error)?.message ?? '';
const notFound = (error: unknown) => /NotFound/.test(errorName(error));

/**
 * An AWS error as a row shows it, at most MESSAGE_CHARS long: an AccessDenied can carry a long encoded
 * authorization message, and a sweep with thousands of failed rows must still fit its report.
 */
export const MESSAGE_CHARS = 400;
export const shortError = (error: unknown): string => {
  const text = errorMessage(error);
  return text.length > MESSAGE_CHARS ? `${text.slice(0, MESSAGE_CHARS - 1)}…` : text;
};

/**
 * RDS answers SnapshotQuotaExceeded for two different limits: the manual snapshot quota of the region
 * ("Cannot create more than 100 manual snapshots") and the copies in flight into it ("Cannot copy more
 * than 5 snapshots across regions"), as reported by users of CopyDBClusterSnapshot and CopyDBSnapshot
 * (github.com/pbudzon/aws-maintenance issues 12 and 19). The message tells them apart; when it does
 * not, the region's quota usage decides.
 */
export const quotaKind = (message: string): 'quota' | 'in-flight' | undefined => {
  if (/more than \d+ manual/i.test(message)) return 'quota';
  if (/copy more than|across regions|in progress/i.test(message)) return 'in-flight';
  return undefined;
};

interface RunState {
  clientFor: ClientFor;
  sourceRegion: string;
  /** One marking per source, shared by its copies to every region: undefined, or why it failed. */
  marks: Map<string, Promise<MarkOutcome>>;
  /** One DescribeAccountAttributes per destination region, when a copy met SnapshotQuotaExceeded. */
  quotas: Map<string, Promise<Record<string, Quota> | string>>;
}

type MarkOutcome = undefined | { gone: true } | { error: string };

const once = <T>(memo: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> => {
  let held = memo.get(key);
  if (!held) {
    held = make();
    memo.set(key, held);
  }
  return held;
};

/**
 * Removes the legacy marker from the source (first: it frees its place under the 50-tag limit), then
 * adds nightshift's marks; both in the function's own region, the only one where the role may tag.
 */
const markSource = (state: RunState, w: CopyWork): Promise<MarkOutcome> =>
  w.mark.add.length === 0 && w.mark.remove.length === 0
    ? Promise.resolve(undefined)
    : once(state.marks, w.sourceArn, async () => {
        const client = state.clientFor(state.sourceRegion);
        try {
          if (w.mark.remove.length > 0)
            await client.send(
              new RemoveTagsFromResourceCommand({ ResourceName: w.sourceArn, TagKeys: w.mark.remove }),
            );
          if (w.mark.add.length > 0)
            await client.send(new AddTagsToResourceCommand({ ResourceName: w.sourceArn, Tags: w.mark.add }));
          return undefined;
        } catch (error) {
          if (notFound(error)) return { gone: true };
          const why = markRefusal(error, state.sourceRegion);
          return { error: why ? `${why}; AWS said: ${shortError(error)}` : shortError(error) };
        }
      });

const markWords = (w: CopyWork) =>
  [
    ...(w.mark.remove.length > 0 ? [`removing ${w.mark.remove.join(', ')} from the source`] : []),
    ...(w.mark.add.length > 0
      ? [`marking the source with ${w.mark.add.map((t) => t.Key).join(' and ')}`]
      : []),
  ].join(' and ');

const startCopy = async (client: RDSClient, w: CopyWork) => {
  // No Tags: with Tags, RDS would not copy the source's tags, and the role would need to write tags in
  // the destination region. CopyTags makes the copy inherit every tag of the source, nightshift's marks
  // included (put on the source first).
  const common = {
    SourceRegion: w.sourceRegion,
    CopyTags: true,
    ...(w.kmsKeyId && { KmsKeyId: w.kmsKeyId }),
  };
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
        ...(w.optionGroup && { OptionGroupName: w.optionGroup }),
        ...common,
      }),
    );
  }
};

const DELETED_SINCE_READ = 'the source was deleted since it was read; nothing copied';
const STAYS_MARKED = `the source keeps its ${COPY_SOURCE_TAG} mark until every target region has its copy`;

/**
 * IAM refused the tags a copy inherits. The role allows tags on a new snapshot outside its own region only
 * when RDS reports them inherited (rds:TagsFromRequest false) and denies every other tagging there
 * (DenyExplicitTagsOutsideSourceRegion, BoolIfExists): if RDS does not report CopyTags that way, every
 * copy fails here, loudly, rather than the role being able to tag what it may delete.
 */
const inheritedTagsDenied = (error: unknown) =>
  /AccessDenied|UnauthorizedOperation/.test(errorName(error)) && /AddTagsToResource/.test(messageOf(error));

const accessDenied = (error: unknown) =>
  /^(AccessDenied|AccessDeniedException|UnauthorizedOperation|AuthorizationError)$/.test(errorName(error));

/**
 * What IAM says it refused: "… is not authorized to perform: rds:CopyDBSnapshot on resource: arn:… with an
 * explicit deny in a service control policy" (the form of IAM's AccessDenied messages). Undefined when the
 * message names no action (an encoded authorization message only).
 */
const refusedAction = (message: string) => {
  const m = /not authorized to perform:?\s+([a-z0-9-]+:[A-Za-z0-9]+)(?:\s+on resource:?\s+(\S+))?/i.exec(
    message,
  );
  if (!m) return undefined;
  const by = /explicit deny in an? ([A-Za-z -]+?)\s*(?=[.:;,]|$|\s+because)/i.exec(message)?.[1];
  return { action: m[1] as string, resource: m[2], by };
};

/**
 * Why IAM or KMS refused a copy, and what the role needs, for the row (R1): the statement of
 * functions/rds-snapshot-copy/permissions.ts that should allow it, or the key and the param that lists it. RDS uses
 * the destination key through a grant it creates with the caller's rights (kms:CreateGrant with
 * kms:GrantIsForAWSResource, kms:DescribeKey), and reads the source snapshot with the source key the same
 * way; CopyDBSnapshot answers KMSKeyNotAccessibleFault when it cannot (RDS API reference, CopyDBSnapshot
 * errors).
 */
const refusal = (w: CopyWork, error: unknown): string | undefined => {
  const message = messageOf(error);
  const kmsHint =
    `RDS uses ${w.kmsKeyId ? `the key ${w.kmsKeyId}` : 'the key'} in ${w.region} and the source snapshot's key in ` +
    `${w.sourceRegion} through grants it creates with the role's rights: the role needs kms:CreateGrant and ` +
    `kms:DescribeKey on the key in ${w.region} (list its ARN in the copyKmsKeyArns param, and the source's ` +
    `customer-managed key too when its key policy leaves access to IAM), and each key's policy must let this ` +
    `account's IAM policies use it`;
  if (/KMSKeyNotAccessible/.test(errorName(error))) return `KMS refused the copy to ${w.region}: ${kmsHint}`;
  if (!accessDenied(error)) return undefined;
  const refused = refusedAction(message);
  const where = refused?.by ? ` (an explicit deny in a ${refused.by})` : '';
  if (refused && /^kms:/i.test(refused.action))
    return `IAM refused ${refused.action}${refused.resource ? ` on ${refused.resource}` : ''}${where}: ${kmsHint}`;
  const statement = w.kind === 'cluster' ? 'rds:CopyDBClusterSnapshot' : 'rds:CopyDBSnapshot';
  if (refused && /^rds:Copy/i.test(refused.action))
    return (
      `IAM refused ${refused.action}${refused.resource ? ` on ${refused.resource}` : ''}${where}: the role needs ` +
      `${statement} on the source snapshot in ${w.sourceRegion} and on the new snapshot ${w.targetId} in ${w.region} ` +
      `(statement CopySnapshots of functions/rds-snapshot-copy/permissions.ts; a service control policy that denies ${w.region} refuses it too)`
    );
  if (refused)
    return (
      `IAM refused ${refused.action}${refused.resource ? ` on ${refused.resource}` : ''}${where}, which the copy to ${w.region} needs; ` +
      `compare the role with functions/rds-snapshot-copy/permissions.ts of this version`
    );
  return (
    `IAM refused the copy to ${w.region} without naming the permission: the role needs ${statement} on the source ` +
    `and on the new snapshot (CopySnapshots), rds:AddTagsToResource of the inherited tags on the new snapshot ` +
    `(InheritTagsOnCopies)` +
    (w.kmsKeyId ? `, and for this encrypted snapshot: ${kmsHint}` : '') +
    `; decode the message with sts:DecodeAuthorizationMessage`
  );
};

/**
 * Why the source could not be marked or unmarked when IAM refused it: an older role (earlier versions let
 * the role add only nightshift:source-arn) or a policy that overrides it.
 */
const markRefusal = (error: unknown, sourceRegion: string): string | undefined =>
  accessDenied(error)
    ? `IAM refused it: the role needs rds:AddTagsToResource of exactly ${COPY_SOURCE_TAG} and ${SOURCE_TIME_TAG}, and ` +
      `rds:RemoveTagsFromResource of nightshift's keys, on the snapshots of ${sourceRegion} (statements MarkSources and ` +
      `UnmarkSources of functions/rds-snapshot-copy/permissions.ts): a role deployed by an earlier version lacks them ` +
      `(README: Upgrading from an earlier version)`
    : undefined;

const usage = async (state: RunState, w: CopyWork): Promise<string> => {
  const quotas = await once(state.quotas, w.region, () =>
    accountQuotas(state.clientFor(w.region)).catch(
      (error: unknown) => `DescribeAccountAttributes failed: ${shortError(error)}`,
    ),
  );
  if (typeof quotas === 'string') return `${QUOTA_NAME[w.kind]}: usage unknown, ${quotas}`;
  const q = quotas[QUOTA_NAME[w.kind]];
  return q ? `${QUOTA_NAME[w.kind]}: ${q.used} of ${q.max} used` : `${QUOTA_NAME[w.kind]}: not reported`;
};

const quotaFull = async (state: RunState, w: CopyWork, message: string): Promise<boolean> => {
  const kind = quotaKind(message);
  if (kind) return kind === 'quota';
  const quotas = await once(state.quotas, w.region, () =>
    accountQuotas(state.clientFor(w.region)).catch(
      (error: unknown) => `DescribeAccountAttributes failed: ${shortError(error)}`,
    ),
  );
  const q = typeof quotas === 'string' ? undefined : quotas[QUOTA_NAME[w.kind]];
  // Unknown usage: failed (someone looks) rather than quietly skipped for ever.
  return !q || q.used >= q.max;
};

const applyCopy = async (state: RunState, w: CopyWork): Promise<ResourceResult> => {
  const marked = await markSource(state, w);
  if (marked && 'gone' in marked) return resultOf(w, 'skipped', { detail: DELETED_SINCE_READ });
  if (marked)
    return resultOf(w, 'failed', { error: `${markWords(w)} failed: ${marked.error}; nothing copied` });
  const client = state.clientFor(w.region);
  try {
    await startCopy(client, w);
    return resultOf(w, 'changed', { detail: `${w.detail} (copy started)` });
  } catch (error) {
    if (/AlreadyExists/.test(errorName(error))) {
      // A re-delivered event, or a concurrent run, started this copy already: done, if RDS says it is ours.
      const existing = await findSnapshot(client, w.arn).catch(() => undefined);
      const claim = existing && nightshiftCopy(existing);
      if (existing && claim?.ours && sameArn(claim.source, w.sourceArn)) {
        return resultOf(w, 'unchanged', {
          detail: `already copied to ${w.region} as ${existing.id} (${existing.status})`,
        });
      }
      const why = !existing
        ? 'it could not be read back'
        : claim && !claim.ours
          ? claim.reason
          : `it copies ${claim?.ours ? claim.source : 'another snapshot'}`;
      return resultOf(w, 'failed', {
        error: `${w.targetId} already exists in ${w.region} and is not nightshift's copy of ${w.sourceArn} (${why}): ${shortError(error)}`,
      });
    }
    if (/SnapshotQuotaExceeded/.test(errorName(error))) {
      if (await quotaFull(state, w, messageOf(error))) {
        return resultOf(w, 'failed', {
          error:
            `the manual ${w.kind === 'cluster' ? 'cluster ' : ''}snapshot quota in ${w.region} is full (${await usage(state, w)}); ` +
            `copies count toward it: raise the quota (Service Quotas, Amazon RDS) or delete snapshots there; ` +
            `${STAYS_MARKED}; RDS said: ${shortError(error)}`,
        });
      }
      return resultOf(w, 'skipped', {
        detail: `AWS's in-flight copy limit in ${w.region} is reached; left for the next sweep (would have: ${w.detail})`,
        error: shortError(error),
      });
    }
    // DBSnapshotNotFound / DBClusterSnapshotNotFoundFault name the source (CopyDBSnapshot, CopyDBClusterSnapshot errors).
    if (/^DB(Cluster)?SnapshotNotFound/.test(errorName(error)))
      return resultOf(w, 'skipped', { detail: DELETED_SINCE_READ, error: shortError(error) });
    const deniedBy = refusedAction(messageOf(error))?.by;
    if (inheritedTagsDenied(error) && deniedBy && !/identity-based/i.test(deniedBy))
      return resultOf(w, 'failed', {
        error:
          `IAM refused the tags the copy inherits from its source (rds:AddTagsToResource on the new snapshot in ${w.region}) ` +
          `with an explicit deny in a ${deniedBy}, outside the role's own policy: that policy must allow ` +
          `rds:AddTagsToResource of inherited tags (rds:TagsFromRequest false) on snapshots in ${w.region}; ` +
          `nothing was copied; ${STAYS_MARKED}; AWS said: ${shortError(error)}`,
      });
    if (inheritedTagsDenied(error))
      return resultOf(w, 'failed', {
        error:
          `IAM denied the copy the tags it inherits from its source (rds:AddTagsToResource on the new snapshot): ` +
          `the role allows them only when RDS reports them inherited (rds:TagsFromRequest false), and RDS did not; ` +
          `nothing was copied and nothing can be until the role is changed (README: Upgrading); ${STAYS_MARKED}; ` +
          `AWS said: ${shortError(error)}`,
      });
    const why = refusal(w, error);
    if (why)
      return resultOf(w, 'failed', {
        error: `${why}; nothing was copied; ${STAYS_MARKED}; AWS said: ${shortError(error)}`,
      });
    return resultOf(w, 'failed', {
      error: `copy to ${w.region} failed: ${shortError(error)}; ${STAYS_MARKED}`,
    });
  }
};

const applyUnmark = async (
  clientFor: ClientFor,
  sourceRegion: string,
  w: UnmarkWork,
): Promise<ResourceResult> => {
  try {
    await clientFor(sourceRegion).send(
      new RemoveTagsFromResourceCommand({ ResourceName: w.arn, TagKeys: w.keys }),
    );
    return resultOf(w, 'changed');
  } catch (error) {
    if (notFound(error)) return resultOf(w, 'unchanged', { detail: 'the source is already gone' });
    const why = markRefusal(error, sourceRegion);
    return resultOf(w, 'failed', {
      error: `removing ${w.keys.join(', ')} failed: ${why ? `${why}; AWS said: ` : ''}${shortError(error)}`,
    });
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
    if (notFound(error))
      return resultOf(w, 'unchanged', { detail: `${w.id} in ${w.region} is already gone` });
    // The role may delete only snapshots whose marker names a snapshot of its own region and account
    // (PruneOwnCopies, PruneLegacyCopies).
    const why = accessDenied(error)
      ? `IAM refused it: the role may delete only snapshots whose ${COPY_SOURCE_TAG} (or legacy nightshift:source-arn) ` +
        `names a snapshot of ${w.arn.split(':')[4] ?? 'this account'} in the function's own region (PruneOwnCopies); ` +
        `AWS said: `
      : '';
    return resultOf(w, 'failed', { error: `delete failed: ${why}${shortError(error)}` });
  }
};

/**
 * Starts the planned copies (each source first marked with nightshift's tags its copies inherit), removes
 * the marks of sources that no longer need them, then prunes; or only reports all of it in a dry run.
 */
export const executeCopyPlan = async (
  action: string,
  plan: Pick<CopyPlan, 'copies' | 'unmarks' | 'prunes'>,
  clientFor: ClientFor,
  options: Omit<ExecuteOptions, 'concurrency'> & { sourceRegion: string },
): Promise<Report> => {
  const { sourceRegion, ...rest } = options;
  const opts = { ...rest, concurrency: COPY_CONCURRENCY };
  const state: RunState = { clientFor, sourceRegion, marks: new Map(), quotas: new Map() };
  const copies = await executeWork(plan.copies, opts, (w) => applyCopy(state, w));
  const unmarks = await executeWork(plan.unmarks, opts, (w) => applyUnmark(clientFor, sourceRegion, w));
  const prunes = await executeWork(plan.prunes, opts, (w) => applyPrune(clientFor, w));
  return buildReport(action, options.dryRun, [...copies, ...unmarks, ...prunes]);
};
