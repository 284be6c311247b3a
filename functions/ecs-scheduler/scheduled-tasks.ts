/**
 * Scheduled tasks in parked clusters (issue 10): after a stop, the EventBridge rules on the default bus
 * and the EventBridge Scheduler schedules (every schedule group) whose target is an ECS task in a cluster
 * the stop parked are listed in the report, one `skipped` row per rule or schedule, as a warning: tonight
 * they will fail or run without the cluster's services. Read-only: nothing is disabled, nothing fails
 * the run.
 */
import {
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  type Rule,
  type Target,
} from '@aws-sdk/client-eventbridge';
import {
  GetScheduleCommand,
  ListSchedulesCommand,
  SchedulerClient,
  type GetScheduleOutput,
  type ScheduleSummary,
} from '@aws-sdk/client-scheduler';
import { clientFactory } from '#shared/aws/config.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { assertTime, OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import type { ResourceResult } from '#shared/report.ts';
import { onDemand, type OnDemand } from './inventory.ts';

export const RULE_TYPE = 'eventbridge-rule';
export const SCHEDULE_TYPE = 'scheduler-schedule';

// The most each API returns in one call (EventBridge API reference, ListRules and ListTargetsByRule:
// "Limit: Valid Range: Minimum value of 1. Maximum value of 100").
/** ListRules: Limit 1–100. */
const LIST_RULES_PAGE = 100;
/** ListTargetsByRule: Limit 1–100 (a rule has at most 5 targets today; paged all the same). */
const LIST_TARGETS_PAGE = 100;
/** ListSchedules: MaxResults 1–100 (EventBridge Scheduler API reference, ListSchedules). */
const LIST_SCHEDULES_PAGE = 100;
const READ_CONCURRENCY = 4;

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const eventBridgeClient = clientFactory((config) => new EventBridgeClient(config));

/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const schedulerClient = clientFactory((config) => new SchedulerClient(config));

/** A service row's cluster, as `arn:<partition>:ecs:<region>:<account>:cluster/<name>`. */
const clusterOfService = (arn: string): string | undefined => {
  const m = arn.match(/^(arn:[^:]+:ecs:[^:]*:[^:]*):service\/([^/]+)\/[^/]+$/);
  return m ? `${m[1]}:cluster/${m[2]}` : undefined;
};

/** The clusters of a stop's service rows that are parked now (or would be, in a dry run). */
const PARKED = new Set(['changed', 'unchanged', 'planned']);
export const parkedClusters = (rows: readonly ResourceResult[]): Set<string> =>
  new Set(
    rows
      .filter((r) => r.type === 'ecs-service' && PARKED.has(r.outcome))
      .flatMap((r) => clusterOfService(r.arn) ?? []),
  );

async function* pagesOf<P extends { NextToken?: string }>(
  send: (token: string | undefined) => Promise<P>,
): AsyncGenerator<P> {
  let token: string | undefined;
  do {
    const page = await send(token);
    yield page;
    token = page.NextToken || undefined;
  } while (token);
}

const rulesOf = async (events: EventBridgeClient, hasTime: () => boolean): Promise<Rule[]> => {
  const rules: Rule[] = [];
  const pages = pagesOf((NextToken) =>
    events.send(new ListRulesCommand({ Limit: LIST_RULES_PAGE, ...(NextToken && { NextToken }) })),
  );
  for await (const page of pagesWithin(pages, hasTime, 'EventBridge rules'))
    rules.push(...(page.Rules ?? []));
  return rules;
};

const targetsOf = async (
  events: EventBridgeClient,
  rule: string,
  hasTime: () => boolean,
): Promise<Target[]> => {
  const targets: Target[] = [];
  const pages = pagesOf((NextToken) =>
    events.send(
      new ListTargetsByRuleCommand({ Rule: rule, Limit: LIST_TARGETS_PAGE, ...(NextToken && { NextToken }) }),
    ),
  );
  for await (const page of pagesWithin(pages, hasTime, `the targets of EventBridge rule ${rule}`))
    targets.push(...(page.Targets ?? []));
  return targets;
};

