import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';

/** `arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-unhealthy` (alarm names may hold any character). */
export const ALARM_ARN = /^arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:.{1,255}$/;

/** The alarm states CloudWatch reports. Only ALARM makes nightshift act. */
export const ALARM_STATES = ['OK', 'ALARM', 'INSUFFICIENT_DATA'] as const;

const AlarmMetric = z.looseObject({
  id: z.optional(z.string()),
  /** Absent for metric-math expressions, which name no resource. */
  metricStat: z.optional(
    z.looseObject({
      metric: z.looseObject({
        namespace: z.optional(z.string()),
        name: z.optional(z.string()),
        dimensions: z.optional(z.record(z.string(), z.string())),
      }),
    }),
  ),
  expression: z.optional(z.string()),
  /** False for a metric that only feeds a metric-math expression; the alarm is on what returns data. */
  returnData: z.optional(z.boolean()),
});

const AlarmState = z.looseObject({
  value: z.string(),
  reason: z.optional(z.string()),
  timestamp: z.optional(z.string()),
  /**
   * Composite alarms with an actions suppressor: why the alarm's actions are suppressed in this state
   * change (`Alarm`: the suppressor is in ALARM; `WaitPeriod`: the composite waits, up to its
   * actionsSuppressorWaitPeriod, for the suppressor to go into ALARM; `ExtensionPeriod`: it waits, up to
   * its actionsSuppressorExtensionPeriod, after the suppressor left ALARM). After a wait period AWS says
   * the composite alarm performs its actions. Absent when the actions run now.
   */
  actionsSuppressedBy: z.optional(z.string()),
  actionsSuppressedReason: z.optional(z.string()),
});

/**
 * What the alarm's state change says about itself: the same `detail` in an EventBridge event and in
 * the `alarmData` of an alarm's Lambda action. `muteDetail` is set when an alarm mute rule mutes the
 * alarm's actions (it keeps evaluating and changing state, but its actions do not run).
 */
const AlarmDetail = z.looseObject({
  alarmName: z.string(),
  state: AlarmState,
  previousState: z.optional(AlarmState),
  configuration: z.optional(
    z.looseObject({
      description: z.optional(z.string()),
      metrics: z.optional(z.array(AlarmMetric)),
      /** Composite alarms only: the rule over other alarms; a composite alarm has no `metrics`. */
      alarmRule: z.optional(z.string()),
      actionsSuppressor: z.optional(z.string()),
      // Seconds; read for the report only, so any shape is taken.
      actionsSuppressorWaitPeriod: z.optional(z.unknown()),
      actionsSuppressorExtensionPeriod: z.optional(z.unknown()),
    }),
  ),
  muteDetail: z.optional(
    z.looseObject({
      mutedByArn: z.optional(z.string()),
      muteWindowStart: z.optional(z.string()),
      muteWindowEnd: z.optional(z.string()),
    }),
  ),
});

/**
 * EventBridge `CloudWatch Alarm State Change`. The envelope is not strict: EventBridge and CloudWatch
 * add fields over time (alarmTags, muteDetail…). Composite alarms carry an `alarmRule` and no
 * `metrics`. The alarm's ARN is `resources[0]`.
 */
export const AlarmStateChangeEvent = z
  .looseObject({
    source: z.literal('aws.cloudwatch'),
    'detail-type': z.literal('CloudWatch Alarm State Change'),
    id: z.optional(z.string()),
    account: z.optional(z.string()),
    region: z.optional(z.string()),
    time: z.optional(z.string()),
    resources: z.array(z.string()).check(z.minLength(1, 'expected the alarm ARN in resources')),
    detail: AlarmDetail,
  })
  .check(
    z.refine((e) => ALARM_ARN.test(e.resources[0] ?? ''), {
      message: 'expected the ARN of a CloudWatch alarm',
      path: ['resources', 0],
    }),
  );

