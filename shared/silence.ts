/**
 * Silence while parked (issue 10): while nightshift parks a resource, the CloudWatch alarms about it have
 * their actions disabled, and on unpark exactly those are enabled again. The parking functions call it:
 * `findAlarmsAbout` once per run for every resource they park or wake, then `silence` after a stop parked
 * them, or `unsilence` before a start wakes them.
 *
 * The record is the tag `nightshift:silenced` on the alarm (public contract):
 * `for=<parked resource ARN> [for=<another parked resource ARN> …] at=<UTC time actions were disabled>`.
 * It is written BEFORE DisableAlarmActions, so an alarm is never left disabled by us without a tag saying
 * why, and an alarm is enabled only when its tag names the resource being woken, so nothing we did not
 * disable is ever enabled. An alarm whose actions were already disabled without our tag is never touched.
 *
 * One alarm can be about several parked resources (a metric-math alarm over two services, or over a
 * service and its database): the one tag lists each of them (`for=` repeated; a value holds at most 256
 * characters, about four ARNs), and waking one of them only removes its `for=`; the actions come back
 * when the last one wakes. A resource that does not fit is said on its row (the alarm is then enabled
 * when those named wake). Pure parts (`alarmAbout`, `parseSilenced`, `silencedValue`) are exported for
 * tests.
 */
import {
  DescribeAlarmsCommand,
  DisableAlarmActionsCommand,
  EnableAlarmActionsCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  paginateDescribeAlarms,
  type CloudWatchClient,
  type Dimension,
  type MetricAlarm,
} from '@aws-sdk/client-cloudwatch';
import { chunk, mapLimit } from './concurrency.ts';
import { pagesWithin } from './deadline.ts';
import { errorMessage } from './errors.ts';
import type { Outcome, ResourceResult } from './report.ts';
import { tagMapUpper, type TagMap } from './tags.ts';

/** Public contract: the tag on each alarm whose actions nightshift disabled, and why. */
export const SILENCED_TAG = 'nightshift:silenced';

/** The row type of an alarm in a report. */
export const ALARM_TYPE = 'cloudwatch-alarm';

/** A tag value holds at most 256 characters (CloudWatch TagResource, AWS::CloudWatch::Alarm Tag). */
export const TAG_VALUE_MAX = 256;

/** DisableAlarmActions and EnableAlarmActions take at most 100 alarm names per call (API reference). */
export const ALARM_NAMES_PER_CALL = 100;

/** DescribeAlarms answers at most 100 alarms per page (MaxRecords 1–100), then a NextToken. */
export const DESCRIBE_ALARMS_PAGE = 100;

/** Alarm calls in flight at once: CloudWatch's tag and alarm APIs have low per-account TPS quotas. */
const CONCURRENCY = 4;

/**
 * A resource nightshift parked (or is waking), with its ARN for the tag. An `ecs-cluster` is given only
 * when every service of the cluster is parked: then alarms on ClusterName alone are about it too.
 */
export type ParkedResource =
  | { kind: 'ecs-service'; arn: string; cluster: string; service: string }
  | { kind: 'ecs-cluster'; arn: string; cluster: string }
  | { kind: 'auto-scaling-group'; arn: string; name: string }
  | { kind: 'db-instance'; arn: string; id: string }
  | { kind: 'db-cluster'; arn: string; id: string };

/** A metric alarm and the parked resources (of those asked about) that one of its metrics names. */
export interface AlarmAbout {
  name: string;
  arn: string;
  actionsEnabled: boolean;
  about: ParkedResource[];
}

export interface SilenceClients {
  cloudwatch: CloudWatchClient;
}

export interface SilenceOptions {
  dryRun: boolean;
  /** False once the Lambda is near its timeout: no new call starts (shared/deadline.ts). */
  hasTime: () => boolean;
  /** The time written in `at=`. */
  now: Date;
}

/** ClusterName alone is an ECS cluster only in ECS's namespaces (EKS Container Insights uses it too). */
const ECS_CLUSTER_NAMESPACES = new Set(['AWS/ECS', 'ECS/ContainerInsights']);

