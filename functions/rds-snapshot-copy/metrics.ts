import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, stageName } from '#shared/metrics.ts';
import type { CopyPlan } from './plan.ts';

export const SERVICE = 'rds-snapshot-copy';

/**
 * Hours since the oldest source snapshot that should have a copy in a destination region was taken,
 * when it still has no available copy there (0 when every one has). Written by every sweep that read
 * the whole picture, one EMF record per destination region, under the dimension sets
 * (service, stage, region) — which region — and (service, stage) — what the alarm
 * `nightshift-<stage>-rds-snapshot-copy-uncopied` watches (its Maximum is the worst region).
 */
export const UNCOPIED_METRIC = 'oldestUncopiedSourceHours';

/** Writes the sweep's uncopied ages as EMF log lines (no API call, no IAM), in namespace nightshift. */
export const recordUncopied = (
  uncopied: CopyPlan['uncopied'],
  metrics: Metrics = new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: SERVICE,
    defaultDimensions: { stage: stageName() },
  }),
): void => {
  for (const [region, oldest] of Object.entries(uncopied)) {
    const record = metrics.singleMetric();
    record.addDimension('region', region);
    // An empty dimension set adds the per-function set (service, stage) to the same record.
    record.addDimensions({});
    if (oldest) record.addMetadata('oldest_uncopied_source', oldest.arn);
    record.addMetric(UNCOPIED_METRIC, MetricUnit.NoUnit, oldest?.ageHours ?? 0);
  }
};
