/**
 * ssm-restart leaves alone what nightshift parked, or is about to park (issue 10, "Silence while
 * parked"): against moto, through the whole middy chain. moto 5.2.1 has no DescribeInstanceInformation:
 * the recording proxy answers it as SSM would for the agents each test declares online (stubSsmAgents).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run, type Deps } from '#functions/ssm-restart/handler.ts';
import { RestartConfig } from '#functions/ssm-restart/config.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ssmClient } from '#shared/aws/ssm.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { parseEnv } from '#shared/env.ts';
import { withOps } from '#shared/handler.ts';
import type { Report } from '#shared/report.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { parseSchedules } from '#shared/schedules.ts';
import type { BundledSchedules } from '#shared/parked.ts';
import { TagResourceCommand, UntagResourceCommand } from '@aws-sdk/client-ecs';
import { CreateOrUpdateTagsCommand } from '@aws-sdk/client-auto-scaling';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import { lambdaContext } from '#test/support/context.ts';
import { leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import {
  ACCOUNT,
  alarmEvent,
  createAlarm,
  createGroup,
  createService,
  describeService,
  instanceArn,
  instanceTags,
  mutations,
  REGION,
  restartSeedClients,
  RESTARTABLE,
  sendCommands,
  stubSsmAgents,
  type RestartSeedClients,
} from '#test/support/ssm-estate.ts';

// The tag names are a public contract: spelled out here rather than imported.
const RESTART = 'nightshift:restart';
const LAST_RESTART = 'nightshift:last-restart';
const STOPPED = 'nightshift:stopped';
const SCHEDULE = 'nightshift:schedule';
const OVERRIDE = 'nightshift:override';

/** Monday 23 November 2026, 19:01 in Berlin (UTC+1): office-hours (07:00-19:00) wants it stopped. */
const EVENING = new Date('2026-11-23T18:01:00Z');
/** The same Monday at 10:00 in Berlin: office-hours wants it running. */
const MORNING = new Date('2026-11-23T09:00:00Z');

let clock = MORNING;
let schedules: (() => BundledSchedules) | undefined;
const deps = (): Deps => ({
  clients: {
    ec2: ec2Client(),
    ssm: ssmClient(),
    ecs: ecsClient(),
    autoscaling: autoScalingClient(),
    cloudwatch: cloudWatchClient(),
  },
  config: parseEnv(RestartConfig, { AWS_REGION: REGION }),
  now: () => clock,
  pollDelayMs: () => 20,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ...(schedules && { schedules }),
});
const invoke = (event: unknown) =>
  withOps('ssm-restart', parseRestartInput, (input, ctx) => run(input, ctx, deps()))(
    event,
    lambdaContext('ssm-restart'),
  ) as Promise<Report>;
const alarmNow = (arn: string, dimensions: Record<string, string>) =>
  alarmEvent(arn, dimensions, 'ALARM', clock);