interface WatchedMetric {
  namespace: string | undefined;
  dimensions: Record<string, string>;
}

const dimensionMap = (dimensions: readonly Dimension[] | undefined): Record<string, string> =>
  Object.fromEntries((dimensions ?? []).flatMap((d) => (d.Name ? [[d.Name, d.Value ?? '']] : [])));

const accountOf = (alarmArn: string | undefined): string | undefined => alarmArn?.split(':')[4];

/**
 * Every metric an alarm evaluates: its single metric, or each `MetricStat` of a metric-math alarm's
 * `Metrics[]` (expressions, including Metrics Insights queries, name no dimensions we can read, and a
 * metric of another account is not ours to judge).
 */
const watchedMetrics = (alarm: MetricAlarm): WatchedMetric[] => {
  const out: WatchedMetric[] = [];
  if (alarm.MetricName !== undefined || alarm.Dimensions !== undefined)
    out.push({ namespace: alarm.Namespace, dimensions: dimensionMap(alarm.Dimensions) });
  const own = accountOf(alarm.AlarmArn);
  for (const query of alarm.Metrics ?? []) {
    const metric = query.MetricStat?.Metric;
    if (!metric) continue;
    if (query.AccountId !== undefined && own !== undefined && query.AccountId !== own) continue;
    out.push({ namespace: metric.Namespace, dimensions: dimensionMap(metric.Dimensions) });
  }
  return out;
};

const names = (metric: WatchedMetric, resource: ParkedResource): boolean => {
  const d = metric.dimensions;
  switch (resource.kind) {
    case 'ecs-service':
      return d.ClusterName === resource.cluster && d.ServiceName === resource.service;
    case 'ecs-cluster':
      // ClusterName alone: the cluster as a whole, given only when every service of it is parked.
      return (
        Object.keys(d).length === 1 &&
        d.ClusterName === resource.cluster &&
        ECS_CLUSTER_NAMESPACES.has(metric.namespace ?? '')
      );
    case 'auto-scaling-group':
      return d.AutoScalingGroupName === resource.name;
    case 'db-instance':
      return d.DBInstanceIdentifier === resource.id;
    case 'db-cluster':
      return d.DBClusterIdentifier === resource.id;
  }
};

/**
 * The parked resources an alarm is about, in the order given. An alarm any of whose metrics has an
 * InstanceId dimension is left alone (it watches an instance, and may stop, reboot or recover it).
 */
export const alarmAbout = (alarm: MetricAlarm, parked: readonly ParkedResource[]): ParkedResource[] => {
  const metrics = watchedMetrics(alarm);
  if (metrics.some((m) => m.dimensions.InstanceId !== undefined)) return [];
  return parked.filter((r) => metrics.some((m) => names(m, r)));
};

/**
 * Every metric alarm about one of `parked`. One read of the whole account's metric alarms, every page
 * (DescribeAlarms, MaxRecords 100, NextToken), composite alarms left out by AlarmTypes. Why not
 * DescribeAlarmsForMetric: it needs the exact namespace, metric name and full dimension set of each
 * metric (we know neither the metric names people alarm on nor the other dimensions), it returns no
 * metric-math alarms, and it would be one call per metric per resource; DescribeAlarms costs one call
 * per 100 alarms of the account for all parked resources together. Throws OutOfTimeError when the run
 * runs out of time between pages.
 */
export const findAlarmsAbout = async (
  clients: SilenceClients,
  parked: readonly ParkedResource[],
  hasTime: () => boolean,
): Promise<AlarmAbout[]> => {
  if (parked.length === 0) return [];
  const found: AlarmAbout[] = [];
  const pages = paginateDescribeAlarms(
    { client: clients.cloudwatch, pageSize: DESCRIBE_ALARMS_PAGE },
    { AlarmTypes: ['MetricAlarm'] },
  );
  for await (const page of pagesWithin(pages, hasTime, 'CloudWatch metric alarms')) {
    for (const alarm of page.MetricAlarms ?? []) {
      if (!alarm.AlarmName || !alarm.AlarmArn) continue;
      const about = alarmAbout(alarm, parked);
      if (about.length === 0) continue;
      found.push({
        name: alarm.AlarmName,
        arn: alarm.AlarmArn,
        actionsEnabled: alarm.ActionsEnabled === true,
        about,
      });
    }
  }
  return found;
};

