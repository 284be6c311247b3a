/**
 * The EMF writer (shared/emf.ts): the records CloudWatch extracts our metrics from, byte for byte as
 * AWS Lambda Powertools Metrics wrote them, and within the limits of the EMF specification (100
 * metrics per record, 100 values per metric, 30 dimensions per set).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EmfMetrics, MetricUnit } from '#shared/emf.ts';

type EmfRecord = Record<string, unknown> & {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
};

const NOW = Date.parse('2026-11-30T03:00:00.000Z');

/** Every write to stdout and stderr. */
const capture = () => {
  const written: { stream: string; text: string }[] = [];
  const tap = (stream: string) =>
    ((chunk: unknown) => written.push({ stream, text: String(chunk) }) > 0) as typeof process.stdout.write;
  vi.spyOn(process.stdout, 'write').mockImplementation(tap('stdout'));
  vi.spyOn(process.stderr, 'write').mockImplementation(tap('stderr'));
  return {
    written: () => written,
    records: () =>
      written.filter((w) => w.text.includes('"_aws"')).map((w) => JSON.parse(w.text) as EmfRecord),
  };
};

const writer = () =>
  new EmfMetrics({
    namespace: 'nightshift',
    serviceName: 'ecs-scheduler',
    defaultDimensions: { stage: 'dev' },
  });

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('an EMF record', () => {
  it('is the line Powertools wrote: two dimension sets in one record, metadata, the values', () => {
    // Prepare
    const out = capture();
    const m = writer();

    // Act
    m.addMetadata('correlation_id', 'eb-event-1');
    m.addDimension('action', 'stop');
    m.addDimensions({});
    m.addMetric('runs', MetricUnit.Count, 1);
    m.addMetric('changed', MetricUnit.Count, 2);
    m.flush();

    // Assess
    expect(out.written()).toEqual([
      {
        stream: 'stdout',
        text:
          `{"_aws":{"Timestamp":${NOW},"CloudWatchMetrics":[{"Namespace":"nightshift","Dimensions":[["service","stage","action"],["service","stage"]],` +
          `"Metrics":[{"Name":"runs","Unit":"Count"},{"Name":"changed","Unit":"Count"}]}]},` +
          `"correlation_id":"eb-event-1","service":"ecs-scheduler","stage":"dev","action":"stop","runs":1,"changed":2}\n`,
      },
    ]);
  });

  it('writes a set of its own for each addDimensions, and the defaults alone when no dimension was added', () => {
    // Prepare
    const out = capture();
    const m = writer();

    // Act
    m.addDimensions({ function: 'ssm-restart', account: '111111111111', region: 'eu-central-1' });
    m.addMetric('FleetTargetFailed', MetricUnit.Count, 1);
    m.flush();
    m.addMetric('FleetWallSeconds', MetricUnit.Seconds, 12);
    m.flush();

    // Assess
    const [target, bare] = out.records();
    expect(target?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([
      ['service', 'stage', 'function', 'account', 'region'],
    ]);
    expect(target).toMatchObject({
      function: 'ssm-restart',
      account: '111111111111',
      region: 'eu-central-1',
    });
    expect(bare?._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: 'nightshift',
      Dimensions: [['service', 'stage']],
      Metrics: [{ Name: 'FleetWallSeconds', Unit: 'Seconds' }],
    });
    expect(bare).not.toHaveProperty('function');
  });

  it('writes a metric added twice as an array of its values', () => {
    // Prepare
    const out = capture();
    const m = writer();

    // Act
    m.addMetric('summaryPublishFailed', MetricUnit.Count, 1);
    m.addMetric('summaryPublishFailed', MetricUnit.Count, 1);
    m.addMetric('runs', MetricUnit.Count, 1);
    m.flush();

    // Assess
    const [record] = out.records();
    expect(record?._aws.CloudWatchMetrics[0]?.Metrics).toEqual([
      { Name: 'summaryPublishFailed', Unit: 'Count' },
      { Name: 'runs', Unit: 'Count' },
    ]);
    expect(record).toMatchObject({ summaryPublishFailed: [1, 1], runs: 1 });
  });

  it('forgets metrics, dimensions and metadata once written', () => {
    // Prepare
    const out = capture();
    const m = writer();
    m.addMetadata('correlation_id', 'run-1');
    m.addDimension('action', 'stop');
    m.addMetric('runs', MetricUnit.Count, 1);
    m.flush();

    // Act
    m.addMetric('runs', MetricUnit.Count, 1);
    m.flush();

    // Assess
    const second = out.records()[1];
    expect(second).toEqual({
      _aws: {
        Timestamp: NOW,
        CloudWatchMetrics: [
          {
            Namespace: 'nightshift',
            Dimensions: [['service', 'stage']],
            Metrics: [{ Name: 'runs', Unit: 'Count' }],
          },
        ],
      },
      service: 'ecs-scheduler',
      stage: 'dev',
      runs: 1,
    });
  });
});

