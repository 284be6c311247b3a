/**
 * ssm-restart against moto, through the whole middy chain. moto 5.2.1 records every instance in the
 * region as a command's InstanceIds, so what was sent is asserted on the recorded SendCommand requests.
 * It has no DescribeInstanceInformation either: the recording proxy answers it as SSM would for the
 * agents each test declares online (stubSsmAgents).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler as realHandler, run, type Deps } from '#functions/ssm-restart/handler.ts';
import { RestartConfig } from '#functions/ssm-restart/config.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { ssmClient } from '#shared/aws/ssm.ts';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { cloudWatchClient } from '#shared/aws/cloudwatch.ts';
import { parseEnv } from '#shared/env.ts';
import { withOps } from '#shared/handler.ts';
import type { Report } from '#shared/report.ts';
import { readFileSync } from 'node:fs';
import { DeleteTagsCommand } from '@aws-sdk/client-ec2';
import { parseRestartInput } from '#events/ssm-restart/schema.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';
import { leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import {
  alarmEvent,
  createAlarm,
  createGroup,
  createService,
  describeService,
  instanceArn,
  instanceTags,
  launchInstances,
  mutations,
  restartSeedClients,
  RESTARTABLE,
  sendCommands,
  stopInstance,
  stubSsmAgents,
  tagInstance,
  type RestartSeedClients,
} from '#test/support/ssm-estate.ts';

// The tag names are a public contract: spelled out here rather than imported.
const RESTART = 'nightshift:restart';
const LAST_RESTART = 'nightshift:last-restart';
const MINUTE = 60_000;

let clock = new Date('2026-11-23T02:14:41Z');
const deps = (env: Record<string, string> = {}): Deps => ({
  clients: {
    ec2: ec2Client(),
    ssm: ssmClient(),
    ecs: ecsClient(),
    autoscaling: autoScalingClient(),
    cloudwatch: cloudWatchClient(),
  },
  config: parseEnv(RestartConfig, { AWS_REGION: 'eu-central-1', ...env }),
  now: () => clock,
  pollDelayMs: () => 20,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
});
/** The handler's own chain (parsing, withOps) around test dependencies: a fixed clock, fast polling. */
const invoke = (event: unknown, env: Record<string, string> = {}) =>
  withOps('ssm-restart', parseRestartInput, (input, ctx) => run(input, ctx, deps(env)))(
    event,
    lambdaContext('ssm-restart'),
  ) as Promise<Report>;
const row = (report: Report, suffix: string) => report.resources.find((r) => r.arn.endsWith(suffix));