/** The contents of a `nightshift:silenced` value. */
export interface Silenced {
  for: string[];
  at: string;
}

/** `for=<arn> [for=<arn> …] at=<time>`, or undefined when the value is not one nightshift wrote. */
export const parseSilenced = (value: string | undefined): Silenced | undefined => {
  const m = value?.match(/^for=(.+) at=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/);
  if (!m) return undefined;
  const arns = (m[1] as string).split(' for=');
  return arns.every((a) => a.startsWith('arn:')) ? { for: arns, at: m[2] as string } : undefined;
};

/** The tag value for these resources, and those that did not fit in TAG_VALUE_MAX characters. */
export const silencedValue = (arns: readonly string[], at: string): { value?: string; left: string[] } => {
  const kept: string[] = [];
  const left: string[] = [];
  for (const arn of arns) {
    const value = [...kept, arn].map((a) => `for=${a}`).join(' ') + ` at=${at}`;
    if (value.length <= TAG_VALUE_MAX) kept.push(arn);
    else left.push(arn);
  }
  return { ...(kept.length > 0 && { value: `${kept.map((a) => `for=${a}`).join(' ')} at=${at}` }), left };
};

/** `2026-11-30T18:00:00Z`: seconds, as the other nightshift tags write times. */
const utc = (now: Date): string => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

const nameOf = (r: ParkedResource): string => {
  switch (r.kind) {
    case 'ecs-service':
      return `${r.cluster}/${r.service}`;
    case 'ecs-cluster':
      return `cluster ${r.cluster}`;
    case 'auto-scaling-group':
      return `group ${r.name}`;
    default:
      return r.id;
  }
};

const listArns = (arns: readonly string[]) => arns.join(', ');

const row = (alarm: AlarmAbout, outcome: Outcome, detail: string, error?: string): ResourceResult => ({
  arn: alarm.arn,
  type: ALARM_TYPE,
  outcome,
  detail: `alarm ${alarm.name}: ${detail}`,
  ...(error !== undefined && { error }),
});

type TagRead = { tags: TagMap } | { gone: true } | { error: string };

const readTags = async (clients: SilenceClients, arn: string): Promise<TagRead> => {
  try {
    const out = await clients.cloudwatch.send(new ListTagsForResourceCommand({ ResourceARN: arn }));
    return { tags: tagMapUpper(out.Tags) };
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return { gone: true };
    return { error: errorMessage(error) };
  }
};

const writeTag = (clients: SilenceClients, arn: string, value: string) =>
  clients.cloudwatch.send(
    new TagResourceCommand({ ResourceARN: arn, Tags: [{ Key: SILENCED_TAG, Value: value }] }),
  );

const removeTag = (clients: SilenceClients, arn: string) =>
  clients.cloudwatch.send(new UntagResourceCommand({ ResourceARN: arn, TagKeys: [SILENCED_TAG] }));

const OUT_OF_TIME = 'not started: the Lambda was about to time out';

/**
 * Reads the tags of each alarm with bounded concurrency; an alarm the deadline left unread gets
 * `undefined` and the caller reports it undone.
 */
const readEach = (
  clients: SilenceClients,
  alarms: readonly AlarmAbout[],
  hasTime: () => boolean,
): Promise<(TagRead | undefined)[]> =>
  mapLimit(alarms, CONCURRENCY, (a) => readTags(clients, a.arn), {
    shouldStart: hasTime,
    notStarted: () => undefined,
  });

/**
 * Runs a batched alarm call (Disable/EnableAlarmActions, 100 names per call). A batch that fails is
 * retried one alarm per call, so one bad alarm never stops the others. Returns the error per alarm name
 * that failed, and the names the deadline left unsent.
 */