export type AlarmStateChangeEvent = Infer<typeof AlarmStateChangeEvent>;

/**
 * What an alarm sends a Lambda function it invokes directly, as its own alarm action (not through
 * EventBridge): the same state change, with other field names: `alarmArn` for `resources[0]`,
 * `alarmData` for `detail`, `accountId` for `account`, and no `detail-type`, `id` or `resources`.
 * The function must allow the principal `lambda.alarms.cloudwatch.amazonaws.com` to invoke it.
 */
export const AlarmLambdaAction = z.looseObject({
  source: z.literal('aws.cloudwatch'),
  alarmArn: z.string().check(z.regex(ALARM_ARN, 'expected the ARN of a CloudWatch alarm')),
  accountId: z.optional(z.string()),
  region: z.optional(z.string()),
  time: z.optional(z.string()),
  alarmData: AlarmDetail,
});

export type AlarmLambdaAction = Infer<typeof AlarmLambdaAction>;

/** True for the payload of an alarm's Lambda action (it names the alarm in `alarmArn`/`alarmData`). */
export const isAlarmLambdaAction = (event: unknown): boolean =>
  typeof event === 'object' && event !== null && ('alarmArn' in event || 'alarmData' in event);

/** The Lambda action's payload as the EventBridge event of the same state change. */
export const fromLambdaAction = (action: AlarmLambdaAction): AlarmStateChangeEvent => ({
  source: action.source,
  'detail-type': 'CloudWatch Alarm State Change',
  ...(action.accountId !== undefined && { account: action.accountId }),
  ...(action.region !== undefined && { region: action.region }),
  ...(action.time !== undefined && { time: action.time }),
  resources: [action.alarmArn],
  detail: action.alarmData,
});

/**
 * Why the alarm's actions do not run for this state change, or undefined when they do: an alarm mute
 * rule mutes it (`muteDetail`: it keeps evaluating and changing state, but its actions are muted), or
 * its actions suppressor suppresses them (`state.actionsSuppressedBy`; only the new state counts, not
 * the previous one). A restart is one of the alarm's actions. The text is a clause for a report row.
 */
export const actionsHeld = (event: AlarmStateChangeEvent): string | undefined => {
  const { muteDetail, state } = event.detail;
  if (muteDetail) {
    const window = [muteDetail.muteWindowStart, muteDetail.muteWindowEnd].filter(Boolean).join(' to ');
    return (
      `muted by ${muteDetail.mutedByArn ?? 'an alarm mute rule'}${window ? ` (${window})` : ''}, so its actions ` +
      'are muted for this state change'
    );
  }
  if (state.actionsSuppressedBy) return suppression(event);
  return undefined;
};

/**
 * What `state.actionsSuppressedBy` says, as CloudWatch defines it (API CompositeAlarm, ActionsSuppressedBy):
 * the actions are suppressed for this state change; after a wait or extension period that ends without
 * the suppressor in ALARM, the composite alarm performs its actions then.
 */
const suppression = (event: AlarmStateChangeEvent): string => {
  const { state, configuration } = event.detail;
  const suppressor = configuration?.actionsSuppressor
    ? `suppressor alarm ${configuration.actionsSuppressor}`
    : 'its suppressor alarm';
  const upTo = (seconds: unknown) => (typeof seconds === 'number' ? ` up to ${seconds} s` : '');
  const by = state.actionsSuppressedBy;
  const why =
    by === 'Alarm' || by === 'ALARM'
      ? `${suppressor} is in ALARM`
      : by === 'WaitPeriod'
        ? `it waits${upTo(configuration?.actionsSuppressorWaitPeriod)} for ${suppressor} to go into ALARM, and performs ` +
          'its actions after that wait unless the suppressor went into ALARM'
        : by === 'ExtensionPeriod'
          ? `it waits${upTo(configuration?.actionsSuppressorExtensionPeriod)} after ${suppressor} left ALARM, and ` +
            'performs its actions after that wait'
          : `${suppressor}`;
  return `its actions are suppressed for this state change (actionsSuppressedBy ${by}: ${why})`;
};

