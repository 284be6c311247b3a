/**
 * `nightshift wake|sleep` and the schedules in `nightshift status`, end to end in --local mode: the
 * real handler in-process against moto, with the stage's schedules (infra/schedules.yml). The clock is
 * the real one, so assertions hold at any time of day: the override decides while it lasts.
 */
import { ListTagsForResourceCommand, TagResourceCommand } from '@aws-sdk/client-ecs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bundledSchedules } from '#functions/ecs-scheduler/schedules.ts';
import { desiredState } from '#shared/schedules.ts';
import { cli } from '#test/support/cli.ts';
import { observeSample, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

const OVERRIDE = 'nightshift:override';
const STAGE_ARN = 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage';

describe.runIf(motoTestsEnabled())('nightshift wake|sleep and status --local against moto', () => {
  let moto: Moto;
  let aws: SeedClients;

  const clusterTags = async () => {
    const out = await aws.ecs.send(new ListTagsForResourceCommand({ resourceArn: STAGE_ARN }));
    return Object.fromEntries((out.tags ?? []).map((t) => [t.key, t.value]));
  };

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    aws = seedClients(moto.url);
  });
  afterAll(() => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    await seedEstate(aws);
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: STAGE_ARN,
        tags: [{ key: 'nightshift:schedule', value: 'office-hours' }],
      }),
    );
  });

  it('wakes a stopped cluster for two hours, shows who and why in status, and cancels it', async () => {
    // Prepare: parked by hand
    const before = await observeSample(aws);
    expect((await cli(['stop', '--cluster', 'stage', '--local', '--yes'])).code).toBe(0);

    // Act
    const started = Date.now();
    const wake = await cli([
      'wake',
      '--cluster',
      'stage',
      '--for',
      '2h',
      '--reason',
      'demo for ACME; "urgent"',
      '--local',
      '--yes',
      '--json',
    ]);
    const status = await cli(['status', '--local']);
    const statusJson = JSON.parse((await cli(['status', '--local', '--json'])).out) as {
      schedules: { resource: string; detail: string }[];
    };

    // Assess: recorded on the cluster with the caller's identity (moto's STS user) and a clean reason
    expect(wake.code).toBe(0);
    const report = JSON.parse(wake.out) as { action: string; summary: { failed: number } };
    expect(report).toMatchObject({ action: 'wake', summary: { failed: 0 } });
    const tag = (await clusterTags())[OVERRIDE] ?? '';
    expect(tag).toMatch(/^state=running until=\S+Z by=user\/moto why=demo for ACME urgent$/);
    const until = Date.parse(tag.match(/until=(\S+)/)?.[1] ?? '');
    expect(until - started).toBeGreaterThanOrEqual(2 * 3_600_000 - 1000);
    expect(until - started).toBeLessThan(2 * 3_600_000 + 60_000);
    // Everything back exactly, at once
    expect(await observeSample(aws)).toEqual(before);
    expect(status.out).toContain('On a schedule (ECS services) (3):');
    expect(statusJson.schedules).toContainEqual({
      resource: 'service stage/web',
      detail: expect.stringMatching(
        /^office-hours \(on cluster stage\): desired running, actual running \(desiredCount 3\); override on cluster stage by user\/moto \(why: demo for ACME urgent\) until \w{3} \d{2}:\d{2} Europe\/Berlin; next (start|stop) /,
      ),
    });

    // Act: cancel
    const cancel = await cli(['wake', '--cancel', '--cluster', 'stage', '--local', '--yes', '--json']);

    // Assess: the tag is gone; the cluster is where its schedule wants it now
    expect(cancel.code).toBe(0);
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
    const wanted = desiredState(bundledSchedules().get('office-hours')!, new Date());
    expect((await observeSample(aws)).services['stage/web']?.desired).toBe(wanted === 'stopped' ? 0 : 3);
    expect(JSON.parse(cancel.out)).toMatchObject({ action: 'wake', summary: { failed: 0 } });
    expect(cancel.out).toContain('back to its schedule now');
  });

  it('plans a sleep of one service in a dry run, changing nothing', async () => {
    // Prepare
    const before = await observeSample(aws);

    // Act
    const dry = await cli([
      'sleep',
      '--cluster',
      'stage',
      '--service',
      'web',
      '--for',
      '1h',
      '--local',
      '--dry-run',
      '--json',
    ]);

    // Assess
    expect(dry.code).toBe(0);
    const report = JSON.parse(dry.out) as { dryRun: boolean; resources: { arn: string; outcome: string }[] };
    expect(report.dryRun).toBe(true);
    expect(report.resources.find((r) => r.arn.endsWith('service/stage/web'))).toMatchObject({
      outcome: 'planned',
    });
    expect(await observeSample(aws)).toEqual(before);
    expect((await observeSample(aws)).services['stage/web']?.tags[OVERRIDE]).toBeUndefined();
  });

  it('refuses an override longer than the cap, naming it, and one without an end', async () => {
    // Act
    const long = await cli(['wake', '--cluster', 'stage', '--for', '30h', '--local', '--yes']);
    const endless = await cli(['wake', '--cluster', 'stage', '--local', '--yes', '--json']);

    // Assess: nothing written
    expect(long.code).not.toBe(0);
    expect(long.err).toMatch(/at most 24 h \(OVERRIDE_MAX_HOURS/);
    expect(endless.code).toBe(2);
    expect(JSON.parse(endless.out).error.message).toMatch(
      /field "for": wake needs for \(3h\) or until \(22:00\)/,
    );
    expect((await clusterTags())[OVERRIDE]).toBeUndefined();
  });

  it('never overrides production', async () => {
    // Act
    const prod = await cli(['sleep', '--cluster', 'prod', '--for', '1h', '--local', '--yes', '--json']);

    // Assess
    const report = JSON.parse(prod.out) as { resources: { arn: string; outcome: string; detail: string }[] };
    expect(report.resources).toContainEqual(
      expect.objectContaining({ outcome: 'skipped', detail: expect.stringMatching(/never woken or slept/) }),
    );
    expect((await observeSample(aws)).services['prod/api']).toMatchObject({ desired: 4 });
  });
});