const batched = async (
  names: readonly string[],
  hasTime: () => boolean,
  send: (names: string[]) => Promise<unknown>,
): Promise<{ failed: Map<string, string>; unsent: Set<string> }> => {
  const failed = new Map<string, string>();
  const unsent = new Set<string>();
  for (const batch of chunk(names, ALARM_NAMES_PER_CALL)) {
    if (!hasTime()) {
      batch.forEach((n) => unsent.add(n));
      continue;
    }
    try {
      await send(batch);
      continue;
    } catch (error) {
      if (batch.length === 1) {
        failed.set(batch[0] as string, errorMessage(error));
        continue;
      }
    }
    for (const name of batch) {
      if (!hasTime()) {
        unsent.add(name);
        continue;
      }
      try {
        await send([name]);
      } catch (error) {
        failed.set(name, errorMessage(error));
      }
    }
  }
  return { failed, unsent };
};

/** Whether each named alarm's actions are enabled now, or undefined when that cannot be read. */
const actionsEnabledNow = async (
  clients: SilenceClients,
  names: readonly string[],
): Promise<Map<string, boolean> | undefined> => {
  try {
    const out = new Map<string, boolean>();
    // AlarmNames takes at most 100 names, and an answer holds 50 alarms unless MaxRecords says 100.
    for (const batch of chunk(names, DESCRIBE_ALARMS_PAGE)) {
      const page = await clients.cloudwatch.send(
        new DescribeAlarmsCommand({
          AlarmNames: batch,
          AlarmTypes: ['MetricAlarm'],
          MaxRecords: DESCRIBE_ALARMS_PAGE,
        }),
      );
      for (const a of page.MetricAlarms ?? [])
        if (a.AlarmName) out.set(a.AlarmName, a.ActionsEnabled === true);
    }
    return out;
  } catch {
    return undefined;
  }
};

/**
 * After a stop parked `alarms[].about`: for each alarm whose actions are enabled, tags it
 * `nightshift:silenced`, then disables its actions (batched). An alarm already silenced by nightshift
 * for another resource gets this one's `for=` added; one whose actions someone else disabled is left as
 * it is. One row per alarm, for the caller's report.
 */
