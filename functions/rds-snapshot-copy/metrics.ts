import { EmfMetrics, MetricUnit } from '#shared/emf.ts';
import { METRICS_NAMESPACE, stageName } from '#shared/metrics.ts';
import type { CopyPlan } from './plan.ts';

export const SERVICE = 'rds-snapshot-copy';

/**
 * How far a destination region is behind, in hours (plan.ts planLag): for every database this deployment
 * copies (it has manual or automated snapshots, matching SOURCE_TAGS), 0 while its newest snapshot has an
 * available copy in that region; otherwise the hours since the data of its newest available copy there
 * was taken, or, with none, since the earlier of its oldest snapshot still there and its creation. The
 * worst database counts (0 when there is none). Written by every sweep that read the whole picture, one
 * EMF record per destination region, under the dimension sets (service, stage, region) — which region —
 * and (service, stage) — what the alarm `nightshift-<stage>-rds-snapshot-copy-uncopied` watches (its
 * Maximum is the worst region).
 */
export const LAG_METRIC = 'copyLagHours';

/** Writes the sweep's lags as EMF log lines (no API call, no IAM), in namespace nightshift. */
export const recordLag = (lag: CopyPlan['lag']): void => {
  for (const [region, worst] of Object.entries(lag)) {
    const record = new EmfMetrics({
      namespace: METRICS_NAMESPACE,
      serviceName: SERVICE,
      defaultDimensions: { stage: stageName() },
    });
    record.addDimension('region', region);
    // An empty dimension set adds the per-function set (service, stage) to the same record.
    record.addDimensions({});
    // Which database, and measured from what: a copy, a source snapshot, or the database's creation.
    if (worst) {
      record.addMetadata('lag_database', worst.database);
      record.addMetadata('lag_basis', worst.basis);
      record.addMetadata('lag_since', worst.since);
      if (worst.arn) record.addMetadata('lag_snapshot', worst.arn);
    }
    record.addMetric(LAG_METRIC, MetricUnit.NoUnit, worst?.hours ?? 0);
    record.flush();
  }
};