const clusterName = (arn: string) => arn.split(':cluster/')[1] ?? arn;
const wakeCommands = (names: readonly string[]) =>
  names.map((n) => `nightshift wake --cluster ${n} --for <duration>`).join('; ');
const parkedBy = (dryRun: boolean) => (dryRun ? 'to be parked by this stop' : 'parked by this stop');

interface ReadOptions {
  dryRun: boolean;
  hasTime: () => boolean;
}

/**
 * One row per enabled rule on the default bus with an ECS target (Arn = the cluster's ARN) in a parked
 * cluster. A read that fails (no permission, throttled, out of time) is one `skipped` row saying so.
 */
const ruleRows = async (
  parked: ReadonlySet<string>,
  client: OnDemand<EventBridgeClient>,
  options: ReadOptions,
): Promise<ResourceResult[]> => {
  try {
    const events = await onDemand(client);
    // A DISABLED rule runs nothing tonight: not a warning.
    const rules = (await rulesOf(events, options.hasTime)).filter((r) => r.Name && r.State !== 'DISABLED');
    const found = await mapLimit(rules, READ_CONCURRENCY, async (rule) => {
      // One call per rule: the deadline is checked before each, not only between pages.
      assertTime(options.hasTime, `the targets of EventBridge rule ${rule.Name}`);
      const targets = await targetsOf(events, rule.Name!, options.hasTime);
      const clusters = [...new Set(targets.flatMap((t) => (t.Arn && parked.has(t.Arn) ? [t.Arn] : [])))];
      return clusters.length > 0 ? [{ rule, clusters }] : [];
    });
    return found.flat().map(({ rule, clusters }) => {
      const names = clusters.map(clusterName);
      return {
        arn: rule.Arn ?? rule.Name!,
        type: RULE_TYPE,
        outcome: 'skipped',
        detail:
          `scheduled task ${rule.Name} targets cluster ${names.join(', ')}, ${parkedBy(options.dryRun)}: it will fail or run without ` +
          `its services tonight; disable it or wake the cluster (${wakeCommands(names)})`,
      };
    });
  } catch (error) {
    return [
      {
        arn: 'eventbridge-rules',
        type: RULE_TYPE,
        outcome: 'skipped',
        detail:
          `the scheduled tasks (EventBridge rules) targeting the parked clusters could not be checked: ` +
          `${errorMessage(error)}; check them by hand (aws events list-rule-names-by-target --target-arn <cluster ARN>)`,
      },
    ];
  }
};

/**
 * The universal target that calls ECS RunTask, `arn:aws:scheduler:::aws-sdk:ecs:runTask` (EventBridge
 * Scheduler user guide, "Using universal targets": `arn:<partition>:scheduler:::aws-sdk:<service>:<apiAction>`,
 * the request parameters in `Input` as JSON). A templated ECS target has the cluster's ARN as its `Arn`
 * and the task in `EcsParameters` (API reference, Target).
 */
const UNIVERSAL_RUN_TASK = /^arn:[^:]+:scheduler:::aws-sdk:ecs:runtask$/i;
/** Where to reach the schedules by hand, in every row that could not say more. */
const LIST_BY_HAND = 'aws scheduler list-schedules --state ENABLED';

/** Every ENABLED schedule of every schedule group (no GroupName filter), paged at the maximum. */
const schedulesOf = async (
  scheduler: SchedulerClient,
  hasTime: () => boolean,
): Promise<ScheduleSummary[]> => {
  const schedules: ScheduleSummary[] = [];
  const pages = pagesOf((NextToken) =>
    scheduler.send(
      new ListSchedulesCommand({
        MaxResults: LIST_SCHEDULES_PAGE,
        State: 'ENABLED',
        ...(NextToken && { NextToken }),
      }),
    ),
  );
  for await (const page of pagesWithin(pages, hasTime, 'EventBridge Scheduler schedules'))
    schedules.push(...(page.Schedules ?? []));
  return schedules;
};