export const silence = async (
  clients: SilenceClients,
  alarms: readonly AlarmAbout[],
  options: SilenceOptions,
): Promise<ResourceResult[]> => {
  const at = utc(options.now);
  const rows = new Map<string, ResourceResult>();
  const toSilence: Array<{ alarm: AlarmAbout; value: string; left: string[] }> = [];
  const toRecord: Array<{
    alarm: AlarmAbout;
    value: string;
    had: string[];
    added: string[];
    left: string[];
  }> = [];

  const candidates = alarms.filter((a) => a.about.length > 0);
  for (const alarm of candidates.filter((a) => a.actionsEnabled)) {
    const parked = alarm.about.map((r) => r.arn);
    const { value, left } = silencedValue(parked, at);
    if (value === undefined)
      rows.set(
        alarm.arn,
        row(
          alarm,
          'skipped',
          `cannot be silenced: the ARN of ${listArns(parked)} does not fit the ${TAG_VALUE_MAX}-character tag ${SILENCED_TAG}, and its actions are never disabled without that tag; actions left enabled`,
        ),
      );
    else toSilence.push({ alarm, value, left });
  }

  // Actions already disabled: ours (our tag) gets this resource's `for=`; anyone else's is left alone.
  const disabled = candidates.filter((a) => !a.actionsEnabled);
  const reads = await readEach(clients, disabled, options.hasTime);
  disabled.forEach((alarm, i) => {
    const read = reads[i];
    if (read === undefined)
      return void rows.set(alarm.arn, row(alarm, 'undone', `${OUT_OF_TIME} (tags not read)`));
    if ('gone' in read) return void rows.set(alarm.arn, row(alarm, 'unchanged', 'deleted meanwhile'));
    if ('error' in read)
      return void rows.set(
        alarm.arn,
        row(alarm, 'failed', `its tags could not be read, so it was left as it is`, read.error),
      );
    const raw = read.tags[SILENCED_TAG];
    if (raw === undefined)
      return void rows.set(
        alarm.arn,
        row(alarm, 'unchanged', `actions were already disabled, not by nightshift: left as they are`),
      );
    const ours = parseSilenced(raw);
    if (!ours)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'skipped',
          `actions disabled and ${SILENCED_TAG}="${raw}" is not one nightshift wrote: left as it is`,
        ),
      );
    const added = alarm.about.map((r) => r.arn).filter((arn) => !ours.for.includes(arn));
    if (added.length === 0)
      return void rows.set(
        alarm.arn,
        row(alarm, 'unchanged', `already silenced for ${listArns(ours.for)} since ${ours.at}`),
      );
    const { value, left } = silencedValue([...ours.for, ...added], ours.at);
    const fits = added.filter((arn) => !left.includes(arn));
    if (fits.length === 0)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'unchanged',
          `already silenced for ${listArns(ours.for)} since ${ours.at}; ${listArns(added)} not recorded (the tag holds ${TAG_VALUE_MAX} characters): its actions come back when those wake`,
        ),
      );
    toRecord.push({ alarm, value: value as string, had: ours.for, added: fits, left });
  });

  if (options.dryRun) {
    for (const { alarm } of toSilence)
      rows.set(
        alarm.arn,
        row(
          alarm,
          'planned',
          `disable actions while ${alarm.about.map(nameOf).join(', ')} is parked (tag ${SILENCED_TAG})`,
        ),
      );
    for (const { alarm, had, added } of toRecord)
      rows.set(
        alarm.arn,
        row(
          alarm,
          'planned',
          `already silenced for ${listArns(had)}: add ${listArns(added)} to ${SILENCED_TAG}`,
        ),
      );
    return alarms.flatMap((a) => rows.get(a.arn) ?? []);
  }

  const notRecorded = (left: readonly string[]) =>
    left.length > 0
      ? `; ${listArns(left)} not recorded (the tag holds ${TAG_VALUE_MAX} characters): actions come back when the others wake`
      : '';

  await mapLimit(
    toRecord,
    CONCURRENCY,
    async ({ alarm, value, had, added, left }) => {
      try {
        await writeTag(clients, alarm.arn, value);
        rows.set(
          alarm.arn,
          row(
            alarm,
            'changed',
            `already silenced for ${listArns(had)}; now also for ${listArns(added)}${notRecorded(left)}`,
          ),
        );
      } catch (error) {
        rows.set(
          alarm.arn,
          row(
            alarm,
            'failed',
            `silenced for ${listArns(had)}, but ${listArns(added)} could not be added to ${SILENCED_TAG}`,
            errorMessage(error),
          ),
        );
      }
    },
    {
      shouldStart: options.hasTime,
      notStarted: ({ alarm }) =>
        void rows.set(alarm.arn, row(alarm, 'undone', `${OUT_OF_TIME} (tag not written)`)),
    },
  );

  // Tag first: an alarm whose tag write failed is never disabled.
  const taggedOk = new Set<string>();
  await mapLimit(
    toSilence,
    CONCURRENCY,
    async (work) => {
      try {
        await writeTag(clients, work.alarm.arn, work.value);
        taggedOk.add(work.alarm.arn);
      } catch (error) {
        rows.set(
          work.alarm.arn,
          row(
            work.alarm,
            'failed',
            `${SILENCED_TAG} could not be written, so its actions were left enabled`,
            errorMessage(error),
          ),
        );
      }
    },
    {
      shouldStart: options.hasTime,
      notStarted: ({ alarm }) =>
        void rows.set(
          alarm.arn,
          row(alarm, 'undone', `${OUT_OF_TIME}: actions still enabled; the next stop silences it`),
        ),
    },
  );

  // In the order of the alarms, whatever order the tag writes finished in.
  const tagged = toSilence.filter((w) => taggedOk.has(w.alarm.arn));
  const { failed, unsent } = await batched(
    tagged.map((w) => w.alarm.name),
    options.hasTime,
    (AlarmNames) => clients.cloudwatch.send(new DisableAlarmActionsCommand({ AlarmNames })),
  );
  // A failed disable may still have landed (a timeout): ask AWS, and take our tag off only an alarm
  // whose actions are certainly still enabled; on one we cannot tell, the tag stays (with actions on,
  // the next stop rewrites it).
  const stillOn = failed.size > 0 ? await actionsEnabledNow(clients, [...failed.keys()]) : undefined;
  const disabledNow: typeof toSilence = [];
  await mapLimit(tagged, CONCURRENCY, async (work) => {
    const { alarm } = work;
    if (unsent.has(alarm.name))
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'undone',
          `${OUT_OF_TIME}: tagged ${SILENCED_TAG} but actions still enabled; the next stop disables them`,
        ),
      );
    const error = failed.get(alarm.name);
    if (error !== undefined && stillOn?.get(alarm.name) !== false) {
      let tag = `${SILENCED_TAG} left on it (harmless while actions are on; the next stop retries)`;
      if (stillOn?.get(alarm.name) === true) {
        try {
          await removeTag(clients, alarm.arn);
          tag = `${SILENCED_TAG} removed`;
        } catch {
          // keep the sentence above: the tag is still there
        }
      }
      return void rows.set(
        alarm.arn,
        row(alarm, 'failed', `actions could not be disabled and are still enabled; ${tag}`, error),
      );
    }
    disabledNow.push(work);
  });

  // Another run may have rewritten or removed the tag between our write and the disable (a start
  // waking another resource the alarm is about): read it again and put back what is missing, so an
  // alarm we disabled always carries a tag naming why. This follow-up runs even near the deadline.
  await mapLimit(disabledNow, CONCURRENCY, async ({ alarm, value, left }) => {
    const ours = parseSilenced(value) as Silenced;
    const base = `actions disabled while ${alarm.about.map(nameOf).join(', ')} is parked (${SILENCED_TAG}=${value})${notRecorded(left)}`;
    const read = await readTags(clients, alarm.arn);
    if ('gone' in read) return void rows.set(alarm.arn, row(alarm, 'unchanged', 'deleted meanwhile'));
    if ('error' in read)
      return void rows.set(
        alarm.arn,
        row(alarm, 'changed', `${base}; the tag could not be checked again`, read.error),
      );
    const now = parseSilenced(read.tags[SILENCED_TAG]);
    const missing = ours.for.filter((arn) => !now?.for.includes(arn));
    if (missing.length === 0) return void rows.set(alarm.arn, row(alarm, 'changed', base));
    const merged = silencedValue([...(now?.for ?? []), ...missing], now?.at ?? ours.at);
    try {
      await writeTag(clients, alarm.arn, merged.value as string);
      rows.set(
        alarm.arn,
        row(
          alarm,
          'changed',
          `${base}; the tag had been changed meanwhile and was written back (${merged.value})`,
        ),
      );
    } catch (error) {
      rows.set(
        alarm.arn,
        row(
          alarm,
          'failed',
          `actions disabled, but the tag was changed meanwhile and could not be written back: set ${SILENCED_TAG}=${value} by hand`,
          errorMessage(error),
        ),
      );
    }
  });

  return alarms.flatMap((a) => rows.get(a.arn) ?? []);
};