describe('the EMF limits', () => {
  it('splits more than 100 metrics across records, each with the same dimensions and metadata', () => {
    // Prepare
    const out = capture();
    const m = writer();
    m.addMetadata('correlation_id', 'run-1');
    m.addDimension('action', 'sweep');
    m.addDimensions({});

    // Act
    for (let i = 0; i < 150; i++) m.addMetric(`m${i}`, MetricUnit.Count, i);
    m.flush();

    // Assess
    const records = out.records();
    expect(records.map((r) => r._aws.CloudWatchMetrics[0]?.Metrics.length)).toEqual([100, 50]);
    expect(records.flatMap((r) => r._aws.CloudWatchMetrics[0]?.Metrics.map((d) => d.Name))).toEqual(
      Array.from({ length: 150 }, (_, i) => `m${i}`),
    );
    for (const record of records) {
      expect(record._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([
        ['service', 'stage', 'action'],
        ['service', 'stage'],
      ]);
      expect(record).toMatchObject({
        correlation_id: 'run-1',
        service: 'ecs-scheduler',
        stage: 'dev',
        action: 'sweep',
      });
    }
    expect(records[1]).toMatchObject({ m100: 100, m149: 149 });
    expect(records[1]).not.toHaveProperty('m99');
  });

  it('writes at most 100 values of a metric per record, the rest in further records with the same dimensions', () => {
    // Prepare
    const out = capture();
    const m = writer();
    m.addDimension('action', 'sweep');

    // Act
    for (let i = 0; i < 250; i++) m.addMetric('copyLagHours', MetricUnit.NoUnit, i);
    m.flush();

    // Assess
    const records = out.records();
    expect(records.map((r) => (r.copyLagHours as number[]).length)).toEqual([100, 100, 50]);
    expect(records.flatMap((r) => r.copyLagHours as number[])).toEqual(
      Array.from({ length: 250 }, (_, i) => i),
    );
    for (const record of records) expect(record).toMatchObject({ action: 'sweep', stage: 'dev' });
  });

  it('accepts 30 dimensions in a set and refuses 31', () => {
    // Prepare
    const m = writer();
    const set = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`d${i}`, 'v']));

    // Act / Assess: service and stage are two of them
    expect(() => m.addDimensions(set(28))).not.toThrow();
    expect(() => m.addDimensions(set(29))).toThrow(RangeError);
  });

  it('leaves out a value that is not a finite number and writes the rest of the record', () => {
    // Prepare
    const out = capture();
    const m = writer();

    // Act
    const add = () => m.addMetric('copyLagHours', MetricUnit.NoUnit, Number.NaN);
    expect(add).not.toThrow();
    m.addMetric('runs', MetricUnit.Count, 1);
    m.flush();

    // Assess
    expect(out.records()).toEqual([expect.objectContaining({ runs: 1 })]);
    expect(out.records()[0]).not.toHaveProperty('copyLagHours');
  });
});

describe('when nothing is written', () => {
  it.each(['true', 'TRUE', '1', 'yes', 'on'])(
    'writes nothing with POWERTOOLS_METRICS_DISABLED=%s',
    (value) => {
      // Prepare
      vi.stubEnv('POWERTOOLS_METRICS_DISABLED', value);
      const out = capture();
      const m = writer();

      // Act
      m.addMetric('runs', MetricUnit.Count, 1);
      m.flush();

      // Assess
      expect(out.written()).toEqual([]);
    },
  );

  it.each(['false', '0', ''])('writes with POWERTOOLS_METRICS_DISABLED=%j', (value) => {
    // Prepare
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', value);
    const out = capture();
    const m = writer();

    // Act
    m.addMetric('runs', MetricUnit.Count, 1);
    m.flush();

    // Assess
    expect(out.records()).toHaveLength(1);
  });

  it('writes nothing at all, not even a warning, when no metric was added', () => {
    // Prepare
    const out = capture();
    const m = writer();
    m.addDimension('action', 'stop');
    m.addMetadata('correlation_id', 'run-1');

    // Act
    m.flush();

    // Assess
    expect(out.written()).toEqual([]);
  });
});
