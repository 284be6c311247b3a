/**
 * Imports every built bundle in dist/ (as Lambda would) and invokes its handler against moto.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DescribeClustersCommand, TagResourceCommand } from '@aws-sdk/client-ecs';
import type { Report } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';
import { observeSample, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

type Handler = (event: unknown, context: unknown) => Promise<Report>;
const FUNCTIONS = readdirSync('functions').filter((name) =>
  existsSync(join('functions', name, 'handler.ts')),
);
const load = async (name: string): Promise<Handler> => {
  const file = resolve('dist', name, 'index.mjs');
  expect(existsSync(file), `${file} missing: run npm run build`).toBe(true);
  const mod = (await import(pathToFileURL(file).href)) as { handler: Handler };
  return mod.handler;
};
const sample = (fn: string, file: string): unknown =>
  JSON.parse(readFileSync(join('events', fn, 'samples', file), 'utf8'));

describe.runIf(motoTestsEnabled())('built bundles against moto', () => {
  let moto: Moto;
  let aws: SeedClients;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    process.env.TARGET_REGIONS = 'eu-west-1';
    // Mutating runs take leases in the stage's table, as deployed (the stack sets LEASE_TABLE).
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    await leaseTable(moto.url);
    aws = seedClients(moto.url);
    await seedEstate(aws);
  });
  afterAll(() => moto?.stop());

  it.each(FUNCTIONS)('dist/%s/index.mjs exports a handler', async (name) => {
    expect(typeof (await load(name))).toBe('function');
  });

  it('ecs-scheduler bundle stops and starts the stage cluster', async () => {
    const handler = await load('ecs-scheduler');
    const before = await observeSample(aws);

    const dry = await handler(
      sample('ecs-scheduler', 'stop-cluster-dry-run.json'),
      lambdaContext('ecs-scheduler'),
    );
    const stop = await handler({ action: 'stop', clusters: ['stage'] }, lambdaContext('ecs-scheduler'));
    const stopped = await observeSample(aws);
    const start = await handler(
      sample('ecs-scheduler', 'start-cluster-by-arn.json'),
      lambdaContext('ecs-scheduler'),
    );

    expect(dry.summary.planned).toBe(4);
    expect(stop.summary.changed).toBe(4);
    expect(stopped.services['stage/web']?.desired).toBe(0);
    expect(start.summary.changed).toBe(4);
    expect(await observeSample(aws)).toEqual(before);
  });

  it('ecs-scheduler bundle reconciles with the schedules built into it (infra/schedules.yml), reading no file', async () => {
    // Prepare: the stage cluster follows office-hours; web names a schedule the file does not define
    const handler = await load('ecs-scheduler');
    const cluster = (await aws.ecs.send(new DescribeClustersCommand({ clusters: ['stage'] }))).clusters?.[0];
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: cluster?.clusterArn,
        tags: [{ key: 'nightshift:schedule', value: 'office-hours' }],
      }),
    );
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: cluster?.clusterArn?.replace(':cluster/stage', ':service/stage/web'),
        tags: [{ key: 'nightshift:schedule', value: 'no-such-schedule' }],
      }),
    );

    // Act
    const dry = await handler(
      sample('ecs-scheduler', 'reconcile-dry-run.json'),
      lambdaContext('ecs-scheduler'),
    );

    // Assess: the bundled schedules decided (whatever the time now), and the unknown name is named
    expect(dry).toMatchObject({ action: 'reconcile', dryRun: true });
    const row = (suffix: string) => dry.resources.find((r) => r.arn.endsWith(suffix));
    expect(row('service/stage/worker')?.detail).toMatch(/^office-hours: (running|stopped) since /);
    expect(row('service/stage/web')).toMatchObject({ outcome: 'failed' });
    expect(row('service/stage/web')?.detail).toMatch(
      /^schedule "no-such-schedule" .* is not defined in infra\/schedules.yml \(known: office-hours, stage-nights\)/,
    );
  });

  describe('ecs-scheduler bundle: the holidays built into it', () => {
    const reconcileAt = async (iso: string) => {
      const handler = await load('ecs-scheduler');
      const cluster = (await aws.ecs.send(new DescribeClustersCommand({ clusters: ['stage'] })))
        .clusters?.[0];
      await aws.ecs.send(
        new TagResourceCommand({
          resourceArn: cluster?.clusterArn,
          tags: [{ key: 'nightshift:schedule', value: 'office-hours' }],
        }),
      );
      // The deployed function reads the clock (new Date()): only Date is faked, timers run as usual.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date(iso));
      try {
        return await handler(
          sample('ecs-scheduler', 'reconcile-dry-run.json'),
          lambdaContext('ecs-scheduler'),
        );
      } finally {
        vi.useRealTimers();
      }
    };
    const worker = (report: Report) => report.resources.find((r) => r.arn.endsWith('service/stage/worker'));

    it('keeps the stage stopped all day on a DE-BE public holiday, in Europe/Berlin', async () => {
      // Act: Christmas Day 2026 (a Friday) and German Unity Day 2027 (a Sunday), 12:00 in Berlin
      const christmas = await reconcileAt('2026-12-25T11:00:00Z');
      const unity = await reconcileAt('2027-10-03T10:00:00Z');
      const dayAfter = await reconcileAt('2027-10-04T10:00:00Z');

      // Assess
      expect(worker(christmas)?.detail).toMatch(
        /^office-hours: stopped since Wed 19:00 Europe\/Berlin \(holiday: Christmas Day \(DE-BE\)\); next start Mon 07:00 /,
      );
      expect(worker(unity)?.detail).toMatch(
        /^office-hours: stopped since Fri 19:00 Europe\/Berlin \(holiday: National Holiday \(DE-BE\)\); next start Mon 07:00 /,
      );
      expect(worker(dayAfter)?.detail).toMatch(
        /^office-hours: running since Mon 07:00 Europe\/Berlin \(period 1\); next stop Mon 19:00 /,
      );
    });

    it('fails the rows of the schedule loudly, naming calendar and year, for a year it does not carry', async () => {
      // Every opted-in service follows office-hours here: every row fails, so the run fails (RunFailedError).
      await expect(reconcileAt('2090-06-15T10:00:00Z')).rejects.toThrow(
        /^all \d+ resource\(s\) failed; first error: office-hours: holiday calendar DE-BE: this bundle carries its holidays for \d{4}–\d{4} only, not 2090, so no schedule naming DE-BE can be evaluated: rebuild and redeploy/,
      );
    });
  });

  it('ecs-scheduler bundle refuses a bad event naming the field', async () => {
    const handler = await load('ecs-scheduler');
    await expect(
      handler({ action: 'halt', clusters: ['stage'] }, lambdaContext('ecs-scheduler')),
    ).rejects.toThrow(/field "action"/);
  });

  it('rds-snapshot-copy bundle sweeps in a dry run', async () => {
    const handler = await load('rds-snapshot-copy');

    const report = await handler(
      sample('rds-snapshot-copy', 'sweep-dry-run.json'),
      lambdaContext('rds-snapshot-copy'),
    );

    expect(report).toMatchObject({ action: 'sweep', dryRun: true, summary: { failed: 0 } });
  });

  it('snapshot-tags bundle sweeps the region in a dry run', async () => {
    const handler = await load('snapshot-tags');

    const report = await handler(
      sample('snapshot-tags', 'sweep-dry-run.json'),
      lambdaContext('snapshot-tags'),
    );

    expect(report).toMatchObject({ action: 'sweep', dryRun: true, summary: { failed: 0 } });
  });

  it('instance-rotation bundle plans a rotation in a dry run', async () => {
    const handler = await load('instance-rotation');

    const report = await handler(
      sample('instance-rotation', 'scheduled.json'),
      lambdaContext('instance-rotation'),
    );

    expect(report).toMatchObject({ action: 'rotate', summary: { failed: 0 } });
  });

  it('ssm-restart bundle ignores an alarm back to OK and refuses a name that is not one', async () => {
    const handler = await load('ssm-restart');

    const report = await handler(sample('aws.cloudwatch', 'ok.json'), lambdaContext('ssm-restart'));

    expect(report).toMatchObject({ action: 'restart', dryRun: false, resources: [] });
    // Reaches moto: the seeded stage/web service has not opted in, so a redeploy is planned as skipped.
    const redeploy = await handler(
      { action: 'restart', ecsService: { cluster: 'stage', service: 'web' }, dryRun: true },
      lambdaContext('ssm-restart'),
    );
    expect(redeploy.resources).toEqual([
      expect.objectContaining({
        arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
        outcome: 'skipped',
        detail: expect.stringContaining('nightshift:restartable=true'),
      }),
    ]);
    await expect(
      handler(
        { action: 'restart', targets: { instanceIds: ['i-0a1b2c3d4e5f60718'] }, container: 'web; reboot' },
        lambdaContext('ssm-restart'),
      ),
    ).rejects.toThrow(/field "container"/);
  });
});

describe('the ecs-scheduler bundle carries a holiday table, not date-holidays', () => {
  it('holds none of date-holidays: its code, its rules, other countries; and stays small', () => {
    const file = resolve('dist', 'ecs-scheduler', 'index.mjs');
    expect(existsSync(file), `${file} missing: run npm run build`).toBe(true);
    const text = readFileSync(file, 'utf8');

    expect(text).not.toContain('getCountries'); // date-holidays' API
    expect(text).not.toContain('easter -2'); // its rule syntax (Good Friday)
    expect(text).not.toContain('Bundesfeiertag'); // its data for Switzerland
    expect(text).toContain('"2027-10-03":"National Holiday"'); // the DE-BE table infra/schedules.yml asks for
    // 517 KiB before schedules, 1,986 KiB with date-holidays bundled, about 545 KiB with the table, 701 KiB
    // once the RDS (environment order) and CloudWatch (silence while parked) clients came in: date-holidays
    // would add 1.4 MiB more. Now about 214 KiB: the entry alone; what a cold start loads is checked by
    // test/meta/bundle-size.test.ts.
    expect(statSync(file).size).toBeLessThan(900 * 1024);
  });
});

describe('the fleet code is loaded only by runs with a target', () => {
  it.each(FUNCTIONS)('dist/%s/index.mjs leaves STS, IAM and Organizations to a chunk', (name) => {
    const dir = resolve('dist', name);
    const entry = readFileSync(join(dir, 'index.mjs'), 'utf8');
    expect(entry).not.toContain('ListAccountAliases');
    const chunks = readdirSync(join(dir, 'chunks')).map((f) => readFileSync(join(dir, 'chunks', f), 'utf8'));
    expect(chunks.some((text) => text.includes('ListAccountAliases') && text.includes('AssumeRole'))).toBe(
      true,
    );
  });
});
