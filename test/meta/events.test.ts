import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EcsSchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { parseRotateInput } from '#events/instance-rotation/schema.ts';
import { parseCopyInput } from '#events/rds-snapshot-copy/schema.ts';
import { parseSnapshotTagsInput } from '#events/snapshot-tags/schema.ts';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import { parseRdsSchedulerEvent } from '#events/rds-scheduler/schema.ts';
import { parseFleetEvent } from '#events/fleet/schema.ts';
import { parseInput } from '#shared/input.ts';

/**
 * Each function's input contract, and the sample folders under events/ it must accept. A folder of AWS
 * events (events/aws.<service>/samples) is shared: a function takes the samples of the detail-types it
 * handles (events/aws.rds holds both the snapshot events and the DB instance/cluster events).
 */
const CONTRACTS: Record<
  string,
  { parse: (event: unknown) => unknown; samples: string[]; detailTypes?: string[] }
> = {
  'ecs-scheduler': { parse: (e) => parseInput(EcsSchedulerInput, e), samples: ['ecs-scheduler'] },
  'rds-snapshot-copy': {
    parse: parseCopyInput,
    samples: ['rds-snapshot-copy', 'aws.rds'],
    detailTypes: ['RDS DB Snapshot Event', 'RDS DB Cluster Snapshot Event'],
  },
  'instance-rotation': { parse: parseRotateInput, samples: ['instance-rotation'] },
  'ssm-restart': {
    parse: parseRestartInput,
    samples: ['ssm-restart', 'aws.cloudwatch'],
    detailTypes: ['CloudWatch Alarm State Change', 'Lambda alarm action'],
  },
  'snapshot-tags': {
    parse: parseSnapshotTagsInput,
    samples: ['snapshot-tags', 'aws.rds', 'aws.ec2'],
    detailTypes: ['RDS DB Snapshot Event', 'RDS DB Cluster Snapshot Event', 'EBS Snapshot Notification'],
  },
  // The hub's fleet function: the steps of the fleet state machines (shared/fleet/definition.ts).
  fleet: { parse: parseFleetEvent, samples: ['fleet'] },
  'rds-scheduler': {
    parse: parseRdsSchedulerEvent,
    samples: ['rds-scheduler', 'aws.rds'],
    detailTypes: ['RDS DB Instance Event', 'RDS DB Cluster Event'],
  },
};

const read = (dir: string, file: string): unknown =>
  JSON.parse(readFileSync(join('events', dir, 'samples', file), 'utf8'));
/** An EventBridge event's detail-type; a CloudWatch alarm's direct Lambda action has none. */
const detailType = (event: unknown): unknown => {
  const e = event as Record<string, unknown>;
  return e['detail-type'] ?? (e.alarmArn !== undefined ? 'Lambda alarm action' : undefined);
};

const cases = Object.entries(CONTRACTS).flatMap(([fn, { samples, detailTypes }]) =>
  samples.flatMap((dir) =>
    readdirSync(join('events', dir, 'samples'))
      .filter(
        (file) => !dir.startsWith('aws.') || detailTypes?.includes(detailType(read(dir, file)) as string),
      )
      .map((file) => ({ fn, dir, file })),
  ),
);

describe('event contracts', () => {
  it('has a contract and samples for every function', () => {
    const functions = readdirSync('functions').filter((f) => existsSync(join('functions', f, 'handler.ts')));
    expect(Object.keys(CONTRACTS).sort()).toEqual(functions.sort());
    for (const fn of functions)
      expect(cases.filter((c) => c.fn === fn && c.dir === fn).length).toBeGreaterThan(1);
  });

  it('gives every AWS event sample to a function that handles it', () => {
    const awsDirs = readdirSync('events').filter((d) => d.startsWith('aws.'));
    const orphans = awsDirs.flatMap((dir) =>
      readdirSync(join('events', dir, 'samples'))
        .filter((file) => !cases.some((c) => c.dir === dir && c.file === file))
        .map((file) => `${dir}/${file}`),
    );
    expect(orphans).toEqual([]);
  });

  it.each(cases)('$fn accepts $dir/samples/$file', ({ fn, dir, file }) => {
    expect(() => CONTRACTS[fn]?.parse(read(dir, file))).not.toThrow();
  });
});

describe('a schedule that passes no input', () => {
  // Real shapes: test/fixtures/aws-events/aws.events (schedule rules) and aws.scheduler (Scheduler, whose
  // detail is the string "{}"); see test/fixtures/aws-events/PROVENANCE.md.
  const fixtures = ['aws.events', 'aws.scheduler'].flatMap((dir) =>
    readdirSync(join('test/fixtures/aws-events', dir)).map((file) => ({ dir, file })),
  );
  const parsers = { 'rds-snapshot-copy': parseCopyInput, 'snapshot-tags': parseSnapshotTagsInput };

  it.each(
    Object.entries(parsers).flatMap(([fn, parse]) => [
      ...fixtures.map((f) => ({
        fn,
        parse,
        name: `${f.dir}/${f.file}`,
        event: JSON.parse(readFileSync(join('test/fixtures/aws-events', f.dir, f.file), 'utf8')) as unknown,
      })),
      { fn, parse, name: '{}', event: {} },
    ]),
  )('is refused by $fn ($name), saying the input is missing and showing a valid one', ({ parse, event }) => {
    expect(() => parse(event)).toThrow(
      /^invalid event: the input is missing: .*set the schedule's input to, for example, \{"action":"sweep"\}$/,
    );
  });
});

describe('instance-rotation with no input', () => {
  it.each([
    ...['aws.events', 'aws.scheduler'].flatMap((dir) =>
      readdirSync(join('test/fixtures/aws-events', dir)).map((file) => ({
        name: `${dir}/${file}`,
        event: JSON.parse(readFileSync(join('test/fixtures/aws-events', dir, file), 'utf8')) as unknown,
      })),
    ),
    { name: '{}', event: {} },
  ])('is refused ($name), saying the input is missing and showing {"action":"rotate"}', ({ event }) => {
    expect(() => parseRotateInput(event)).toThrow(
      /^invalid event: the input is missing: .*set the schedule's input to, for example, \{"action":"rotate"\}$/,
    );
  });
});