const clusterArn = (name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
const tagCluster = (aws: RestartSeedClients, name: string, tags: Record<string, string>) =>
  aws.ecs.send(
    new TagResourceCommand({
      resourceArn: clusterArn(name),
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    }),
  );
const updates = (proxy: Proxy) => proxy.requests.filter((r) => r.operation === 'UpdateService');

describe.runIf(motoTestsEnabled())('ssm-restart leaves parked targets alone (moto)', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: RestartSeedClients;
  let records: LeaseStore;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    aws = restartSeedClients(moto.url);
  });
  afterAll(async () => {
    delete process.env.LEASE_TABLE;
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    records = await leaseTable(moto.url);
    clock = MORNING;
    schedules = undefined;
    proxy.requests.length = 0;
    stubSsmAgents(proxy, {});
  });

  it('skips an alarm on an ECS service ecs-scheduler parked, with the wake command, and records no restart', async () => {
    // Prepare: a parked service (its saved state) with an alarm tagged to redeploy it
    const saved = 'desired=2 min=none max=none suspended=none at=2026-11-23T08:00:00Z';
    const serviceArn = await createService(aws, 'stage', 'web', { ...RESTARTABLE, [STOPPED]: saved });
    const dimensions = { ClusterName: 'stage', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'stage-web-unhealthy', dimensions, { [RESTART]: 'ecs-service' });
    proxy.requests.length = 0;

    // Act: the alarm fires four times (more than RESTART_MAX_PER_HOUR) while it is parked
    const reports: Report[] = [];
    for (let n = 0; n < 4; n++) {
      clock = new Date(MORNING.getTime() + n * 60_000);
      reports.push(await invoke(alarmNow(arn, dimensions)));
    }

    // Assess: skipped every time, saying parked and how to wake it; nothing redeployed, tagged or claimed
    for (const report of reports) {
      expect(report.resources).toEqual([
        {
          arn: serviceArn,
          type: 'ecs-service',
          outcome: 'skipped',
          detail:
            `parked by nightshift (${STOPPED} ${saved}): not restarted for alarm stage-web-unhealthy (a parked ` +
            'target restarts nothing; its restart records are left as they are); to restart it now, ' +
            '`nightshift wake --cluster stage --service web --for 1h` first; nothing redeployed',
        },
      ]);
    }
    expect(updates(proxy)).toEqual([]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect(await records.read(`restart#${serviceArn}`)).toBeUndefined();
    expect((await describeService(aws, 'stage', 'web')).tags[LAST_RESTART]).toBeUndefined();

    // Once woken (the saved state gone), the same alarm restarts it: the parked alarms counted for nothing
    await aws.ecs.send(
      new UntagResourceCommand({
        resourceArn: serviceArn,
        tagKeys: [STOPPED],
      }),
    );
    clock = new Date(MORNING.getTime() + 5 * 60_000);
    const woken = await invoke(alarmNow(arn, dimensions));
    expect(woken.resources[0]).toMatchObject({ outcome: 'changed' });
    expect(updates(proxy)).toHaveLength(1);
  });

  it('skips an on-demand restart of a parked ECS service with the wake command', async () => {
    // Prepare
    await createService(aws, 'stage', 'web', {
      ...RESTARTABLE,
      [STOPPED]: 'desired=2 at=2026-11-23T08:00:00Z',
    });
    proxy.requests.length = 0;

    // Act
    const report = await invoke({ action: 'restart', ecsService: { cluster: 'stage', service: 'web' } });

    // Assess
    expect(report.resources[0]?.outcome).toBe('skipped');
    expect(report.resources[0]?.detail).toContain('parked by nightshift');
    expect(report.resources[0]?.detail).toContain('not restarted for on-demand');
    expect(report.resources[0]?.detail).toContain('`nightshift wake --cluster stage --service web --for 1h`');
    expect(mutations(proxy.requests)).toEqual([]);
  });

  it('skips the instances of a parked Auto Scaling group, named by InstanceId or by the group, and sends nothing', async () => {
    // Prepare: a group ecs-scheduler parked (its saved state on the group), its instances still running
    const saved = 'min=2 desired=2 max=2 at=2026-11-23T08:00:00Z';
    const ids = await createGroup(aws, 'stage-web', 2, RESTARTABLE);
    await aws.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          {
            ResourceId: 'stage-web',
            ResourceType: 'auto-scaling-group',
            Key: STOPPED,
            Value: saved,
            PropagateAtLaunch: false,
          },
        ],
      }),
    );
    stubSsmAgents(proxy, Object.fromEntries(ids.map((id) => [id, 'Online'])));
    const [first] = ids;
    const one = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: first! },
      { [RESTART]: 'container:web' },
    );
    const group = await createAlarm(
      aws,
      'stage-web-unhealthy',
      { AutoScalingGroupName: 'stage-web' },
      { [RESTART]: 'container:web' },
    );
    proxy.requests.length = 0;

    // Act
    const byInstance = await invoke(alarmNow(one, { InstanceId: first! }));
    const byGroup = await invoke(alarmNow(group, { AutoScalingGroupName: 'stage-web' }));

    // Assess
    const held =
      `its Auto Scaling group stage-web is parked by nightshift (${STOPPED} ${saved}): not restarted for alarm ` +
      'web-1-unhealthy (a parked target restarts nothing; its restart records are left as they are); to restart ' +
      'it now, wake the ECS cluster whose capacity it is (`nightshift wake --cluster <cluster> --for 1h`), or the ' +
      'group if it follows a schedule itself (`nightshift wake --group stage-web --for 1h`); nothing sent';
    expect(byInstance.resources).toEqual([
      { arn: instanceArn(first!), type: 'ec2-instance', outcome: 'skipped', detail: held },
    ]);
    expect(byGroup.resources.map((r) => [r.arn, r.outcome])).toEqual(
      ids.map((id) => [instanceArn(id), 'skipped']),
    );
    for (const r of byGroup.resources) expect(r.detail).toContain('is parked by nightshift');
    expect(sendCommands(proxy.requests)).toEqual([]);
    expect(mutations(proxy.requests)).toEqual([]);
    for (const id of ids) expect((await instanceTags(aws, id))[LAST_RESTART]).toBeUndefined();
  });

  it('skips a service whose cluster schedule wants it stopped at 19:01, before the reconcile parked it', async () => {
    // Prepare: running, not parked yet; its cluster follows office-hours (07:00-19:00 Europe/Berlin)
    const serviceArn = await createService(aws, 'stage', 'web', RESTARTABLE);
    await tagCluster(aws, 'stage', { [SCHEDULE]: 'office-hours' });
    const dimensions = { ClusterName: 'stage', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'stage-web-unhealthy', dimensions, { [RESTART]: 'ecs-service' });
    clock = EVENING;
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmNow(arn, dimensions));

    // Assess
    expect(report.resources).toEqual([
      {
        arn: serviceArn,
        type: 'ecs-service',
        outcome: 'skipped',
        detail:
          'to be parked: office-hours: stopped since Mon 19:00 Europe/Berlin (period 1 ended at 19:00); next start ' +
          `Tue 07:00 (tag ${SCHEDULE}=office-hours on cluster stage); nightshift parks it at its next reconcile: not ` +
          'restarted for alarm stage-web-unhealthy (a parked target restarts nothing; its restart records are left ' +
          'as they are); to restart it now, `nightshift wake --cluster stage --service web --for 1h` first; ' +
          'nothing redeployed',
      },
    ]);
    expect(updates(proxy)).toEqual([]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect(await records.read(`restart#${serviceArn}`)).toBeUndefined();
  });

  it('restarts a service whose schedule wants it stopped while a wake override keeps it running', async () => {
    // Prepare: `nightshift wake --cluster stage --until 21:00` recorded on the cluster
    const serviceArn = await createService(aws, 'stage', 'web', RESTARTABLE);
    await tagCluster(aws, 'stage', {
      [SCHEDULE]: 'office-hours',
      [OVERRIDE]: 'state=running until=2026-11-23T20:00:00Z by=user/jane why=release test',
    });
    const dimensions = { ClusterName: 'stage', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'stage-web-unhealthy', dimensions, { [RESTART]: 'ecs-service' });
    clock = EVENING;
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmNow(arn, dimensions));

    // Assess
    expect(report.resources[0]).toMatchObject({ arn: serviceArn, outcome: 'changed' });
    expect(report.resources[0]?.detail).toContain(
      'kept running by override on cluster stage by user/jane until Mon 21:00 Europe/Berlin (why: release test)',
    );
    expect(updates(proxy).map((r) => JSON.parse(r.body))).toEqual([
      { cluster: 'stage', service: 'web', forceNewDeployment: true },
    ]);
  });

  it('does not block a restart on a schedule that cannot be evaluated, and says so', async () => {
    // Prepare: the bundle's holidays end before this year (shared/holiday-table.ts throws for such a year)
    schedules = () => ({
      schedules: parseSchedules(
        {
          schedules: {
            'office-hours': {
              timezone: 'Europe/Berlin',
              periods: [{ begintime: '07:00', endtime: '19:00', weekdays: ['mon-fri'] }],
              holidays: { calendar: 'DE-BE' },
            },
          },
        },
        {
          calendars: {
            check: () => undefined,
            holidays: (code, year) => {
              throw new Error(`holidays of ${code} in ${year} are not in this bundle`);
            },
          },
        },
      ),
    });
    const serviceArn = await createService(aws, 'stage', 'web', {
      ...RESTARTABLE,
      [SCHEDULE]: 'office-hours',
    });
    const dimensions = { ClusterName: 'stage', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'stage-web-unhealthy', dimensions, { [RESTART]: 'ecs-service' });
    clock = EVENING;
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmNow(arn, dimensions));

    // Assess
    expect(report.resources[0]).toMatchObject({ arn: serviceArn, outcome: 'changed' });
    expect(report.resources[0]?.detail).toContain(
      `its schedule (${SCHEDULE}=office-hours on it) could not be evaluated (holidays of DE-BE in 2026 are not in this bundle): not checked`,
    );
    expect(updates(proxy)).toHaveLength(1);
  });
});