/**
 * Before (or as) a start wakes `alarms[].about`: enables the actions of exactly the alarms whose tag
 * `nightshift:silenced` names only resources being woken (batched), then removes the tag; an alarm still
 * silenced for another parked resource only loses the woken resources' `for=`. Alarms whose actions are
 * enabled are not read at all; alarms disabled without our tag stay disabled. One row per alarm.
 */
export const unsilence = async (
  clients: SilenceClients,
  alarms: readonly AlarmAbout[],
  options: Omit<SilenceOptions, 'now'> & {
    /** Only alarms silenced before this time (`at=`): the sweep leaves a silence that may be a run's in flight. */
    silencedBefore?: Date;
  },
): Promise<ResourceResult[]> => {
  const rows = new Map<string, ResourceResult>();
  const toEnable: Array<{ alarm: AlarmAbout; raw: string; ours: Silenced }> = [];
  const toRelease: Array<{ alarm: AlarmAbout; value: string; woken: string[]; rest: string[] }> = [];

  const disabled = alarms.filter((a) => a.about.length > 0 && !a.actionsEnabled);
  const reads = await readEach(clients, disabled, options.hasTime);
  disabled.forEach((alarm, i) => {
    const read = reads[i];
    if (read === undefined)
      return void rows.set(
        alarm.arn,
        row(alarm, 'undone', `${OUT_OF_TIME} (tags not read); the next start enables it`),
      );
    if ('gone' in read) return void rows.set(alarm.arn, row(alarm, 'unchanged', 'deleted meanwhile'));
    if ('error' in read)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'failed',
          `its tags could not be read, so its actions stay disabled; the next start retries`,
          read.error,
        ),
      );
    const raw = read.tags[SILENCED_TAG];
    if (raw === undefined)
      return void rows.set(
        alarm.arn,
        row(alarm, 'unchanged', `actions disabled, not by nightshift: left disabled`),
      );
    const ours = parseSilenced(raw);
    if (!ours)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'skipped',
          `actions disabled and ${SILENCED_TAG}="${raw}" is not one nightshift wrote: left disabled (fix or remove the tag by hand)`,
        ),
      );
    if (options.silencedBefore && !(Date.parse(ours.at) < options.silencedBefore.getTime()))
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'unchanged',
          `silenced at ${ours.at}, too recently to tell from a stop in flight: left disabled`,
        ),
      );
    const waking = new Set(alarm.about.map((r) => r.arn));
    const woken = ours.for.filter((arn) => waking.has(arn));
    const rest = ours.for.filter((arn) => !waking.has(arn));
    if (woken.length === 0)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'unchanged',
          `silenced for ${listArns(ours.for)} since ${ours.at}, not for this: left disabled`,
        ),
      );
    if (rest.length === 0) return void toEnable.push({ alarm, raw, ours });
    toRelease.push({ alarm, value: silencedValue(rest, ours.at).value as string, woken, rest });
  });

  if (options.dryRun) {
    for (const { alarm } of toEnable)
      rows.set(
        alarm.arn,
        row(
          alarm,
          'planned',
          `enable actions (silenced by nightshift while ${alarm.about.map(nameOf).join(', ')} was parked) and remove ${SILENCED_TAG}`,
        ),
      );
    for (const { alarm, woken, rest } of toRelease)
      rows.set(
        alarm.arn,
        row(
          alarm,
          'planned',
          `remove ${listArns(woken)} from ${SILENCED_TAG}; actions stay disabled for ${listArns(rest)}`,
        ),
      );
    return alarms.flatMap((a) => rows.get(a.arn) ?? []);
  }

  await mapLimit(
    toRelease,
    CONCURRENCY,
    async ({ alarm, value, woken, rest }) => {
      try {
        await writeTag(clients, alarm.arn, value);
        rows.set(
          alarm.arn,
          row(
            alarm,
            'changed',
            `${listArns(woken)} removed from ${SILENCED_TAG}; actions stay disabled for ${listArns(rest)}`,
          ),
        );
      } catch (error) {
        rows.set(
          alarm.arn,
          row(
            alarm,
            'failed',
            `${listArns(woken)} could not be removed from ${SILENCED_TAG}; actions stay disabled`,
            errorMessage(error),
          ),
        );
      }
    },
    {
      shouldStart: options.hasTime,
      notStarted: ({ alarm }) =>
        void rows.set(alarm.arn, row(alarm, 'undone', `${OUT_OF_TIME}; the next start does it`)),
    },
  );

  const { failed, unsent } = await batched(
    toEnable.map((w) => w.alarm.name),
    options.hasTime,
    (AlarmNames) => clients.cloudwatch.send(new EnableAlarmActionsCommand({ AlarmNames })),
  );

  // Enabled: remove the tag, unless it changed since we read it (another run silenced the alarm for
  // another resource meanwhile: its tag stays). This follow-up runs even near the deadline.
  await mapLimit(toEnable, CONCURRENCY, async ({ alarm, raw, ours }) => {
    if (unsent.has(alarm.name))
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'undone',
          `${OUT_OF_TIME}: actions still disabled, ${SILENCED_TAG} kept; the next start enables them`,
        ),
      );
    const error = failed.get(alarm.name);
    if (error !== undefined)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'failed',
          `actions could not be enabled and stay disabled, ${SILENCED_TAG} kept; the next start retries`,
          error,
        ),
      );
    const done = `actions enabled (silenced since ${ours.at} while ${alarm.about.map(nameOf).join(', ')} was parked)`;
    const read = await readTags(clients, alarm.arn);
    if ('gone' in read) return void rows.set(alarm.arn, row(alarm, 'unchanged', 'deleted meanwhile'));
    if ('tags' in read && read.tags[SILENCED_TAG] !== raw)
      return void rows.set(
        alarm.arn,
        row(
          alarm,
          'changed',
          `${done}; ${SILENCED_TAG} changed meanwhile (${read.tags[SILENCED_TAG] ?? 'removed'}): left as it is`,
        ),
      );
    try {
      await removeTag(clients, alarm.arn);
      rows.set(alarm.arn, row(alarm, 'changed', `${done}; ${SILENCED_TAG} removed`));
    } catch (e) {
      rows.set(
        alarm.arn,
        row(
          alarm,
          'failed',
          `${done}, but ${SILENCED_TAG} could not be removed: remove it by hand (a stop would take this alarm, if someone disables it, for one nightshift silenced)`,
          errorMessage(e),
        ),
      );
    }
  });

  return alarms.flatMap((a) => rows.get(a.arn) ?? []);
};

