/**
 * CloudWatch metrics as Embedded Metric Format (EMF) log lines: CloudWatch Logs extracts the metrics
 * from a function's log, so there is no API call and no IAM permission. The records are those AWS
 * Lambda Powertools Metrics (2.x) wrote before this module, key for key:
 *
 *   {"_aws":{"Timestamp":…,"CloudWatchMetrics":[{"Namespace":…,"Dimensions":[[…],…],"Metrics":[{"Name":…,"Unit":…},…]}]},
 *    …metadata, …dimension values, …metric values}
 *
 * Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 * — a MetricDirective holds at most 100 MetricDefinitions, a DimensionSet at most 30 dimension keys, and
 * a metric's value is a number or an array of at most 100 numbers. More metrics or values than that are
 * written as further records, each with the same dimensions and metadata.
 *
 * POWERTOOLS_METRICS_DISABLED (true, 1, yes, on, …) turns the output off; read when the writer is built.
 */
import { out } from './log.ts';

/** The units we write (CloudWatch StandardUnit). */
export const MetricUnit = { Count: 'Count', Seconds: 'Seconds', NoUnit: 'None' } as const;
export type MetricUnit = (typeof MetricUnit)[keyof typeof MetricUnit];

export const MAX_METRICS_PER_RECORD = 100;
export const MAX_VALUES_PER_METRIC = 100;
export const MAX_DIMENSIONS_PER_SET = 30;

const TRUE = new Set(['1', 'y', 'yes', 't', 'true', 'on']);
/** POWERTOOLS_METRICS_DISABLED, parsed as Powertools did (any other value leaves metrics on). */
export const metricsDisabled = (env: NodeJS.ProcessEnv = process.env): boolean =>
  TRUE.has(env.POWERTOOLS_METRICS_DISABLED?.trim().toLowerCase() ?? '');

export interface EmfOptions {
  namespace: string;
  /** The `service` dimension, in every dimension set. */
  serviceName: string;
  /** Further dimensions in every set, after `service` (ours: `stage`). */
  defaultDimensions?: Record<string, string>;
}

interface Stored {
  unit: MetricUnit;
  values: number[];
}

/**
 * Collects the metrics of one record, written by `flush()`. Dimensions: those given by addDimension
 * form one set (with the defaults); each addDimensions(…) call adds a set of its own (with the
 * defaults; `{}` adds the defaults alone). A metric added twice is written as an array of its values.
 */
export class EmfMetrics {
  readonly disabled = metricsDisabled();
  readonly #namespace: string;
  readonly #defaults: Record<string, string>;
  #dimensions: Record<string, string> = {};
  #sets: Record<string, string>[] = [];
  #metadata: Record<string, unknown> = {};
  #metrics = new Map<string, Stored>();

  constructor(options: EmfOptions) {
    this.#namespace = options.namespace;
    this.#defaults = { service: options.serviceName, ...options.defaultDimensions };
  }

  addDimension(name: string, value: string): this {
    // An empty name or value is not a dimension CloudWatch accepts: left out, as Powertools did.
    if (!name || !value) return this;
    this.#checkSize({ ...this.#dimensions, [name]: value });
    this.#dimensions[name] = value;
    return this;
  }

  addDimensions(set: Record<string, string>): this {
    const kept = Object.fromEntries(Object.entries(set).filter(([name, value]) => name && value));
    this.#checkSize(kept);
    this.#sets.push(kept);
    return this;
  }

  /** A key of the record that is not a dimension (searchable in the log, not in the metric). */
  addMetadata(key: string, value: unknown): this {
    this.#metadata[key] = value;
    return this;
  }

  addMetric(name: string, unit: MetricUnit, value: number): this {
    if (name.length < 1 || name.length > 255) throw new RangeError(`metric name: ${name}`);
    // CloudWatch drops a record whose value is not a number; keep the rest of the record.
    if (!Number.isFinite(value)) {
      out.error(`metric ${name} not written: ${String(value)} is not a finite number`);
      return this;
    }
    const stored = this.#metrics.get(name);
    if (stored && stored.unit !== unit) throw new Error(`metric ${name}: unit ${stored.unit}, not ${unit}`);
    if (stored) stored.values.push(value);
    else this.#metrics.set(name, { unit, values: [value] });
    return this;
  }

  /** Writes the collected metrics (nothing when there are none), then forgets them and the dimensions. */
  flush(): void {
    try {
      if (!this.disabled && this.#metrics.size > 0) for (const record of this.records()) out.log(record);
    } finally {
      this.#dimensions = {};
      this.#sets = [];
      this.#metadata = {};
      this.#metrics = new Map();
    }
  }

  /** The EMF records (JSON) of what is collected: several when the EMF limits require. */
  records(timestamp = Date.now()): string[] {
    const defaults = Object.keys(this.#defaults);
    const dimensionSets: string[][] = [];
    if (Object.keys(this.#dimensions).length > 0)
      dimensionSets.push([...new Set([...defaults, ...Object.keys(this.#dimensions)])]);
    for (const set of this.#sets) dimensionSets.push([...new Set([...defaults, ...Object.keys(set)])]);
    if (dimensionSets.length === 0 && defaults.length > 0) dimensionSets.push(defaults);
    const dimensionValues = Object.assign({}, this.#defaults, this.#dimensions, ...this.#sets) as Record<
      string,
      string
    >;

    // Split: at most 100 metrics per record, at most 100 values per metric.
    const chunks: [string, Stored][][] = [];
    let pending = [...this.#metrics];
    while (pending.length > 0) {
      const chunk: [string, Stored][] = [];
      const rest: [string, Stored][] = [];
      for (const [name, stored] of pending) {
        if (chunk.length >= MAX_METRICS_PER_RECORD) {
          rest.push([name, stored]);
          continue;
        }
        chunk.push([name, { unit: stored.unit, values: stored.values.slice(0, MAX_VALUES_PER_METRIC) }]);
        if (stored.values.length > MAX_VALUES_PER_METRIC)
          rest.push([name, { unit: stored.unit, values: stored.values.slice(MAX_VALUES_PER_METRIC) }]);
      }
      chunks.push(chunk);
      pending = rest;
    }

    return chunks.map((chunk) =>
      JSON.stringify({
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [
            {
              Namespace: this.#namespace,
              Dimensions: dimensionSets,
              Metrics: chunk.map(([Name, { unit }]) => ({ Name, Unit: unit })),
            },
          ],
        },
        // Metadata first: a dimension of the same name wins, as it did with Powertools.
        ...this.#metadata,
        ...dimensionValues,
        ...Object.fromEntries(
          chunk.map(([name, { values }]) => [name, values.length === 1 ? values[0] : values]),
        ),
      }),
    );
  }

  #checkSize(set: Record<string, string>): void {
    const size = new Set([...Object.keys(this.#defaults), ...Object.keys(set)]).size;
    if (size > MAX_DIMENSIONS_PER_SET)
      throw new RangeError(`${size} dimensions in an EMF dimension set: ${MAX_DIMENSIONS_PER_SET} at most`);
  }
}
