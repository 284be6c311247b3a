/**
 * The nightshift CLI end to end in --local mode: the real handlers in-process against moto, driven as a
 * person at a terminal would and as a pipeline would.
 */
import { spawnSync } from 'node:child_process';
import { TagResourceCommand } from '@aws-sdk/client-ecs';
import { CreateOrUpdateTagsCommand } from '@aws-sdk/client-auto-scaling';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';
import { observeSample, seedClients, seedEstate, type SeedClients } from '#test/support/ecs-estate.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';

describe.runIf(motoTestsEnabled())('nightshift CLI --local against moto', () => {
  let moto: Moto;
  let aws: SeedClients;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.url);
    aws = seedClients(moto.url);
  });
  afterAll(() => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    await seedEstate(aws);
  });

  it('stops a cluster, shows what nightshift holds, and starts it back exactly', async () => {
    // Prepare
    const before = await observeSample(aws);

    // Act
    const stop = await cli(['stop', '--cluster', 'stage', '--local', '--yes']);
    const status = await cli(['status', '--local']);
    const statusJson = JSON.parse((await cli(['status', '--local', '--json'])).out);
    const start = await cli(['start', '--cluster', 'stage', '--local', '--yes', '--json']);

    // Assess
    expect(stop.code).toBe(0);
    expect(stop.out).toMatch(/stage\/web\s+│ ecs-service\s+│ changed/);
    expect(stop.out).toContain('ecs-scheduler stop: 4 changed, 0 planned, 0 unchanged, 0 skipped, 0 failed');
    expect(status.out).toContain('Parked by nightshift (4):');
    expect(status.out).toMatch(/service stage\/web\s+│ stopped at /);
    expect(statusJson.parked).toEqual([
      {
        resource: 'group stage-ecs-nodes',
        detail: expect.stringMatching(
          /^parked at .* \(now min 0 desired 0 max 0\); comes back to min 1 desired 2 max 4$/,
        ),
      },
      {
        resource: 'service stage/batch',
        detail: expect.stringMatching(/^stopped at .*; comes back to desiredCount 0$/),
      },
      {
        resource: 'service stage/web',
        detail: expect.stringMatching(
          /; comes back to desiredCount 3, scaling min 2 max 6 \(scaling active\)$/,
        ),
      },
      { resource: 'service stage/worker', detail: expect.stringMatching(/; comes back to desiredCount 2$/) },
    ]);
    expect(start.code).toBe(0);
    expect(JSON.parse(start.out)).toMatchObject({ action: 'start', summary: { changed: 4, failed: 0 } });
    expect(await observeSample(aws)).toEqual(before);
  });

  it('refuses to change anything without --yes when not attached to a terminal', async () => {
    const before = await observeSample(aws);

    const run = await cli(['stop', '--cluster', 'stage', '--local']);

    expect(run.code).toBe(2);
    expect(run.err).toContain('refusing to run ecs-scheduler without --yes: not attached to a terminal');
    expect(await observeSample(aws)).toEqual(before);
  });

  it('shows the plan at a terminal and changes nothing when the answer is no', async () => {
    const before = await observeSample(aws);

    const run = await cli(['stop', '--cluster', 'stage', '--local'], { interactive: true, answer: false });

    expect(run.questions).toEqual(['Apply 4 planned change(s) with your credentials?']);
    expect(run.out).toContain('ecs-scheduler stop (dry run): 0 changed, 4 planned');
    expect(run.err).toContain('nothing changed.');
    expect(run.code).toBe(0);
    expect(await observeSample(aws)).toEqual(before);
  });

  it('applies the plan at a terminal when the answer is yes', async () => {
    const run = await cli(['stop', '--cluster', 'stage', '--local'], { interactive: true, answer: true });

    expect(run.code).toBe(0);
    expect(run.out).toContain('ecs-scheduler stop: 4 changed');
    expect((await observeSample(aws)).services['stage/web']?.desired).toBe(0);
  });

  it('runs a dry run without asking, and exits non-zero when anything failed', async () => {
    const dry = await cli(['stop', '--cluster', 'stage', '--cluster', 'stagee', '--local', '--dry-run']);

    expect(dry.questions).toEqual([]);
    expect(dry.code).toBe(1);
    expect(dry.out).toMatch(/stagee\s+│ ecs-cluster\s+│ failed/);
    expect((await observeSample(aws)).services['stage/web']?.desired).toBe(3);
  });

  it('refuses bad input before any AWS call, naming the field, with exit code 2', async () => {
    const badTag = await cli(['stop', '--tag', 'env', '--local', '--yes']);
    const badName = await cli([
      'restart',
      '--instance',
      'i-0a1b2c3d4e5f60718',
      '--container',
      'web; reboot',
      '--yes',
    ]);
    const both = await cli([
      'restart',
      '--instance',
      'i-0a1b2c3d4e5f60718',
      '--tag',
      'app=web',
      '--unit',
      'nginx',
      '--yes',
    ]);
    const unknown = await cli(['reboot-everything']);

    expect([badTag.code, badName.code, both.code, unknown.code]).toEqual([2, 2, 2, 2]);
    expect(badTag.err).toBe('--tag expects key=value, got "env"');
    expect(badName.err).toMatch(/field "container"/);
    expect(both.err).toBe('give --instance or --tag (one of them), or --ecs-service');
  });

  it('maps every command onto its function contract (dry runs against moto)', async () => {
    const env = { TARGET_REGIONS: 'eu-west-1' };
    process.env.TARGET_REGIONS = 'eu-west-1';
    const rotate = await cli(['rotate', '--max-age', '7d', '--local', '--dry-run', '--json']);
    const tag = await cli(['tag-snapshots', '--sweep', '--local', '--dry-run', '--json']);
    const copy = await cli(
      [
        'copy-snapshot',
        'arn:aws:rds:eu-central-1:123456789012:snapshot:orders-a',
        '--region',
        'eu-west-1',
        '--local',
        '--dry-run',
        '--json',
      ],
      { env },
    );
    await aws.ecs.send(
      new TagResourceCommand({
        resourceArn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
        tags: [{ key: 'nightshift:restartable', value: 'true' }],
      }),
    );
    const restart = await cli(['restart', '--ecs-service', 'stage/web', '--local', '--dry-run', '--json']);

    expect(JSON.parse(rotate.out)).toMatchObject({ action: 'rotate', dryRun: true });
    expect(JSON.parse(tag.out)).toMatchObject({ action: 'sweep', dryRun: true });
    expect(JSON.parse(copy.out)).toMatchObject({
      action: 'copy',
      resources: [
        {
          outcome: 'failed',
          detail: 'snapshot not found (deleted, or not in this account and region); nothing copied',
        },
      ],
    });
    expect(copy.code).toBe(1);
    expect(JSON.parse(restart.out)).toMatchObject({
      action: 'restart',
      dryRun: true,
      summary: { planned: 1 },
    });
    expect(restart.code).toBe(0);
  });

  it('takes several instance ids after one --instance, as in the contract', async () => {
    const run = await cli([
      'restart',
      '--instance',
      'i-0a1b2c3d4e5f60718',
      'i-0a1b2c3d4e5f60719',
      '--container',
      'web',
      '--local',
      '--dry-run',
      '--json',
    ]);

    const report = JSON.parse(run.out) as { resources: { arn: string }[] };
    expect(report.resources.map((r) => r.arn.split('/').pop())).toEqual([
      'i-0a1b2c3d4e5f60718',
      'i-0a1b2c3d4e5f60719',
    ]);
  });

  it('reads and runs in the region given by --region, also with --local and for status', async () => {
    await cli(['stop', '--cluster', 'stage', '--local', '--yes']);
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_ENDPOINT_URL: moto.url };
    delete env.AWS_REGION;
    delete env.AWS_DEFAULT_REGION;
    const status = (region: string) =>
      spawnSync(process.execPath, ['dist/cli/nightshift.mjs', 'status', '--region', region, '--json'], {
        encoding: 'utf8',
        env,
      });

    const home = status('eu-central-1');
    const elsewhere = status('eu-west-1');

    expect(JSON.parse(home.stdout).parked).toHaveLength(4);
    expect(JSON.parse(elsewhere.stdout).parked).toEqual([]);
  });

  it('shows rotations in progress and recent restarts in status', async () => {
    // Prepare: a rotation in flight on the capacity group, and an instance restarted an hour ago
    await aws.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          {
            ResourceId: 'stage-ecs-nodes',
            ResourceType: 'auto-scaling-group',
            Key: 'nightshift:rotation',
            Value:
              'desired=2 instance=i-0123456789abcdef0 phase=launching at=2026-11-23T02:00:00Z suspended=none',
            PropagateAtLaunch: false,
          },
        ],
      }),
    );
    const at = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const ec2 = new EC2Client({
      endpoint: moto.url,
      region: 'eu-central-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    });
    const launched = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [{ Key: 'nightshift:last-restart', Value: `at=${at} what=container:web via=alarm` }],
          },
        ],
      }),
    );
    const id = launched.Instances?.[0]?.InstanceId;

    // Act
    const status = JSON.parse((await cli(['status', '--local', '--json'])).out);

    // Assess
    expect(status.rotations).toEqual([
      {
        resource: 'group stage-ecs-nodes',
        detail:
          'replacing i-0123456789abcdef0 (launching since 2026-11-23T02:00:00Z); 2 in service, min 1 desired 2 max 4; desired returns to 2',
      },
    ]);
    expect(status.restarts).toEqual([
      { resource: `instance ${id}`, detail: `container:web at ${at.replace('Z', '.000Z')} (alarm)` },
    ]);
  });

  it('runs as the built bin, a separate process reading AWS_* from its environment', () => {
    const run = spawnSync(
      process.execPath,
      ['dist/cli/nightshift.mjs', 'stop', '--cluster', 'stage', '--local', '--json'],
      {
        encoding: 'utf8',
        env: { ...process.env, AWS_ENDPOINT_URL: moto.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const help = spawnSync(process.execPath, ['dist/cli/nightshift.mjs', '--help'], { encoding: 'utf8' });

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('without --yes');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('copy-snapshot [options] <arn>');
  });
});