/** A composite alarm: its state comes from a rule over other alarms (`alarmRule`), and it has no metrics. */
export const isComposite = (event: AlarmStateChangeEvent): boolean =>
  event.detail.configuration?.alarmRule !== undefined;

/**
 * Why a composite alarm can restart nothing, with what its actions do in this state change: it has no
 * metrics, so no dimension names an instance, group or service.
 */
export const compositeReason = (event: AlarmStateChangeEvent): string => {
  const rule = event.detail.configuration?.alarmRule ?? '';
  const shown = rule.length > 200 ? `${rule.slice(0, 200)}…` : rule;
  const suppressed = event.detail.state.actionsSuppressedBy ? `; ${suppression(event)}` : '';
  return (
    `is a composite alarm (${shown}): it has no metrics, so no InstanceId, AutoScalingGroupName or ` +
    `ClusterName/ServiceName dimension says what to restart; tag the metric alarms in its rule instead${suppressed}`
  );
};

/**
 * CloudWatch's times: `2026-11-23T02:14:40.989+0000` (an offset without a colon, which ISO 8601's
 * extended format and Date.parse do not promise to read) or `…Z`. Undefined when it is no such time.
 */
export const parseAlarmTime = (text: string | undefined): Date | undefined => {
  const match = text
    ?.trim()
    .match(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z|[+-]\d{2}:?\d{2})$/);
  if (!match) return undefined;
  const [, local = '', zone = ''] = match;
  const offset = zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const at = new Date(`${local.replace(/(\.\d{3})\d+$/, '$1')}${offset}`);
  return Number.isNaN(at.getTime()) ? undefined : at;
};

/**
 * When the alarm changed into this state: `detail.state.timestamp`, which the EventBridge event and the
 * alarm's Lambda action (`alarmData.state.timestamp`) both carry for the same state change. Undefined
 * when it is missing or unreadable.
 */
export const stateChangedAt = (event: AlarmStateChangeEvent): Date | undefined =>
  parseAlarmTime(event.detail.state.timestamp);

type AlarmMetric = NonNullable<
  NonNullable<AlarmStateChangeEvent['detail']['configuration']>['metrics']
>[number];

const dimensionsOf = (metrics: AlarmMetric[]): Record<string, string>[] =>
  metrics
    .map((m) => m.metricStat?.metric.dimensions)
    .filter((d): d is Record<string, string> => d !== undefined && Object.keys(d).length > 0);

/** Metric math: more than one metric, and they say which of them return data (CloudWatch sets it). */
const isMetricMath = (metrics: AlarmMetric[]) =>
  metrics.length > 1 && metrics.some((m) => m.returnData !== undefined);

/**
 * The dimensions of the metrics the alarm is on, one map per metric that names one. When the metrics
 * say which return data, only those count: a metric-math alarm is on its expression, and the metrics
 * with `returnData: false` only feed it (a fleet average, a baseline instance): they name inputs, not
 * what is alarming. A simple alarm's single metric always counts, and so does every metric of an
 * event that says nothing about returnData.
 */
export const alarmDimensions = (event: AlarmStateChangeEvent): Record<string, string>[] => {
  const metrics = event.detail.configuration?.metrics ?? [];
  return dimensionsOf(isMetricMath(metrics) ? metrics.filter((m) => m.returnData !== false) : metrics);
};

/** The dimensions of the metrics that only feed a metric-math expression (`returnData: false`). */
export const inputOnlyDimensions = (event: AlarmStateChangeEvent): Record<string, string>[] => {
  const metrics = event.detail.configuration?.metrics ?? [];
  return isMetricMath(metrics) ? dimensionsOf(metrics.filter((m) => m.returnData === false)) : [];
};