/** The sweep enables only silences older than this: longer than any run (a Lambda's 15 minutes, twice). */
export const SWEEP_AFTER_MS = 30 * 60_000;

/**
 * The sweep: an alarm nightshift silenced for a resource that is no longer parked would otherwise stay
 * disabled for good — a morning `unsilence` that failed or ran out of time, a parked resource started by
 * someone else, its parking tag removed by hand. A reconcile passes the resources it sees awake now
 * (running, and not being parked by this run); every alarm about them whose actions are disabled and
 * whose `nightshift:silenced` names only awake resources is enabled and untagged, exactly as a start
 * would. Alarms disabled without our tag, or still silenced for a parked resource, are not touched and
 * not reported; only what the sweep did (or failed to do) is. Throws OutOfTimeError like findAlarmsAbout.
 * Not covered: a resource deleted for good (nothing names it awake); its alarm keeps its tag.
 */
export const sweepSilenced = async (
  clients: SilenceClients,
  awake: readonly ParkedResource[],
  options: SilenceOptions,
): Promise<ResourceResult[]> => {
  if (awake.length === 0) return [];
  const disabled = (await findAlarmsAbout(clients, awake, options.hasTime)).filter((a) => !a.actionsEnabled);
  // A run that parks one of them right now (its lease, not ours) silences with `at=` its own start: a
  // silence younger than SWEEP_AFTER_MS may be that one, seen awake by our earlier read. Left alone.
  const rows = await unsilence(clients, disabled, {
    dryRun: options.dryRun,
    hasTime: options.hasTime,
    silencedBefore: new Date(options.now.getTime() - SWEEP_AFTER_MS),
  });
  return rows
    .filter((r) => r.outcome !== 'unchanged' && r.outcome !== 'skipped')
    .map((r) => ({
      ...r,
      detail: `still silenced although its resource runs (a start that could not enable it, or a start outside nightshift): ${r.detail}`,
    }));
};

/** The actions `silence` and `unsilence` send (for the meta test that checks a role covers them). */
export const SILENCE_ACTIONS = [
  'cloudwatch:DescribeAlarms',
  'cloudwatch:ListTagsForResource',
  'cloudwatch:TagResource',
  'cloudwatch:UntagResource',
  'cloudwatch:DisableAlarmActions',
  'cloudwatch:EnableAlarmActions',
] as const;
