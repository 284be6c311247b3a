/**
 * Scheduled tasks in parked clusters (issue 10): after a stop, the EventBridge rules on the default bus
 * whose target is an ECS task in a cluster the stop parked are listed in the report, one `skipped` row
 * per rule, as a warning: tonight they will fail or run without the cluster's services. Read-only:
 * nothing is disabled, nothing fails the run.
 *
 * EventBridge Scheduler schedules are not read yet: `@aws-sdk/client-scheduler` is not a dependency of
 * the project (see the issue-10 report).
 */
import {
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  type Rule,
  type Target,
} from '@aws-sdk/client-eventbridge';
import { sdkConfig } from '#shared/aws/config.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { assertTime, pagesWithin } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import type { ResourceResult } from '#shared/report.ts';

export const RULE_TYPE = 'eventbridge-rule';

// The most each API returns in one call (EventBridge API reference, ListRules and ListTargetsByRule:
// "Limit: Valid Range: Minimum value of 1. Maximum value of 100").
/** ListRules: Limit 1–100. */
const LIST_RULES_PAGE = 100;
/** ListTargetsByRule: Limit 1–100 (a rule has at most 5 targets today; paged all the same). */
const LIST_TARGETS_PAGE = 100;
const READ_CONCURRENCY = 4;

let client: EventBridgeClient | undefined;
/** One client per cold start, built on first use so tests can set AWS_ENDPOINT_URL beforehand. */
export const eventBridgeClient = (): EventBridgeClient => (client ??= new EventBridgeClient(sdkConfig()));

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

/**
 * The warning rows of a stop: one per enabled rule on the default bus with an ECS target (Arn = the
 * cluster's ARN) in a cluster this stop parked. Without an EventBridge client, nothing is checked. A read
 * that fails (no permission, throttled, out of time) is one `skipped` row saying so.
 */
export const scheduledTaskRows = async (
  rows: readonly ResourceResult[],
  options: { dryRun: boolean; hasTime: () => boolean; events?: EventBridgeClient },
): Promise<ResourceResult[]> => {
  const parked = parkedClusters(rows);
  if (parked.size === 0 || !options.events) return [];
  const events = options.events;
  try {
    // A DISABLED rule runs nothing tonight: not a warning.
    const rules = (await rulesOf(events, options.hasTime)).filter((r) => r.Name && r.State !== 'DISABLED');
    const found = await mapLimit(rules, READ_CONCURRENCY, async (rule) => {
      // One call per rule: the deadline is checked before each, not only between pages.
      assertTime(options.hasTime, `the targets of EventBridge rule ${rule.Name}`);
      const targets = await targetsOf(events, rule.Name!, options.hasTime);
      const clusters = [...new Set(targets.flatMap((t) => (t.Arn && parked.has(t.Arn) ? [t.Arn] : [])))];
      return clusters.length > 0 ? [{ rule, clusters }] : [];
    });
    const by = options.dryRun ? 'to be parked by this stop' : 'parked by this stop';
    return found.flat().map(({ rule, clusters }) => {
      const names = clusters.map(clusterName);
      return {
        arn: rule.Arn ?? rule.Name!,
        type: RULE_TYPE,
        outcome: 'skipped',
        detail:
          `scheduled task ${rule.Name} targets cluster ${names.join(', ')}, ${by}: it will fail or run without ` +
          `its services tonight; disable it or wake the cluster (${names.map((n) => `nightshift wake --cluster ${n} --for <duration>`).join('; ')})`,
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