/**
 * The ARN of the cluster a universal ecs:runTask target runs its task in: its Input's `Cluster`, a name
 * or an ARN; without one, RunTask assumes the cluster named `default` (ECS API reference, RunTask). A name
 * is a cluster in the schedule's own region and account. `undefined` when the Input is not a JSON object.
 */
const universalCluster = (scheduleArn: string, input: string | undefined): string | undefined => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input ?? '{}');
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  // Scheduler's universal targets take the API's parameters in PascalCase (`Cluster`); the ECS API
  // spells it `cluster`: either is read.
  const fields = parsed as { Cluster?: unknown; cluster?: unknown };
  const cluster = fields.Cluster ?? fields.cluster ?? 'default';
  if (typeof cluster !== 'string' || cluster === '') return undefined;
  if (cluster.startsWith('arn:')) return cluster;
  const at = scheduleArn.match(/^arn:([^:]+):scheduler:([^:]+):([^:]+):/);
  return at ? `arn:${at[1]}:ecs:${at[2]}:${at[3]}:cluster/${cluster}` : undefined;
};

/** What reading one candidate schedule found: a row, nothing (not ours to warn about), or no time left. */
type ScheduleFinding = ResourceResult | 'none' | OutOfTimeError;

/**
 * One row per ENABLED EventBridge Scheduler schedule, in any schedule group, whose target runs an ECS
 * task in a parked cluster: a templated target whose Arn is the parked cluster's ARN, or the universal
 * ecs:runTask target whose Input names it. ListSchedules gives only the target's ARN, so GetSchedule is
 * called for those two kinds alone (the Input is in GetSchedule only). A schedule whose GetSchedule fails
 * still gets its row (what the summary says, or that it could not be read); the list failing, or the
 * deadline leaving universal targets unread, is one row saying so.
 */
