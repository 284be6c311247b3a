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
});

const AlarmState = z.looseObject({
  value: z.string(),
  reason: z.optional(z.string()),
  timestamp: z.optional(z.string()),
});

/**
 * EventBridge `CloudWatch Alarm State Change`. The envelope is not strict: EventBridge and CloudWatch
 * add fields over time (alarmTags, actionsSuppressedBy…). Composite alarms carry an `alarmRule` and
 * no `metrics`. The alarm's ARN is `resources[0]`.
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
    detail: z.looseObject({
      alarmName: z.string(),
      state: AlarmState,
      previousState: z.optional(AlarmState),
      configuration: z.optional(
        z.looseObject({
          description: z.optional(z.string()),
          metrics: z.optional(z.array(AlarmMetric)),
          alarmRule: z.optional(z.string()),
        }),
      ),
    }),
  })
  .check(
    z.refine((e) => ALARM_ARN.test(e.resources[0] ?? ''), {
      message: 'expected the ARN of a CloudWatch alarm',
      path: ['resources', 0],
    }),
  );

export type AlarmStateChangeEvent = Infer<typeof AlarmStateChangeEvent>;

/** Every metric dimension of the alarm, one map per metric that names one (metric math names none). */
export const alarmDimensions = (event: AlarmStateChangeEvent): Record<string, string>[] =>
  (event.detail.configuration?.metrics ?? [])
    .map((m) => m.metricStat?.metric.dimensions)
    .filter((d): d is Record<string, string> => d !== undefined && Object.keys(d).length > 0);