describe.runIf(motoTestsEnabled())('ssm-restart against moto', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: RestartSeedClients;
  let agents: Parameters<typeof stubSsmAgents>[1] = {};
  /** These instances' SSM agents are online from now on. */
  const online = (...ids: (string | undefined)[]) => {
    for (const id of ids) agents[id ?? ''] = 'Online';
    stubSsmAgents(proxy, agents);
  };
  /** Opted-in instances whose SSM agents are online. */
  const launch = async (count: number, tags: Record<string, string> = {}) => {
    const ids = await launchInstances(aws, count, { ...RESTARTABLE, ...tags });
    online(...ids);
    return ids;
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    // The stage's lease table, as the stack creates it: withOps gives runs its store (through the proxy).
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
    await leaseTable(moto.url);
    clock = new Date('2026-11-23T02:14:41Z');
    proxy.requests.length = 0;
    agents = {};
    stubSsmAgents(proxy, agents);
  });

  it('restarts the container an alarm names on the instance in its InstanceId dimension', async () => {
    // Prepare
    const [web, other] = await launch(2);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmEvent(arn, { InstanceId: web! }));

    // Assess: one send, to that instance only, running exactly the command built from the tag
    const sends = sendCommands(proxy.requests);
    expect(sends).toHaveLength(1);
    expect(sends[0]).toEqual({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [web],
      Parameters: { commands: ['docker restart web'], executionTimeout: ['300'] },
      MaxConcurrency: '25%',
      MaxErrors: '1',
      Comment: 'nightshift ssm-restart: alarm web-1-unhealthy',
      TimeoutSeconds: 120,
    });
    expect(report.summary).toEqual({
      changed: 1,
      planned: 0,
      unchanged: 0,
      skipped: 0,
      undone: 0,
      failed: 0,
    });
    expect(report.resources[0]).toMatchObject({
      arn: instanceArn(web!),
      type: 'ec2-instance',
      outcome: 'changed',
    });
    expect(report.resources[0]?.detail).toMatch(
      /^docker restart web \(alarm web-1-unhealthy\); restart time recorded in tag nightshift:last-restart; Success, exit code 0$/,
    );
    // The restart time is on the instance, written before the command was sent
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:14:41Z what=container:web via=alarm',
    );
    expect((await instanceTags(aws, other!))[LAST_RESTART]).toBeUndefined();
    // Claimed in the lease table first, then tagged and sent; the claim is marked over once it ended
    expect(mutations(proxy.requests)).toEqual(['PutItem', 'CreateTags', 'SendCommand', 'PutItem']);
    const asked = proxy.requests.find((r) => r.operation === 'DescribeInstanceInformation')?.body ?? '{}';
    expect(JSON.parse(asked)).toEqual({ Filters: [{ Key: 'InstanceIds', Values: [web] }], MaxResults: 50 });
  });

  it('holds the cooldown across invocations: a second alarm within 15 minutes is skipped with the reason', async () => {
    // Prepare
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    await invoke(alarmEvent(arn, { InstanceId: web! }));
    const tagged = (await instanceTags(aws, web!))[LAST_RESTART];
    proxy.requests.length = 0;

    // Act: the alarm flaps back into ALARM 5 minutes later
    clock = new Date(clock.getTime() + 5 * MINUTE);
    const again = await invoke(alarmEvent(arn, { InstanceId: web! }));

    // Assess
    expect(again.summary).toEqual({ changed: 0, planned: 0, unchanged: 0, skipped: 1, undone: 0, failed: 0 });
    expect(again.resources[0]?.detail).toBe(
      'last restarted 5 min ago at 2026-11-23T02:14:41Z (container:web via alarm, by ssm-restart run ' +
        'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92 (ssm-restart)); alarm restarts wait for the 15-min cooldown, which ' +
        'ends at 2026-11-23T02:29:41Z: not restarted for alarm web-1-unhealthy',
    );
    expect(sendCommands(proxy.requests)).toEqual([]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(tagged);

    // Act: once the cooldown is over, the alarm restarts again
    clock = new Date('2026-11-23T02:29:41Z');
    const later = await invoke(alarmEvent(arn, { InstanceId: web! }));

    expect(later.summary.changed).toBe(1);
    expect(sendCommands(proxy.requests)).toHaveLength(1);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:29:41Z what=container:web via=alarm',
    );
  });

  it('restarts a unit on the InService instances of the Auto Scaling group in the dimensions', async () => {
    const members = await createGroup(aws, 'web-fleet', 3, RESTARTABLE);
    online(...members);
    await launch(1);
    const arn = await createAlarm(
      aws,
      'web-fleet-nginx-5xx',
      { AutoScalingGroupName: 'web-fleet' },
      { [RESTART]: 'unit:nginx.service' },
    );
    proxy.requests.length = 0;

    const report = await invoke(alarmEvent(arn, { AutoScalingGroupName: 'web-fleet' }));

    const sends = sendCommands(proxy.requests);
    expect(sends).toHaveLength(1);
    expect(sends[0]?.InstanceIds.sort()).toEqual([...members].sort());
    expect(sends[0]?.Parameters.commands).toEqual(['systemctl restart nginx.service']);
    expect(report.summary).toMatchObject({ changed: 3, failed: 0 });
    for (const id of members)
      expect((await instanceTags(aws, id))[LAST_RESTART]).toMatch(/what=unit:nginx.service/);
  });

  it.each(['OK', 'INSUFFICIENT_DATA'] as const)(
    'does nothing, quietly, when the alarm goes to %s',
    async (state) => {
      const [web] = await launch(1);
      const arn = await createAlarm(
        aws,
        'web-1-unhealthy',
        { InstanceId: web! },
        { [RESTART]: 'container:web' },
      );
      proxy.requests.length = 0;

      const report = await realHandler(
        alarmEvent(arn, { InstanceId: web! }, state),
        lambdaContext('ssm-restart'),
      );

      expect(report).toEqual({
        action: 'restart',
        dryRun: false,
        summary: { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, failed: 0 },
        resources: [],
      });
      expect(proxy.requests).toEqual([]);
    },
  );

  it('does nothing, quietly, for an alarm without the nightshift:restart tag', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(aws, 'cpu-high', { InstanceId: web! }, { team: 'shop' });
    proxy.requests.length = 0;

    const report = await invoke(alarmEvent(arn, { InstanceId: web! }));

    expect(report.resources).toEqual([]);
    expect(proxy.requests.map((r) => r.operation)).toEqual(['ListTagsForResource']);
  });

  it('refuses an alarm tag that would inject shell, naming the tag, before any mutating call', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web; reboot' },
    );
    proxy.requests.length = 0;

    const ctx = runContext();
    const report = await run(parseRestartInput(alarmEvent(arn, { InstanceId: web! })), ctx, deps());
    await expect(invoke(alarmEvent(arn, { InstanceId: web! }))).rejects.toThrow(/all 1 resource\(s\) failed/);

    expect(report.resources).toEqual([
      {
        arn,
        type: 'cloudwatch-alarm',
        outcome: 'failed',
        detail:
          'alarm web-1-unhealthy: tag nightshift:restart names container "web; reboot": expected 1 to 128 letters, ' +
          'digits, "_", ".", "@" or "-", starting with a letter or digit; nothing restarted',
      },
    ]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
  });

  it('redeploys the ECS service in the dimensions of an alarm tagged ecs-service', async () => {
    // Prepare
    const serviceArn = await createService(aws, 'shop', 'web', RESTARTABLE);
    const before = await describeService(aws, 'shop', 'web');
    const dimensions = { ClusterName: 'shop', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'shop-web-memory-leak', dimensions, { [RESTART]: 'ecs-service' });
    proxy.requests.length = 0;

    // Act
    const report = await invoke(alarmEvent(arn, dimensions));

    // Assess
    const updates = proxy.requests
      .filter((r) => r.operation === 'UpdateService')
      .map((r) => JSON.parse(r.body));
    expect(updates).toEqual([{ cluster: 'shop', service: 'web', forceNewDeployment: true }]);
    expect(mutations(proxy.requests)).toEqual(['PutItem', 'TagResource', 'UpdateService', 'PutItem']);
    const after = await describeService(aws, 'shop', 'web');
    const primary = after.deployments.find((d) => d.status === 'PRIMARY');
    expect(primary?.id).not.toBe(before.deployments.find((d) => d.status === 'PRIMARY')?.id);
    expect(after.tags[LAST_RESTART]).toBe('at=2026-11-23T02:14:41Z what=ecs-service via=alarm');
    expect(report.resources).toEqual([
      {
        arn: serviceArn,
        type: 'ecs-service',
        outcome: 'changed',
        detail:
          'redeploy (UpdateService forceNewDeployment; alarm shop-web-memory-leak); restart time recorded ' +
          `in tag nightshift:last-restart; deployment ${primary?.id} started`,
      },
    ]);

    // A second alarm within the cooldown leaves the service alone
    proxy.requests.length = 0;
    clock = new Date(clock.getTime() + 14 * MINUTE);
    const again = await invoke(alarmEvent(arn, dimensions));
    expect(again.resources[0]).toMatchObject({ outcome: 'skipped' });
    expect(mutations(proxy.requests)).toEqual([]);
  });

  it('leaves alone an ECS service without nightshift:restartable=true', async () => {
    const serviceArn = await createService(aws, 'shop', 'web', { team: 'shop' });
    const before = await describeService(aws, 'shop', 'web');
    const dimensions = { ClusterName: 'shop', ServiceName: 'web' };
    const arn = await createAlarm(aws, 'shop-web-memory-leak', dimensions, { [RESTART]: 'ecs-service' });
    proxy.requests.length = 0;

    const report = await invoke(alarmEvent(arn, dimensions));

    expect(report.resources).toEqual([
      {
        arn: serviceArn,
        type: 'ecs-service',
        outcome: 'skipped',
        detail: 'not opted in: the service has no nightshift:restartable=true tag; nothing redeployed',
      },
    ]);
    expect(mutations(proxy.requests)).toEqual([]);
    expect(await describeService(aws, 'shop', 'web')).toEqual(before);
  });

  it('restarts on demand on the running instances carrying every tag, whatever the cooldown', async () => {
    // Prepare: two running web instances (one restarted a minute ago), a stopped one, an api one
    const [a, b, stopped] = await launch(3, { app: 'web', env: 'stage' });
    await launch(1, { app: 'api', env: 'stage' });
    await stopInstance(aws, stopped!);
    const { CreateTagsCommand } = await import('@aws-sdk/client-ec2');
    await aws.ec2.send(
      new CreateTagsCommand({
        Resources: [a!],
        Tags: [{ Key: LAST_RESTART, Value: 'at=2026-11-23T02:13:41Z what=unit:nginx.service via=alarm' }],
      }),
    );
    proxy.requests.length = 0;

    // Act
    const report = await invoke({
      action: 'restart',
      targets: { tags: { app: 'web', env: 'stage' } },
      unit: 'nginx.service',
    });

    // Assess
    const sends = sendCommands(proxy.requests);
    expect(sends).toHaveLength(1);
    expect(sends[0]?.InstanceIds.sort()).toEqual([a, b].sort());
    expect(sends[0]?.Parameters.commands).toEqual(['systemctl restart nginx.service']);
    expect(sends[0]?.Comment).toBe('nightshift ssm-restart: on-demand');
    const describe = proxy.requests.find((r) => r.operation === 'DescribeInstances')?.body ?? '';
    expect(new URLSearchParams(describe).get('Filter.1.Name')).toBe('instance-state-name');
    expect(new URLSearchParams(describe).get('Filter.1.Value.1')).toBe('running');
    expect(report.summary).toMatchObject({ changed: 2, failed: 0 });
    expect(row(report, a!)?.detail).toMatch(
      /last restarted 1 min ago at 2026-11-23T02:13:41Z \(unit:nginx.service via alarm\): an on-demand restart ignores the cooldown/,
    );
    expect((await instanceTags(aws, a!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:14:41Z what=unit:nginx.service via=on-demand',
    );
  });

  it('sends to more than 50 instances in batches of 50', async () => {
    await launch(60, { app: 'batch' });
    proxy.requests.length = 0;

    const report = await invoke({
      action: 'restart',
      targets: { tags: { app: 'batch' } },
      container: 'worker',
    });

    const sends = sendCommands(proxy.requests);
    expect(sends.map((s) => s.InstanceIds.length)).toEqual([50, 10]);
    // The sends run at the same time: a percentage holds in each, MAX_ERRORS 1 is shared out among them
    expect(sends.map((s) => [s.MaxConcurrency, s.MaxErrors])).toEqual([
      ['25%', '1'],
      ['25%', '0'],
    ]);
    expect(report.summary).toMatchObject({ changed: 60, failed: 0 });
    // Both batches went out before the first poll: a slow instance in one holds up no other
    const ops = proxy.requests.map((r) => r.operation);
    expect(ops.lastIndexOf('SendCommand')).toBeLessThan(ops.indexOf('GetCommandInvocation'));
    // SSM was asked about the agents 50 ids a call
    expect(
      proxy.requests
        .filter((r) => r.operation === 'DescribeInstanceInformation')
        .map((r) => (JSON.parse(r.body) as { Filters: { Values: string[] }[] }).Filters[0]?.Values.length),
    ).toEqual([50, 10]);
  });

  it('restarts only opted-in instances whose SSM agent is online, tagging no other', async () => {
    // Prepare: one good instance, one whose agent lost its connection, one SSM does not manage, one not opted in
    const [good, lost, unmanaged] = await launch(3, { app: 'web' });
    const [notOptedIn] = await launchInstances(aws, 1, { app: 'web' });
    online(notOptedIn);
    agents[lost!] = 'ConnectionLost';
    delete agents[unmanaged!];
    stubSsmAgents(proxy, agents);
    proxy.requests.length = 0;

    // Act
    const report = await invoke(
      { action: 'restart', targets: { tags: { app: 'web' } }, container: 'web' },
      { MAX_ERRORS: '0' },
    );

    // Assess: one send, to the good instance; the others are skipped, not failed, and carry no restart time
    expect(sendCommands(proxy.requests).map((s) => s.InstanceIds)).toEqual([[good]]);
    expect(report.summary).toEqual({
      changed: 1,
      planned: 0,
      unchanged: 0,
      skipped: 3,
      undone: 0,
      failed: 0,
    });
    expect(row(report, lost!)?.detail).toBe(
      'not an SSM managed instance, or its agent is offline (PingStatus ConnectionLost); nothing sent',
    );
    expect(row(report, unmanaged!)?.detail).toBe(
      'not an SSM managed instance, or its agent is offline (SSM DescribeInstanceInformation does not list it); nothing sent',
    );
    expect(row(report, notOptedIn!)?.detail).toBe(
      'not opted in: the instance has no nightshift:restartable=true tag; nothing sent',
    );
    expect((await instanceTags(aws, good!))[LAST_RESTART]).toMatch(/^at=2026-11-23T02:14:41Z /);
    for (const id of [lost, unmanaged, notOptedIn]) {
      expect((await instanceTags(aws, id!))[LAST_RESTART]).toBeUndefined();
    }
  });

  it('skips, for an alarm, a group member that is not opted in or not online', async () => {
    const members = await createGroup(aws, 'web-fleet', 3, RESTARTABLE);
    const [plain, offline, good] = members;
    await aws.ec2.send(
      new DeleteTagsCommand({ Resources: [plain!], Tags: [{ Key: 'nightshift:restartable' }] }),
    );
    online(plain, good);
    const arn = await createAlarm(
      aws,
      'web-fleet-nginx-5xx',
      { AutoScalingGroupName: 'web-fleet' },
      { [RESTART]: 'unit:nginx.service' },
    );
    proxy.requests.length = 0;

    const report = await invoke(alarmEvent(arn, { AutoScalingGroupName: 'web-fleet' }));

    expect(sendCommands(proxy.requests).map((s) => s.InstanceIds)).toEqual([[good]]);
    expect(row(report, plain!)).toMatchObject({ outcome: 'skipped' });
    expect(row(report, plain!)?.detail).toMatch(/^not opted in/);
    expect(row(report, offline!)).toMatchObject({ outcome: 'skipped' });
    expect(row(report, offline!)?.detail).toMatch(/^not an SSM managed instance, or its agent is offline/);
    expect((await instanceTags(aws, plain!))[LAST_RESTART]).toBeUndefined();
    expect((await instanceTags(aws, offline!))[LAST_RESTART]).toBeUndefined();
  });

  it('restarts on an alarm, and replaces, a last restart far in the future', async () => {
    const [web] = await launch(1);
    await tagInstance(aws, web!, {
      [LAST_RESTART]: 'at=2031-11-23T02:14:41Z what=container:web via=on-demand',
    });
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );

    const report = await invoke(alarmEvent(arn, { InstanceId: web! }));

    expect(report.summary.changed).toBe(1);
    expect(report.resources[0]?.detail).toMatch(
      /its nightshift:last-restart tag says 2031-11-23T02:14:41Z, more than 5 min in the future, which no restart can be/,
    );
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBe(
      'at=2026-11-23T02:14:41Z what=container:web via=alarm',
    );
  });

  it('refuses a metric-math alarm whose instance only feeds its expression', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-slower-than-fleet',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    const event = JSON.parse(readFileSync('events/aws.cloudwatch/samples/alarm-metric-math.json', 'utf8'));
    event.resources = [arn];
    event.detail.configuration.metrics[1].metricStat.metric.dimensions = { InstanceId: web };
    proxy.requests.length = 0;

    const ctx = runContext();
    const report = await run(parseRestartInput(event), ctx, deps());

    expect(report.resources).toMatchObject([{ arn, type: 'cloudwatch-alarm', outcome: 'failed' }]);
    expect(report.resources[0]?.detail).toMatch(/it alarms on a metric-math expression/);
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
  });

  it.each([
    ['container', 'web; rm -rf /'],
    ['container', '$(reboot)'],
    ['container', '`reboot`'],
    ['container', '../x'],
    ['container', '-v'],
    ['container', 'w'.repeat(200)],
    ['unit', 'nginx service'],
    ['unit', 'nginx\nreboot'],
  ])('refuses %s %j before any AWS call', async (field, name) => {
    const [web] = await launch(1);
    proxy.requests.length = 0;

    await expect(
      realHandler(
        { action: 'restart', targets: { instanceIds: [web] }, [field]: name },
        lambdaContext('ssm-restart'),
      ),
    ).rejects.toThrow(new RegExp(`^invalid event: field "${field}": expected 1 to 128 letters`));

    expect(proxy.requests).toEqual([]);
  });

  it('sends nothing and writes no tag in a dry run, from the event or from DRY_RUN', async () => {
    const [web] = await launch(1);
    const arn = await createAlarm(
      aws,
      'web-1-unhealthy',
      { InstanceId: web! },
      { [RESTART]: 'container:web' },
    );
    proxy.requests.length = 0;

    const onDemand = await invoke({
      action: 'restart',
      targets: { instanceIds: [web] },
      container: 'web',
      dryRun: true,
    });
    const alarm = await invoke(alarmEvent(arn, { InstanceId: web! }), { DRY_RUN: 'true' });

    for (const report of [onDemand, alarm]) {
      expect(report.dryRun).toBe(true);
      expect(report.summary).toEqual({
        changed: 0,
        planned: 1,
        unchanged: 0,
        skipped: 0,
        undone: 0,
        failed: 0,
      });
    }
    expect(onDemand.resources[0]?.detail).toBe(
      'docker restart web (on-demand); restart time recorded in tag nightshift:last-restart',
    );
    expect(mutations(proxy.requests)).toEqual([]);
    expect((await instanceTags(aws, web!))[LAST_RESTART]).toBeUndefined();
  });

  it('reports named instances that are stopped or unknown instead of sending to them', async () => {
    const [running, stopped] = await launch(2);
    await stopInstance(aws, stopped!);
    proxy.requests.length = 0;

    const report = await invoke({
      action: 'restart',
      targets: { instanceIds: [running, stopped, 'i-0123456789abcdef0'] },
      container: 'web',
    });

    expect(sendCommands(proxy.requests).map((s) => s.InstanceIds)).toEqual([[running]]);
    expect(report.resources.map((r) => [r.arn.split('/').pop(), r.outcome, r.detail.split(';')[0]])).toEqual([
      ['i-0123456789abcdef0', 'failed', 'instance not found'],
      [running, 'changed', 'docker restart web (on-demand)'],
      [stopped, 'skipped', 'not running (stopped)'],
    ]);
  });
});