const scheduleRows = async (
  parked: ReadonlySet<string>,
  client: OnDemand<SchedulerClient>,
  options: ReadOptions,
): Promise<ResourceResult[]> => {
  const row = (schedule: ScheduleSummary, detail: string): ResourceResult => ({
    arn: schedule.Arn ?? `${schedule.GroupName}/${schedule.Name}`,
    type: SCHEDULE_TYPE,
    outcome: 'skipped',
    detail,
  });
  const label = (s: ScheduleSummary) =>
    `scheduled task ${s.Name} in schedule group ${s.GroupName ?? 'default'}`;
  const warning = (s: ScheduleSummary, cluster: string, note = '') => {
    const name = clusterName(cluster);
    return row(
      s,
      `${label(s)} targets cluster ${name}, ${parkedBy(options.dryRun)}: it will fail or run without its ` +
        `services tonight; disable it or wake the cluster (${wakeCommands([name])})${note}`,
    );
  };
  const byHand = (s: ScheduleSummary) =>
    `aws scheduler get-schedule --group-name ${s.GroupName ?? 'default'} --name ${s.Name}`;
  const parkedNames = [...parked].map(clusterName).join(', ');

  const read = async (scheduler: SchedulerClient, summary: ScheduleSummary): Promise<ScheduleFinding> => {
    const listed = summary.Target?.Arn ?? '';
    const templated = parked.has(listed) ? listed : undefined;
    let schedule: GetScheduleOutput;
    try {
      // One call per schedule: the deadline is checked before each.
      assertTime(options.hasTime, `EventBridge Scheduler schedule ${summary.GroupName}/${summary.Name}`);
      schedule = await scheduler.send(
        new GetScheduleCommand({
          Name: summary.Name,
          ...(summary.GroupName && { GroupName: summary.GroupName }),
        }),
      );
    } catch (error) {
      // What the list said is enough for a templated target: its ARN is the parked cluster's.
      if (error instanceof OutOfTimeError) return templated ? warning(summary, templated) : error;
      // Deleted since it was listed: it runs nothing tonight.
      if ((error as Error).name === 'ResourceNotFoundException') return 'none';
      if (templated)
        return warning(summary, templated, ` (its details could not be read: ${errorMessage(error)})`);
      return row(
        summary,
        `${label(summary)} calls ECS RunTask but could not be read: ${errorMessage(error)}; it may run a task in ` +
          `a cluster ${parkedBy(options.dryRun)} (${parkedNames}): check it by hand (${byHand(summary)})`,
      );
    }
    // Disabled since it was listed: it runs nothing tonight.
    if (schedule.State === 'DISABLED') return 'none';
    const target = schedule.Target?.Arn ?? listed;
    if (parked.has(target)) return warning(summary, target);
    if (!UNIVERSAL_RUN_TASK.test(target)) return 'none';
    const cluster = universalCluster(schedule.Arn ?? summary.Arn ?? '', schedule.Target?.Input);
    if (cluster === undefined)
      return row(
        summary,
        `${label(summary)} calls ECS RunTask with an Input that names no cluster nightshift can read; it may run ` +
          `a task in a cluster ${parkedBy(options.dryRun)} (${parkedNames}): check it by hand (${byHand(summary)})`,
      );
    return parked.has(cluster) ? warning(summary, cluster) : 'none';
  };

  try {
    const scheduler = await onDemand(client);
    const candidates = (await schedulesOf(scheduler, options.hasTime)).filter(
      (s) =>
        s.Name &&
        s.State !== 'DISABLED' &&
        (parked.has(s.Target?.Arn ?? '') || UNIVERSAL_RUN_TASK.test(s.Target?.Arn ?? '')),
    );
    const found = await mapLimit(candidates, READ_CONCURRENCY, (s) => read(scheduler, s));
    const rows = found.filter((f): f is ResourceResult => typeof f === 'object' && !(f instanceof Error));
    const unread = found.filter((f) => f instanceof OutOfTimeError);
    if (unread.length > 0)
      rows.push({
        arn: 'scheduler-schedules',
        type: SCHEDULE_TYPE,
        outcome: 'skipped',
        detail:
          `${unread.length} scheduled task(s) in EventBridge Scheduler calling ECS RunTask could not be read: ` +
          `${errorMessage(unread[0])}; they may run tasks in the clusters ` +
          `${parkedBy(options.dryRun)} (${parkedNames}): check them by hand (${LIST_BY_HAND})`,
      });
    return rows;
  } catch (error) {
    return [
      {
        arn: 'scheduler-schedules',
        type: SCHEDULE_TYPE,
        outcome: 'skipped',
        detail:
          `the scheduled tasks (EventBridge Scheduler schedules) targeting the parked clusters could not be read: ` +
          `${errorMessage(error)}; check them by hand (${LIST_BY_HAND})`,
      },
    ];
  }
};

/**
 * The warning rows of a stop: the EventBridge rules (default bus) and the EventBridge Scheduler schedules
 * (every group) that run an ECS task in a cluster this stop parked, one `skipped` row each. Each half
 * is read only with its client; a half whose reads fail gives one row saying so and never fails the run.
 */
export const scheduledTaskRows = async (
  rows: readonly ResourceResult[],
  options: ReadOptions & { events?: OnDemand<EventBridgeClient>; scheduler?: OnDemand<SchedulerClient> },
): Promise<ResourceResult[]> => {
  const parked = parkedClusters(rows);
  if (parked.size === 0) return [];
  const [rules, schedules] = await Promise.all([
    options.events ? ruleRows(parked, options.events, options) : [],
    options.scheduler ? scheduleRows(parked, options.scheduler, options) : [],
  ]);
  return [...rules, ...schedules];
};
