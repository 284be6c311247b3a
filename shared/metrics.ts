import { EmfMetrics, MetricUnit } from './emf.ts';
import { OUTCOMES, type Summary } from './report.ts';

/**
 * CloudWatch metrics of every run, written as Embedded Metric Format log lines (no API call, no IAM).
 * The alarms and the dashboard in infra/observability.yml read exactly these names and dimensions,
 * and test/meta checks that they match.
 */
export const METRICS_NAMESPACE = 'nightshift';
/** One per invocation, whatever its outcome. */
export const RUNS_METRIC = 'runs';
/** A run whose summary could not be sent to the SNS topic (the run itself is not failed by that). */
export const SUMMARY_PUBLISH_FAILED_METRIC = 'summaryPublishFailed';
/** One metric per outcome (`changed`, `planned`, `unchanged`, `skipped`, `failed`): resources per run. */
export const OUTCOME_METRICS = OUTCOMES;

/**
 * Every metric is emitted under both dimension sets in one EMF record: per function and action for
 * the dashboard, and per function alone, which is what an alarm can watch without knowing the
 * actions. `stage` keeps dev and prod apart when they share an account and region.
 */
export const FUNCTION_DIMENSIONS = ['service', 'stage'] as const;
export const ACTION_DIMENSIONS = ['service', 'stage', 'action'] as const;

/** The `action` of a run refused before it started: its event did not parse (InputError). */
export const INVALID_EVENT_ACTION = 'invalid-event';
/** The `action` of a run that threw without a report: configuration or an unexpected error. */
export const CRASHED_ACTION = 'crashed';

/** The stage the function is deployed in (serverless.yml sets NIGHTSHIFT_STAGE); `local` elsewhere. */
export const stageName = (env: NodeJS.ProcessEnv = process.env): string => env.NIGHTSHIFT_STAGE || 'local';

/**
 * One metrics writer per function, built at cold start (shared/emf.ts). The namespace is fixed in code,
 * because the alarms depend on it. POWERTOOLS_METRICS_DISABLED=true turns the output off (the test suite
 * does, except in the tests of this module).
 */
export const runMetrics = (serviceName: string): EmfMetrics =>
  new EmfMetrics({
    namespace: METRICS_NAMESPACE,
    serviceName,
    defaultDimensions: { stage: stageName() },
  });

/**
 * Counts one run: `runs` = 1 and every outcome, zeros included, so dashboards draw lines and
 * alarms see data rather than gaps. Written by the caller's flush (flushMetrics middleware).
 */
export const countRun = (metrics: EmfMetrics, action: string, summary: Summary): void => {
  metrics.addDimension('action', action);
  // An empty dimension set adds the per-function set (service, stage) to the same record.
  metrics.addDimensions({});
  metrics.addMetric(RUNS_METRIC, MetricUnit.Count, 1);
  for (const outcome of OUTCOME_METRICS) metrics.addMetric(outcome, MetricUnit.Count, summary[outcome]);
};

export const countSummaryPublishFailed = (metrics: EmfMetrics): void => {
  metrics.addMetric(SUMMARY_PUBLISH_FAILED_METRIC, MetricUnit.Count, 1);
};

/** Middy middleware: the invocation's metrics written when it ends, whether it returned or threw. */
export const flushMetrics = (metrics: EmfMetrics) => ({
  after: () => metrics.flush(),
  onError: () => metrics.flush(),
});
